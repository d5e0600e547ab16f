"""Training jobs on the emulator, driven only with plain boto3 and botocore's waiters."""

from __future__ import annotations

import io
import time

import pytest
from botocore.exceptions import ClientError

from tests.conftest import inject_fault
from tests.emulator.helpers import (
    read_model_tar,
    training_request,
    unique,
    upload_housing_channels,
    wait_for_job,
)

BUCKET = "training-tests"


@pytest.fixture(scope="module")
def channels(emulator):
    import boto3

    s3 = boto3.client("s3", endpoint_url=emulator.url, region_name="us-east-1")
    return upload_housing_channels(s3, BUCKET, "housing/chicago")


def test_seed_notebook_flow_trains_a_real_model(sm, s3, channels):
    """Upload CSV channels, train with the SDK's image URI and the seed's hyperparameters, wait with
    botocore's waiter, download model.tar.gz and predict with xgboost: all unchanged from the seed."""
    import numpy as np
    import xgboost as xgb

    name = unique("seed-xgb")
    sm.create_training_job(**training_request(name, channels, f"s3://{BUCKET}/output"))
    sm.get_waiter("training_job_completed_or_stopped").wait(
        TrainingJobName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )
    job = sm.describe_training_job(TrainingJobName=name)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert [t["Status"] for t in job["SecondaryStatusTransitions"]] == [
        "Starting",
        "Downloading",
        "Training",
        "Uploading",
        "Completed",
    ]
    assert job["SecondaryStatusTransitions"][2]["StatusMessage"] == (
        "Training image download completed. Training in progress."
    )
    assert job["TrainingStartTime"] <= job["TrainingEndTime"]
    assert job["BillableTimeInSeconds"] >= 1
    artifact = job["ModelArtifacts"]["S3ModelArtifacts"]
    assert artifact == f"s3://{BUCKET}/output/{name}/output/model.tar.gz"
    metrics = {m["MetricName"]: m["Value"] for m in job["FinalMetricDataList"]}
    assert {"train:rmse", "validation:rmse"} <= set(metrics)

    files = read_model_tar(s3, artifact)
    assert set(files) == {"xgboost-model"}
    booster = xgb.Booster()
    booster.load_model(bytearray(files["xgboost-model"]))
    test = np.loadtxt(io.StringIO(channels["test_csv"]), delimiter=",")
    predictions = booster.predict(xgb.DMatrix(test[:, 1:]))
    residual = np.sum((test[:, 0] - predictions) ** 2)
    r_squared = 1 - residual / np.sum((test[:, 0] - test[:, 0].mean()) ** 2)
    assert r_squared > 0.9
    # The reported validation RMSE is the model's real error, not a made-up number.
    assert metrics["validation:rmse"] == pytest.approx(np.sqrt(residual / len(test)), rel=0.5)


def test_job_log_is_in_cloudwatch_in_the_container_format(emulator, sm, channels):
    import boto3

    name = unique("logs-xgb")
    sm.create_training_job(**training_request(name, channels, f"s3://{BUCKET}/output"))
    assert wait_for_job(sm, name)["TrainingJobStatus"] == "Completed"
    logs = boto3.client("logs", endpoint_url=emulator.url, region_name="us-east-1")
    streams = logs.describe_log_streams(
        logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix=f"{name}/", orderBy="LogStreamName"
    )["logStreams"]
    assert len(streams) == 1 and streams[0]["logStreamName"].startswith(f"{name}/algo-1-")
    events = logs.get_log_events(
        logGroupName="/aws/sagemaker/TrainingJobs", logStreamName=streams[0]["logStreamName"], startFromHead=True
    )["events"]
    lines = [e["message"] for e in events]
    assert any(line.startswith("[0]#011train-rmse:") and "#011validation-rmse:" in line for line in lines)


def test_duplicate_name_is_resource_in_use(sm, channels):
    name = unique("dup")
    sm.create_training_job(**training_request(name, channels, f"s3://{BUCKET}/output"))
    with pytest.raises(sm.exceptions.ResourceInUse, match="already exists"):
        sm.create_training_job(**training_request(name, channels, f"s3://{BUCKET}/output"))
    wait_for_job(sm, name)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"TrainingJobName": "Chicago_IL"}, "Member must satisfy regular expression pattern"),
        ({"TrainingJobName": "x" * 64}, "Member must have length less than or equal to 63"),
        ({"RoleArn": "arn:aws:iam::12345:role/short-account"}, "roleArn"),
        (
            {
                "AlgorithmSpecification": {
                    "TrainingImage": "123.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.1-1",
                    "TrainingInputMode": "File",
                }
            },
            "not found",
        ),
    ],
)
def test_invalid_requests_are_refused_before_anything_is_created(sm, channels, change, message):
    request = {**training_request(unique("bad"), channels, f"s3://{BUCKET}/output"), **change}
    with pytest.raises(ClientError, match=message) as raised:
        sm.create_training_job(**request)
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    # An invalid name is refused by DescribeTrainingJob's own input check, as on AWS; a valid one is not found.
    with pytest.raises(ClientError, match="Requested resource not found|failed to satisfy constraint"):
        sm.describe_training_job(TrainingJobName=request["TrainingJobName"][:63])


def test_empty_input_prefix_is_reported_like_aws(sm, channels):
    request = training_request(unique("empty"), {"train": f"s3://{BUCKET}/nothing-here/"}, f"s3://{BUCKET}/o")
    with pytest.raises(ClientError, match=r'No S3 objects found under S3 URL "s3://training-tests/nothing-here/"'):
        sm.create_training_job(**request)


def test_missing_resources_answer_validation_exception(sm):
    for call in (
        lambda: sm.describe_training_job(TrainingJobName="never-created"),
        lambda: sm.stop_training_job(TrainingJobName="never-created"),
    ):
        with pytest.raises(ClientError, match="Requested resource not found.") as raised:
            call()
        assert raised.value.response["Error"]["Code"] == "ValidationException"


def test_bad_csv_fails_with_client_error_naming_the_file_and_line(sm, s3, channels):
    s3.put_object(Bucket=BUCKET, Key="broken/train/part-0.csv", Body=b"1,2,3\n4,five,6\n")
    name = unique("badcsv")
    request = training_request(
        name, {"train": f"s3://{BUCKET}/broken/train/"}, f"s3://{BUCKET}/output", hyperparameters={"num_round": "5"}
    )
    sm.create_training_job(**request)
    job = wait_for_job(sm, name)
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"].startswith("ClientError:")
    assert "part-0.csv" in job["FailureReason"] and "2" in job["FailureReason"]
    assert job["SecondaryStatus"] == "Failed"


def test_hyperparameters_are_validated_like_the_container(sm, channels):
    name = unique("nonumround")
    sm.create_training_job(**training_request(name, channels, f"s3://{BUCKET}/output", hyperparameters={"eta": "0.2"}))
    job = wait_for_job(sm, name)
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"].startswith("ClientError:") and "num_round" in job["FailureReason"]


def test_injected_training_failure(emulator, sm, channels, clear_faults):
    name = unique("faulty")
    inject_fault(emulator, {"type": "training_failure", "count": 1, "name_contains": name})
    sm.create_training_job(**training_request(name, channels, f"s3://{BUCKET}/output"))
    job = wait_for_job(sm, name)
    assert job["TrainingJobStatus"] == "Failed" and job["FailureReason"].startswith("AlgorithmError:")
    # The fault was consumed: the next job trains.
    name2 = unique("faulty")
    sm.create_training_job(**training_request(name2, channels, f"s3://{BUCKET}/output"))
    assert wait_for_job(sm, name2)["TrainingJobStatus"] == "Completed"


def test_list_training_jobs_filters_sorts_and_pages(sm, channels):
    tag = unique("listing")
    names = [f"{tag}-{i}" for i in range(3)]
    for name in names:
        sm.create_training_job(**training_request(name, channels, f"s3://{BUCKET}/output"))
        time.sleep(0.01)
    for name in names:
        wait_for_job(sm, name)
    found = sm.list_training_jobs(NameContains=tag, SortBy="Name", SortOrder="Ascending")["TrainingJobSummaries"]
    assert [j["TrainingJobName"] for j in found] == names
    first = sm.list_training_jobs(NameContains=tag, MaxResults=2)
    assert len(first["TrainingJobSummaries"]) == 2 and "NextToken" in first
    rest = sm.list_training_jobs(NameContains=tag, MaxResults=2, NextToken=first["NextToken"])
    assert [j["TrainingJobName"] for j in rest["TrainingJobSummaries"]] == [names[0]]  # newest first by default
    paginated = [
        j["TrainingJobName"]
        for page in sm.get_paginator("list_training_jobs").paginate(NameContains=tag, PaginationConfig={"PageSize": 1})
        for j in page["TrainingJobSummaries"]
    ]
    assert sorted(paginated) == names
    assert sm.list_training_jobs(NameContains=tag, StatusEquals="Failed")["TrainingJobSummaries"] == []


def test_unimplemented_operation_is_a_400_naming_it_and_not_retried(emulator):
    import boto3

    sm = boto3.client("sagemaker", endpoint_url=emulator.url, region_name="us-east-1")
    started = time.monotonic()
    with pytest.raises(ClientError, match="ListNotebookInstances") as raised:
        sm.list_notebook_instances()
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert raised.value.response["ResponseMetadata"]["RetryAttempts"] == 0
    assert time.monotonic() - started < 2


def test_throttling_fault_is_retried_by_botocore_then_surfaces(emulator, sm, clear_faults):
    # botocore's standard mode retries ThrottlingException: one throttled call is absorbed...
    inject_fault(emulator, {"type": "throttle", "count": 1, "operations": ["ListTrainingJobs"]})
    assert sm.list_training_jobs()["ResponseMetadata"]["RetryAttempts"] == 1
    # ...and a persistent one surfaces after the retries, with AWS's code.
    inject_fault(emulator, {"type": "throttle", "count": 10, "operations": ["ListTrainingJobs"]})
    with pytest.raises(ClientError) as raised:
        sm.list_training_jobs()
    assert raised.value.response["Error"]["Code"] == "ThrottlingException"


def test_tags_round_trip(sm, channels):
    name = unique("tagged")
    request = training_request(name, channels, f"s3://{BUCKET}/output")
    arn = sm.create_training_job(**request, Tags=[{"Key": "team", "Value": "pricing"}])["TrainingJobArn"]
    assert arn == f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{name}"
    sm.add_tags(ResourceArn=arn, Tags=[{"Key": "location", "Value": "Chicago_IL"}])
    assert sm.list_tags(ResourceArn=arn)["Tags"] == [
        {"Key": "team", "Value": "pricing"},
        {"Key": "location", "Value": "Chicago_IL"},
    ]
    wait_for_job(sm, name)


def test_linear_learner_trains_on_csv(sm, channels):
    from sagemaker.core import image_uris

    name = unique("linear")
    request = training_request(
        name,
        channels,
        f"s3://{BUCKET}/output",
        image=image_uris.retrieve("linear-learner", region="us-east-1"),
        hyperparameters={"predictor_type": "regressor", "feature_dim": "6", "epochs": "5", "mini_batch_size": "100"},
    )
    sm.create_training_job(**request)
    job = wait_for_job(sm, name)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert job["FinalMetricDataList"], "linear learner reports its objective loss"
