"""Multi-model endpoints: TargetModel relative to the prefix, MME output formats, cache behaviour, errors."""

from __future__ import annotations

import json
import threading
import time

import boto3
import numpy as np
import pytest
from botocore.exceptions import ClientError

from include.sagemaker_emulator.process import EmulatorProcess
from tests.emulator.helpers import unique
from tests.emulator.serving_helpers import (
    create_config,
    create_model,
    csv_row,
    deploy,
    ensure_bucket,
    housing_like,
    xgboost_archive,
)

BUCKET = "serving-mme"


def _expected(seed: int, row: np.ndarray, scale: float = 1.0) -> float:
    import io
    import tarfile
    import tempfile
    from pathlib import Path

    import xgboost as xgb

    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(fileobj=io.BytesIO(xgboost_archive(seed=seed, scale=scale)), mode="r:gz") as tar:
            tar.extractall(tmp, filter="data")
        booster = xgb.Booster()
        booster.load_model(str(Path(tmp) / "xgboost-model"))
    return float(booster.inplace_predict(row[None, :])[0])


def _mme(sm, s3, prefix: str, locations: dict[str, int]) -> str:
    ensure_bucket(s3, BUCKET)
    for location, seed in locations.items():
        s3.put_object(Bucket=BUCKET, Key=f"{prefix}/{location}.tar.gz", Body=xgboost_archive(seed=seed))
    model, config, endpoint = unique("mme-model"), unique("mme-config"), unique("mme")
    create_model(sm, model, f"s3://{BUCKET}/{prefix}/", multi_model=True)
    create_config(sm, config, [("AllTraffic", model, 1.0)])
    assert deploy(sm, endpoint, config)["EndpointStatus"] == "InService"
    return endpoint


def test_mme_invoked_per_location(sm, s3, runtime):
    prefix = unique("fleet")
    endpoint = _mme(sm, s3, prefix, {"Chicago_IL": 1, "Houston_TX": 2})
    row = housing_like(1, seed=9)[0][0]
    answer = runtime.invoke_endpoint(
        EndpointName=endpoint, ContentType="text/csv", Body=csv_row(row), TargetModel="Chicago_IL.tar.gz"
    )
    # The MME container's JSON default: a bare array.
    chicago = json.loads(answer["Body"].read())
    assert chicago == [pytest.approx(_expected(1, row), rel=1e-4)]
    assert answer["InvokedProductionVariant"] == "AllTraffic"
    two_rows = csv_row(row) + "\n" + csv_row(row * 0.5)
    as_csv = runtime.invoke_endpoint(
        EndpointName=endpoint, ContentType="text/csv", Accept="text/csv", Body=two_rows, TargetModel="Houston_TX.tar.gz"
    )
    values = as_csv["Body"].read().decode()
    assert "\n" not in values.strip() and len(values.split(",")) == 2  # comma-joined on one line
    assert float(values.split(",")[0]) == pytest.approx(_expected(2, row), rel=1e-4)


def test_mme_errors_and_keeps_serving(sm, s3, runtime):
    prefix = unique("fleet")
    endpoint = _mme(sm, s3, prefix, {"Chicago_IL": 1})
    row = csv_row(housing_like(1)[0][0])
    with pytest.raises(ClientError) as missing_header:
        runtime.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=row)
    assert missing_header.value.response["Error"]["Code"] == "ValidationError"
    assert "missing a target model header" in missing_header.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as missing_model:
        runtime.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=row, TargetModel="Nowhere.tar.gz")
    error = missing_model.value.response
    assert error["Error"]["Code"] == "ValidationError"
    assert f"s3://{BUCKET}/{prefix}/Nowhere.tar.gz" in error["Error"]["Message"]
    answer = runtime.invoke_endpoint(
        EndpointName=endpoint, ContentType="text/csv", Body=row, TargetModel="Chicago_IL.tar.gz"
    )
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200
    with pytest.raises(runtime.exceptions.ModelError):
        runtime.invoke_endpoint(
            EndpointName=endpoint, ContentType="text/csv", Body="1,2", TargetModel="Chicago_IL.tar.gz"
        )
    # A new object under the prefix is invokable at once.
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}/Nowhere.tar.gz", Body=xgboost_archive(seed=3))
    runtime.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=row, TargetModel="Nowhere.tar.gz")


def test_overwritten_artifact_is_not_reloaded(sm, s3, runtime):
    prefix = unique("fleet")
    endpoint = _mme(sm, s3, prefix, {"Chicago_IL": 1})
    row = housing_like(1)[0][0]

    def predict() -> float:
        answer = runtime.invoke_endpoint(
            EndpointName=endpoint, ContentType="text/csv", Body=csv_row(row), TargetModel="Chicago_IL.tar.gz"
        )
        return json.loads(answer["Body"].read())[0]

    first = predict()
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}/Chicago_IL.tar.gz", Body=xgboost_archive(seed=1, scale=10.0))
    assert predict() == first  # as on AWS: new versions need new names


def test_lru_capacity_and_single_load_under_concurrency(tmp_path):
    with EmulatorProcess(tmp_path / "data", extra_args=["--mme-cache-size", "2"]) as emu:
        kwargs = {"endpoint_url": emu.url, "region_name": "us-east-1"}
        sm, s3 = boto3.client("sagemaker", **kwargs), boto3.client("s3", **kwargs)
        logs = boto3.client("logs", **kwargs)
        endpoint = _mme(sm, s3, "lru", {"A": 1, "B": 2, "C": 3})
        row = csv_row(housing_like(1)[0][0])
        results: list[int] = []

        def call(target: str) -> None:
            client = boto3.client("sagemaker-runtime", **kwargs)
            answer = client.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=row, TargetModel=target)
            results.append(answer["ResponseMetadata"]["HTTPStatusCode"])

        threads = [threading.Thread(target=call, args=("A.tar.gz",)) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert results == [200] * 8
        for target in ("B.tar.gz", "C.tar.gz", "A.tar.gz"):  # capacity 2: A was evicted by C
            call(target)

        def loads() -> list[str]:
            group = f"/aws/sagemaker/Endpoints/{endpoint}"
            try:
                streams = logs.describe_log_streams(logGroupName=group)["logStreams"]
            except logs.exceptions.ResourceNotFoundException:
                return []  # endpoint logs are shipped in batches: the group appears with the first batch
            if not streams:
                return []
            stream = streams[0]["logStreamName"]
            events = logs.get_log_events(logGroupName=group, logStreamName=stream)["events"]
            return [e["message"].split()[2] for e in events if e["message"].startswith("Loaded model")]

        deadline = time.monotonic() + 10
        while loads() != ["A.tar.gz", "B.tar.gz", "C.tar.gz", "A.tar.gz"]:
            assert time.monotonic() < deadline, loads()
            time.sleep(0.3)
