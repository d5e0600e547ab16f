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
    # How long an endpoint keeps showing Creating, Updating, RollingBack or Deleting after the real work
    # (loading the models) at the least, whatever the time scale: on AWS these take minutes, so a Describe
    # right after the call always sees the transitional status and an UpdateEndpoint during an update is
    # refused. Code that forgets to wait then fails here as it would on AWS, instead of sometimes working.
    # 0 = only as long as the real work takes.
    min_transition_seconds: float = 0.2
    # Like an account's training-job quota: CreateTrainingJob beyond it answers ResourceLimitExceeded.
    max_concurrent_training_jobs: int = 8
    # The same quota for processing jobs (CreateProcessingJob beyond it answers ResourceLimitExceeded).
    max_concurrent_processing_jobs: int = 8
    # The same for batch transform, counted in instances (a job of InstanceCount N takes N).
    max_transform_instances: int = 8
    # How a processing script sees its own /opt/ml: "namespace" (a private mount namespace per job, root +
    # unshare), "lock" (one job at a time through /opt/ml under a machine-wide lock) or "auto" (namespace
    # when it works here, else lock).
    processing_isolation: str = "auto"
    # How many multi-model-endpoint models each variant keeps loaded (least recently used are unloaded).
    mme_cache_size: int = 100
    # How acknowledged writes are kept: "write" = in the OS before the answer (survives kill -9),
    # "fsync" = also on the disk (survives power loss), "off" = in memory until a graceful shutdown
    # (benchmarks only: a crash loses everything since the last snapshot).
    durability: str = "write"
    # The journal of moto's mutations is folded into a new snapshot once it grows past this many bytes.
    journal_compact_bytes: int = 64 * 2**20

    def scaled(self, nominal_seconds: float) -> float:
        return max(0.0, nominal_seconds * self.time_scale)

    def transition(self, nominal_seconds: float) -> float:
        """How long an endpoint transition of ``nominal_seconds`` on AWS lasts here at the least."""
        return max(self.min_transition_seconds, self.scaled(nominal_seconds))
