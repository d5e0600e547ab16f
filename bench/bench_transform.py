"""Batch transform on the emulator vs the in-process floor: 100,000 CSV rows (10 features) through a 200-round
XGBoost model (depth 6), one object, ``SplitType`` Line, the container's defaults (MultiRecord, MaxPayloadInMB 6,
MaxConcurrentTransforms = CPU count from its execution parameters).

* ``transform.rows_per_s`` = rows / (CreationTime -> TransformEndTime as the server stamps them): staging,
  model extraction, the worker, the predictions and the upload all count. Target >= 50,000.
* ``transform.ratio_to_floor`` = floor seconds / job seconds, where the floor is "parse the same CSV bytes
  with pandas + ``inplace_predict`` (xgboost's default threads) + format one prediction per line" in this
  process. Target >= 0.5.
"""

from __future__ import annotations

import io
import os
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import client, emulator, median, print_table

BUCKET = "bench-transform"
ROWS = 100_000
FEATURES = 10
ROUNDS = 200
REPEATS = 3
XGB_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
ROLE = "arn:aws:iam::123456789012:role/SageMakerExecution"
TARGET_ROWS_PER_S = 50_000
TARGET_RATIO = 0.5


def _model_and_rows() -> tuple[object, bytes, bytes]:
    import xgboost as xgb

    rng = np.random.default_rng(0)
    train = rng.uniform(0, 10, size=(5_000, FEATURES)).astype(np.float32)
    label = train @ rng.uniform(-2, 2, FEATURES) + rng.normal(0, 1, len(train))
    booster = xgb.train({"objective": "reg:squarederror", "max_depth": 6}, xgb.DMatrix(train, label=label), ROUNDS)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "xgboost-model.ubj"
        booster.save_model(str(path))
        archive = io.BytesIO()
        with tarfile.open(fileobj=archive, mode="w:gz") as tar:
            tar.add(path, arcname="xgboost-model")
    rows = rng.uniform(0, 10, size=(ROWS, FEATURES))
    buffer = io.StringIO()
    np.savetxt(buffer, rows, delimiter=",", fmt="%.4f")
    return booster, archive.getvalue(), buffer.getvalue().encode()


def _floor_seconds(booster: object, data: bytes) -> tuple[float, str]:
    import pandas as pd

    started = time.perf_counter()
    x = pd.read_csv(io.BytesIO(data), header=None, dtype=np.float32, engine="c").to_numpy()
    preds = booster.inplace_predict(x)  # type: ignore[attr-defined]
    text = "\n".join(map(str, preds.tolist())) + "\n"
    return time.perf_counter() - started, text


def _job_seconds(sm, name: str) -> float:
    sm.create_transform_job(
        TransformJobName=name,
        ModelName="bench-xgb",
        TransformInput={
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/in/rows.csv"}},
            "ContentType": "text/csv",
            "SplitType": "Line",
        },
        TransformOutput={"S3OutputPath": f"s3://{BUCKET}/out/{name}", "AssembleWith": "Line"},
        TransformResources={"InstanceType": "ml.m5.xlarge", "InstanceCount": 1},
    )
    while True:  # polled gently: the bench's own requests must not take the CPU the job needs
        job = sm.describe_transform_job(TransformJobName=name)
        if job["TransformJobStatus"] == "Completed":
            return (job["TransformEndTime"] - job["CreationTime"]).total_seconds()
        if job["TransformJobStatus"] in ("Failed", "Stopped"):
            raise RuntimeError(f"{name} ended {job['TransformJobStatus']}: {job.get('FailureReason')}")
        time.sleep(0.1)


def run() -> dict[str, float]:
    booster, archive, data = _model_and_rows()
    with emulator() as emu:
        sm, s3 = client(emu, "sagemaker"), client(emu, "s3")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key="model/model.tar.gz", Body=archive)
        s3.put_object(Bucket=BUCKET, Key="in/rows.csv", Body=data)
        sm.create_model(
            ModelName="bench-xgb",
            PrimaryContainer={"Image": XGB_IMAGE, "ModelDataUrl": f"s3://{BUCKET}/model/model.tar.gz"},
            ExecutionRoleArn=ROLE,
        )
        _floor_seconds(booster, data)
        _job_seconds(sm, "bench-warmup")
        pairs = []
        for i in range(REPEATS):  # alternated, so each pair runs under the same load
            floor, expected = _floor_seconds(booster, data)
            job = _job_seconds(sm, f"bench-transform-{i}")
            pairs.append((floor, job))
        answer = s3.get_object(Bucket=BUCKET, Key="out/bench-transform-0/rows.csv.out")["Body"].read().decode()
    if answer != expected:
        raise RuntimeError("the transform job's output differs from the in-process predictions")
    floor = median([f for f, _ in pairs])
    job = median([j for _, j in pairs])
    rows_per_s = round(ROWS / job)
    ratio = round(median([f / j for f, j in pairs]), 3)
    print_table(
        f"Batch transform ({ROWS:,} CSV rows x {FEATURES}, {ROUNDS}-round XGBoost; load average "
        f"{os.getloadavg()[0]:.1f})",
        [
            ("in-process floor (median)", f"{floor:.3f} s", "parse CSV + inplace_predict + format"),
            ("transform job (median)", f"{job:.3f} s", "CreationTime -> TransformEndTime"),
            ("rows/s", f"{rows_per_s:,}", f"target >= {TARGET_ROWS_PER_S:,}"),
            ("ratio to floor", f"{ratio:.3f}", f"target >= {TARGET_RATIO}"),
        ],
    )
    return {
        "transform.rows_per_s": rows_per_s,
        "transform.ratio_to_floor": ratio,
        "transform.job_s": round(job, 3),
        "transform.floor_s": round(floor, 3),
    }


if __name__ == "__main__":
    print(run())
