"""Fault injection: ``POST /_emulator/faults`` with one fault or ``{"faults": [...]}``.

Each fault is ``{"type": ..., "count": N}`` (count omitted or null = until ``DELETE /_emulator/faults``)
plus filters. Types:

- ``training_failure``: the next matching training jobs end Failed (``name_contains``, ``reason``).
- ``deployment_failure``: the next matching endpoint create/update cannot load (``endpoint_name``).
- ``throttle``: the next control-plane calls answer ThrottlingException (``operations``: list of names).
- ``variant_latency``: adds ``latency_ms`` to a variant's answers (``endpoint_name``, ``variant_name``).
- ``variant_model_error``: a variant answers ModelError (``endpoint_name``, ``variant_name``).
"""

from __future__ import annotations

import threading
from typing import Any

FAULT_TYPES = {
    "training_failure": {"name_contains", "reason"},
    "deployment_failure": {"endpoint_name", "reason"},
    "throttle": {"operations"},
    "variant_latency": {"endpoint_name", "variant_name", "latency_ms"},
    "variant_model_error": {"endpoint_name", "variant_name", "status_code", "message"},
}


class FaultSpecError(ValueError):
    pass


class FaultRegistry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[dict[str, Any]] = []

    def add(self, payload: Any) -> list[dict[str, Any]]:
        specs = payload.get("faults") if isinstance(payload, dict) and "faults" in payload else [payload]
        if not isinstance(specs, list) or not specs:
            raise FaultSpecError('expected a fault object or {"faults": [...]}')
        checked = [self._check(spec) for spec in specs]
        with self._lock:
            self._faults.extend(checked)
            return list(self._faults)

    @staticmethod
    def _check(spec: Any) -> dict[str, Any]:
        if not isinstance(spec, dict):
            raise FaultSpecError(f"a fault must be a JSON object, got {spec!r}")
        kind = spec.get("type")
        if kind not in FAULT_TYPES:
            raise FaultSpecError(f"unknown fault type {kind!r}; one of {sorted(FAULT_TYPES)}")
        unknown = set(spec) - FAULT_TYPES[kind] - {"type", "count"}
        if unknown:
            raise FaultSpecError(
                f"fault {kind!r} does not take {sorted(unknown)}; it takes {sorted(FAULT_TYPES[kind])}"
            )
        count = spec.get("count")
        if count is not None and (not isinstance(count, int) or count < 1):
            raise FaultSpecError(f"count must be a positive integer or null, got {count!r}")
        if kind in ("variant_latency", "variant_model_error") and not spec.get("endpoint_name"):
            raise FaultSpecError(f"fault {kind!r} needs endpoint_name")
        if kind == "variant_latency" and not isinstance(spec.get("latency_ms"), int | float):
            raise FaultSpecError("variant_latency needs a numeric latency_ms")
        return dict(spec)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def active(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(f) for f in self._faults]

    def take(self, kind: str, **context: Any) -> dict[str, Any] | None:
        """The first matching fault of ``kind``, consuming one of its count; None when none applies."""
        with self._lock:
            for fault in self._faults:
                if fault["type"] == kind and _matches(fault, context):
                    if fault.get("count") is not None:
                        fault["count"] -= 1
                        if fault["count"] == 0:
                            self._faults.remove(fault)
                    return dict(fault)
        return None

    def has(self, kind: str) -> bool:
        with self._lock:
            return any(f["type"] == kind for f in self._faults)


def _matches(fault: dict[str, Any], context: dict[str, Any]) -> bool:
    name = context.get("name", "")
    if fault.get("name_contains") and fault["name_contains"] not in name:
        return False
    if fault.get("endpoint_name") and fault["endpoint_name"] != context.get("endpoint_name"):
        return False
    if fault.get("variant_name") and fault["variant_name"] != context.get("variant_name"):
        return False
    return not (fault.get("operations") and context.get("operation") not in fault["operations"])
