"""
### digits_xgboost_multiclass: the SageMaker MNIST XGBoost notebook on scikit-learn's digits, as a DAG

Follows seed notebook 003, *Multiclass classification with Amazon SageMaker XGBoost* (MNIST): libsvm in five
parts per split, a single-instance and a 2-instance (`ShardedByS3Key`) training job side by side, the
distributed model hosted, a single prediction, batches of 100, the error rate and the confusion matrix.
One run:

1. **validate_params**: Params and environment settings checked (every problem at once) before anything is
   created; the run's names (`digits-xgb-<date>-<run hash>`, the same on every retry) and the image.
2. **run_resources** (setup): the model, endpoint config and endpoint this run will create.
3. **upload_data**: scikit-learn's 1,797 digits, split 60/20/20 (stratified, seeded), each split written as
   `examples0`..`examples4` in libsvm with 1-based indices: the notebook's `convert_data`.
4. **train_single** and **train_distributed**, in parallel: the notebook's CreateTrainingJob
   (`multi:softmax`, `num_class 10`, `max_depth 5, eta 0.2, gamma 4, min_child_weight 6, silent 0`), one on
   one instance (`FullyReplicated`), one on two instances with both channels `ShardedByS3Key` (3 + 2 parts);
   retry-safe (a retry re-attaches), deferrable, pool `sagemaker_training` (one slot per instance: 1 and 2).
5. **endpoint_spec** -> **deploy**: the distributed job's model -> endpoint config (`AllTraffic`) ->
   endpoint, deferrable, verified InService on that config.
6. **score**: the first test row alone (`text/x-libsvm`), then every test row in batches of `batch_size`
   (100), each answer parsed as the notebook does (`result.split(',')`).
7. **transform_config** -> **batch_transform** (when `batch_transform`): every test part through the same
   hosted model by a batch transform job (`SplitType Line`, `MultiRecord`), beside the endpoint's scoring.
8. **report**: JSON (both jobs' billable seconds and validation accuracy side by side, the endpoint's error
   rate, the 10x10 confusion matrix with rows = predicted, columns = actual, as the notebook builds it, and
   the batch transform's error rate) and a PNG heat map in S3; a summary in the task log. The task fails when
   the batch transform's predictions differ from the endpoint's (same model, same rows: they must be equal).
9. **teardown** (Airflow teardown of `run_resources`, `all_done`): deletes the endpoint, its config and the
   model, whether the run succeeded or failed; the run keeps its own outcome.

**What differs from the notebook.** scikit-learn's offline 8x8 digits (64 features) stand in for the
downloaded MNIST pickle (784 features); every row is kept (the notebook's `int(n / 5)` parts drop the
remainder). All five test parts are scored, not only `examples0`; a batch transform scores them too (the notebook does
not). Names are deterministic instead of
timestamped. The image is the notebook's own `xgboost:1` (XGBoost 0.72) by default; the `image_version`
Param offers the later images that still take the notebook's job and answer comma-joined (up to
`sagemaker-xgboost:1.0-1`). The endpoint
is always deleted at the end.

Environment settings (Airflow Variable, else environment variable, else default), shared with the other
DAGs: `housing_bucket` / `HOUSING_BUCKET`, `housing_role_arn` / `HOUSING_ROLE_ARN`.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from typing import Any

from airflow.sdk import Param, TriggerRule, dag, get_current_context, task

from include.digits.pipeline import DEFAULTS, IMAGE_VERSIONS, INSTANCE_COUNTS, LIMITS
from include.project_settings import instance_type_param
from sagemaker_fleet.operators.deploy import SageMakerDeployEndpointOperator
from sagemaker_fleet.operators.teardown import SageMakerTeardownOperator
from sagemaker_fleet.operators.training import SageMakerRetrySafeTrainingOperator
from sagemaker_fleet.operators.transform import SageMakerRetrySafeTransformOperator
from sagemaker_fleet.run_settings import environment_setting
from sagemaker_fleet.run_settings import run_date as run_date_of

AWS_CONN_ID = "aws_default"
TRAINING_POOL = "sagemaker_training"
CHECK_INTERVAL = 2
# A deployment setting (the DAG tests shorten it), read from the environment, never from the metadata DB.
RETRY_DELAY = dt.timedelta(seconds=int(os.environ.get("DIGITS_RETRY_DELAY_SECONDS", "60")))

log = logging.getLogger("digits_xgboost_multiclass")  # the DAG file's module name is a generated one


def _hook():
    from sagemaker_fleet.hooks.sagemaker import SageMakerFleetHook

    return SageMakerFleetHook(aws_conn_id=AWS_CONN_ID)


@dag(
    dag_id="digits_xgboost_multiclass",
    description="Seed notebook 003: XGBoost multi:softmax on digits, single vs 2-instance training, "
    "endpoint, error rate, confusion matrix",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    default_args={
        "owner": "ml-platform",
        "retries": 2,
        "retry_delay": RETRY_DELAY,
        "aws_conn_id": AWS_CONN_ID,
    },
    tags=["digits", "sagemaker", "xgboost", "distributed", "seed-notebook"],
    doc_md=__doc__,
    params={
        "image_version": Param(
            DEFAULTS["image_version"],
            type="string",
            enum=list(IMAGE_VERSIONS),
            values_display={
                "1": "xgboost:1, the notebook's (XGBoost 0.72)",
                "0.90-1": "sagemaker-xgboost 0.90-1",
                "0.90-2": "sagemaker-xgboost 0.90-2",
                "1.0-1": "sagemaker-xgboost 1.0-1",
            },
            title="XGBoost image",
            description="The built-in XGBoost image of both jobs and the endpoint. Only images that take the "
            "notebook's hyperparameters (silent) and answer comma-joined (result.split(',')) are offered.",
            section="Model",
        ),
        "num_round": Param(
            DEFAULTS["num_round"],
            type="integer",
            minimum=LIMITS["num_round"][0],
            maximum=LIMITS["num_round"][1],
            title="Boosting rounds",
            description="num_round of both jobs (the notebook's 10); the other hyperparameters are the notebook's.",
            section="Model",
        ),
        "batch_size": Param(
            DEFAULTS["batch_size"],
            type="integer",
            minimum=LIMITS["batch_size"][0],
            maximum=LIMITS["batch_size"][1],
            title="Rows per request",
            description="Test rows per InvokeEndpoint request (the notebook's batch_predict uses 100).",
            section="Evaluation",
        ),
        "batch_transform": Param(
            DEFAULTS["batch_transform"],
            type="boolean",
            title="Batch transform too",
            description="Also score the test set with a batch transform job; its error rate must equal the "
            "endpoint's (the run fails otherwise).",
            section="Evaluation",
        ),
        "seed": Param(
            DEFAULTS["seed"],
            type="integer",
            minimum=LIMITS["seed"][0],
            maximum=LIMITS["seed"][1],
            title="Random seed",
            description="Seeds the 60/20/20 split of the 1,797 digits: the same seed gives the same figures.",
            section="Data",
        ),
        "training_instance_type": instance_type_param(
            DEFAULTS["training_instance_type"],
            "Training instance type",
            "Both jobs' instance type (the notebook's ml.m4.10xlarge); the distributed job uses two.",
        ),
        "endpoint_instance_type": instance_type_param(
            DEFAULTS["endpoint_instance_type"],
            "Endpoint instance type",
            "The AllTraffic variant's instance type (the notebook's ml.m4.xlarge).",
        ),
    },
)
def digits_xgboost_multiclass() -> None:
    @task(multiple_outputs=True)
    def validate_params() -> dict[str, Any]:
        """Check the Params and settings; return the run's plan (names, S3 layout, hyperparameters, image)."""
        from airflow.sdk.exceptions import AirflowFailException

        from include.digits.pipeline import InvalidParamsError, build_plan, environment_settings
        from include.sagemaker_images import image_uri

        context = get_current_context()
        dag_run = context["dag_run"]
        params = context["params"]
        try:
            settings = environment_settings(environment_setting)
            version = params.get("image_version") or DEFAULTS["image_version"]
            if version not in IMAGE_VERSIONS:
                raise InvalidParamsError([f"image_version must be one of {list(IMAGE_VERSIONS)}, got {version!r}"])
            # Looked up here, in a task, never at parse time.
            region = _hook().conn_region_name or "us-east-1"
            plan = build_plan(
                params,
                settings,
                run_date_of(context),
                dag_id=dag_run.dag_id,
                run_id=dag_run.run_id,
                image_uri=image_uri("xgboost", region=region, version=version),
            )
        except (InvalidParamsError, ValueError) as error:
            raise AirflowFailException(str(error)) from None  # bad input does not get better on retry
        log.info(
            "Plan %s: jobs %s and %s, endpoint %s, image %s, num_round %d",
            plan["prefix"], plan["single_job_name"], plan["distributed_job_name"], plan["endpoint_name"],
            plan["image_uri"], plan["num_round"],
        )  # fmt: skip
        return plan

    @task(multiple_outputs=True)
    def run_resources(plan: dict[str, Any]) -> dict[str, list[str]]:
        """What this run creates for serving: the teardown deletes exactly these."""
        from include.digits.pipeline import run_resources as resources_of

        resources = resources_of(plan)
        log.info("This run creates %s", resources)
        return resources

    @task(multiple_outputs=True)
    def upload_data(plan: dict[str, Any]) -> dict[str, Any]:
        """The digits as five libsvm parts per split; both CreateTrainingJob requests."""
        from include.digits.pipeline import training_request
        from include.digits.pipeline import upload_data as upload
        from sagemaker_fleet.utils.s3 import ensure_bucket

        hook = _hook()
        ensure_bucket(hook.s3_client, plan["bucket"], hook.conn_region_name)
        data = upload(hook.s3_client, plan)
        log.info("Rows per split %s, %d libsvm parts each, %d features", data["rows"], data["parts"], data["features"])
        return {
            "data": data,
            "single_config": training_request(plan, "single"),
            "distributed_config": training_request(plan, "distributed"),
        }

    @task(multiple_outputs=True)
    def endpoint_spec(plan: dict[str, Any], trained: dict[str, Any]) -> dict[str, Any]:
        """The distributed job's hosting model and the AllTraffic endpoint config."""
        from include.digits.pipeline import endpoint_spec as spec_of

        return spec_of(plan, trained["model_artifact"])

    @task
    def score(plan: dict[str, Any], deployed: dict[str, Any]) -> dict[str, Any]:
        """One libsvm row, then every test row in batches; the answers parsed as the notebook does."""
        from include.digits.pipeline import read_test_lines, score_endpoint

        hook = _hook()

        def invoke(body: str) -> str:
            answer = hook.invoke_endpoint(deployed["endpoint_name"], body, content_type="text/x-libsvm")
            return answer["body"].decode("ascii")

        scoring = score_endpoint(invoke, read_test_lines(hook.s3_client, plan), plan["batch_size"])
        log.info(
            "Predicted label is %s (label %s); %d test rows in %d request(s)",
            scoring["single_prediction"]["predicted"], scoring["single_prediction"]["label"],
            len(scoring["labels"]), scoring["requests"],
        )  # fmt: skip
        return scoring

    @task
    def transform_config(plan: dict[str, Any], deployed: dict[str, Any]) -> list[dict[str, Any]]:
        """The CreateTransformJob request over the test parts (the model exists once deployed); none when off."""
        from include.digits.pipeline import transform_request

        if not plan["batch_transform"]:
            log.info("batch_transform is off: the endpoint alone scores the test set")
            return []
        return [transform_request(plan)]

    # Runs when the transform was skipped (batch_transform off: nothing mapped), never after a failure.
    @task(trigger_rule=TriggerRule.NONE_FAILED)
    def report(
        plan: dict[str, Any],
        data: dict[str, Any],
        single: dict[str, Any],
        distributed: dict[str, Any],
        scoring: dict[str, Any],
    ) -> dict[str, Any]:
        """The report (JSON and PNG) in S3 and the summary in the task log; fails if the transform disagrees."""
        from airflow.sdk.exceptions import AirflowFailException

        from include.digits.pipeline import build_report, summary_text, transform_predictions, write_report

        hook = _hook()
        transform = None
        if plan["batch_transform"]:
            predictions = transform_predictions(hook.s3_client, plan, len(scoring["labels"]))
            transform = {"job_name": plan["transform_job_name"], "predictions": predictions}
        result = build_report(
            plan,
            data=data,
            training={"single": single, "distributed": distributed},
            scoring=scoring,
            transform=transform,
        )
        uris = write_report(hook.s3_client, plan, result, scoring)
        log.info("%s", summary_text(result))
        log.info("Report: %s and %s", uris["json"], uris["png"])
        if transform is not None and not result["transform"]["matches_endpoint"]:
            raise AirflowFailException(
                f"The batch transform's error rate {result['transform']['error_rate_percent']:.4f}% differs from "
                f"the endpoint's {result['endpoint']['error_rate_percent']:.4f}% (rows "
                f"{result['transform']['rows_differing_from_endpoint']}): same model, same rows, they must agree"
            )
        return {"endpoint": result["endpoint"], "jobs": result["jobs"], "report_uris": uris}

    plan = validate_params()
    resources = run_resources(plan)
    uploaded = upload_data(plan)
    resources >> uploaded
    trained = {}
    for job in ("single", "distributed"):
        trained[job] = SageMakerRetrySafeTrainingOperator(
            task_id=f"train_{job}",
            config=uploaded[f"{job}_config"],
            tags={"training": job},
            pool=TRAINING_POOL,
            pool_slots=INSTANCE_COUNTS[job],  # the pool counts instances: the 2-instance job takes 2 slots
            check_interval=CHECK_INTERVAL,
        )
    spec = endpoint_spec(plan, trained["distributed"].output)
    deploy = SageMakerDeployEndpointOperator(
        task_id="deploy",
        endpoint_name=spec["endpoint_name"],
        endpoint_config=spec["endpoint_config"],
        models=spec["models"],
        check_interval=CHECK_INTERVAL,
    )
    scored = score(plan, deploy.output)
    # Retry-safe: a retry re-attaches to (or returns) its own job instead of scoring the test set again.
    transform = SageMakerRetrySafeTransformOperator.partial(
        task_id="batch_transform",
        check_interval=CHECK_INTERVAL,
    ).expand(config=transform_config(plan, deploy.output))
    summary = report(plan, uploaded["data"], trained["single"].output, trained["distributed"].output, scored)
    transform >> summary
    teardown = SageMakerTeardownOperator(
        task_id="teardown",
        endpoints=resources["endpoints"],
        endpoint_configs=resources["endpoint_configs"],
        models=resources["models"],
        check_interval=CHECK_INTERVAL,
    )
    summary >> teardown
    # A teardown of the setup that names the resources: it runs (all_done) once that setup succeeded, whatever
    # failed in between; the run's state comes from the work tasks.
    teardown.as_teardown(setups=resources)


digits_xgboost_multiclass()
