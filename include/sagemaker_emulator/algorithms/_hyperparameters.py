"""A small declarative validator for string hyperparameters, worded like the containers' toolkit.

SageMaker delivers every hyperparameter as a string; the built-in containers parse, range-check and
cross-check them before touching data, and fail with ``ClientError`` messages such as
``Missing required hyperparameter: num_round`` / ``Extraneous hyperparameter found: foo`` /
``Hyperparameter eta: value 2.0 not in range [0, 1]``.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ._errors import AlgorithmClientError


@dataclass(frozen=True)
class Interval:
    lo: float | None = None
    lo_closed: bool = True
    hi: float | None = None
    hi_closed: bool = True

    def __contains__(self, value: float) -> bool:
        if isinstance(value, float) and math.isnan(value):
            return False
        if self.lo is not None and (value < self.lo or (value == self.lo and not self.lo_closed)):
            return False
        return not (self.hi is not None and (value > self.hi or (value == self.hi and not self.hi_closed)))

    def __str__(self) -> str:
        left = "(-inf" if self.lo is None else ("[" if self.lo_closed else "(") + _num(self.lo)
        right = "+inf)" if self.hi is None else _num(self.hi) + ("]" if self.hi_closed else ")")
        return f"{left}, {right}"


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def closed(lo: float | None = None, hi: float | None = None) -> Interval:
    return Interval(lo, True, hi, True)


@dataclass
class Param:
    name: str
    kind: str  # int | float | cat | list | tuple | nested | str
    range: Any = None  # Interval, list of choices, or a predicate for list items
    required: bool = False
    check: Callable[[Any], None] | None = None  # extra per-value validation (raises ClientError)

    def parse(self, raw: str) -> Any:
        text = raw.strip() if isinstance(raw, str) else raw
        try:
            if self.kind == "int":
                return int(text)
            if self.kind == "float":
                return float(text)
            if self.kind == "list":
                return [item.strip() for item in str(text).split(",")]
            if self.kind in ("tuple", "nested"):
                value = ast.literal_eval(text) if isinstance(text, str) else text
                if self.kind == "tuple" and isinstance(value, int | float):
                    value = (value,)
                if not isinstance(value, list | tuple):
                    raise ValueError(text)
                return value
        except (ValueError, SyntaxError, TypeError) as e:
            raise AlgorithmClientError(
                f"Hyperparameter {self.name}: could not parse value (caused by {type(e).__name__})"
            ) from None
        return text

    def validate(self, value: Any) -> None:
        if self.kind in ("int", "float") and self.range is not None and value not in self.range:
            raise AlgorithmClientError(f"Hyperparameter {self.name}: value {value} not in range {self.range}")
        if self.kind == "cat" and self.range is not None and value not in self.range:
            raise AlgorithmClientError(f"Hyperparameter {self.name}: {value} is not in {list(self.range)}")
        if self.kind == "list" and self.range is not None:
            ok = self.range if callable(self.range) else (lambda v: v in self.range)
            if not all(ok(v) for v in value):
                raise AlgorithmClientError(f"Hyperparameter {self.name}: value {value} not in range {self.range}")
        if self.kind == "tuple" and self.range is not None and any(v not in self.range for v in value):
            raise AlgorithmClientError(f"Hyperparameter {self.name}: value {value} not in range {self.range}")
        if self.kind == "nested" and self.range is not None:
            flat = [v for inner in value for v in (inner if isinstance(inner, list | tuple) else [inner])]
            if any(not isinstance(v, int) or v not in self.range for v in flat):
                raise AlgorithmClientError(f"Hyperparameter {self.name}: value {value} not in range {self.range}")
        if self.check is not None:
            self.check(value)


@dataclass
class Spec:
    params: list[Param]
    aliases: dict[str, str] = field(default_factory=dict)  # alias -> canonical name

    def __post_init__(self) -> None:
        self.by_name = {p.name: p for p in self.params}

    def names(self) -> Iterable[str]:
        return self.by_name.keys()

    def validate(self, raw: dict[str, Any]) -> dict[str, Any]:
        """Parse and check; returns canonical names -> typed values (only keys the user gave)."""
        given = {self.aliases.get(k, k): v for k, v in raw.items()}
        for p in self.params:
            if p.required and p.name not in given:
                raise AlgorithmClientError(f"Missing required hyperparameter: {p.name}")
        parsed: dict[str, Any] = {}
        for key, value in given.items():
            param = self.by_name.get(key)
            if param is None:
                raise AlgorithmClientError(f"Extraneous hyperparameter found: {key}")
            parsed[key] = param.parse(value)
        for key, value in parsed.items():
            self.by_name[key].validate(value)
        return parsed
