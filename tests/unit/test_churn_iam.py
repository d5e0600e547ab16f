"""iam/ grants exactly the names churn_processing_pipeline gives its resources (retry attempts included)."""

from __future__ import annotations

from include.churn.pipeline import MODELS, build_plan
from tests.unit.test_compose_and_iam import AIRFLOW_POLICY, EXECUTION_POLICY, SAMPLE, allows, sagemaker_arn


def test_the_churn_dags_names_are_granted_and_nothing_beside_them() -> None:
    settings = {"bucket": SAMPLE["BUCKET"], "role_arn": "arn:aws:iam::123456789012:role/SageMakerExecution"}
    plan = build_plan({}, settings, "2026-11-23", dag_id="churn_processing_pipeline",
                      run_id="scheduled__2026-11-23T00:00:00+00:00", region="us-east-1")  # fmt: skip
    expected = {
        ("sagemaker:CreateProcessingJob", "processing-job"): [plan["processing_job_name"] + "-r2"],
        ("sagemaker:CreateTrainingJob", "training-job"): [plan["training_job_names"][k] + "-r1" for k in MODELS],
        ("sagemaker:CreateTransformJob", "transform-job"): [plan["transform_job_names"][k] + "-r1" for k in MODELS],
        ("sagemaker:StopTransformJob", "transform-job"): list(plan["transform_job_names"].values()),
        ("sagemaker:CreateModel", "model"): list(plan["model_names"].values()),
        ("sagemaker:DeleteModel", "model"): list(plan["model_names"].values()),
        ("sagemaker:CreateEndpointConfig", "endpoint-config"): [plan["endpoint_config_name"]],
        ("sagemaker:CreateEndpoint", "endpoint-config"): [plan["endpoint_config_name"]],
        ("sagemaker:CreateEndpoint", "endpoint"): [plan["endpoint_name"]],
        ("sagemaker:DeleteEndpoint", "endpoint"): [plan["endpoint_name"]],
        ("sagemaker:InvokeEndpoint", "endpoint"): [plan["endpoint_name"]],
        ("sagemaker:AddTags", "model"): list(plan["model_names"].values()),
    }
    for (action, kind), names in expected.items():
        for name in names:
            assert allows(AIRFLOW_POLICY, action, sagemaker_arn(kind, name)), f"{action} on {kind}/{name}"
        assert not allows(AIRFLOW_POLICY, action, sagemaker_arn(kind, "churned-elsewhere")), action

    # SageMaker itself (the execution role) writes the processing outputs and the transform outputs, nothing else.
    bucket = f"arn:aws:s3:::{SAMPLE['BUCKET']}/"
    for uri in (plan["processed"]["train"] + "train.csv", plan["transform_output"]["xgboost"] + "test.csv.out"):
        assert allows(EXECUTION_POLICY, "s3:PutObject", bucket + uri.split("/", 3)[3]), uri
    for uri in (plan["raw_uri"], plan["sourcedir_uri"], plan["report_prefix"] + "report.json"):
        assert not allows(EXECUTION_POLICY, "s3:PutObject", bucket + uri.split("/", 3)[3]), uri
    sklearn_repo = f"arn:aws:ecr:{SAMPLE['REGION']}:683313688378:repository/sagemaker-scikit-learn"
    assert allows(EXECUTION_POLICY, "ecr:BatchGetImage", sklearn_repo)
