"""Linear Learner as the asteroid notebook runs it, scaled up: CreateTrainingJob -> Completed on the emulator
with 10,000 x 32 recordIO training rows (plus 1,250 validation rows), the notebook's hyperparameters
(num_models 32, mini_batch_size 100, epochs 10, absolute_loss), no ContentType (recordIO is the default).
Target: ``linear_learner.num_models_32_s`` <= 5 s. Also reported: the algorithm alone, in this process
(reading recordIO + training 32 models), and the recordIO writer/reader throughput.

``python -m bench bench.bench_linear_learner``
"""

from __future__ import annotations

import json
import pathlib
import tempfile
import time

from bench.common import client, emulator, median, print_table
from tests.emulator.helpers import ROLE_ARN

BUCKET = "bench-linear-learner"
IMAGE = "382416733822.dkr.ecr.us-east-1.amazonaws.com/linear-learner:1"
HYPERPARAMETERS = {"feature_dim": "32", "mini_batch_size": "100", "predictor_type": "regressor", "epochs": "10",
                   "num_models": "32", "loss": "absolute_loss"}  # fmt: skip
TRAIN_ROWS = 10_000
REPEATS = 3
TARGET_S = 5.0


def _channels() -> dict[str, bytes]:
    from include.asteroids import data as asteroids
    from include.formats import recordio

    train = asteroids.features_and_labels(asteroids.clean(asteroids.generate(rows=TRAIN_ROWS, seed=1)))
    validation = asteroids.features_and_labels(asteroids.clean(asteroids.generate(rows=TRAIN_ROWS // 8, seed=2)))
    return {"train": recordio.dense_tensor_bytes(*train), "validation": recordio.dense_tensor_bytes(*validation)}


def _request(name: str) -> dict:
    channel = lambda c, dist: {  # noqa: E731
        "ChannelName": c,
        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/{c}/",
                                        "S3DataDistributionType": dist}},
    }  # fmt: skip
    return {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        "RoleArn": ROLE_ARN,
        "InputDataConfig": [channel("train", "ShardedByS3Key"), channel("validation", "FullyReplicated")],
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/output"},
        "ResourceConfig": {"InstanceType": "ml.c4.2xlarge", "InstanceCount": 1, "VolumeSizeInGB": 10},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
        "HyperParameters": HYPERPARAMETERS,
    }


def _algorithm_seconds(channels: dict[str, bytes]) -> float:
    """The floor: the same job's algorithm run in this process on a prepared job directory."""
    from include.sagemaker_emulator.algorithms import train

    timings = []
    for _ in range(REPEATS):
        with tempfile.TemporaryDirectory(prefix="bench-ll-") as tmp:
            root = pathlib.Path(tmp)
            (root / "input" / "config").mkdir(parents=True)
            for name, body in channels.items():
                (root / "input" / "data" / name).mkdir(parents=True)
                (root / "input" / "data" / name / f"{name}.data").write_bytes(body)
            (root / "input" / "config" / "hyperparameters.json").write_text(json.dumps(HYPERPARAMETERS))
            (root / "input" / "config" / "inputdataconfig.json").write_text(
                json.dumps({name: {"TrainingInputMode": "File"} for name in channels})
            )
            started = time.perf_counter()
            train("linear-learner", root, lambda _: None)
            timings.append(time.perf_counter() - started)
    return median(timings)


def _recordio_rates() -> tuple[float, float]:
    import numpy as np

    from include.formats import recordio

    x = np.random.default_rng(0).normal(size=(TRAIN_ROWS, 32)).astype(np.float32)
    y = np.zeros(TRAIN_ROWS, dtype=np.float32)
    started = time.perf_counter()
    data = recordio.dense_tensor_bytes(x, y)
    write_s = time.perf_counter() - started
    started = time.perf_counter()
    matrix = recordio.to_matrix([("bench", data)])
    read_s = time.perf_counter() - started
    assert matrix.features.shape == x.shape
    return TRAIN_ROWS / write_s, TRAIN_ROWS / read_s


def run() -> dict[str, float]:
    channels = _channels()
    write_rate, read_rate = _recordio_rates()
    algorithm_s = _algorithm_seconds(channels)
    with emulator() as emu:
        s3, sm = client(emu, "s3"), client(emu, "sagemaker")
        s3.create_bucket(Bucket=BUCKET)
        for name, body in channels.items():
            s3.put_object(Bucket=BUCKET, Key=f"{name}/{name}.data", Body=body)
        timings = []
        for i in range(REPEATS):
            name = f"bench-ll-{i}"
            started = time.perf_counter()
            sm.create_training_job(**_request(name))
            while True:
                job = sm.describe_training_job(TrainingJobName=name)
                if job["TrainingJobStatus"] in ("Completed", "Failed", "Stopped"):
                    break
                time.sleep(0.02)
            timings.append(time.perf_counter() - started)
            if job["TrainingJobStatus"] != "Completed":
                raise RuntimeError(f"{name} ended {job['TrainingJobStatus']}: {job.get('FailureReason')}")
        job_s = median(timings)
    print_table(
        f"Linear Learner, num_models 32, {TRAIN_ROWS:,} x 32 recordIO rows (median of {REPEATS})",
        [
            ("CreateTrainingJob -> Completed", f"{job_s:.2f} s", f"target <= {TARGET_S:.0f} s"),
            ("algorithm alone (read + train)", f"{algorithm_s:.2f} s", ""),
            ("recordIO write", f"{write_rate:,.0f} rows/s", ""),
            ("recordIO read", f"{read_rate:,.0f} rows/s", ""),
        ],
    )
    return {
        "linear_learner.num_models_32_s": round(job_s, 3),
        "linear_learner.algorithm_only_s": round(algorithm_s, 3),
        "recordio.write_rows_per_s": round(write_rate),
        "recordio.read_rows_per_s": round(read_rate),
    }


if __name__ == "__main__":
    run()
