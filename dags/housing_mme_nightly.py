"""
### housing_mme_nightly: one fresh model per location, served from one multi-model endpoint

Every night at 02:00 UTC, for the run's date (its logical date, however the run was created; a run
without a logical date uses the time it was queued for):

1. **validate_params**: the Params (or `--conf` / a backfill's `--dag-run-conf`) and the environment
   settings are checked; every problem is reported at once, before anything is created.
2. **setup**: the bucket, the MME model (`Mode=MultiModel`, `ModelDataUrl` = the MME prefix), its
   endpoint config and the endpoint exist: created once, reused (an update only when the spec changes).
3. **location** (mapped over the locations; the grid shows each location's name), per location:
   `prepare` (land the raw listings, quarantine bad rows, 60/30/10 channels under `date=/location=`) ->
   `train` (retry-safe, deferrable, pool `sagemaker_training`) -> `evaluate` (new vs the version live
   for the run's date, RMSE/MAE on the test split; accepted if at least as good within the tolerance,
   or if the location has no earlier version) -> `register` (a new versioned artifact in the MME
   prefix, never overwritten) -> `smoke_test` (the endpoint with `TargetModel` must predict what the
   artifact predicts locally) -> `promote` (live record; never moves a newer live version backwards;
   an Asset event for the location's live model when it changed). `register`, `smoke_test` and
   `promote` each skip, with the evaluation's reason, unless it accepted the model.
4. **summary** (runs even when locations failed): a table in the log and a JSON report in S3; it fails
   the run, after reporting, if any location failed.

Environment settings (Airflow Variable, else environment variable, else default):
`housing_bucket` / `HOUSING_BUCKET` (`sagemaker-fleet-local`), `housing_role_arn` / `HOUSING_ROLE_ARN`,
`housing_raw_source` / `HOUSING_RAW_SOURCE` (`synthetic`, or `s3://bucket/prefix` holding
`date=YYYY-MM-DD/location=<Location>/listings.csv`).

Backfill one location for November 1-3 (the runs are at 02:00, so `--to-date` names 02:00 of the last
date; add `--dry-run` to preview; runs are idempotent per date and nothing is overwritten):
`airflow backfill create --dag-id housing_mme_nightly --from-date 2026-11-01
--to-date 2026-11-03T02:00:00+00:00 --dag-run-conf '{"locations": ["Chicago_IL"]}'`
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from typing import Any

from airflow.sdk import (
    AssetAlias,
    CronTriggerTimetable,
    Param,
    TriggerRule,
    dag,
    get_current_context,
    task,
    task_group,
)

from include.housing.locations import LOCATION_PATTERN, SEED_LOCATIONS
from include.housing.naming import NAME_PATTERN
from include.housing.params import (
    INSTANCE_TYPE_EXAMPLES,
    INSTANCE_TYPE_PATTERN,
    MAX_HOUSES,
    MAX_REVISION,
    MIN_HOUSES,
    NIGHTLY_DEFAULTS,
    SECTION_ADVANCED,
    SECTION_CORE,
    SECTION_TESTING,
)
from sagemaker_fleet.links.sagemaker import S3ReportLink
from sagemaker_fleet.operators.deploy import SageMakerDeployEndpointOperator
from sagemaker_fleet.operators.mme import MMEPromoteModelOperator, MMERegisterModelOperator
from sagemaker_fleet.operators.training import SageMakerRetrySafeTrainingOperator
from sagemaker_fleet.run_settings import environment_setting
from sagemaker_fleet.run_settings import run_date as run_date_of

AWS_CONN_ID = "aws_default"
# Task summaries go to the task log (not stdout, which Airflow folds away after "Done").
log = logging.getLogger(__name__)
TRAINING_POOL = "sagemaker_training"
GROUP = "location"
LIVE_MODELS = AssetAlias("housing_mme_live_models")
# A deployment setting (the DAG tests shorten it); read from the environment, never from the metadata DB.
RETRY_DELAY = dt.timedelta(seconds=int(os.environ.get("HOUSING_RETRY_DELAY_SECONDS", "60")))


def _hook():
    from sagemaker_fleet.hooks.sagemaker import SageMakerFleetHook

    return SageMakerFleetHook(aws_conn_id=AWS_CONN_ID)


@dag(
    dag_id="housing_mme_nightly",
    schedule=CronTriggerTimetable("0 2 * * *", timezone="UTC"),
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    default_args={
        "owner": "ml-platform",
        "retries": 2,
        "retry_delay": RETRY_DELAY,
        "aws_conn_id": AWS_CONN_ID,
    },
    tags=["housing", "sagemaker", "mme", "nightly"],
    description="Nightly: one XGBoost model per location, gated against the live one, served from one "
    "multi-model endpoint.",
    doc_md=__doc__,
    params={
        # Core: what a person chooses on most runs.
        "locations": Param(
            list(SEED_LOCATIONS),
            type="array",
            items={"type": "string", "pattern": LOCATION_PATTERN.pattern},
            examples=list(SEED_LOCATIONS),
            minItems=1,
            uniqueItems=True,
            title="Locations",
            description="The locations to train, one model each: pick from the seed's ten or type a new "
            "CamelCaseCity_ST name (e.g. Boston_MA).",
            section=SECTION_CORE,
        ),
        "houses_per_location": Param(
            NIGHTLY_DEFAULTS["houses_per_location"],
            type="integer",
            minimum=MIN_HOUSES,
            maximum=MAX_HOUSES,
            title="Houses per location",
            description=f"Listings generated (synthetic feed) per location for the run's date, "
            f"{MIN_HOUSES:,} to {MAX_HOUSES:,}; split 60/30/10 into train, validation and test.",
            section=SECTION_CORE,
        ),
        # Advanced: sensible defaults; empty means the default.
        "hyperparameters": Param(
            NIGHTLY_DEFAULTS["hyperparameters"],
            type=["null", "object"],
            title="XGBoost hyperparameters",
            description="Merged over the seed's defaults (shown); unknown names are refused, e.g. "
            '{"num_round": 80, "max_depth": 6, "eta": 0.2}.',
            section=SECTION_ADVANCED,
        ),
        "instance_type": Param(
            NIGHTLY_DEFAULTS["instance_type"],
            type=["null", "string"],
            pattern=INSTANCE_TYPE_PATTERN.pattern,
            examples=list(INSTANCE_TYPE_EXAMPLES),
            title="Training instance type",
            description="The SageMaker instance type of the training jobs and the endpoint.",
            section=SECTION_ADVANCED,
        ),
        "promotion_tolerance": Param(
            NIGHTLY_DEFAULTS["promotion_tolerance"],
            type=["null", "number"],
            minimum=0,
            maximum=1,
            title="Promotion tolerance",
            description="A new model goes live if its test RMSE <= the live model's RMSE x (1 + tolerance); "
            "0.05 = at most 5 % worse.",
            section=SECTION_ADVANCED,
        ),
        "max_bad_fraction": Param(
            NIGHTLY_DEFAULTS["max_bad_fraction"],
            type=["null", "number"],
            minimum=0,
            maximum=1,
            title="Largest share of bad rows",
            description="A location fails when more of its listings than this (0 to 1) are quarantined as bad.",
            section=SECTION_ADVANCED,
        ),
        "endpoint_name": Param(
            NIGHTLY_DEFAULTS["endpoint_name"],
            type=["null", "string"],
            pattern=NAME_PATTERN.pattern,
            title="Multi-model endpoint",
            description="The endpoint serving every location (letters, digits and single hyphens, at most 63).",
            section=SECTION_ADVANCED,
        ),
        "revision": Param(
            NIGHTLY_DEFAULTS["revision"],
            type=["null", "integer"],
            minimum=0,
            maximum=MAX_REVISION,
            title="Build revision of the date",
            description="0: the date's build. A rerun with other houses, hyperparameters, instance type or "
            "data fails and names the next free revision (1 to 99): a further build beside the first, with "
            "its own data, job and model version (20261123-r01); nothing earlier is overwritten.",
            section=SECTION_ADVANCED,
        ),
        # Testing only: for demos and tests of the quarantine.
        "bad_fraction_by_location": Param(
            None,
            type=["null", "object"],
            additionalProperties={"type": "number", "minimum": 0, "maximum": 1},
            title="Corrupt the synthetic feed",
            description='Share of bad rows to inject per location, e.g. {"Chicago_IL": 0.6}; honoured only '
            "with the synthetic raw source.",
            section=SECTION_TESTING,
        ),
    },
)
def housing_mme_nightly() -> None:
    @task
    def validate_params() -> dict[str, Any]:
        """Check Params and environment settings; return the run's plan (every later task reads it)."""
        from airflow.sdk.exceptions import AirflowFailException

        from include.housing.nightly import build_plan, environment_settings, rerun_conflicts
        from include.housing.params import InvalidParamsError

        context = get_current_context()
        dag_run = context["dag_run"]
        try:
            settings = environment_settings(environment_setting)
            run_date = run_date_of(context)
            # The SDK's image config read directly: importing sagemaker.core cost every run seconds.
            from include.sagemaker_images import image_uri as image_uri_of

            # The region of the S3 client the rerun check needs anyway (not a sagemaker client built for it).
            s3 = _hook().s3_client
            image_uri = image_uri_of("xgboost", region=s3.meta.region_name or "us-east-1", version="1.7-1")
            plan = build_plan(
                context["params"],
                settings,
                run_date,
                dag_id=dag_run.dag_id,
                run_id=dag_run.run_id,
                image_uri=image_uri,
            )
            # A rerun of the date with other Params would rewrite the earlier build: refuse before anything.
            if conflicts := rerun_conflicts(s3, plan):
                raise InvalidParamsError(conflicts)
        except (InvalidParamsError, ValueError) as error:
            # Bad input does not get better on retry.
            raise AirflowFailException(str(error)) from None
        log.info(f"Plan for {plan['run_date']}: {len(plan['locations'])} location(s): {', '.join(plan['locations'])}")
        return plan

    @task
    def ensure_bucket(plan: dict[str, Any]) -> str:
        """Create the bucket if it is missing."""
        from include.housing.nightly import ensure_bucket as ensure

        hook = _hook()
        created = ensure(hook.s3_client, plan["bucket"], hook.conn_region_name)
        log.info(f"Bucket {plan['bucket']} {'created' if created else 'already exists'}")
        return plan["bucket"]

    @task(multiple_outputs=True)
    def endpoint_spec(plan: dict[str, Any], bucket: str) -> dict[str, Any]:
        """The MME model and endpoint config the endpoint must run (deterministic names)."""
        from include.housing.nightly import mme_endpoint_spec

        return mme_endpoint_spec(plan)

    @task
    def locations_of(plan: dict[str, Any]) -> list[str]:
        """The locations to map over."""
        return plan["locations"]

    plan = validate_params()
    bucket = ensure_bucket(plan)
    spec = endpoint_spec(plan, bucket)
    endpoint = SageMakerDeployEndpointOperator(
        task_id="deploy_endpoint",
        endpoint_name=spec["endpoint_name"],
        endpoint_config=spec["endpoint_config"],
        models=spec["models"],
        delete_superseded_configs=True,
        deferrable=True,
        # One MME serves every location; tagged when created, then left alone by later runs.
        tags={"location": "all"},
    )

    @task_group(group_id=GROUP)
    def per_location(plan: dict[str, Any], location: str, endpoint: Any) -> None:
        # The grid labels each mapped task with its location from the start: Airflow renders the template
        # once the task's arguments are resolved, before it runs (a value set during execute would only
        # show once the task has finished). ``location`` is passed by keyword below, so it is in op_kwargs.
        location_label = "{{ task.op_kwargs.get('location', '') }}"

        # Landing the raw listings and preparing them are one task: a task instance costs more in Airflow
        # (start, state, rendered fields, XComs) than the ingest itself, and both are idempotent per build.
        @task(multiple_outputs=True, map_index_template=location_label)
        def prepare(plan: dict[str, Any], location: str) -> dict[str, Any]:
            """Land the day's raw listings (or check the S3 source has them), quarantine bad rows, write the
            channels and build the training request."""
            from airflow.sdk.exceptions import AirflowFailException

            from include.housing.nightly import (
                BuildConflictError,
                build_training_config,
                ingest_listings,
                prepare_location,
            )
            from include.housing.prepare import DataValidationError

            s3 = _hook().s3_client
            try:
                ingested = ingest_listings(s3, plan, location)
                data = prepare_location(s3, plan, location, ingested["raw_uri"])
            except (BuildConflictError, DataValidationError) as error:
                # Another run's build, or data that fails the same way every time: a retry cannot help.
                raise AirflowFailException(str(error)) from None
            log.info(
                f"{location}: {ingested['bytes']:,} bytes of raw listings ({ingested['source']}); "
                f"{data['rows_good']} good, {data['rows_bad']} quarantined ({data['quarantine_uri'] or 'none'}); "
                f"channels under {data['channels']['train'].rsplit('/', 2)[0]}"
            )
            return {"data": data, "training_config": build_training_config(plan, location, data["channels"])}

        # Evaluation decides; register, smoke_test and promote each check its decision and skip with its
        # reason. No short-circuit: in a mapped task group Airflow 3.3's scheduler ignores its skip list
        # (apache/airflow#67265), so the model would be registered and promoted anyway.
        # One XCom per result (multiple_outputs would also push each key): every XCom is an API round trip.
        @task(multiple_outputs=False, map_index_template=location_label)
        def evaluate(
            plan: dict[str, Any], location: str, data: dict[str, Any], trained: dict[str, Any]
        ) -> dict[str, Any]:
            """Score the new model and the one live for the run's date on its test split; decide."""
            from include.housing.nightly import evaluate_artifacts
            from sagemaker_fleet.operators.mme import archive_reader, live_version_on, read_live_record, version_entry

            hook = _hook()
            record = read_live_record(hook, plan["registry_prefix"], location)
            # The baseline is what was live for this date (the day before it), not today's live version:
            # a backfilled date is judged against its own past, and a rerun gets the same decision. Only a
            # date older than the record's window reads an archive.
            day_before = dt.date.fromisoformat(plan["run_date"]) - dt.timedelta(days=1)
            read_archive = archive_reader(hook, plan["registry_prefix"])
            baseline = live_version_on(record, day_before, read_archive)
            baseline_entry = version_entry(record, baseline, read_archive) if baseline else None
            baseline_uri = plan["mme_prefix"] + baseline_entry["target_model"] if baseline_entry else None
            result = evaluate_artifacts(
                hook.s3_client,
                location=location,
                run_date=plan["run_date"],
                new_artifact_uri=trained["model_artifact"],
                test_uri=data["test_uri"],
                live_artifact_uri=baseline_uri,
                live_version=baseline,
                tolerance=plan["promotion_tolerance"],
                revision=plan["revision"],
            )
            log.info(f"{location} {result['version']}: {result['reason']}")
            return result

        @task(multiple_outputs=False, map_index_template=location_label)
        def smoke_test(
            plan: dict[str, Any],
            location: str,
            data: dict[str, Any],
            decision: dict[str, Any],
            registered: dict[str, Any],
            endpoint: Any,
        ) -> dict[str, Any]:
            """Invoke the endpoint with TargetModel; it must predict what the artifact predicts locally."""
            from include.housing.nightly import smoke_test_model
            from sagemaker_fleet.operators.mme import check_decision

            check_decision(decision, f"{location} {registered['version']}")

            hook = _hook()

            def invoke(body: str, target_model: str) -> bytes:
                return hook.invoke_endpoint(plan["endpoint_name"], body, target_model=target_model)["body"]

            result = smoke_test_model(
                hook.s3_client,
                invoke,
                target_model=registered["target_model"],
                artifact_uri=registered["s3_uri"],
                test_uri=data["test_uri"],
            )
            log.info(f"{location}: endpoint and local predictions agree on {result['rows']} rows")
            return result

        prepared = prepare(plan, location=location)
        trained = SageMakerRetrySafeTrainingOperator(
            task_id="train",
            config=prepared["training_config"],
            pool=TRAINING_POOL,
            deferrable=True,
            check_interval=2,
            # A location's job is small: on a warm pool (or the emulator) it ends within seconds, sooner
            # than a deferral round trip, which would hold the training pool slot meanwhile.
            inline_wait_seconds=15,
            map_index_template="{{ task.config['Tags'][0]['Value'] }}",
        )
        evaluation = evaluate(plan, location=location, data=prepared["data"], trained=trained.output)
        # The artifact, version and metrics come from the evaluation (its decision): one XCom, not four.
        registered = MMERegisterModelOperator(
            task_id="register",
            mme_prefix=plan["mme_prefix"],
            registry_prefix=plan["registry_prefix"],
            location=location,
            decision=evaluation,
            map_index_template="{{ task.location }}",
        )
        smoked = smoke_test(
            plan,
            location=location,
            data=prepared["data"],
            decision=evaluation,
            registered=registered.output,
            endpoint=endpoint,
        )
        promoted = MMEPromoteModelOperator(
            task_id="promote",
            mme_prefix=plan["mme_prefix"],
            registry_prefix=plan["registry_prefix"],
            location=location,
            decision=evaluation,
            # A promotion emits an Asset event for the location's record through this alias.
            outlets=[LIVE_MODELS],
            map_index_template="{{ task.location }}",
        )
        smoked >> promoted

    locations = per_location.partial(plan=plan, endpoint=endpoint.output).expand(location=locations_of(plan))
    # Every location writes to the bucket: none may start before it exists (on several Celery workers the
    # first prepares otherwise race ensure_bucket, fail with NoSuchBucket and spend their retries).
    bucket >> locations

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def summary(plan: dict[str, Any]) -> dict[str, Any]:
        """One row per location in the log and in a JSON report in S3; fails the run if a location failed."""
        from airflow.sdk.exceptions import AirflowFailException

        from include.housing.nightly import (
            SUMMARY_COLUMNS,
            failed_tasks_by_index,
            results_by_location,
            summary_report,
            summary_row,
            write_report,
        )
        from sagemaker_fleet.utils.reports import summary_table
        from sagemaker_fleet.utils.s3 import parse_s3_uri as split_s3_uri

        context = get_current_context()
        ti = context["ti"]
        run_id = plan["run_id"]
        # Three requests for the whole fleet, not three per location: every state in the group, and every
        # evaluation and promotion (each names its location; a failed or skipped one returned nothing).
        states = ti.get_task_states(dag_id=plan["dag_id"], task_group_id=GROUP, run_ids=[run_id]).get(run_id, {})
        failed = failed_tasks_by_index(states, GROUP)
        evaluations = results_by_location(ti.xcom_pull(task_ids=[f"{GROUP}.evaluate"]))
        promotions = results_by_location(ti.xcom_pull(task_ids=[f"{GROUP}.promote"]))
        rows = [
            summary_row(
                location,
                evaluation=evaluations.get(location),
                promotion=promotions.get(location),
                failed_task=next((t for t in _TASK_ORDER if t in failed.get(index, ())), None),
            )
            for index, location in enumerate(plan["locations"])
        ]
        log.info(
            "Summary of %s (%d location(s)):\n%s", plan["run_date"], len(rows), summary_table(rows, SUMMARY_COLUMNS)
        )
        report = summary_report(plan, rows)
        hook = _hook()
        write_report(hook.s3_client, plan["report_uri"], report)
        # The task's "Report" link: the S3 console on AWS, the emulator's S3 page locally.
        _, report_key = split_s3_uri(plan["report_uri"])
        S3ReportLink.persist_report(context, hook, bucket=plan["bucket"], prefix=report_key.rsplit("/", 1)[0] + "/")
        log.info("Report: %s", plan["report_uri"])
        if report["failed"]:
            raise AirflowFailException(
                f"{len(report['failed'])} of {len(rows)} location(s) failed: {', '.join(report['failed'])} "
                f"(see the report {plan['report_uri']} and those locations' task logs)"
            )
        return report

    summarised = summary(plan)
    summarised.operator.operator_extra_links = (S3ReportLink(),)
    locations >> summarised


_TASK_ORDER = ("prepare", "train", "evaluate", "register", "smoke_test", "promote")

housing_mme_nightly()
