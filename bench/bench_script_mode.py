"""Script-mode training on the emulator vs the same script run directly: the seed's ``sklearn_rf.py``
(pandas + a 50-tree scikit-learn RandomForest) on 1,000 label-first CSV rows. ``script_mode.overhead_s`` =
median(CreateTrainingJob -> Completed, model.tar.gz uploaded) - median(the script alone with the same SM_*
paths), target <= 0.5 s. The script's own imports and fitting are in both, so they are not overhead."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import client, emulator, median, print_table

BUCKET = "bench-script-mode"
REPEATS = 5
TARGET_OVERHEAD_S = 0.5
SCRIPT = Path(__file__).resolve().parent.parent / "tests" / "emulator" / "script_mode_scripts" / "sklearn_rf.py"
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:0.20.0-cpu-py3"


def _train_csv(rows: int = 1000, features: int = 8) -> bytes:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, features))
    label = (x[:, 0] + x[:, 1] > 0).astype(int)
    buffer = io.StringIO()
    np.savetxt(buffer, np.column_stack([label, x]), delimiter=",", fmt="%.6g")
    return buffer.getvalue().encode()


class _Direct:
    """The floor: the script in a plain process with SM_MODEL_DIR, SM_CHANNEL_TRAIN and SM_OUTPUT_DATA_DIR set."""

    def __init__(self, data: bytes):
        self._tmp = tempfile.TemporaryDirectory(prefix="bench-script-mode-")
        root = Path(self._tmp.name)
        for folder in ("model", "output/data", "input/data/train", "code"):
            (root / folder).mkdir(parents=True)
        (root / "input/data/train/train.csv").write_bytes(data)
        (root / "code/sklearn_rf.py").write_bytes(SCRIPT.read_bytes())
        self.root = root
        self.env = {
            **os.environ,
            "SM_MODEL_DIR": str(root / "model"),
            "SM_CHANNEL_TRAIN": str(root / "input/data/train"),
            "SM_OUTPUT_DATA_DIR": str(root / "output/data"),
        }

    def seconds(self) -> float:
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "sklearn_rf.py", "--n_estimators", "50"],
            check=True, capture_output=True, cwd=self.root / "code", env=self.env,
        )  # fmt: skip
        return time.perf_counter() - started

    def close(self) -> None:
        self._tmp.cleanup()


def _job_seconds(sm, request: dict) -> float:
    """CreationTime -> the Completed transition (after the upload) as the server stamps them; polled gently so
    the bench's own requests do not take the CPU the job needs (the machine has 2 cores)."""
    sm.create_training_job(**request)
    while True:
        job = sm.describe_training_job(TrainingJobName=request["TrainingJobName"])
        if job["TrainingJobStatus"] == "Completed":
            completed = job["SecondaryStatusTransitions"][-1]["StartTime"]
            return (completed - job["CreationTime"]).total_seconds()
        if job["TrainingJobStatus"] in ("Failed", "Stopped"):
            raise RuntimeError(
                f"{request['TrainingJobName']} ended {job['TrainingJobStatus']}: {job.get('FailureReason')}"
            )
        time.sleep(0.1)


def _sourcedir() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(SCRIPT, arcname="sklearn_rf.py")
    return buffer.getvalue()


def _request(name: str, source: str) -> dict:
    return {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        "RoleArn": "arn:aws:iam::123456789012:role/SageMakerExecution",
        "HyperParameters": {
            "n_estimators": "50",
            "sagemaker_program": json.dumps("sklearn_rf.py"),
            "sagemaker_submit_directory": json.dumps(source),
            "sagemaker_container_log_level": "20",
        },
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/train/"}},
            }
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/output"},
        "ResourceConfig": {"InstanceType": "ml.c4.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 5},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
    }


def run() -> dict[str, float]:
    data = _train_csv()
    with emulator() as emu:
        sm, s3 = client(emu, "sagemaker"), client(emu, "s3")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key="train/train.csv", Body=data)
        s3.put_object(Bucket=BUCKET, Key="code/sourcedir.tar.gz", Body=_sourcedir())
        source = f"s3://{BUCKET}/code/sourcedir.tar.gz"
        direct = _Direct(data)
        try:
            # Warm both (page cache, the server's first S3/Logs writes, the namespace probe), then alternate so
            # that each pair runs under the same load.
            direct.seconds()
            _job_seconds(sm, _request("bench-warmup", source))
            pairs = []
            for i in range(REPEATS):
                alone = direct.seconds()
                pairs.append((alone, _job_seconds(sm, _request(f"bench-job-{i}", source))))
        finally:
            direct.close()
    alone = median([a for a, _ in pairs])
    job = median([j for _, j in pairs])
    overhead = round(median([j - a for a, j in pairs]), 3)
    print_table(
        f"Script-mode training (seed sklearn_rf.py, 50 trees on 1,000 rows; load average {os.getloadavg()[0]:.1f})",
        [
            ("script alone (median)", f"{alone:.3f} s", ""),
            ("training job (median)", f"{job:.3f} s", ""),
            ("overhead", f"{overhead:.3f} s", f"target <= {TARGET_OVERHEAD_S} s"),
        ],
    )
    return {
        "script_mode.overhead_s": overhead,
        "script_mode.job_s": round(job, 3),
        "script_mode.script_alone_s": round(alone, 3),
    }


if __name__ == "__main__":
    print(run())
