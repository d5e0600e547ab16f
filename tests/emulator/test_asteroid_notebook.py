"""The asteroid Linear Learner notebook (seed 002) replayed against the emulator with plain boto3: recordIO
channels written with our SDK-compatible writer, the notebook's exact CreateTrainingJob request (no
ContentType, ShardedByS3Key on train), hosting, CSV scoring, MAE and accuracy against the baselines; then a
binary_classifier job scored with recordIO in and out."""

from __future__ import annotations

import contextlib
import io
import json
import os

import numpy as np
import pytest

from include.asteroids import data as asteroids
from include.formats import recordio
from tests.emulator.helpers import ROLE_ARN, unique

BUCKET = "datastorez"
PREFIX = "sagemaker/DEMO-asteroid-prediction"
CONTAINER = "382416733822.dkr.ecr.us-east-1.amazonaws.com/linear-learner:1"
FAST = {"Delay": 1, "MaxAttempts": 240}  # the notebook's waiters, polling every second instead of 30-120 s


@pytest.fixture(scope="module")
def notebook_data(emulator) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Clean, split and upload as the notebook does (train/linear_train.data, validation/linear_validation.data)."""
    import boto3

    frame = asteroids.clean(asteroids.generate(seed=11))
    parts = {name: asteroids.features_and_labels(p) for name, p in asteroids.split(frame, seed=11).items()}
    s3 = boto3.resource("s3", endpoint_url=emulator.url, region_name="us-east-1")
    with contextlib.suppress(s3.meta.client.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(Bucket=BUCKET)
    for channel, file_name in (("train", "linear_train.data"), ("validation", "linear_validation.data")):
        f = io.BytesIO()
        recordio.write_numpy_to_dense_tensor(f, *parts[channel])
        f.seek(0)
        s3.Bucket(BUCKET).Object(os.path.join(PREFIX, channel, file_name)).upload_fileobj(f)
    return parts


def notebook_training_params(job: str, hyperparameters: dict[str, str]) -> dict:
    return {
        "RoleArn": ROLE_ARN,
        "TrainingJobName": job,
        "AlgorithmSpecification": {"TrainingImage": CONTAINER, "TrainingInputMode": "File"},
        "ResourceConfig": {"InstanceCount": 1, "InstanceType": "ml.c4.2xlarge", "VolumeSizeInGB": 10},
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/{PREFIX}/train/",
                                                "S3DataDistributionType": "ShardedByS3Key"}},
                "CompressionType": "None",
                "RecordWrapperType": "None",
            },
            {
                "ChannelName": "validation",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                                "S3Uri": f"s3://{BUCKET}/{PREFIX}/validation/",
                                                "S3DataDistributionType": "FullyReplicated"}},
                "CompressionType": "None",
                "RecordWrapperType": "None",
            },
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/{PREFIX}/"},
        "HyperParameters": hyperparameters,
        "StoppingCondition": {"MaxRuntimeInSeconds": 60 * 60},
    }  # fmt: skip


def train_and_host(sm, job: str, hyperparameters: dict[str, str]) -> tuple[dict, str]:
    sm.create_training_job(**notebook_training_params(job, hyperparameters))
    sm.get_waiter("training_job_completed_or_stopped").wait(TrainingJobName=job, WaiterConfig=FAST)
    described = sm.describe_training_job(TrainingJobName=job)
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    sm.create_model(
        ModelName=job,
        ExecutionRoleArn=ROLE_ARN,
        PrimaryContainer={"Image": CONTAINER, "ModelDataUrl": described["ModelArtifacts"]["S3ModelArtifacts"]},
    )
    config = unique("DEMO-linear-endpoint-config")
    sm.create_endpoint_config(
        EndpointConfigName=config,
        ProductionVariants=[{"InstanceType": "ml.m4.xlarge", "InitialInstanceCount": 1, "ModelName": job,
                             "VariantName": "AllTraffic"}],
    )  # fmt: skip
    endpoint = unique("DEMO-linear-endpoint")
    sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=config)
    sm.get_waiter("endpoint_in_service").wait(EndpointName=endpoint, WaiterConfig=FAST)
    assert sm.describe_endpoint(EndpointName=endpoint)["EndpointStatus"] == "InService"
    return described, endpoint


def np2csv(arr: np.ndarray) -> str:
    csv = io.BytesIO()
    np.savetxt(csv, arr, delimiter=",", fmt="%g")
    return csv.getvalue().decode().rstrip()


def test_notebook_job_hosting_and_csv_scoring(emulator, notebook_data, sm, runtime) -> None:
    job = unique("ASTEROID-linear")
    hyperparameters = {"feature_dim": "32", "mini_batch_size": "100", "predictor_type": "regressor", "epochs": "10",
                       "num_models": "32", "loss": "absolute_loss"}  # fmt: skip
    described, endpoint = train_and_host(sm, job, hyperparameters)
    metrics = {m["MetricName"]: m["Value"] for m in described["FinalMetricDataList"]}
    assert {"validation:objective_loss", "validation:absolute_loss", "validation:mse", "train:progress"} <= set(metrics)
    assert metrics["train:progress"] == 100.0
    assert described["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3DataDistributionType"] == "ShardedByS3Key"
    assert "ContentType" not in described["InputDataConfig"][0]

    test_X, test_y = notebook_data["test"]
    train_y = notebook_data["train"][1]
    response = runtime.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=np2csv(test_X))
    result = json.loads(response["Body"].read().decode())
    test_pred = np.array([r["score"] for r in result["predictions"]])
    assert len(test_pred) == len(test_y)

    test_mae_linear = np.mean(np.abs(test_y - test_pred))
    test_mae_baseline = np.mean(np.abs(test_y - np.median(train_y)))
    assert abs(test_mae_linear - test_mae_baseline) < 0.02, (test_mae_linear, test_mae_baseline)
    prediction_accuracy = np.mean(test_y == (test_pred > 0.5) + 0) * 100
    baseline_accuracy = np.mean(test_y == np.repeat(np.median(train_y), len(test_y))) * 100
    assert abs(prediction_accuracy - baseline_accuracy) < 3.0
    assert metrics["validation:absolute_loss"] == pytest.approx(metrics["validation:objective_loss"], rel=1e-3)
    sm.delete_endpoint(EndpointName=endpoint)


def test_binary_classifier_with_recordio_inference(emulator, notebook_data, sm, runtime) -> None:
    job = unique("ASTEROID-binary")
    hyperparameters = {"feature_dim": "32", "mini_batch_size": "100", "predictor_type": "binary_classifier",
                       "epochs": "10", "num_models": "32"}  # fmt: skip
    described, endpoint = train_and_host(sm, job, hyperparameters)
    metrics = {m["MetricName"]: m["Value"] for m in described["FinalMetricDataList"]}
    assert metrics["validation:binary_classification_accuracy"] > 0.85

    test_X, test_y = notebook_data["test"]
    body = io.BytesIO()
    recordio.write_numpy_to_dense_tensor(body, test_X)
    response = runtime.invoke_endpoint(EndpointName=endpoint, ContentType=recordio.CONTENT_TYPE,
                                       Accept=recordio.CONTENT_TYPE, Body=body.getvalue())  # fmt: skip
    assert response["ContentType"] == recordio.CONTENT_TYPE
    records = list(recordio.read_records(response["Body"].read()))
    assert len(records) == len(test_y)
    predicted = np.array([r.label["predicted_label"].values[0] for r in records])
    scores = np.array([r.label["score"].values[0] for r in records])
    assert ((scores >= 0) & (scores <= 1)).all()
    majority = max(test_y.mean(), 1 - test_y.mean())
    assert np.mean(predicted == test_y) > majority + 0.05

    as_json = runtime.invoke_endpoint(EndpointName=endpoint, ContentType=recordio.CONTENT_TYPE,
                                      Body=body.getvalue())  # fmt: skip
    predictions = json.loads(as_json["Body"].read())["predictions"]
    assert [p["predicted_label"] for p in predictions] == predicted.astype(int).tolist()
    sm.delete_endpoint(EndpointName=endpoint)
