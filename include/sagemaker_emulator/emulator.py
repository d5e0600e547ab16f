"""The emulator object: one per server process, holding the state and the planes that act on it."""

from __future__ import annotations

import logging
import threading
from typing import Any

from .aws import MotoFacade
from .config import EmulatorConfig
from .durability import Quarantine
from .faults import FaultRegistry
from .jobs import WorkerPool
from .processing import ProcessingRunner
from .store import Store
from .training import WORKER_PRELOAD, TrainingRunner
from .transform import TransformRunner

log = logging.getLogger(__name__)


class Emulator:
    def __init__(self, config: EmulatorConfig):
        self.config = config
        config.data_dir.mkdir(parents=True, exist_ok=True)
        # Damaged files found while loading state are set aside here, listed in health().
        self.quarantine = Quarantine(config.data_dir)
        self.store = Store(config.data_dir, quarantine=self.quarantine, fsync=config.durability == "fsync")
        self.moto = MotoFacade(
            config.data_dir,
            durability=config.durability,
            quarantine=self.quarantine,
            compact_bytes=config.journal_compact_bytes,
        )
        self.faults = FaultRegistry()
        self.serving: Any = _serving_plane(self)
        # One pool starts every job kind's workers; each runner gets only what it acts on.
        # Transform workers also parse CSV with pandas: preloaded once, not imported by every job.
        self.workers = WorkerPool((*WORKER_PRELOAD, "pandas", "include.sagemaker_emulator.transform_worker"))
        needs = {"store": self.store, "moto": self.moto, "faults": self.faults, "config": config, "pool": self.workers}
        self.training = TrainingRunner(warm_after=getattr(self.serving, "restored", None), **needs)
        self.processing = ProcessingRunner(**needs)
        self.transform = TransformRunner(**needs)
        self._stop = threading.Event()
        self._compactor: threading.Thread | None = None

    def start(self) -> None:
        self.moto.restore()
        self.training.start()
        self.processing.start()
        self.transform.start()
        if self.serving is not None:
            self.serving.start()
        self._compactor = threading.Thread(
            target=self.moto.run_compaction, args=(self._stop,), name="moto-compaction", daemon=True
        )
        self._compactor.start()

    def shutdown(self) -> None:
        self.training.shutdown()
        self.processing.shutdown()
        self.transform.shutdown()
        if self.serving is not None:
            self.serving.shutdown()
        self._stop.set()
        if self._compactor is not None:
            self._compactor.join(30)
        self.moto.close()
        log.info("emulator state saved in %s", self.config.data_dir)

    def health(self) -> dict[str, Any]:
        jobs = self.store.list("training-job")
        return {
            "status": "ok",
            "data_dir": str(self.config.data_dir),
            "time_scale": self.config.time_scale,
            "min_transition_seconds": self.config.min_transition_seconds,
            "training_jobs_in_progress": sum(1 for j in jobs if j["TrainingJobStatus"] == "InProgress"),
            "processing_jobs_in_progress": self.processing.running(),
            "transform_jobs_in_progress": self.transform.running(),
            # How processing jobs see /opt/ml: "namespace" (private mount per job) or "lock" (one at a time).
            "processing_isolation": self.processing.isolation,
            "endpoints": len(self.store.list("endpoint")),
            "serving": self.serving is not None,
            "durability": self.moto.health(),
            # Files that were torn, corrupt or unsigned at start: moved to <data_dir>/quarantine/, not loaded.
            "quarantined": self.quarantine.listing(),
            # CloudWatch endpoint metrics appear within this many seconds (AWS: 1-3 minutes). Clients such as
            # sagemaker_fleet's traffic shift read it to wait as long as this backend needs, not as AWS needs.
            "metrics_publish_delay_seconds": self.serving.telemetry.interval * 2 if self.serving is not None else None,
        }


def _serving_plane(emulator: Emulator) -> Any:
    try:
        from .serving import ServingPlane
    except ImportError:
        return None
    return ServingPlane(config=emulator.config, store=emulator.store, faults=emulator.faults, moto=emulator.moto)
