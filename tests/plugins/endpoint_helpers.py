"""Real models for the endpoint tests: xgboost Boosters trained in-process, packed as SageMaker artifacts."""

from __future__ import annotations

import contextlib
import io
import os
import tarfile
import tempfile
import time
import uuid
from functools import cache

BUCKET = "endpoint-plugin-tests"
ROLE_ARN = "arn:aws:iam::123456789012:role/SageMakerExecution"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@cache
def xgboost_image() -> str:
    from sagemaker.core import image_uris

    return image_uris.retrieve("xgboost", region="us-east-1", version="1.7-1")


def dataset(rows: int, seed: int):
    """y = 50 x0 + 30 x1^2 - 20 x2 + noise: learnable, so more boosting rounds really mean less error."""
    import numpy as np

    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, size=(rows, 3))
    y = 50 * x[:, 0] + 30 * x[:, 1] ** 2 - 20 * x[:, 2] + rng.normal(0, 1.0, rows)
    return x, y


def label_first_csv(x, y) -> str:
    return "".join(f"{label:.6f}," + ",".join(f"{v:.6f}" for v in row) + "\n" for row, label in zip(x, y, strict=True))


def ensure_bucket(s3) -> str:
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou, s3.exceptions.BucketAlreadyExists):
        s3.create_bucket(Bucket=BUCKET)
    return BUCKET


def upload_xgboost_model(s3, key_prefix: str, rounds: int, *, seed: int = 1) -> str:
    """Train ``rounds`` boosting rounds, save ``xgboost-model`` in model.tar.gz, upload; the S3 URI."""
    import xgboost as xgb

    ensure_bucket(s3)
    x, y = dataset(400, seed)
    booster = xgb.train({"max_depth": 4, "eta": 0.3, "objective": "reg:squarederror"}, xgb.DMatrix(x, label=y), rounds)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "xgboost-model")
        booster.save_model(path)
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            tar.add(path, arcname="xgboost-model")
    key = f"{key_prefix}/model.tar.gz"
    s3.put_object(Bucket=BUCKET, Key=key, Body=buffer.getvalue())
    return f"s3://{BUCKET}/{key}"


def model_request(name: str, model_data_url: str) -> dict:
    return {
        "ModelName": name,
        "ExecutionRoleArn": ROLE_ARN,
        "PrimaryContainer": {"Image": xgboost_image(), "ModelDataUrl": model_data_url},
    }


def config_request(name: str, variants: dict[str, str], weights: dict[str, float] | None = None) -> dict:
    """``variants`` maps VariantName -> ModelName."""
    return {
        "EndpointConfigName": name,
        "ProductionVariants": [
            {
                "VariantName": variant,
                "ModelName": model,
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
                "InitialVariantWeight": (weights or {}).get(variant, 1.0),
            }
            for variant, model in variants.items()
        ],
    }


def wait_in_service(sm, endpoint_name: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        description = sm.describe_endpoint(EndpointName=endpoint_name)
        if description["EndpointStatus"] not in {"Creating", "Updating", "SystemUpdating", "RollingBack"}:
            return description
        if time.monotonic() > deadline:
            raise TimeoutError(f"{endpoint_name} still {description['EndpointStatus']}")
        time.sleep(0.2)


def deploy_direct(sm, s3, endpoint_name: str, variants: dict[str, int], weights: dict[str, float] | None = None):
    """Set up an endpoint with boto3 alone (for the tests of the other operators): {variant: rounds}."""
    models = {}
    for variant, rounds in variants.items():
        model_name = unique(f"m-{variant.lower()}")
        uri = upload_xgboost_model(s3, f"models/{model_name}", rounds)
        sm.create_model(**model_request(model_name, uri))
        models[variant] = model_name
    config_name = unique("cfg")
    sm.create_endpoint_config(**config_request(config_name, models, weights))
    sm.create_endpoint(EndpointName=endpoint_name, EndpointConfigName=config_name)
    wait_in_service(sm, endpoint_name)
    return config_name, models


class Traffic:
    """Un-targeted InvokeEndpoint calls in a background thread while a test runs (errors are counted)."""

    def __init__(self, endpoint_url: str, endpoint_name: str, pause: float = 0.01):
        import threading

        import boto3

        self._client = boto3.client("sagemaker-runtime", endpoint_url=endpoint_url, region_name="us-east-1")
        self.endpoint_name, self.pause = endpoint_name, pause
        self.ok = self.failed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._client.invoke_endpoint(
                    EndpointName=self.endpoint_name, Body=b"0.2,0.4,0.6", ContentType="text/csv"
                )
                self.ok += 1
            except Exception:
                self.failed += 1
            time.sleep(self.pause)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
