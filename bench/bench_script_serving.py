"""Script-mode serving benchmark: warm InvokeEndpoint latency through a user's inference script.

``python -m bench.bench_script_serving`` starts its own emulator, trains a 10-tree RandomForest here (joblib in
model.tar.gz), serves it with the seed notebook's ``sklearn_rf.py`` (model_fn only, the container's default
handlers) from a scikit-learn image, and measures boto3 warm invoke p50/p99 for a one-row JSON request. The
request crosses boto3, HTTP, the server, the worker's socket and back. Also reported: the in-process floor
(the same JSON decode + ``predict`` + JSON encode without any server), so the overhead is visible.
"""

from __future__ import annotations

import io
import json
import os
import statistics
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from bench.common import client, emulator, print_table

SCRIPT = Path(__file__).resolve().parents[1] / "tests" / "emulator" / "script_mode_scripts" / "sklearn_rf.py"
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
ROLE = "arn:aws:iam::123456789012:role/SageMakerExecution"
BUCKET = "bench-script-serving"
ENDPOINT = "bench-sklearn-rf"
TARGET_P50_MS = 5.0


def _tar(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def train() -> tuple[Any, bytes, np.ndarray]:
    import joblib
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(7)
    x = rng.normal(size=(500, 8)).astype(np.float32)
    y = (x[:, 0] - x[:, 3] > 0).astype(np.float64)
    model = RandomForestClassifier(n_estimators=10, random_state=0).fit(x, y)
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    return model, buffer.getvalue(), x[:1]


def floor_ms(model: Any, body: str, n: int = 500) -> float:
    """Median in-process time of what the worker does per request: decode, predict, encode."""
    times = []
    for _ in range(n):
        started = time.perf_counter()
        rows = np.array(json.loads(body)).astype(np.float32)
        json.dumps(model.predict(rows).tolist())
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def run(warm_calls: int = 1000) -> dict[str, float]:
    load = os.getloadavg()[0]
    model, joblib_bytes, row = train()
    body = json.dumps(row.tolist())
    floor = floor_ms(model, body)
    with emulator("--log-level", "WARNING") as emu:
        sm, s3, runtime = client(emu, "sagemaker"), client(emu, "s3"), client(emu, "sagemaker-runtime")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key="model.tar.gz", Body=_tar({"model.joblib": joblib_bytes}))
        s3.put_object(Bucket=BUCKET, Key="sourcedir.tar.gz", Body=_tar({"sklearn_rf.py": SCRIPT.read_bytes()}))
        sm.create_model(
            ModelName=ENDPOINT,
            PrimaryContainer={
                "Image": IMAGE,
                "ModelDataUrl": f"s3://{BUCKET}/model.tar.gz",
                "Environment": {
                    "SAGEMAKER_PROGRAM": "sklearn_rf.py",
                    "SAGEMAKER_SUBMIT_DIRECTORY": f"s3://{BUCKET}/sourcedir.tar.gz",
                },
            },
            ExecutionRoleArn=ROLE,
        )
        sm.create_endpoint_config(
            EndpointConfigName=ENDPOINT,
            ProductionVariants=[
                {"VariantName": "AllTraffic", "ModelName": ENDPOINT, "InitialInstanceCount": 1,
                 "InstanceType": "ml.m5.large"}
            ],
        )  # fmt: skip
        sm.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName=ENDPOINT)
        while (status := sm.describe_endpoint(EndpointName=ENDPOINT)["EndpointStatus"]) != "InService":
            if status == "Failed":
                raise RuntimeError(sm.describe_endpoint(EndpointName=ENDPOINT)["FailureReason"])
            time.sleep(0.02)

        def call() -> bytes:
            return runtime.invoke_endpoint(EndpointName=ENDPOINT, ContentType="application/json", Body=body)[
                "Body"
            ].read()

        assert json.loads(call()) == model.predict(row).tolist()
        for _ in range(100):
            call()
        times = []
        for _ in range(warm_calls):
            started = time.perf_counter()
            call()
            times.append((time.perf_counter() - started) * 1000)
    times.sort()
    p50 = round(statistics.median(times), 3)
    p99 = round(times[int(len(times) * 0.99) - 1], 3)
    print_table(
        f"Script-mode serving (sklearn_rf.py model_fn, 10-tree RandomForest, one-row JSON via boto3; "
        f"load average {load:.1f})",
        [
            ("warm invoke p50", f"{p50:.2f} ms", f"target <= {TARGET_P50_MS} ms"),
            ("warm invoke p99", f"{p99:.2f} ms", ""),
            ("in-process floor (decode+predict+encode)", f"{floor:.2f} ms", ""),
        ],
    )
    return {
        "script_mode.invoke_p50_ms": p50,
        "script_mode.invoke_p99_ms": p99,
        "script_mode.floor_ms": round(floor, 3),
    }


if __name__ == "__main__":
    print(run())
