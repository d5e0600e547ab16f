"""Fault injection: ``POST /_emulator/faults`` with one fault or ``{"faults": [...]}``.

Each fault is ``{"type": ..., "count": N}`` (count omitted or null = until ``DELETE /_emulator/faults``)
plus filters. Types:

- ``training_failure``: the next matching training jobs end Failed (``name_contains``, ``reason``).
- ``processing_failure``: the next matching processing jobs end Failed before their script runs
  (``name_contains``, ``reason``).
- ``transform_failure``: the next matching transform jobs end Failed before any record is sent to the model
  (``name_contains``, ``reason``).
- ``deployment_failure``: the next matching endpoint create/update cannot load (``endpoint_name``).
- ``throttle``: the next control-plane calls answer ThrottlingException (``operations``: list of names).
- ``variant_latency``: adds ``latency_ms`` to a variant's answers (``endpoint_name``, ``variant_name``).
- ``variant_model_error``: a variant answers ModelError (``endpoint_name``, ``variant_name``).
"""

from __future__ import annotations

import math
import threading
from typing import Any

FAULT_TYPES = {
    "training_failure": {"name_contains", "reason"},
    "processing_failure": {"name_contains", "reason"},
    "transform_failure": {"name_contains", "reason"},
    "deployment_failure": {"endpoint_name", "reason"},
    "throttle": {"operations"},
    "variant_latency": {"endpoint_name", "variant_name", "latency_ms"},
    "variant_model_error": {"endpoint_name", "variant_name", "status_code", "message"},
}
REQUIRED = {"variant_latency": ("endpoint_name", "latency_ms"), "variant_model_error": ("endpoint_name",)}
TEXT_FIELDS = {"name_contains", "reason", "endpoint_name", "variant_name", "message"}
MAX_TEXT = 1024
MAX_LATENCY_MS = 60_000  # InvokeEndpoint's own limit: a container must answer within 60 s
MAX_FAULTS_PER_POST = 100


class FaultSpecError(ValueError):
    pass


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_field(kind: str, key: str, value: Any) -> None:
    """Each field's type and range, so a posted fault can never make a later request fail or hang."""
    where = f"fault {kind!r}: {key}"
    if key in TEXT_FIELDS:
        if not isinstance(value, str) or not value or len(value) > MAX_TEXT:
            raise FaultSpecError(f"{where} must be a non-empty string of at most {MAX_TEXT} characters, got {value!r}")
    elif key == "operations":
        if not isinstance(value, list) or not value or not all(isinstance(op, str) and op for op in value):
            raise FaultSpecError(f"{where} must be a non-empty list of operation names, got {value!r}")
        from .shapes import operation_names

        unknown = sorted(set(value) - operation_names())
        if unknown:
            raise FaultSpecError(f"{where} names no SageMaker operation: {unknown} (e.g. CreateTrainingJob)")
    elif key == "latency_ms":
        if not _is_number(value) or not math.isfinite(value) or not 0 <= value <= MAX_LATENCY_MS:
            raise FaultSpecError(f"{where} must be a number of milliseconds from 0 to {MAX_LATENCY_MS}, got {value!r}")
    elif key == "status_code":
        if not isinstance(value, int) or isinstance(value, bool) or not 400 <= value <= 599:
            raise FaultSpecError(f"{where} must be an integer HTTP error status from 400 to 599, got {value!r}")
    elif key == "count" and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise FaultSpecError(f"{where} must be a positive integer or null, got {value!r}")


class FaultRegistry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[dict[str, Any]] = []

    def add(self, payload: Any) -> list[dict[str, Any]]:
        """Check every spec first; store them all or none."""
        if isinstance(payload, dict) and "faults" in payload:
            if set(payload) != {"faults"}:
                raise FaultSpecError(
                    f'{{"faults": [...]}} takes no other keys, got {sorted(set(payload) - {"faults"})}'
                )
            specs = payload["faults"]
        else:
            specs = [payload]
        if not isinstance(specs, list) or not specs:
            raise FaultSpecError('expected a fault object or {"faults": [...]} with at least one fault')
        if len(specs) > MAX_FAULTS_PER_POST:
            raise FaultSpecError(f"at most {MAX_FAULTS_PER_POST} faults per request, got {len(specs)}")
        checked = [self._check(spec) for spec in specs]
        with self._lock:
            self._faults.extend(checked)
            return list(self._faults)

    @staticmethod
    def _check(spec: Any) -> dict[str, Any]:
        if not isinstance(spec, dict):
            raise FaultSpecError(f"a fault must be a JSON object, got {spec!r}")
        kind = spec.get("type")
        if not isinstance(kind, str) or kind not in FAULT_TYPES:
            raise FaultSpecError(f"unknown fault type {kind!r}; one of {sorted(FAULT_TYPES)}")
        unknown = set(spec) - FAULT_TYPES[kind] - {"type", "count"}
        if unknown:
            raise FaultSpecError(
                f"fault {kind!r} does not take {sorted(unknown)}; it takes {sorted(FAULT_TYPES[kind])}"
            )
        for key in REQUIRED.get(kind, ()):
            if spec.get(key) is None:
                raise FaultSpecError(f"fault {kind!r} needs {key}")
        for key, value in spec.items():
            if key != "type" and value is not None:
                _check_field(kind, key, value)
        return {key: value for key, value in spec.items() if value is not None}

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
