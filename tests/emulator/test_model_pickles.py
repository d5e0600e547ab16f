"""Issue 12, item 2 end to end: a model.tar.gz whose ``xgboost-model`` is a malicious pickle never runs in the
server, on a single-model endpoint or as an MME TargetModel, and the server keeps serving; a Booster pickled by
xgboost 3.x itself still serves real predictions."""

from __future__ import annotations

import io
import json
import os
import pickle
import tarfile
import time
import urllib.request
from pathlib import Path

import boto3
import numpy as np
import pytest
import xgboost as xgb

from include.sagemaker_emulator.process import EmulatorProcess
from tests.emulator.helpers import unique
from tests.emulator.serving_helpers import (
    create_config,
    create_model,
    csv_row,
    deploy,
    ensure_bucket,
    housing_like,
)

BUCKET = "model-pickles"


class _TouchesMarker:
    """Unpickling this runs ``touch <marker>`` in whatever process unpickles it."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self) -> tuple:
        return os.system, (f"touch {self.marker}",)


def _archive(model_bytes: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("xgboost-model")
        info.size = len(model_bytes)
        tar.addfile(info, io.BytesIO(model_bytes))
    return buffer.getvalue()


def _pickled_booster() -> tuple[bytes, xgb.Booster]:
    x, y = housing_like(seed=4)
    booster = xgb.train({"objective": "reg:squarederror", "max_depth": 3}, xgb.DMatrix(x, label=y), 20)
    return pickle.dumps(booster), booster


def _expected(booster: xgb.Booster, row: np.ndarray) -> float:
    # The request carries the row as text: predict on what the server parses.
    parsed = np.array([[float(v) for v in csv_row(row).split(",")]], dtype=np.float32)
    return float(booster.inplace_predict(parsed)[0])


@pytest.fixture
def logs(emulator: EmulatorProcess):
    return boto3.client("logs", endpoint_url=emulator.url, region_name="us-east-1")


@pytest.fixture
def marker(emulator: EmulatorProcess) -> Path:
    path = emulator.data_dir.parent / f"pwned-{unique('m')}"
    assert not path.exists()
    return path


def _endpoint_log(logs, endpoint: str, needle: str, timeout: float = 15.0) -> str:
    group = f"/aws/sagemaker/Endpoints/{endpoint}"
    deadline = time.monotonic() + timeout
    while True:
        try:
            events = logs.filter_log_events(logGroupName=group)["events"]
        except logs.exceptions.ResourceNotFoundException:
            events = []
        found = [e["message"] for e in events if needle in e["message"]]
        if found:
            return found[0]
        if time.monotonic() > deadline:
            raise AssertionError(f"no log line with {needle!r} in {group}: {[e['message'] for e in events]}")
        time.sleep(0.2)


def _health(emulator: EmulatorProcess) -> int:
    with urllib.request.urlopen(f"{emulator.url}/_emulator/health", timeout=5) as response:
        return response.status


def test_single_model_endpoint_refuses_a_malicious_pickle(sm, s3, logs, runtime, emulator, marker) -> None:
    ensure_bucket(s3, BUCKET)
    evil_key = f"{unique('evil')}/model.tar.gz"
    s3.put_object(Bucket=BUCKET, Key=evil_key, Body=_archive(pickle.dumps(_TouchesMarker(marker))))
    good_key = f"{unique('good')}/model.tar.gz"
    good_pickle, booster = _pickled_booster()
    s3.put_object(Bucket=BUCKET, Key=good_key, Body=_archive(good_pickle))

    evil_model, evil_config, evil_endpoint = unique("evil-model"), unique("evil-config"), unique("evil")
    create_model(sm, evil_model, f"s3://{BUCKET}/{evil_key}")
    create_config(sm, evil_config, [("AllTraffic", evil_model, 1.0)])
    described = deploy(sm, evil_endpoint, evil_config)

    assert not marker.exists(), "the pickle ran inside the server"
    assert described["EndpointStatus"] == "Failed"
    assert "did not pass the ping health check" in described["FailureReason"]
    line = _endpoint_log(logs, evil_endpoint, "Unable to load model")
    assert "calls posix.system, which a pickled xgboost Booster never does" in line
    assert f"(model artifact s3://{BUCKET}/{evil_key})" in line

    # The server keeps serving, and a Booster pickled by xgboost 3.x serves real predictions.
    good_model, good_config, good_endpoint = unique("pkl-model"), unique("pkl-config"), unique("pkl")
    create_model(sm, good_model, f"s3://{BUCKET}/{good_key}")
    create_config(sm, good_config, [("AllTraffic", good_model, 1.0)])
    assert deploy(sm, good_endpoint, good_config)["EndpointStatus"] == "InService"
    row = housing_like(1, seed=11)[0][0]
    answer = runtime.invoke_endpoint(EndpointName=good_endpoint, ContentType="text/csv", Body=csv_row(row))
    assert float(answer["Body"].read()) == pytest.approx(_expected(booster, row), rel=1e-5)
    assert _health(emulator) == 200
    assert not marker.exists()


def test_mme_target_model_refuses_a_malicious_pickle(sm, s3, runtime, emulator, marker) -> None:
    ensure_bucket(s3, BUCKET)
    prefix = unique("mme-pickles")
    good_pickle, booster = _pickled_booster()
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}/Evil.tar.gz", Body=_archive(pickle.dumps(_TouchesMarker(marker))))
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}/Pickled.tar.gz", Body=_archive(good_pickle))
    model, config, endpoint = unique("mme-pkl-model"), unique("mme-pkl-config"), unique("mme-pkl")
    create_model(sm, model, f"s3://{BUCKET}/{prefix}/", multi_model=True)
    create_config(sm, config, [("AllTraffic", model, 1.0)])
    assert deploy(sm, endpoint, config)["EndpointStatus"] == "InService"
    row = housing_like(1, seed=12)[0][0]

    for _attempt in range(2):  # refused every time: a failed load is not cached as a model
        with pytest.raises(runtime.exceptions.ModelError) as refused:
            runtime.invoke_endpoint(
                EndpointName=endpoint, ContentType="text/csv", Body=csv_row(row), TargetModel="Evil.tar.gz"
            )
        assert not marker.exists(), "the pickle ran inside the server"
        error = refused.value.response
        assert error["OriginalStatusCode"] == 500
        assert "calls posix.system, which a pickled xgboost Booster never does" in error["OriginalMessage"]
        assert f"(model artifact s3://{BUCKET}/{prefix}/Evil.tar.gz)" in error["OriginalMessage"]

    answer = runtime.invoke_endpoint(
        EndpointName=endpoint, ContentType="text/csv", Body=csv_row(row), TargetModel="Pickled.tar.gz"
    )
    assert json.loads(answer["Body"].read()) == [pytest.approx(_expected(booster, row), rel=1e-5)]
    assert _health(emulator) == 200
    assert not marker.exists()
