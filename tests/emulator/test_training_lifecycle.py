"""Stops, timeouts, quotas and restarts: each test runs its own emulator so it can slow time down,
lower the quota or stop the server."""

from __future__ import annotations

import time

import boto3
import pytest
from botocore.exceptions import ClientError

from include.sagemaker_emulator.process import EmulatorProcess
from tests.emulator.helpers import training_request, unique, upload_housing_channels, wait_for_job

BUCKET = "lifecycle-tests"


def clients(emu: EmulatorProcess):
    kw = {"endpoint_url": emu.url, "region_name": "us-east-1"}
    return boto3.client("sagemaker", **kw), boto3.client("s3", **kw), boto3.client("logs", **kw)


def wait_status(sm, name: str, secondary: str, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = sm.describe_training_job(TrainingJobName=name)
        if job["SecondaryStatus"] == secondary:
            return job
        time.sleep(0.02)
    raise AssertionError(f"{name} never reached {secondary}")


@pytest.fixture
def slow_emulator(tmp_path):
    # time scale 0.05: the 60 s "Starting" phase takes 3 s, long enough to stop a job or run out its time.
    with EmulatorProcess(tmp_path / "data", time_scale=0.05, extra_args=["--max-training-jobs", "2"]) as emu:
        yield emu


def test_stop_training_job_goes_stopping_then_stopped(slow_emulator):
    sm, s3, _ = clients(slow_emulator)
    channels = upload_housing_channels(s3, BUCKET, "stop", houses=200)
    name = unique("stopme")
    sm.create_training_job(**training_request(name, channels, f"s3://{BUCKET}/out"))
    assert sm.describe_training_job(TrainingJobName=name)["TrainingJobStatus"] == "InProgress"
    sm.stop_training_job(TrainingJobName=name)
    job = wait_for_job(sm, name)
    assert job["TrainingJobStatus"] == "Stopped" and job["SecondaryStatus"] == "Stopped"
    assert [t["Status"] for t in job["SecondaryStatusTransitions"]][-2:] == ["Stopping", "Stopped"]
    with pytest.raises(ClientError, match="in status Stopped"):
        sm.stop_training_job(TrainingJobName=name)


def test_max_runtime_ends_stopped_max_runtime_exceeded(slow_emulator):
    sm, s3, _ = clients(slow_emulator)
    channels = upload_housing_channels(s3, BUCKET, "timeout", houses=200)
    name = unique("slow")
    sm.create_training_job(**training_request(name, channels, f"s3://{BUCKET}/out", max_runtime=1))
    job = wait_for_job(sm, name)
    assert job["TrainingJobStatus"] == "Stopped"
    assert job["SecondaryStatus"] == "MaxRuntimeExceeded"


def test_concurrent_job_quota_answers_resource_limit_exceeded(slow_emulator):
    sm, s3, _ = clients(slow_emulator)
    channels = upload_housing_channels(s3, BUCKET, "quota", houses=200)
    names = [unique("quota") for _ in range(3)]
    for name in names[:2]:
        sm.create_training_job(**training_request(name, channels, f"s3://{BUCKET}/out"))
    with pytest.raises(sm.exceptions.ResourceLimitExceeded, match="training job usage"):
        sm.create_training_job(**training_request(names[2], channels, f"s3://{BUCKET}/out"))
    for name in names[:2]:
        assert wait_for_job(sm, name)["TrainingJobStatus"] == "Completed"
    # Once the running jobs finished, the quota has room again.
    sm.create_training_job(**training_request(names[2], channels, f"s3://{BUCKET}/out"))


def test_nothing_is_lost_on_restart(tmp_path):
    data_dir = tmp_path / "data"
    finished = unique("finished")
    interrupted = unique("interrupted")
    with EmulatorProcess(data_dir, time_scale=0.2) as emu:
        sm, s3, logs = clients(emu)
        channels = upload_housing_channels(s3, BUCKET, "restart", houses=200)
        sm.create_training_job(**training_request(finished, channels, f"s3://{BUCKET}/out"))
        wait_for_job(sm, finished, timeout=90)
        sm.create_model(
            ModelName="kept-model",
            ExecutionRoleArn="arn:aws:iam::123456789012:role/R",
            PrimaryContainer={
                "Image": training_request("x", channels, "s3://b/o")["AlgorithmSpecification"]["TrainingImage"],
                "ModelDataUrl": f"s3://{BUCKET}/mme/",
                "Mode": "MultiModel",
            },
        )
        # Still in its 12 s "Starting" phase when the emulator stops.
        sm.create_training_job(**training_request(interrupted, channels, f"s3://{BUCKET}/out"))
    with EmulatorProcess(data_dir) as emu:
        sm, s3, logs = clients(emu)
        job = sm.describe_training_job(TrainingJobName=finished)
        assert job["TrainingJobStatus"] == "Completed"
        artifact = job["ModelArtifacts"]["S3ModelArtifacts"]
        key = artifact.split("/", 3)[3]
        assert s3.head_object(Bucket=BUCKET, Key=key)["ContentLength"] > 0
        assert s3.get_object(Bucket=BUCKET, Key="restart/train/train.csv")["Body"].read().count(b"\n") > 100
        streams = logs.describe_log_streams(
            logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix=f"{finished}/"
        )["logStreams"]
        assert streams, "the finished job's log survived"
        assert sm.describe_model(ModelName="kept-model")["PrimaryContainer"]["Mode"] == "MultiModel"
        lost = sm.describe_training_job(TrainingJobName=interrupted)
        assert lost["TrainingJobStatus"] == "Failed"
        assert "emulator stopped while this training job was running" in lost["FailureReason"]
