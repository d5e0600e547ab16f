"""Every control-plane request checked against botocore's SageMaker service model, as AWS's front end does.

One walker driven by the model's input shapes covers every operation (types, required members, lengths,
ranges, patterns, enums), so the handlers only check what the model cannot say (references, states).

The rule, as AWS's awsJson1_1 services apply it:

- ``SerializationException``: the body is not JSON, or a value has the wrong JSON type for its member
  (a string where a number is expected, a list where a map is, ``true`` for an integer, a fraction for an
  integer, a number out of the member's range, a non-finite number such as ``NaN``, ``Infinity`` or
  ``1e999``). The message names the member and says what was expected and what was sent.
- ``ValidationException``: well-typed values that break a constraint, listed AWS's way:
  ``2 validation errors detected: Value 'x_y' at 'trainingJobName' failed to satisfy constraint: ...; ...``.

Null members count as absent (AWS's deserialiser does the same); members the model does not know are
dropped, so nothing unchecked reaches a handler or the store.
"""

from __future__ import annotations

import functools
import json
import math
import re
import threading
from typing import Any

from .errors import AwsError

SERIALIZATION = "SerializationException"
INTEGER_RANGES = {"integer": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}
FLOAT_LIMITS = {"float": 3.4028234663852886e38, "double": 1.7976931348623157e308}
_SHOWN_CHARS = 100
_model_lock = threading.Lock()


def parse_json(raw: bytes) -> Any:
    """The request body as JSON, refusing what Python accepts and JSON (and AWS) does not: NaN, Infinity
    and numbers that overflow to infinity."""
    try:
        return json.loads(raw, parse_constant=_non_finite, parse_float=_finite_float)
    except RecursionError:
        raise AwsError(SERIALIZATION, "Request body is not valid JSON: it is nested too deeply.") from None
    except ValueError as exc:
        raise AwsError(SERIALIZATION, f"Request body is not valid JSON: {exc}") from None


def _non_finite(token: str) -> float:
    raise ValueError(f"{token} is not a JSON number (JSON has no NaN or Infinity)")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]} is too large to represent")
    return value


@functools.cache
def _service_model() -> Any:
    # Loaded at the first control-plane request (about 0.3 s and 10 MB), not at start.
    from botocore.loaders import Loader
    from botocore.model import ServiceModel

    return ServiceModel(Loader().load_service_model("sagemaker", "service-2"), "sagemaker")


def operation_names() -> frozenset[str]:
    with _model_lock:
        return frozenset(_service_model().operation_names)


@functools.cache
def _pattern(pattern: str) -> Any:
    """The model's (Java) pattern compiled for a whole-value match; None when Python cannot express it."""
    try:
        return re.compile(pattern)
    except re.error:
        pass
    try:  # \p{L}, \p{Alnum} and friends: the `regex` package reads them when it is installed
        import regex

        return regex.compile(pattern)
    except Exception:
        return None


def check_request(operation: str, body: Any) -> dict[str, Any]:
    """``body`` checked against ``operation``'s input shape; the normalised copy the handler should use.

    Raises AwsError (SerializationException or ValidationException). Operations the model does not know
    pass through unchanged (the dispatcher answers UnknownOperationException for those first).
    """
    with _model_lock:  # botocore builds and caches shapes lazily
        model = _service_model()
        if operation not in model.operation_names:
            return body
        shape = model.operation_model(operation).input_shape
    if not isinstance(body, dict):
        raise AwsError(
            SERIALIZATION,
            f"The request body must be a JSON object (the {operation} input structure), not a JSON {_json_type(body)}.",
        )
    if shape is None:
        return {}
    checker = _Checker()
    checked = checker.structure(shape, body, "")
    if checker.errors:
        count = len(checker.errors)
        raise AwsError(
            "ValidationException",
            f"{count} validation error{'s' if count > 1 else ''} detected: " + "; ".join(checker.errors),
        )
    return checked


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _show(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "..."


def _member_path(parent: str, name: str) -> str:
    # AWS names members lowerCamelCase in its messages: 'productionVariants.1.member.initialInstanceCount'.
    member = name[:1].lower() + name[1:]
    return f"{parent}.{member}" if parent else member


_EXPECTED = {
    "structure": "a JSON object",
    "map": "a JSON object (a map)",
    "list": "a JSON array",
    "string": "a JSON string",
    "boolean": "true or false",
    "integer": "a whole number",
    "long": "a whole number",
    "float": "a number",
    "double": "a number",
    "timestamp": "a number of seconds since the epoch",
    "blob": "a base64-encoded JSON string",
}


class _Checker:
    def __init__(self) -> None:
        self.errors: list[str] = []

    # -- wrong JSON types: the whole request is refused at once ---------------------------------------
    @staticmethod
    def _wrong_type(shape: Any, value: Any, path: str, detail: str = "") -> AwsError:
        got = _json_type(value)
        shown = "" if shape.metadata.get("sensitive") else f" ({_show(value)})"
        return AwsError(
            SERIALIZATION,
            f"Cannot deserialize the value at '{path}': expected {_EXPECTED.get(shape.type_name, shape.type_name)} "
            f"for a {shape.type_name} member, got a JSON {got}{shown}{detail}.",
        )

    # -- constraint violations: collected, answered together as AWS does ---------------------------------
    def _violation(self, shape: Any, value: Any, path: str, constraint: str) -> None:
        if value is None:
            subject = "Value null"
        elif shape.metadata.get("sensitive"):
            subject = "Value"
        else:
            subject = f"Value '{_show(value)}'"
        self.errors.append(f"{subject} at '{path}' failed to satisfy constraint: {constraint}")

    def _length(self, shape: Any, value: Any, size: int, path: str) -> None:
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        if low is not None and size < low:
            self._violation(shape, value, path, f"Member must have length greater than or equal to {low}")
        if high is not None and size > high:
            self._violation(shape, value, path, f"Member must have length less than or equal to {high}")

    def _range(self, shape: Any, value: float, path: str) -> None:
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        if low is not None and value < low:
            self._violation(shape, value, path, f"Member must have value greater than or equal to {low}")
        if high is not None and value > high:
            self._violation(shape, value, path, f"Member must have value less than or equal to {high}")

    # -- the walk ---------------------------------------------------------------------------------------
    def value(self, shape: Any, value: Any, path: str) -> Any:
        kind = shape.type_name
        if kind == "structure":
            if not isinstance(value, dict):
                raise self._wrong_type(shape, value, path)
            return self.structure(shape, value, path)
        if kind == "list":
            if not isinstance(value, list):
                raise self._wrong_type(shape, value, path)
            self._length(shape, value, len(value), path)
            items = []
            for index, item in enumerate(value, 1):
                if item is None:
                    self._violation(shape.member, None, f"{path}.{index}.member", "Member must not be null")
                else:
                    items.append(self.value(shape.member, item, f"{path}.{index}.member"))
            return items
        if kind == "map":
            if not isinstance(value, dict):
                raise self._wrong_type(shape, value, path)
            self._length(shape, value, len(value), path)
            checked = {}
            for key, item in value.items():
                self.value(shape.key, key, f"{path}.{key}.key")
                if item is None:
                    self._violation(shape.value, None, f"{path}.{key}.value", "Member must not be null")
                    continue
                checked[key] = self.value(shape.value, item, f"{path}.{key}.value")
            return checked
        if kind in ("string", "blob"):
            if not isinstance(value, str):
                raise self._wrong_type(shape, value, path)
            self._string(shape, value, path)
            return value
        if kind == "boolean":
            if not isinstance(value, bool):
                raise self._wrong_type(shape, value, path)
            return value
        if kind in INTEGER_RANGES:
            return self._integer(shape, value, path)
        if kind in FLOAT_LIMITS:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise self._wrong_type(shape, value, path)
            number = float(value)
            if not math.isfinite(number) or abs(number) > FLOAT_LIMITS[kind]:
                raise self._wrong_type(shape, value, path, f", which is outside the range of a {kind}")
            self._range(shape, number, path)
            return number
        if kind == "timestamp":
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise self._wrong_type(shape, value, path)
            return value
        return value

    def structure(self, shape: Any, value: dict[str, Any], path: str) -> dict[str, Any]:
        checked: dict[str, Any] = {}
        for name in shape.required_members:
            if value.get(name) is None:
                self._violation(shape, None, _member_path(path, name), "Member must not be null")
        for name, item in value.items():
            member = shape.members.get(name)
            if member is None or item is None:
                continue
            checked[name] = self.value(member, item, _member_path(path, name))
        return checked

    def _string(self, shape: Any, value: str, path: str) -> None:
        before = len(self.errors)
        self._length(shape, value, len(value), path)
        enum = shape.metadata.get("enum")
        if enum and value not in enum:
            self._violation(shape, value, path, f"Member must satisfy enum value set: [{', '.join(enum)}]")
        pattern = shape.metadata.get("pattern")
        if pattern and len(self.errors) == before:
            compiled = _pattern(pattern)
            if compiled is not None and compiled.fullmatch(value) is None:
                self._violation(shape, value, path, f"Member must satisfy regular expression pattern: {pattern}")

    def _integer(self, shape: Any, value: Any, path: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._wrong_type(shape, value, path)
        if isinstance(value, float):
            if not value.is_integer():
                raise self._wrong_type(shape, value, path, ", which is not a whole number")
            value = int(value)
        low, high = INTEGER_RANGES[shape.type_name]
        if not low <= value <= high:
            raise self._wrong_type(shape, value, path, f", which is outside the range of an {shape.type_name}")
        self._range(shape, value, path)
        return value
