"""Processing on the emulator vs the same script run directly: the seed's preprocessing script (pandas and
scikit-learn) on 1,000 churn rows. ``processing.overhead_s`` = median(CreateProcessingJob -> Completed)
- median(the script alone), target <= 0.5 s. The script's own imports (about 1.5 s) are in both, so they are
not overhead."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import client, emulator, median, print_table
from tests.emulator.processing_helpers import (
    CHURN_SCRIPT,
    churn_csv,
    ensure_bucket,
    processing_request,
    s3_input,
    s3_output,
)

BUCKET = "bench-processing"
REPEATS = 5
TARGET_OVERHEAD_S = 0.5


class _Direct:
    """The floor: the script in a plain process, its /opt/ml/processing paths pointed at a temp dir."""

    def __init__(self, data: bytes):
        self._tmp = tempfile.TemporaryDirectory(prefix="bench-processing-")
        self.root = Path(self._tmp.name)
        for folder in ("input", "train", "test"):
            (self.root / folder).mkdir()
        (self.root / "input" / "raw_churn.csv").write_bytes(data)
        self.script = self.root / "preprocessing.py"
        self.script.write_text(CHURN_SCRIPT.read_text().replace("/opt/ml/processing", str(self.root)))

    def seconds(self) -> float:
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, str(self.script), "--train-test-split-ratio", "0.2"], check=True, capture_output=True
        )
        return time.perf_counter() - started

    def close(self) -> None:
        self._tmp.cleanup()


def _job_seconds(sm, request: dict) -> float:
    """CreationTime -> ProcessingEndTime as the server stamps them; polled gently, so the bench's own
    requests do not take the CPU the job needs (the machine has 2 cores)."""
    sm.create_processing_job(**request)
    while True:
        job = sm.describe_processing_job(ProcessingJobName=request["ProcessingJobName"])
        if job["ProcessingJobStatus"] == "Completed":
            return (job["ProcessingEndTime"] - job["CreationTime"]).total_seconds()
        if job["ProcessingJobStatus"] in ("Failed", "Stopped"):
            raise RuntimeError(f"{request['ProcessingJobName']} ended {job['ProcessingJobStatus']}")
        time.sleep(0.1)


def run() -> dict[str, float]:
    import os

    data = churn_csv(1000)
    with emulator() as emu:
        isolation = emu.health()["processing_isolation"]
        sm, s3 = client(emu, "sagemaker"), client(emu, "s3")
        ensure_bucket(s3, BUCKET)
        s3.put_object(Bucket=BUCKET, Key="raw/raw_churn.csv", Body=data)
        s3.put_object(Bucket=BUCKET, Key="code/preprocessing.py", Body=CHURN_SCRIPT.read_bytes())

        def request(name: str) -> dict:
            return processing_request(
                name,
                code_uri=f"s3://{BUCKET}/code/preprocessing.py",
                script="preprocessing.py",
                inputs=[s3_input("input-1", f"s3://{BUCKET}/raw/", "/opt/ml/processing/input")],
                outputs=[
                    s3_output("train", f"s3://{BUCKET}/out/{name}", "/opt/ml/processing/train"),
                    s3_output("test", f"s3://{BUCKET}/out/{name}", "/opt/ml/processing/test"),
                ],
                arguments=["--train-test-split-ratio", "0.2"],
            )

        direct = _Direct(data)
        try:
            # Warm both (page cache, the server's first S3/Logs writes), then alternate, so that each pair
            # runs under the same load.
            direct.seconds()
            _job_seconds(sm, request("bench-warmup"))
            pairs = []
            for i in range(REPEATS):
                alone = direct.seconds()
                pairs.append((alone, _job_seconds(sm, request(f"bench-job-{i}"))))
        finally:
            direct.close()
    alone = median([a for a, _ in pairs])
    job = median([j for _, j in pairs])
    overhead = round(median([j - a for a, j in pairs]), 3)
    print_table(
        f"Processing (1,000-row churn preprocessing, pandas + scikit-learn; /opt/ml via {isolation}; "
        f"load average {os.getloadavg()[0]:.1f})",
        [
            ("script alone (median)", f"{alone:.3f} s", ""),
            ("processing job (median)", f"{job:.3f} s", ""),
            ("overhead", f"{overhead:.3f} s", f"target <= {TARGET_OVERHEAD_S} s"),
        ],
    )
    return {
        "processing.overhead_s": overhead,
        "processing.job_s": round(job, 3),
        "processing.script_alone_s": round(alone, 3),
    }


if __name__ == "__main__":
    print(run())
