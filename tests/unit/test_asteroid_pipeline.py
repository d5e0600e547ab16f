"""include/asteroids/pipeline.py: the asteroid_linear_learner DAG's plan, channels, requests, scoring and report.

S3 is moto's in-process mock (no server); the endpoint is a function that scores the CSV body it is sent.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from include.asteroids import pipeline
from include.asteroids.pipeline import InvalidParamsError
from include.formats import recordio
from sagemaker_fleet.utils.naming import is_valid_sagemaker_name
from sagemaker_fleet.utils.s3 import ensure_bucket
from tests.unit.test_compose_and_iam import AIRFLOW_POLICY, EXECUTION_POLICY, SAMPLE, allows, sagemaker_arn

SETTINGS = {"bucket": "asteroid-test-bucket", "role_arn": "arn:aws:iam::123456789012:role/SageMakerExecution"}
IMAGE = "382416733822.dkr.ecr.us-east-1.amazonaws.com/linear-learner:1"  # the notebook's get_image_uri answer
RUN_ID = "manual__2026-11-23T10:00:00+00:00"


def plan_for(**params) -> dict:
    return pipeline.build_plan(
        params, SETTINGS, "2026-11-23", dag_id="asteroid_linear_learner", run_id=RUN_ID, image_uri=IMAGE
    )


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch):
    import boto3
    from moto import mock_aws

    # A live emulator fixture earlier in the session points AWS_ENDPOINT_URL at itself; moto's mock only
    # intercepts AWS's own endpoints, so the client must not be sent there.
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        assert ensure_bucket(client, SETTINGS["bucket"], "us-east-1") is True
        assert ensure_bucket(client, SETTINGS["bucket"], "us-east-1") is False
        yield client


# --- Params and plan -----------------------------------------------------------------------------------


def test_defaults_are_the_notebooks() -> None:
    checked = pipeline.validate_params({})
    assert checked == pipeline.DEFAULTS
    assert checked["rows"] == 4687 and checked["predictor_type"] == "regressor"
    assert checked["training_instance_type"] == "ml.c4.2xlarge" and checked["endpoint_instance_type"] == "ml.m4.xlarge"


def test_every_bad_param_is_named_at_once() -> None:
    with pytest.raises(InvalidParamsError) as error:
        pipeline.validate_params(
            {"predictor_type": "multiclass_classifier", "rows": True, "seed": -1, "endpoint_instance_type": "m5",
             "epochs": 3}
        )  # fmt: skip
    message = str(error.value)
    for name in ("predictor_type", "rows", "seed", "endpoint_instance_type", "'epochs'"):
        assert name in message, (name, message)
    assert len(error.value.problems) == 5


def test_environment_settings_are_checked() -> None:
    assert pipeline.environment_settings(lambda variable, env, default: None)["bucket"] == "sagemaker-fleet-local"
    values = {"housing_bucket": "Bad_Bucket", "housing_role_arn": "not-an-arn"}
    with pytest.raises(InvalidParamsError, match="HOUSING_BUCKET.*HOUSING_ROLE_ARN|housing_bucket"):
        pipeline.environment_settings(lambda variable, env, default: values.get(variable))


def test_names_are_deterministic_valid_and_per_run() -> None:
    plan = plan_for()
    again = plan_for()
    other = pipeline.build_plan({}, SETTINGS, "2026-11-23", dag_id="asteroid_linear_learner",
                                run_id="manual__other", image_uri=IMAGE)  # fmt: skip
    keys = ("training_job_name", "model_name", "endpoint_config_name", "endpoint_name")
    assert [plan[k] for k in keys] == [again[k] for k in keys], "a retry must compute the same names"
    assert plan["prefix"] != other["prefix"], "two runs of one date must not collide"
    assert plan["prefix"].startswith("asteroid-ll-20261123-")
    assert all(is_valid_sagemaker_name(plan[k]) for k in keys)
    assert plan["training_output"].startswith(f"s3://{SETTINGS['bucket']}/training-output/")
    assert pipeline.run_resources(plan) == {
        "endpoints": [plan["endpoint_name"]],
        "endpoint_configs": [plan["endpoint_config_name"]],
        "models": [plan["model_name"]],
    }


def test_plan_refuses_an_image_that_is_not_linear_learner() -> None:
    with pytest.raises(ValueError, match="linear-learner"):
        pipeline.build_plan({}, SETTINGS, "2026-11-23", dag_id="d", run_id="r", image_uri="x/xgboost:1")


def test_image_lookup_reads_the_sdks_table() -> None:
    assert pipeline.linear_learner_image_uri("us-east-1") == IMAGE
    assert pipeline.linear_learner_image_uri("cn-north-1").endswith(
        ".dkr.ecr.cn-north-1.amazonaws.com.cn/linear-learner:1"
    )
    with pytest.raises(ValueError, match="no image in region 'mars-1'"):
        pipeline.linear_learner_image_uri("mars-1")


# --- requests ------------------------------------------------------------------------------------------


def test_training_request_is_the_notebooks_job() -> None:
    plan = plan_for()
    request = pipeline.training_request(plan)
    assert request["TrainingJobName"] == plan["training_job_name"]
    assert request["AlgorithmSpecification"] == {"TrainingImage": IMAGE, "TrainingInputMode": "File"}
    assert request["ResourceConfig"] == {"InstanceCount": 1, "InstanceType": "ml.c4.2xlarge", "VolumeSizeInGB": 10}
    assert request["HyperParameters"] == {
        "feature_dim": "32", "mini_batch_size": "100", "predictor_type": "regressor", "epochs": "10",
        "num_models": "32", "loss": "absolute_loss",
    }  # fmt: skip
    channels = {c["ChannelName"]: c for c in request["InputDataConfig"]}
    assert channels["train"]["DataSource"]["S3DataSource"]["S3DataDistributionType"] == "ShardedByS3Key"
    assert channels["validation"]["DataSource"]["S3DataSource"]["S3DataDistributionType"] == "FullyReplicated"
    assert all("ContentType" not in c and c["RecordWrapperType"] == "None" for c in channels.values())
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600}


def test_binary_classifier_trains_with_a_classification_loss() -> None:
    hyperparameters = pipeline.training_request(plan_for(predictor_type="binary_classifier"))["HyperParameters"]
    assert hyperparameters["predictor_type"] == "binary_classifier" and hyperparameters["loss"] == "logistic"
    assert hyperparameters["num_models"] == "32" and hyperparameters["epochs"] == "10"


def test_endpoint_spec_has_one_alltraffic_variant() -> None:
    plan = plan_for(endpoint_instance_type="ml.m5.large")
    spec = pipeline.endpoint_spec(plan, "s3://b/k/model.tar.gz")
    (variant,) = spec["endpoint_config"]["ProductionVariants"]
    assert variant == {"VariantName": "AllTraffic", "ModelName": plan["model_name"], "InitialInstanceCount": 1,
                       "InstanceType": "ml.m5.large"}  # fmt: skip
    assert spec["models"][0]["PrimaryContainer"] == {"Image": IMAGE, "ModelDataUrl": "s3://b/k/model.tar.gz"}
    with pytest.raises(ValueError, match="no model artifact"):
        pipeline.endpoint_spec(plan, None)


# --- data ----------------------------------------------------------------------------------------------


def test_channels_are_the_notebooks_recordio_and_a_test_csv(s3) -> None:
    plan = plan_for(rows=1200, seed=7)
    data = pipeline.prepare_channels(s3, plan)
    assert data["raw_shape"] == [1200, 40] and data["clean_shape"] == [1200, 35] and data["features"] == 32
    assert sum(data["rows"].values()) == 1200
    assert sum(data["hazardous_counts"].values()) == 1200
    for channel, file_name in (("train", "linear_train.data"), ("validation", "linear_validation.data")):
        uri = data["channel_objects"][channel]
        assert uri == plan["channels"][channel] + file_name
        body = s3.get_object(Bucket=SETTINGS["bucket"], Key=uri.split("/", 3)[3])["Body"].read()
        records = list(recordio.read_records(body))
        assert len(records) == data["rows"][channel]
        assert records[0].features["values"].values.shape == (32,)
        assert records[0].features["values"].kind == "float32"
        labels = {float(r.label["values"].values[0]) for r in records}
        assert labels <= {0.0, 1.0}
    test_key = plan["test_uri"].split("/", 3)[3]
    table = np.loadtxt(io.BytesIO(s3.get_object(Bucket=SETTINGS["bucket"], Key=test_key)["Body"].read()), delimiter=",")
    assert table.shape == (data["rows"]["test"], 33)
    assert data["train_label_median"] == 0.0  # fewer than half the asteroids are hazardous
    # Seeded: the same Params give the same split.
    assert pipeline.prepare_channels(s3, plan)["rows"] == data["rows"]


# --- scoring, metrics, report --------------------------------------------------------------------------


def test_evaluate_predictions_by_hand() -> None:
    labels = [0, 0, 0, 1, 1]
    scores = [0.1, 0.6, 0.0, 0.9, 0.4]
    metrics = pipeline.evaluate_predictions(labels, scores, train_median=0.0, predicted_labels=[0, 1, 0, 1, 1])
    assert metrics["test_mae_linear"] == pytest.approx((0.1 + 0.6 + 0.0 + 0.1 + 0.6) / 5)
    assert metrics["test_mae_baseline"] == pytest.approx(2 / 5)
    assert metrics["prediction_accuracy"] == pytest.approx(60.0)  # 0.6 and 0.4 are on the wrong side of 0.5
    assert metrics["baseline_accuracy"] == pytest.approx(60.0)
    assert metrics["predicted_label_accuracy"] == pytest.approx(80.0)
    assert metrics["mae_improvement_over_baseline"] == pytest.approx(0.4 - 0.28)
    with pytest.raises(ValueError, match="equal, non-empty"):
        pipeline.evaluate_predictions([0, 1], [0.5], 0.0)


def test_notebook_lines_print_as_the_notebook_does() -> None:
    metrics = {"test_mae_baseline": 0.18004, "test_mae_linear": 0.18149, "prediction_accuracy": 81.9999,
               "baseline_accuracy": 82.04}  # fmt: skip
    assert pipeline.notebook_lines([4687, 35], metrics) == [
        "(4687, 35)",
        "Test MAE Baseline : 0.18",
        "Test MAE Linear: 0.181",
        "Prediction Accuracy: 82.0 %",
        "Baseline Accuracy: 82.0 %",
    ]


def _threshold_endpoint(calls: list[int]):
    """A stand-in endpoint: scores 0.9 for asteroids with absolute magnitude <= 22 (column 0), else 0.1."""

    def invoke(body: str) -> bytes:
        rows = np.loadtxt(io.StringIO(body), delimiter=",", ndmin=2)
        assert rows.shape[1] == 32, "the endpoint gets the 32 features, not the label"
        calls.append(len(rows))
        return json.dumps({"predictions": [{"score": 0.9 if r[0] <= 22.0 else 0.1} for r in rows]}).encode()

    return invoke


def test_scoring_sends_every_test_row_as_csv_and_keeps_the_answers(s3, monkeypatch) -> None:
    plan = plan_for(rows=1500, seed=3)
    data = pipeline.prepare_channels(s3, plan)
    monkeypatch.setattr(pipeline, "ROWS_PER_REQUEST", 50)
    calls: list[int] = []
    scoring = pipeline.score_test_rows(s3, _threshold_endpoint(calls), plan, data)
    assert sum(calls) == data["rows"]["test"] == scoring["rows_scored"]
    assert scoring["requests"] == len(calls) == -(-data["rows"]["test"] // 50)
    metrics = scoring["metrics"]
    assert metrics["test_rows"] == data["rows"]["test"]
    assert 0 < metrics["test_mae_baseline"] < 0.5
    stored = s3.get_object(Bucket=SETTINGS["bucket"], Key=scoring["predictions_uri"].split("/", 3)[3])["Body"].read()
    assert stored.decode().splitlines()[0] == "label,score"
    assert len(stored.decode().splitlines()) == data["rows"]["test"] + 1

    report = pipeline.build_report(plan, data=data, training={"job_name": "j", "metrics": {}},
                                   deployment={"operation": "create"}, scoring=scoring)  # fmt: skip
    uris = pipeline.write_report(s3, plan, report)
    stored_report = json.loads(
        s3.get_object(Bucket=SETTINGS["bucket"], Key=uris["json"].split("/", 3)[3])["Body"].read()
    )
    assert stored_report["metrics"] == metrics and stored_report["report_uris"] == uris
    assert stored_report["notebook_lines"][0] == "(1500, 35)"
    png = s3.get_object(Bucket=SETTINGS["bucket"], Key=uris["png"].split("/", 3)[3])["Body"].read()
    assert png.startswith(b"\x89PNG")
    text = pipeline.summary_text(stored_report)
    assert "Test MAE Baseline :" in text and "median baseline" in text and "The notebook printed" in text


def test_scoring_refuses_an_answer_with_missing_rows(s3) -> None:
    plan = plan_for(rows=600)
    data = pipeline.prepare_channels(s3, plan)
    with pytest.raises(ValueError, match="expected .* predictions, got 1"):
        pipeline.score_test_rows(s3, lambda body: b'{"predictions": [{"score": 0.5}]}', plan, data)
    with pytest.raises(ValueError, match="not Linear Learner JSON"):
        pipeline.score_test_rows(s3, lambda body: b"0.5\n0.2", plan, data)


# --- IAM -----------------------------------------------------------------------------------------------


def test_iam_grants_the_dags_calls_on_its_names_only() -> None:
    plan = plan_for()
    job_retry = plan["training_job_name"] + "-r2"
    expected = {
        ("sagemaker:CreateTrainingJob", "training-job"): [plan["training_job_name"], job_retry],
        ("sagemaker:DescribeTrainingJob", "training-job"): [job_retry],
        ("sagemaker:CreateModel", "model"): [plan["model_name"]],
        ("sagemaker:DeleteModel", "model"): [plan["model_name"]],
        ("sagemaker:CreateEndpointConfig", "endpoint-config"): [plan["endpoint_config_name"]],
        ("sagemaker:DeleteEndpointConfig", "endpoint-config"): [plan["endpoint_config_name"]],
        ("sagemaker:CreateEndpoint", "endpoint"): [plan["endpoint_name"]],
        ("sagemaker:CreateEndpoint", "endpoint-config"): [plan["endpoint_config_name"]],
        ("sagemaker:DeleteEndpoint", "endpoint"): [plan["endpoint_name"]],
        ("sagemaker:InvokeEndpoint", "endpoint"): [plan["endpoint_name"]],
        ("sagemaker:AddTags", "endpoint"): [plan["endpoint_name"]],
        ("sagemaker:ListTags", "endpoint-config"): [plan["endpoint_config_name"]],
    }
    for (action, kind), names in expected.items():
        for name in names:
            assert allows(AIRFLOW_POLICY, action, sagemaker_arn(kind, name)), f"{action} on {kind}/{name}"
        assert not allows(AIRFLOW_POLICY, action, sagemaker_arn(kind, "asteroid-other")), action
    bucket = SAMPLE["BUCKET"]
    # The execution role writes the model under training-output/ only.
    output = (
        plan["training_output"].replace(SETTINGS["bucket"], bucket) + f"{plan['training_job_name']}/output/m.tar.gz"
    )
    assert allows(EXECUTION_POLICY, "s3:PutObject", "arn:aws:s3:::" + output.removeprefix("s3://"))
    assert allows(
        EXECUTION_POLICY, "ecr:BatchGetImage", f"arn:aws:ecr:{SAMPLE['REGION']}:438346466558:repository/linear-learner"
    )
