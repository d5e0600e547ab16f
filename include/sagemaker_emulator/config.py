"""Settings of one emulator process."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ACCOUNT_ID = "123456789012"
DEFAULT_REGION = "us-east-1"


@dataclass(frozen=True)
class EmulatorConfig:
    host: str = "127.0.0.1"
    port: int = 4566
    data_dir: Path = Path(".local/emulator")
    # Multiplies the nominal AWS durations of status transitions (instance start-up, image download,
    # endpoint provisioning). 0 = as fast as the real work allows; 0.01 makes a 4-minute endpoint
    # creation take 2.4 s, so waiters and sensors can be watched.
    time_scale: float = 0.0
    # Like an account's training-job quota: CreateTrainingJob beyond it answers ResourceLimitExceeded.
    max_concurrent_training_jobs: int = 8
    # How many multi-model-endpoint models each variant keeps loaded (least recently used are unloaded).
    mme_cache_size: int = 100
    # Seconds between snapshots of moto's state (S3 objects, logs, metrics) while something changed.
    snapshot_interval: float = 1.0

    def scaled(self, nominal_seconds: float) -> float:
        return max(0.0, nominal_seconds * self.time_scale)
