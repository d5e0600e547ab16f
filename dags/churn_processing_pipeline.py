"""
### churn_processing_pipeline: the SageMaker overview notebook's churn workflow, as a DAG

Follows seed notebook 004, *[ProdML] Amazon SageMaker Part I: Overview, SageMaker Studio, and Model Training*:
a scikit-learn processing job prepares the telecom churn data, then the notebook's two ways to train (a
built-in algorithm and your own script in a framework image) run side by side. One run:

1. **validate_params**: the Params and the environment settings are checked (every problem at once) before
   anything is created; the run's names (`churn-<date>-<run hash>-…`, the same on every retry) and images.
2. **run_resources** (setup): the models, endpoint config and endpoint this run may create.
3. **upload_inputs**: an offline `raw_churn.csv` with the notebook's schema (21 columns, `Churn?` as
   `True.`/`False.`, 3,333 rows by default), the notebook's `preprocessing.py` and the training script's
   `sourcedir.tar.gz` to S3.
4. **preprocess**: the notebook's `SKLearnProcessor.run`: a processing job in the scikit-learn image runs
   `preprocessing.py --train-test-split-ratio <ratio>` (imputers, one-hot encoding, split) into `train/` and
   `test/`. Retry-safe, deferrable.
5. **train_xgboost** and **train_random_forest**, in parallel: built-in XGBoost **0.90-2**, `binary:logistic`
   with the notebook's hyperparameters (`max_depth 5, subsample 0.8, num_round 600, eta 0.2, gamma 4,
   min_child_weight 6, silent 0`), and the notebook's `sklearn_rf.py` in script mode (`n_estimators` from the
   form; `sagemaker_program` and `sagemaker_submit_directory` JSON-encoded, as the SDK sends them). Retry-safe,
   deferrable, pool `sagemaker_training` (1 slot per instance).
6. **model_xgboost** / **model_random_forest** -> **transform_xgboost** / **transform_random_forest**: each
   model scores the test set by batch transform (`InputFilter $[1:]`, `JoinSource Input`, `OutputFilter
   $[0,-1]`: label and score side by side). Retry-safe, deferrable.
7. **report**: accuracy, AUC and the confusion matrix of each model, JSON and a PNG (ROC curves and both
   confusion matrices) in S3; the winner (higher AUC, then accuracy); a summary in the task log.
8. **endpoint_spec** -> **deploy_best** -> **smoke_test** (when `deploy_best`): the winner behind an endpoint
   (`AllTraffic`); a few test rows sent in real time must score exactly as in the batch transform.
9. **teardown** (Airflow teardown of `run_resources`, `all_done`): deletes the endpoint, its config and both
   models, whether the run succeeded or failed; with `keep_endpoint` the endpoint stays in service (and the
   config and the winner's model with it).

**What differs from the notebook.** The data is an offline, seeded stand-in with the original's schema and a
documented churn rule (`include/churn/data.py`), not a download. The scripts are modernised for today's pandas
and scikit-learn (image `sagemaker-scikit-learn:1.2-1`, not 0.20.0); `preprocessing.py` writes its CSVs without
a header (`--no-header`, because XGBoost and `sklearn_rf.py` read label-first CSV without one), and
`sklearn_rf.py` adds `predict_fn` (churn probabilities, so the RandomForest has an AUC) and a seed. XGBoost's
`validation` channel is the processed test set (the notebook's validation split came from elsewhere); with no
early stopping it only feeds the job's `validation:error`. The batch transform, the comparison, the deployment
and the teardown are steps the notebook leaves for later chapters. Names are deterministic, not timestamped.

Environment settings (Airflow Variable, else environment variable, else default), shared with the other DAGs:
`housing_bucket` / `HOUSING_BUCKET`, `housing_role_arn` / `HOUSING_ROLE_ARN`.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from typing import Any

from airflow.sdk import Param, dag, get_current_context, task

from include.churn.pipeline import (
    DEFAULTS,
    MAX_ROWS,
    MAX_SPLIT,
    MAX_TREES,
    MIN_ROWS,
    MIN_SPLIT,
    MIN_TREES,
    TRAINING_INSTANCE_COUNT,
)
from include.project_settings import instance_type_param
from sagemaker_fleet.operators.deploy import SageMakerDeployEndpointOperator
from sagemaker_fleet.operators.processing import SageMakerRetrySafeProcessingOperator
from sagemaker_fleet.operators.teardown import SageMakerTeardownOperator
from sagemaker_fleet.operators.training import SageMakerRetrySafeTrainingOperator
from sagemaker_fleet.operators.transform import SageMakerRetrySafeTransformOperator
from sagemaker_fleet.run_settings import environment_setting
from sagemaker_fleet.run_settings import run_date as run_date_of

AWS_CONN_ID = "aws_default"
TRAINING_POOL = "sagemaker_training"
CHECK_INTERVAL = 2
MAX_WAIT_SECONDS = 3600
# A deployment setting (the DAG tests shorten it), read from the environment, never from the metadata DB.
RETRY_DELAY = dt.timedelta(seconds=int(os.environ.get("CHURN_RETRY_DELAY_SECONDS", "60")))

log = logging.getLogger("churn_processing_pipeline")  # the DAG file's module name is a generated one


def _hook():
    from sagemaker_fleet.hooks.sagemaker import SageMakerFleetHook

    return SageMakerFleetHook(aws_conn_id=AWS_CONN_ID)


@dag(
    dag_id="churn_processing_pipeline",
    description="Seed notebook 004: churn preprocessing job -> XGBoost 0.90-2 and script-mode RandomForest -> "
    "batch transform -> report -> best model on an endpoint",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    default_args={
        "owner": "ml-platform",
        "retries": 2,
        "retry_delay": RETRY_DELAY,
        "aws_conn_id": AWS_CONN_ID,
    },
    tags=["churn", "sagemaker", "processing", "xgboost", "scikit-learn", "batch-transform", "seed-notebook"],
    doc_md=__doc__,
    params={
        "rows": Param(
            DEFAULTS["rows"],
            type="integer",
            minimum=MIN_ROWS,
            maximum=MAX_ROWS,
            title="Customers",
            description="Rows of the offline churn data set (the notebook's has 3,333).",
            section="Data",
        ),
        "seed": Param(
            DEFAULTS["seed"],
            type="integer",
            minimum=0,
            maximum=2**32 - 1,
            title="Random seed",
            description="Seeds the data set and the RandomForest: the same seed gives the same figures.",
            section="Data",
        ),
        "train_test_split_ratio": Param(
            DEFAULTS["train_test_split_ratio"],
            type="number",
            minimum=MIN_SPLIT,
            maximum=MAX_SPLIT,
            title="Test share",
            description="preprocessing.py's --train-test-split-ratio (the notebook passes 0.2).",
            section="Data",
        ),
        "n_estimators": Param(
            DEFAULTS["n_estimators"],
            type="integer",
            minimum=MIN_TREES,
            maximum=MAX_TREES,
            title="RandomForest trees",
            description="sklearn_rf.py's --n_estimators (the notebook's SKLearn estimator passes 50). XGBoost "
            "keeps the notebook's hyperparameters.",
            section="Models",
        ),
        "deploy_best": Param(
            DEFAULTS["deploy_best"],
            type="boolean",
            title="Deploy the better model",
            description="Host the model with the higher AUC behind an endpoint and smoke-test it.",
            section="Serving",
        ),
        "keep_endpoint": Param(
            DEFAULTS["keep_endpoint"],
            type="boolean",
            title="Keep the endpoint",
            description="Leave the endpoint in service after the run (it bills until you delete it). Off: the "
            "teardown deletes it.",
            section="Serving",
        ),
        "processing_instance_type": instance_type_param(
            DEFAULTS["processing_instance_type"],
            "Processing instance type",
            "The notebook's SKLearnProcessor: ml.m4.xlarge.",
        ),
        "xgboost_instance_type": instance_type_param(
            DEFAULTS["xgboost_instance_type"], "XGBoost training instance type", "The notebook's: ml.m4.xlarge."
        ),
        "sklearn_instance_type": instance_type_param(
            DEFAULTS["sklearn_instance_type"], "RandomForest training instance type", "The notebook's: ml.c4.xlarge."
        ),
        "transform_instance_type": instance_type_param(
            DEFAULTS["transform_instance_type"], "Batch transform instance type", "One instance per transform job."
        ),
        "endpoint_instance_type": instance_type_param(
            DEFAULTS["endpoint_instance_type"], "Endpoint instance type", "The AllTraffic variant's instance type."
        ),
    },
)
def churn_processing_pipeline() -> None:
    @task(multiple_outputs=True)
    def validate_params() -> dict[str, Any]:
        """Check the Params and settings; return the run's plan (names, images, S3 layout)."""
        from airflow.sdk.exceptions import AirflowFailException

        from include.churn.pipeline import InvalidParamsError, build_plan, environment_settings

        context = get_current_context()
        dag_run = context["dag_run"]
        try:
            plan = build_plan(
                context["params"],
                environment_settings(environment_setting),
                run_date_of(context),
                dag_id=dag_run.dag_id,
                run_id=dag_run.run_id,
                region=_hook().conn_region_name or "us-east-1",
            )
        except (InvalidParamsError, ValueError) as error:
            raise AirflowFailException(str(error)) from None  # bad input does not get better on retry
        log.info(
            "Plan %s: %d customers (seed %d), test share %s, %d trees, deploy_best %s, keep_endpoint %s; images %s",
            plan["prefix"], plan["rows"], plan["seed"], plan["train_test_split_ratio"], plan["n_estimators"],
            plan["deploy_best"], plan["keep_endpoint"], plan["images"],
        )  # fmt: skip
        return plan

    @task(multiple_outputs=True)
    def run_resources(plan: dict[str, Any]) -> dict[str, list[str]]:
        """What this run creates for scoring and serving: the teardown deletes exactly these."""
        from include.churn.pipeline import run_resources as resources_of

        resources = resources_of(plan)
        log.info("This run creates %s", resources)
        return resources

    @task(multiple_outputs=True)
    def upload_inputs(plan: dict[str, Any]) -> dict[str, Any]:
        """raw_churn.csv, preprocessing.py and sourcedir.tar.gz to S3; every SageMaker request of the run."""
        from include.churn.pipeline import processing_request, training_requests, transform_request
        from include.churn.pipeline import upload_inputs as upload_to_s3
        from sagemaker_fleet.utils.s3 import ensure_bucket

        hook = _hook()
        ensure_bucket(hook.s3_client, plan["bucket"], hook.conn_region_name)
        data = upload_to_s3(hook.s3_client, plan)
        log.info("raw_churn.csv %s: %d churned, %d stayed; missing values %s -> %s", tuple(data["raw_shape"]),
                 data["churned"], data["stayed"], data["missing_values"], data["raw_uri"])  # fmt: skip
        training = training_requests(plan)
        return {
            "data": data,
            "processing_config": processing_request(plan),
            "xgboost_training_config": training["xgboost"],
            "random_forest_training_config": training["random_forest"],
            "xgboost_transform_config": transform_request(plan, "xgboost"),
            "random_forest_transform_config": transform_request(plan, "random_forest"),
        }

    @task
    def register_model(plan: dict[str, Any], model: str, trained: dict[str, Any]) -> dict[str, Any]:
        """CreateModel for a trained model, or reuse an identical one a previous try created; the request."""
        from airflow.exceptions import AirflowException
        from botocore.exceptions import ClientError

        from include.churn.pipeline import model_request
        from sagemaker_fleet.hooks.sagemaker import is_not_found
        from sagemaker_fleet.operators.deploy import definition_differences

        request = model_request(plan, model, trained["model_artifact"])
        client = _hook().get_conn()
        try:
            existing = client.describe_model(ModelName=request["ModelName"])
        except ClientError as error:
            if not is_not_found(error):
                raise
            existing = None
        if existing is None:
            client.create_model(**request)
            log.info("Created model %s from %s", request["ModelName"], trained["model_artifact"])
        else:
            differences = definition_differences(request, existing)
            if differences:
                raise AirflowException(
                    f"Model {request['ModelName']} exists with another definition: {differences[:3]}"
                )
            log.info("Model %s already exists with this definition (a previous try); reusing it", request["ModelName"])
        return request

    @task
    def report(
        plan: dict[str, Any],
        data: dict[str, Any],
        processing: dict[str, Any],
        xgboost_training: dict[str, Any],
        random_forest_training: dict[str, Any],
        xgboost_transform: dict[str, Any],
        random_forest_transform: dict[str, Any],
        xgboost_model: dict[str, Any],
        random_forest_model: dict[str, Any],
    ) -> dict[str, Any]:
        """Both models' transform scores -> accuracy, AUC, confusion matrix; JSON and PNG in S3; the winner."""
        from include.churn.pipeline import (
            build_report,
            evaluate_scores,
            read_transform_scores,
            summary_text,
            write_report,
        )

        s3 = _hook().s3_client
        transforms, evaluations = {}, {}
        for key, result in (("xgboost", xgboost_transform), ("random_forest", random_forest_transform)):
            scored = read_transform_scores(s3, plan, key)
            evaluations[key] = evaluate_scores(scored["labels"], scored["scores"])
            transforms[key] = {"job_name": result["TransformJobName"], "objects": scored["objects"]}
        result = build_report(
            plan, data=data, processing=processing, trainings={"xgboost": xgboost_training,
            "random_forest": random_forest_training}, transforms=transforms, evaluations=evaluations,
        )  # fmt: skip
        uris = write_report(s3, plan, result)
        log.info("%s", summary_text(result))
        log.info("Report: %s and %s", uris["json"], uris["png"])
        models = {"xgboost": xgboost_model, "random_forest": random_forest_model}
        return {
            "winner": result["winner"],
            "winner_model": models[result["winner"]],
            "metrics": {key: {name: result["models"][key][name] for name in ("accuracy", "auc")} for key in models},
            "report_uris": uris,
        }

    @task(multiple_outputs=True)
    def endpoint_spec(plan: dict[str, Any], reported: dict[str, Any]) -> dict[str, Any]:
        """The winner behind one AllTraffic variant; skipped (with what follows) when deploy_best is off."""
        from airflow.exceptions import AirflowSkipException

        from include.churn.pipeline import endpoint_spec as spec_of

        if not plan["deploy_best"]:
            raise AirflowSkipException("deploy_best is off: no endpoint")
        log.info("Deploying the winner, %s, as %s", reported["winner"], plan["endpoint_name"])
        return spec_of(plan, reported["winner"], reported["winner_model"])

    @task
    def smoke_test(plan: dict[str, Any], reported: dict[str, Any], deployed: dict[str, Any]) -> dict[str, Any]:
        """A few test rows in real time: the endpoint's scores must equal the batch transform's."""
        from include.churn.pipeline import read_transform_scores
        from include.churn.pipeline import smoke_test as check

        hook = _hook()

        def invoke(body: str) -> bytes:
            # Accept as in the transform (the scikit-learn container's default answer is JSON).
            return hook.invoke_endpoint(deployed["endpoint_name"], body, content_type="text/csv", accept="text/csv")[
                "body"
            ]

        batch = read_transform_scores(hook.s3_client, plan, reported["winner"])
        result = check(hook.s3_client, invoke, plan, reported["winner"], batch["scores"])
        log.info("Endpoint %s (%s) scored %d test rows as the batch transform did (max difference %g): %s",
                 result["endpoint_name"], result["model"], result["rows"], result["max_difference_from_transform"],
                 result["scores"])  # fmt: skip
        return result

    plan = validate_params()
    resources = run_resources(plan)
    inputs = upload_inputs(plan)
    resources >> inputs
    preprocess = SageMakerRetrySafeProcessingOperator(
        task_id="preprocess",
        config=inputs["processing_config"],
        check_interval=CHECK_INTERVAL,
        max_wait_seconds=MAX_WAIT_SECONDS,
    )
    trained = {}
    transformed = {}
    registered = {}
    for key in ("xgboost", "random_forest"):
        trained[key] = SageMakerRetrySafeTrainingOperator(
            task_id=f"train_{key}",
            config=inputs[f"{key}_training_config"],
            tags={"model": key},
            pool=TRAINING_POOL,
            pool_slots=TRAINING_INSTANCE_COUNT,  # the pool counts instances: one slot per training instance
            check_interval=CHECK_INTERVAL,
        )
        preprocess >> trained[key]
        registered[key] = register_model.override(task_id=f"model_{key}")(plan, key, trained[key].output)
        transformed[key] = SageMakerRetrySafeTransformOperator(
            task_id=f"transform_{key}",
            config=inputs[f"{key}_transform_config"],
            tags={"model": key},
            check_interval=CHECK_INTERVAL,
            max_wait_seconds=MAX_WAIT_SECONDS,
        )
        registered[key] >> transformed[key]
    reported = report(
        plan,
        inputs["data"],
        preprocess.output,
        trained["xgboost"].output,
        trained["random_forest"].output,
        transformed["xgboost"].output,
        transformed["random_forest"].output,
        registered["xgboost"],
        registered["random_forest"],
    )
    spec = endpoint_spec(plan, reported)
    deploy = SageMakerDeployEndpointOperator(
        task_id="deploy_best",
        endpoint_name=spec["endpoint_name"],
        endpoint_config=spec["endpoint_config"],
        models=spec["models"],
        check_interval=CHECK_INTERVAL,
    )
    smoked = smoke_test(plan, reported, deploy.output)
    teardown = SageMakerTeardownOperator(
        task_id="teardown",
        endpoints=resources["endpoints"],
        endpoint_configs=resources["endpoint_configs"],
        models=resources["models"],
        check_interval=CHECK_INTERVAL,
    )
    smoked >> teardown
    # A teardown of the setup that names the resources: it runs (all_done) once that setup succeeded, whatever
    # failed in between; the run's state comes from the work tasks.
    teardown.as_teardown(setups=resources)


churn_processing_pipeline()
