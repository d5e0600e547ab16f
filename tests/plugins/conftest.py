"""Fixtures of the plugin tests: an Airflow home in a tmp dir, real CSV channels in the emulator's S3,
CreateTrainingJob requests for the built-in XGBoost, and a slow emulator where jobs stay InProgress."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator

import pytest

from include.sagemaker_emulator.process import EmulatorProcess

# Shared with the emulator tests; re-exported for this folder's test modules.
from tests.emulator.helpers import ROLE_ARN, unique, wait_for_job, xgboost_image  # noqa: F401

REGION = "us-east-1"
BUCKET = "plugin-tests"
HYPERPARAMETERS = {"max_depth": "3", "eta": "0.3", "objective": "reg:squarederror", "num_round": "10"}


@pytest.fixture(scope="session", autouse=True)
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    home = tmp_path_factory.mktemp("airflow_home")
    previous = os.environ.get("AIRFLOW_HOME")
    os.environ["AIRFLOW_HOME"] = str(home)
    yield
    if previous is None:
        os.environ.pop("AIRFLOW_HOME", None)
    else:
        os.environ["AIRFLOW_HOME"] = previous


def upload_channels(s3, prefix: str, location: str = "Chicago_IL", houses: int = 200) -> dict[str, str]:
    """Listings generated and prepared as the nightly DAG does, uploaded as train/validation CSV channels."""
    from include.housing.feed import generate_listings
    from include.housing.prepare import prepare_listings

    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(Bucket=BUCKET)
    prepared = prepare_listings(generate_listings(location, "2026-11-23", houses), location=location, seed=7)
    uris = {}
    for channel, text in (("train", prepared.train_csv), ("validation", prepared.validation_csv)):
        s3.put_object(Bucket=BUCKET, Key=f"{prefix}/{channel}/{channel}.csv", Body=text.encode())
        uris[channel] = f"s3://{BUCKET}/{prefix}/{channel}/"
    uris["test_csv"] = prepared.test_csv
    return uris


def training_config(name: str, channels: dict[str, str], **overrides) -> dict:
    config = {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": xgboost_image(), "TrainingInputMode": "File"},
        "RoleArn": ROLE_ARN,
        "InputDataConfig": [
            {
                "ChannelName": channel,
                "ContentType": "text/csv",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": channels[channel],
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
            }
            for channel in ("train", "validation")
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/output"},
        "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 5},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
        "HyperParameters": dict(HYPERPARAMETERS),
    }
    config.update(overrides)
    return config


def jobs_named(sm, text: str) -> list[str]:
    names = []
    for page in sm.get_paginator("list_training_jobs").paginate(NameContains=text):
        names.extend(j["TrainingJobName"] for j in page["TrainingJobSummaries"])
    return sorted(names)


@pytest.fixture(scope="session")
def channels(emulator: EmulatorProcess, s3) -> dict[str, str]:
    return upload_channels(s3, "channels/chicago")


@pytest.fixture(scope="session")
def s3(emulator: EmulatorProcess):
    import boto3

    return boto3.client("s3", endpoint_url=emulator.url, region_name=REGION)


@pytest.fixture(scope="session")
def sm(emulator: EmulatorProcess):
    import boto3

    return boto3.client("sagemaker", endpoint_url=emulator.url, region_name=REGION)


@pytest.fixture(scope="module")
def slow_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    """Its own emulator at time scale 0.05 (a job's 60 s "Starting" phase takes 3 s), reachable through
    the Airflow connection ``aws_slow``, so a test can act while a job is still InProgress."""
    data_dir = tmp_path_factory.mktemp("slow-emulator") / "data"
    with EmulatorProcess(data_dir, time_scale=0.05) as emu:
        os.environ["AIRFLOW_CONN_AWS_SLOW"] = json.dumps(
            {"conn_type": "aws", "extra": {"endpoint_url": emu.url, "region_name": REGION}}
        )
        yield emu
        os.environ.pop("AIRFLOW_CONN_AWS_SLOW", None)
