"""Helpers shared by the serving tests: real model artifacts, endpoints, waiting."""

from __future__ import annotations

import contextlib
import io
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

XGB_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
LL_IMAGE = "382416733822.dkr.ecr.us-east-1.amazonaws.com/linear-learner:1"
ROLE = "arn:aws:iam::123456789012:role/SageMakerExecution"
FEATURES = 6


def housing_like(n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Rows of 6 numeric features and a price-like label that depends on them."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 10, size=(n, FEATURES)).astype(np.float32)
    y = 50 + 12 * x[:, 0] + 5 * x[:, 1] - 3 * x[:, 2] + rng.normal(0, 1, n)
    return x, y.astype(np.float32)


def xgboost_archive(seed: int = 0, rounds: int = 25, scale: float = 1.0) -> bytes:
    """A real model.tar.gz with one ``xgboost-model`` trained here in-process."""
    import xgboost as xgb

    x, y = housing_like(seed=seed)
    booster = xgb.train({"objective": "reg:squarederror", "max_depth": 3}, xgb.DMatrix(x, label=y * scale), rounds)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "xgboost-model"
        booster.save_model(str(path))
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            tar.add(path, arcname="xgboost-model")
    return buffer.getvalue()


def csv_row(values: Any) -> str:
    return ",".join(f"{v:g}" for v in values)


def ensure_bucket(s3: Any, bucket: str) -> None:
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(Bucket=bucket)


def upload_xgboost(s3: Any, bucket: str, key: str, seed: int = 0, scale: float = 1.0) -> str:
    ensure_bucket(s3, bucket)
    s3.put_object(Bucket=bucket, Key=key, Body=xgboost_archive(seed=seed, scale=scale))
    return f"s3://{bucket}/{key}"


def create_model(sm: Any, name: str, data_url: str, image: str = XGB_IMAGE, multi_model: bool = False) -> None:
    container: dict[str, Any] = {"Image": image, "ModelDataUrl": data_url}
    if multi_model:
        container["Mode"] = "MultiModel"
    sm.create_model(ModelName=name, PrimaryContainer=container, ExecutionRoleArn=ROLE)


def create_config(sm: Any, name: str, variants: list[tuple[str, str, float]]) -> None:
    sm.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {
                "VariantName": variant,
                "ModelName": model,
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
                "InitialVariantWeight": weight,
            }
            for variant, model, weight in variants
        ],
    )


def wait_status(sm: Any, endpoint: str, wanted: str | tuple[str, ...], timeout: float = 30.0) -> dict[str, Any]:
    wanted = (wanted,) if isinstance(wanted, str) else wanted
    deadline = time.monotonic() + timeout
    while True:
        described = sm.describe_endpoint(EndpointName=endpoint)
        if described["EndpointStatus"] in wanted:
            return described
        if time.monotonic() > deadline:
            raise AssertionError(f"{endpoint} still {described['EndpointStatus']}, wanted {wanted}: {described}")
        time.sleep(0.02)


def deploy(sm: Any, endpoint: str, config: str) -> dict[str, Any]:
    sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=config)
    return wait_status(sm, endpoint, ("InService", "Failed"))
