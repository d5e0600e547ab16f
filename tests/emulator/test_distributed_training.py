"""Distributed XGBoost jobs on the emulator: hosts without data sit out, a failing host fails the job by
name, FullyReplicated gives every host everything, and the concurrency quota counts instances."""

from __future__ import annotations

import contextlib

import boto3
import numpy as np
import pytest

from include.formats import libsvm
from tests.emulator.helpers import ROLE_ARN, read_model_tar, unique, wait_for_job, xgboost_image

BUCKET = "distributed-training"
GROUP = "/aws/sagemaker/TrainingJobs"


def _rows(seed: int, n: int = 200) -> bytes:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    return libsvm.format_rows((x[:, 0] > 0).astype(int).tolist(), x.round(4).tolist(), one_based=False)


@pytest.fixture(scope="module")
def bucket(emulator) -> str:
    s3 = boto3.client("s3", endpoint_url=emulator.url, region_name="us-east-1")
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(Bucket=BUCKET)
    for i in range(2):
        s3.put_object(Bucket=BUCKET, Key=f"two/part-{i}", Body=_rows(i))
    s3.put_object(Bucket=BUCKET, Key="bad/a-good", Body=_rows(5))
    s3.put_object(Bucket=BUCKET, Key="bad/b-broken", Body=b"1 0:1.5\n0 1:oops\n")
    return BUCKET


def _request(name: str, prefix: str, count: int, distribution: str) -> dict:
    return {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": xgboost_image(), "TrainingInputMode": "File"},
        "RoleArn": ROLE_ARN,
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/{prefix}/",
                                                "S3DataDistributionType": distribution}},
                "ContentType": "text/libsvm",
            }
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/output"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": count, "VolumeSizeInGB": 5},
        "StoppingCondition": {"MaxRuntimeInSeconds": 300},
        "HyperParameters": {"objective": "binary:logistic", "num_round": "5", "max_depth": "3"},
    }  # fmt: skip


def _host_logs(logs, name: str) -> dict[str, str]:
    streams = logs.describe_log_streams(logGroupName=GROUP, logStreamNamePrefix=name + "/")["logStreams"]
    out = {}
    for stream in streams:
        events = logs.get_log_events(logGroupName=GROUP, logStreamName=stream["logStreamName"], startFromHead=True)
        out[stream["logStreamName"].split("/")[1].rsplit("-", 1)[0]] = "\n".join(e["message"] for e in events["events"])
    return out


def test_a_host_without_data_sits_out(emulator, bucket, sm, s3) -> None:
    logs = boto3.client("logs", endpoint_url=emulator.url, region_name="us-east-1")
    name = unique("dist-empty-host")
    sm.create_training_job(**_request(name, "two", 3, "ShardedByS3Key"))
    job = wait_for_job(sm, name, timeout=180)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert job["BillableTimeInSeconds"] == 3 * job["TrainingTimeInSeconds"]
    host_logs = _host_logs(logs, name)
    assert sorted(host_logs) == ["algo-1", "algo-2", "algo-3"]
    assert "Host algo-1 read 200 rows in channel train." in host_logs["algo-1"]
    assert "Host algo-2 read 200 rows in channel train." in host_logs["algo-2"]
    assert "Host algo-3 read 0 rows in channel train." in host_logs["algo-3"]
    assert "Host algo-3 does not have data" in host_logs["algo-3"]
    assert "Distributed node training with 2 hosts: ['algo-1', 'algo-2']" in host_logs["algo-1"]
    assert "xgboost-model" in read_model_tar(s3, job["ModelArtifacts"]["S3ModelArtifacts"])


def test_fully_replicated_gives_every_host_everything(emulator, bucket, sm) -> None:
    logs = boto3.client("logs", endpoint_url=emulator.url, region_name="us-east-1")
    name = unique("dist-replicated")
    sm.create_training_job(**_request(name, "two", 2, "FullyReplicated"))
    job = wait_for_job(sm, name, timeout=180)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    host_logs = _host_logs(logs, name)
    for host in ("algo-1", "algo-2"):
        assert f"Host {host} read 400 rows in channel train." in host_logs[host]


def test_a_failing_host_fails_the_job_naming_it(emulator, bucket, sm) -> None:
    name = unique("dist-bad-host")
    sm.create_training_job(**_request(name, "bad", 2, "ShardedByS3Key"))
    job = wait_for_job(sm, name, timeout=180)
    assert job["TrainingJobStatus"] == "Failed"
    # Sorted keys round-robin: a-good -> algo-1, b-broken -> algo-2.
    assert job["FailureReason"].startswith("ClientError: Host algo-2: "), job["FailureReason"]
    assert "file 'b-broken', line 2" in job["FailureReason"]


def test_the_quota_counts_instances(sm, bucket) -> None:
    name = unique("dist-quota")
    with pytest.raises(sm.exceptions.ResourceLimitExceeded, match="request delta of 9 Instances"):
        sm.create_training_job(**_request(name, "two", 9, "ShardedByS3Key"))
    with pytest.raises(sm.exceptions.ClientError):
        sm.describe_training_job(TrainingJobName=name)
