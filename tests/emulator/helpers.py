"""Shared steps of the emulator tests: real data in S3 and real training-job requests."""

from __future__ import annotations

import contextlib
import io
import tarfile
import time
import uuid

from include.housing.feed import generate_listings
from include.housing.prepare import prepare_listings

ROLE_ARN = "arn:aws:iam::123456789012:role/SageMakerExecution"
SEED_HYPERPARAMETERS = {
    # The seed notebook's values, spelled as it spells them (reg:linear is the pre-1.0 name).
    "max_depth": "5",
    "eta": "0.2",
    "gamma": "4",
    "min_child_weight": "6",
    "subsample": "0.7",
    "objective": "reg:linear",
    "num_round": "25",
    "early_stopping_rounds": "5",
}


def xgboost_image(version: str = "1.7-1") -> str:
    from sagemaker.core import image_uris

    return image_uris.retrieve("xgboost", region="us-east-1", version=version)


def upload_housing_channels(s3, bucket: str, prefix: str, location: str = "Chicago_IL", houses: int = 1000) -> dict:
    """Generate a location's listings, prepare them as the DAG does, upload train/validation/test CSV."""
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(Bucket=bucket)
    prepared = prepare_listings(generate_listings(location, "2026-11-23", houses), location=location, seed=7)
    uris = {}
    for channel, text in (
        ("train", prepared.train_csv),
        ("validation", prepared.validation_csv),
        ("test", prepared.test_csv),
    ):
        key = f"{prefix}/{channel}/{channel}.csv"
        s3.put_object(Bucket=bucket, Key=key, Body=text.encode())
        uris[channel] = f"s3://{bucket}/{prefix}/{channel}/"
    uris["test_csv"] = prepared.test_csv
    return uris


def training_request(
    name: str,
    channels: dict,
    output: str,
    *,
    hyperparameters: dict | None = None,
    image: str | None = None,
    max_runtime: int = 600,
    content_type: str | None = "text/csv",
) -> dict:
    def channel(channel_name: str) -> dict:
        entry = {
            "ChannelName": channel_name,
            "DataSource": {
                "S3DataSource": {
                    "S3DataType": "S3Prefix",
                    "S3Uri": channels[channel_name],
                    "S3DataDistributionType": "FullyReplicated",
                }
            },
        }
        if content_type:
            entry["ContentType"] = content_type
        return entry

    return {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": image or xgboost_image(), "TrainingInputMode": "File"},
        "RoleArn": ROLE_ARN,
        "InputDataConfig": [channel(c) for c in ("train", "validation") if c in channels],
        "OutputDataConfig": {"S3OutputPath": output},
        "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 5},
        "StoppingCondition": {"MaxRuntimeInSeconds": max_runtime},
        "HyperParameters": dict(SEED_HYPERPARAMETERS if hyperparameters is None else hyperparameters),
    }


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def wait_for_job(sm, name: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = sm.describe_training_job(TrainingJobName=name)
        if job["TrainingJobStatus"] in ("Completed", "Failed", "Stopped"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"training job {name} did not finish within {timeout} s")


def read_model_tar(s3, uri: str) -> dict[str, bytes]:
    bucket, key = uri[len("s3://") :].split("/", 1)
    data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
