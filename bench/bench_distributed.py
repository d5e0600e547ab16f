"""Distributed XGBoost on the emulator: the MNIST notebook's job (multi:softmax, 10 classes, its
hyperparameters) on generated MNIST-like libsvm rows (784 pixels, 1-based, 10 train parts and 5 validation
parts), once on one instance and once on two with ShardedByS3Key on both channels.

Keys: ``distributed.two_host_ratio`` = two-host wall time / single-host wall time (CreateTrainingJob ->
Completed; target <= 1.5) and ``distributed.accuracy_delta_points`` = |single - two-host| test accuracy in
points (target <= 1), both models scored locally on the same held-out rows. The jobs run interleaved
(one host, two hosts, one host, two hosts, ... ``BENCH_DISTRIBUTED_PAIRS`` pairs, default 3) so a shared
machine's load falls on both alike; the ratio is the median of the pairs' ratios, the accuracy delta the largest of any pair,
and ``distributed.load_average`` the highest 1-minute load average seen. ``BENCH_DISTRIBUTED_ROWS``
(default 50,000, the issue's shape) scales the training rows down when the machine is too loaded.

``python -m bench bench.bench_distributed``
"""

from __future__ import annotations

import io
import os
import statistics
import tarfile
import time

from bench.common import client, emulator, print_table
from tests.emulator.helpers import ROLE_ARN

BUCKET = "bench-distributed"
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
ROWS = int(os.environ.get("BENCH_DISTRIBUTED_ROWS", "50000"))
PAIRS = int(os.environ.get("BENCH_DISTRIBUTED_PAIRS", "3"))
FEATURES = 784
TRAIN_PARTS, VALIDATION_PARTS = 10, 5
HYPERPARAMETERS = {"max_depth": "5", "eta": "0.2", "gamma": "4", "min_child_weight": "6", "objective": "multi:softmax",
                   "num_class": "10", "num_round": "10"}  # fmt: skip


def generate(rows: int, seed: int):
    """MNIST-like rows: each class has its own pixel-on probabilities (2-50 %), values in (0.1, 1]."""
    import numpy as np
    from scipy.sparse import csr_matrix

    prototypes = np.random.default_rng(12345).uniform(0.02, 0.5, size=(10, FEATURES))
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=rows)
    on = rng.random((rows, FEATURES)) < prototypes[labels]
    values = np.where(on, rng.uniform(0.1, 1.0, size=(rows, FEATURES)).round(3), 0.0)
    return csr_matrix(values), labels


def libsvm_text(features, labels) -> bytes:
    lines = []
    for row, label in enumerate(labels):
        start, end = features.indptr[row], features.indptr[row + 1]
        pairs = " ".join(
            f"{c + 1}:{v:g}" for c, v in zip(features.indices[start:end], features.data[start:end], strict=True)
        )
        lines.append(f"{label} {pairs}")
    return "\n".join(lines).encode()


def _request(name: str, count: int) -> dict:
    channel = lambda c: {  # noqa: E731
        "ChannelName": c,
        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/{c}/",
                                        "S3DataDistributionType": "ShardedByS3Key" if count > 1 else "FullyReplicated"}},
        "ContentType": "libsvm",
    }  # fmt: skip
    return {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        "RoleArn": ROLE_ARN,
        "InputDataConfig": [channel("train"), channel("validation")],
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/output"},
        "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": count, "VolumeSizeInGB": 5},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        "HyperParameters": HYPERPARAMETERS,
    }


def _run_job(sm, name: str, count: int) -> float:
    started = time.perf_counter()
    sm.create_training_job(**_request(name, count))
    while True:
        job = sm.describe_training_job(TrainingJobName=name)
        if job["TrainingJobStatus"] in ("Completed", "Failed", "Stopped"):
            break
        time.sleep(0.2)
    if job["TrainingJobStatus"] != "Completed":
        raise RuntimeError(f"{name} ended {job['TrainingJobStatus']}: {job.get('FailureReason')}")
    return time.perf_counter() - started


def _accuracy(s3, name: str, test) -> float:
    import tempfile

    import xgboost as xgb

    body = s3.get_object(Bucket=BUCKET, Key=f"output/{name}/output/model.tar.gz")["Body"].read()
    with tempfile.TemporaryDirectory() as tmp, tarfile.open(fileobj=io.BytesIO(body)) as tar:
        tar.extractall(tmp, filter="data")
        booster = xgb.Booster(model_file=os.path.join(tmp, "xgboost-model"))
    features, labels = test
    features = features.copy()
    features.resize((features.shape[0], booster.num_features()))
    # The training files are 1-based, so the model's column 0 is empty: shift the test rows the same way.
    from scipy.sparse import csr_matrix

    shifted = csr_matrix(
        (features.data, features.indices + 1, features.indptr), shape=(features.shape[0], FEATURES + 1)
    )
    preds = booster.inplace_predict(shifted)
    return float((preds == labels).mean() * 100)


def run() -> dict[str, float]:
    import numpy as np

    train = generate(ROWS, seed=1)
    validation = generate(max(ROWS // 5, 1000), seed=2)
    test = generate(max(ROWS // 5, 1000), seed=3)
    with emulator() as emu:
        s3, sm = client(emu, "s3"), client(emu, "sagemaker")
        s3.create_bucket(Bucket=BUCKET)
        for channel, (features, labels), parts in (
            ("train", train, TRAIN_PARTS),
            ("validation", validation, VALIDATION_PARTS),
        ):
            for i, rows in enumerate(np.array_split(np.arange(len(labels)), parts)):
                s3.put_object(
                    Bucket=BUCKET, Key=f"{channel}/examples{i}", Body=libsvm_text(features[rows], labels[rows])
                )
        loads = [os.getloadavg()[0]]
        single: list[tuple[float, float]] = []  # (seconds, accuracy) per run
        two: list[tuple[float, float]] = []
        for pair in range(PAIRS):
            for count, runs in ((1, single), (2, two)):
                name = f"bench-dist-{count}-host-{pair}"
                seconds = _run_job(sm, name, count)
                runs.append((seconds, _accuracy(s3, name, test)))
                loads.append(os.getloadavg()[0])
    single_s = statistics.median(r[0] for r in single)
    two_s = statistics.median(r[0] for r in two)
    # Each pair ran back to back under about the same load: the median of the pairs' ratios.
    pair_ratios = [b[0] / a[0] for a, b in zip(single, two, strict=True)]
    ratio = statistics.median(pair_ratios)
    delta = max(abs(a[1] - b[1]) for a, b in zip(single, two, strict=True))
    runs_text = lambda runs: ", ".join(f"{r[0]:.1f}" for r in runs)  # noqa: E731
    print_table(
        f"Distributed XGBoost, {ROWS:,} x {FEATURES} libsvm rows, multi:softmax, 10 rounds, {PAIRS} interleaved "
        f"pairs, load average {min(loads):.1f}-{max(loads):.1f}",
        [
            ("one instance", f"{single_s:.1f} s", f"runs {runs_text(single)} s; accuracy {single[0][1]:.2f} %"),
            ("two instances, ShardedByS3Key", f"{two_s:.1f} s", f"runs {runs_text(two)} s; accuracy {two[0][1]:.2f} %"),
            (
                "wall-time ratio (median of pairs)",
                f"{ratio:.2f}",
                f"pairs {', '.join(f'{r:.2f}' for r in pair_ratios)}; target <= 1.5",
            ),
            ("accuracy delta (largest)", f"{delta:.2f} points", "target <= 1"),
        ],
    )
    return {
        "distributed.two_host_ratio": round(ratio, 3),
        "distributed.accuracy_delta_points": round(delta, 2),
        "distributed.rows": ROWS,
        "distributed.load_average": round(max(loads), 1),
    }
