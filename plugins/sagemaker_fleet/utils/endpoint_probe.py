"""EndpointProbe: invokes an endpoint continuously around a change of it and counts every failed request.

It proves "no downtime": a deployment that succeeds while a single request failed is a failed deployment.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

__all__ = ["EndpointProbe", "probe_loop"]


def probe_loop(
    runtime: Any,
    endpoint_name: str,
    body: str,
    stop: threading.Event,
    *,
    interval: float = 0.02,
    record: Callable[[dict[str, Any]], None],
) -> None:
    """Invoke ``endpoint_name`` (no TargetVariant) with ``body`` until ``stop`` is set.

    ``runtime`` is a boto3 ``sagemaker-runtime`` client; each request is handed to ``record`` as
    ``{"t", "ok", "variant", "error"}``. Nothing is retried: a failed request is a failed request.
    """
    while not stop.is_set():
        started = time.monotonic()
        try:
            response = runtime.invoke_endpoint(EndpointName=endpoint_name, Body=body.encode(), ContentType="text/csv")
            response["Body"].read()
            record({"t": started, "ok": True, "variant": response.get("InvokedProductionVariant"), "error": None})
        except Exception as error:
            record({"t": started, "ok": False, "variant": None, "error": f"{type(error).__name__}: {error}"})
        stop.wait(interval)


class EndpointProbe:
    """A thread that invokes an endpoint continuously around a change of it, and counts failures.

    Use as a context manager around the update; ``mark("update_started")`` / ``mark("update_done")``
    split the requests into before / during / after. ``summary()`` is JSON-safe.
    """

    def __init__(
        self,
        runtime: Any,
        endpoint_name: str,
        body: str,
        *,
        interval: float = 0.02,
        min_requests_before: int = 5,
        min_requests_after: int = 5,
        max_wait_seconds: float = 30.0,
    ) -> None:
        self.runtime = runtime
        self.endpoint_name = endpoint_name
        self.body = body
        self.interval = interval
        self.min_requests_before = min_requests_before
        self.min_requests_after = min_requests_after
        self.max_wait_seconds = max_wait_seconds
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._records: list[dict[str, Any]] = []
        self._marks: dict[str, float] = {}
        self._thread: threading.Thread | None = None

    def _record(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._records.append(entry)

    def _count_since(self, since: float) -> int:
        with self._lock:
            return sum(1 for r in self._records if r["t"] >= since)

    def _wait_for(self, count: int, since: float) -> None:
        deadline = time.monotonic() + self.max_wait_seconds
        while self._count_since(since) < count and time.monotonic() < deadline and self._thread.is_alive():
            time.sleep(self.interval)

    def start(self) -> EndpointProbe:
        """Start invoking; return once ``min_requests_before`` requests were made (the baseline)."""
        self._thread = threading.Thread(
            target=probe_loop,
            args=(self.runtime, self.endpoint_name, self.body, self._stop),
            kwargs={"interval": self.interval, "record": self._record},
            name=f"probe-{self.endpoint_name}",
            daemon=True,
        )
        began = time.monotonic()
        self._marks["probe_started"] = began
        self._thread.start()
        self._wait_for(self.min_requests_before, began)
        return self

    def mark(self, name: str) -> None:
        self._marks[name] = time.monotonic()

    def stop(self) -> dict[str, Any]:
        """Keep probing for ``min_requests_after`` more requests (the new config serving), then stop."""
        if self._thread is None:
            raise RuntimeError("The probe was never started")
        self._wait_for(self.min_requests_after, time.monotonic())
        self._stop.set()
        self._thread.join(10)
        return self.summary()

    def __enter__(self) -> EndpointProbe:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        if not self._stop.is_set():
            self._stop.set()
            if self._thread is not None:
                self._thread.join(10)

    def summary(self) -> dict[str, Any]:
        with self._lock:
            records = list(self._records)
        started = self._marks.get("update_started", math.inf)
        done = self._marks.get("update_done", math.inf)

        def phase(record: dict[str, Any]) -> str:
            return "before" if record["t"] < started else "during" if record["t"] < done else "after"

        phases = Counter(phase(r) for r in records)
        after = [r for r in records if phase(r) == "after" and r["ok"]]
        failures = [r for r in records if not r["ok"]]
        return {
            "endpoint_name": self.endpoint_name,
            "requests": len(records),
            "failed": len(failures),
            "errors": [r["error"] for r in failures[:10]],
            "requests_before_update": phases.get("before", 0),
            "requests_during_update": phases.get("during", 0),
            "requests_after_update": phases.get("after", 0),
            "variants": dict(Counter(r["variant"] for r in records if r["ok"])),
            "variants_after_update": dict(Counter(r["variant"] for r in after)),
            "seconds": round((records[-1]["t"] - records[0]["t"]) if records else 0.0, 3),
        }
