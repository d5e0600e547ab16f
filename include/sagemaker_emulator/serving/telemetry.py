"""CloudWatch metrics and endpoint logs, aggregated in memory on the hot path and flushed to moto about once
a second (and at shutdown) as StatisticValues, so an invocation never calls moto."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..aws import MotoFacade

log = logging.getLogger(__name__)

NAMESPACE = "AWS/SageMaker"
UNITS = {
    "Invocations": "None",
    "Invocation4XXErrors": "None",
    "Invocation5XXErrors": "None",
    "ModelLatency": "Microseconds",
    "OverheadLatency": "Microseconds",
    "ModelCacheHit": "None",
    "LoadedModelCount": "None",
    "ModelLoadingWaitTime": "Microseconds",
}

# (region, endpoint, variant) -> metric name -> [count, sum, min, max]
Accumulator = dict[tuple[str, str, str], dict[str, list[float]]]


class Telemetry:
    def __init__(self, moto: MotoFacade, interval: float = 1.0):
        self.moto = moto
        self.interval = interval
        self._lock = threading.Lock()
        self._metrics: Accumulator = {}
        self._logs: dict[tuple[str, str, str], list[tuple[int, str]]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- hot path ------------------------------------------------------------------------------
    def record(self, dims: tuple[str, str, str], values: tuple[tuple[str, float], ...]) -> None:
        """Add one sample of each ``(metric, value)`` for the variant ``dims``; one lock for all of them."""
        with self._lock:
            per_variant = self._metrics.get(dims)
            if per_variant is None:
                per_variant = self._metrics[dims] = {}
            for name, value in values:
                acc = per_variant.get(name)
                if acc is None:
                    per_variant[name] = [1, value, value, value]
                else:
                    acc[0] += 1
                    acc[1] += value
                    if value < acc[2]:
                        acc[2] = value
                    if value > acc[3]:
                        acc[3] = value

    def log(self, region: str, endpoint: str, stream: str, message: str) -> None:
        with self._lock:
            self._logs.setdefault((region, f"/aws/sagemaker/Endpoints/{endpoint}", stream), []).append(
                (int(time.time() * 1000), message)
            )

    # -- flushing ------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="serving-telemetry", daemon=True)
        self._thread.start()

    def shutdown(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self.flush()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.flush()
            except Exception:  # never let telemetry stop serving; the next flush tries again
                log.exception("flushing endpoint metrics/logs failed")

    def flush(self) -> None:
        with self._lock:
            metrics, self._metrics = self._metrics, {}
            logs, self._logs = self._logs, {}
        by_region: dict[str, list[dict]] = {}
        for (region, endpoint, variant), values in metrics.items():
            dimensions = [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": variant}]
            for name, (count, total, low, high) in values.items():
                by_region.setdefault(region, []).append(
                    {
                        "MetricName": name,
                        "Dimensions": dimensions,
                        "StatisticValues": {"SampleCount": count, "Sum": total, "Minimum": low, "Maximum": high},
                        "Unit": UNITS.get(name, "None"),
                    }
                )
        for region, data in by_region.items():
            for start in range(0, len(data), 500):
                self.moto.metrics_put(region, NAMESPACE, data[start : start + 500])
        for (region, group, stream), lines in logs.items():
            self.moto.logs_put(region, group, stream, lines)
