"""
### asteroid_linear_learner: the SageMaker Linear Learner notebook on NASA's asteroids, as a DAG

Follows seed notebook 002, *Running Machine Learning Algorithms on AWS SageMaker* (Linear Learner on the
NASA NeoWs asteroid data): load, clean, split, convert to recordIO-protobuf, train, host, score, compare
with the baselines, delete the endpoint. One run:

1. **validate_params**: the Params and the environment settings are checked (every problem at once) before
   anything is created; the run's names (`asteroid-ll-<date>-<run hash>`, the same on every retry) and the
   Linear Learner image for the connection's region.
2. **run_resources** (setup): the model, endpoint config and endpoint this run will create.
3. **prepare_data**: the offline asteroid data set (NASA's 40 columns) -> the notebook's cleaning
   (35 columns, 32 features, label `hazardous`) -> its 80/10/10 random split (seeded) -> `train` and
   `validation` as recordIO-protobuf (`write_numpy_to_dense_tensor`), `test` as CSV for scoring.
4. **train**: the notebook's exact CreateTrainingJob: `train` ShardedByS3Key, `validation` FullyReplicated,
   no ContentType (recordIO), `feature_dim 32, mini_batch_size 100, epochs 10, num_models 32`, loss
   `absolute_loss`; retry-safe (a retry re-attaches), deferrable, pool `sagemaker_training` (1 slot per
   instance).
5. **endpoint_spec** -> **deploy**: model -> endpoint config with one variant `AllTraffic` -> endpoint,
   deferrable, verified InService on that config.
6. **score**: every test row, sent as CSV (the notebook's `np2csv`), scores kept in S3.
7. **report**: JSON and a PNG (predictions vs labels) in S3: MAE against the training median baseline,
   accuracy at 0.5 against the majority baseline, and the notebook's printed lines for this run; a summary
   in the task log.
8. **teardown** (Airflow teardown of `run_resources`, `all_done`): deletes the endpoint, its config and the
   model, whether the run succeeded or failed; the run keeps its own outcome.

**What differs from the notebook.** The data is an offline, seeded stand-in with NASA's schema and a
documented hazard rule (`include/asteroids/data.py`), not a download. Names are deterministic instead of
timestamped. `predictor_type` may be `binary_classifier`, which trains with `logistic` loss
(`absolute_loss` is a regression loss). The endpoint is always deleted at the end (the notebook leaves
that to you). The split is seeded, so a rerun gives the same figures.

Environment settings (Airflow Variable, else environment variable, else default), shared with the housing
DAGs: `housing_bucket` / `HOUSING_BUCKET`, `housing_role_arn` / `HOUSING_ROLE_ARN`.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from typing import Any

from airflow.sdk import Param, dag, get_current_context, task

from include.asteroids.pipeline import (
    DEFAULTS,
    MAX_ROWS,
    MIN_ROWS,
    PREDICTOR_TYPES,
    TRAINING_INSTANCE_COUNT,
)
from include.project_settings import instance_type_param
from sagemaker_fleet.operators.deploy import SageMakerDeployEndpointOperator
from sagemaker_fleet.operators.teardown import SageMakerTeardownOperator
from sagemaker_fleet.operators.training import SageMakerRetrySafeTrainingOperator
from sagemaker_fleet.run_settings import environment_setting
from sagemaker_fleet.run_settings import run_date as run_date_of

AWS_CONN_ID = "aws_default"
TRAINING_POOL = "sagemaker_training"
CHECK_INTERVAL = 2
# A deployment setting (the DAG tests shorten it), read from the environment, never from the metadata DB.
RETRY_DELAY = dt.timedelta(seconds=int(os.environ.get("ASTEROID_RETRY_DELAY_SECONDS", "60")))

log = logging.getLogger("asteroid_linear_learner")  # the DAG file's module name is a generated one


def _hook():
    from sagemaker_fleet.hooks.sagemaker import SageMakerFleetHook

    return SageMakerFleetHook(aws_conn_id=AWS_CONN_ID)


@dag(
    dag_id="asteroid_linear_learner",
    description="Seed notebook 002: Linear Learner on NASA asteroids, recordIO -> train -> host -> score -> report",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    default_args={
        "owner": "ml-platform",
        "retries": 2,
        "retry_delay": RETRY_DELAY,
        "aws_conn_id": AWS_CONN_ID,
    },
    tags=["asteroids", "sagemaker", "linear-learner", "seed-notebook"],
    doc_md=__doc__,
    params={
        "predictor_type": Param(
            DEFAULTS["predictor_type"],
            type="string",
            enum=list(PREDICTOR_TYPES),
            values_display={
                "regressor": "regressor (the notebook's, absolute_loss)",
                "binary_classifier": "binary_classifier (logistic loss)",
            },
            title="Predictor type",
            description="regressor fits the 0/1 hazardous label with absolute loss, as the notebook does; "
            "binary_classifier predicts the probability of hazardous.",
            section="Model",
        ),
        "rows": Param(
            DEFAULTS["rows"],
            type="integer",
            minimum=MIN_ROWS,
            maximum=MAX_ROWS,
            title="Asteroids",
            description="Rows of the offline asteroid data set (the notebook's has 4687), split 80/10/10.",
            section="Data",
        ),
        "seed": Param(
            DEFAULTS["seed"],
            type="integer",
            minimum=0,
            maximum=2**32 - 1,
            title="Random seed",
            description="Seeds the data set and the split: the same seed gives the same figures.",
            section="Data",
        ),
        "training_instance_type": instance_type_param(
            DEFAULTS["training_instance_type"],
            "Training instance type",
            "One instance, as in the notebook (ml.c4.2xlarge).",
        ),
        "endpoint_instance_type": instance_type_param(
            DEFAULTS["endpoint_instance_type"],
            "Endpoint instance type",
            "The AllTraffic variant's instance type (the notebook's ml.m4.xlarge).",
        ),
    },
)
def asteroid_linear_learner() -> None:
    @task(multiple_outputs=True)
    def validate_params() -> dict[str, Any]:
        """Check the Params and settings; return the run's plan (names, S3 layout, hyperparameters, image)."""
        from airflow.sdk.exceptions import AirflowFailException

        from include.asteroids.pipeline import (
            InvalidParamsError,
            build_plan,
            environment_settings,
            linear_learner_image_uri,
        )

        context = get_current_context()
        dag_run = context["dag_run"]
        try:
            settings = environment_settings(environment_setting)
            # Looked up here, in a task, never at parse time.
            image_uri = linear_learner_image_uri(_hook().conn_region_name or "us-east-1")
            plan = build_plan(
                context["params"],
                settings,
                run_date_of(context),
                dag_id=dag_run.dag_id,
                run_id=dag_run.run_id,
                image_uri=image_uri,
            )
        except (InvalidParamsError, ValueError) as error:
            raise AirflowFailException(str(error)) from None  # bad input does not get better on retry
        log.info(
            "Plan %s: %s, %d rows (seed %d), job %s, endpoint %s, image %s",
            plan["prefix"], plan["predictor_type"], plan["rows"], plan["seed"], plan["training_job_name"],
            plan["endpoint_name"], plan["image_uri"],
        )  # fmt: skip
        return plan

    @task(multiple_outputs=True)
    def run_resources(plan: dict[str, Any]) -> dict[str, list[str]]:
        """What this run creates for serving: the teardown deletes exactly these."""
        from include.asteroids.pipeline import run_resources as resources_of

        resources = resources_of(plan)
        log.info("This run creates %s", resources)
        return resources

    @task(multiple_outputs=True)
    def prepare_data(plan: dict[str, Any]) -> dict[str, Any]:
        """Generate, clean and split the asteroids; write recordIO channels and the test CSV; the request."""
        from include.asteroids.pipeline import prepare_channels, training_request
        from sagemaker_fleet.utils.s3 import ensure_bucket

        hook = _hook()
        ensure_bucket(hook.s3_client, plan["bucket"], hook.conn_region_name)
        data = prepare_channels(hook.s3_client, plan)
        log.info(
            "Raw %s -> clean %s (%d features); split %s; hazardous %s; train median %s",
            tuple(data["raw_shape"]), tuple(data["clean_shape"]), data["features"], data["rows"],
            data["hazardous_counts"], data["train_label_median"],
        )  # fmt: skip
        return {"data": data, "training_config": training_request(plan)}

    @task(multiple_outputs=True)
    def endpoint_spec(plan: dict[str, Any], trained: dict[str, Any]) -> dict[str, Any]:
        """The hosting model and the AllTraffic endpoint config for the trained artifact."""
        from include.asteroids.pipeline import endpoint_spec as spec_of

        return spec_of(plan, trained["model_artifact"])

    @task
    def score(plan: dict[str, Any], data: dict[str, Any], deployed: dict[str, Any]) -> dict[str, Any]:
        """Every test row to the endpoint as CSV; the notebook's MAE and accuracy against its baselines."""
        from include.asteroids.pipeline import score_test_rows

        hook = _hook()

        def invoke(body: str) -> bytes:
            return hook.invoke_endpoint(deployed["endpoint_name"], body, content_type="text/csv")["body"]

        scoring = score_test_rows(hook.s3_client, invoke, plan, data)
        log.info("Scored %d test rows in %d request(s): %s", scoring["rows_scored"], scoring["requests"],
                 scoring["metrics"])  # fmt: skip
        return scoring

    @task
    def report(
        plan: dict[str, Any],
        data: dict[str, Any],
        trained: dict[str, Any],
        deployed: dict[str, Any],
        scoring: dict[str, Any],
    ) -> dict[str, Any]:
        """The report (JSON and PNG) in S3 and the summary in the task log."""
        from include.asteroids.pipeline import build_report, summary_text, write_report

        result = build_report(plan, data=data, training=trained, deployment=deployed, scoring=scoring)
        uris = write_report(_hook().s3_client, plan, result)
        log.info("%s", summary_text(result))
        log.info("Report: %s and %s", uris["json"], uris["png"])
        return {"metrics": result["metrics"], "notebook_lines": result["notebook_lines"], "report_uris": uris}

    plan = validate_params()
    resources = run_resources(plan)
    prepared = prepare_data(plan)
    resources >> prepared
    train = SageMakerRetrySafeTrainingOperator(
        task_id="train",
        config=prepared["training_config"],
        tags={"predictor_type": plan["predictor_type"]},
        pool=TRAINING_POOL,
        pool_slots=TRAINING_INSTANCE_COUNT,  # the pool counts instances: one slot per training instance
        check_interval=CHECK_INTERVAL,
    )
    spec = endpoint_spec(plan, train.output)
    deploy = SageMakerDeployEndpointOperator(
        task_id="deploy",
        endpoint_name=spec["endpoint_name"],
        endpoint_config=spec["endpoint_config"],
        models=spec["models"],
        tags={"predictor_type": plan["predictor_type"]},
        check_interval=CHECK_INTERVAL,
    )
    scored = score(plan, prepared["data"], deploy.output)
    summary = report(plan, prepared["data"], train.output, deploy.output, scored)
    teardown = SageMakerTeardownOperator(
        task_id="teardown",
        endpoints=resources["endpoints"],
        endpoint_configs=resources["endpoint_configs"],
        models=resources["models"],
        check_interval=CHECK_INTERVAL,
    )
    summary >> teardown
    # A teardown of the setup that names the resources: it runs (all_done) once that setup succeeded, whatever
    # failed in between. The run's state comes from the work tasks (on_failure_fail_dagrun=True would make the
    # teardown the only leaf, so a run whose training failed would end "success" once the teardown succeeded).
    teardown.as_teardown(setups=resources)


asteroid_linear_learner()
