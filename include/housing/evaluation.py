"""Model metrics and the rule that decides whether a new model replaces the live one."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # numpy stays out of import time; annotations only
    import numpy as np

__all__ = ["Decision", "accuracy", "mae", "parse_label_first_csv", "promotion_decision", "rmse"]


def _pair(y_true: Sequence[float] | np.ndarray, y_pred: Sequence[float] | np.ndarray):
    import numpy as np

    true = np.asarray(y_true, dtype=float).ravel()
    pred = np.asarray(y_pred, dtype=float).ravel()
    if true.shape != pred.shape:
        raise ValueError(f"y_true has {true.size} values but y_pred has {pred.size}")
    if true.size == 0:
        raise ValueError("Cannot score zero rows")
    if not (np.isfinite(true).all() and np.isfinite(pred).all()):
        raise ValueError("y_true and y_pred must be finite numbers (found NaN or infinity)")
    return true, pred


def rmse(y_true: Sequence[float] | np.ndarray, y_pred: Sequence[float] | np.ndarray) -> float:
    """Root mean squared error."""
    import numpy as np

    true, pred = _pair(y_true, y_pred)
    return float(np.sqrt(np.mean((true - pred) ** 2)))


def mae(y_true: Sequence[float] | np.ndarray, y_pred: Sequence[float] | np.ndarray) -> float:
    """Mean absolute error."""
    import numpy as np

    true, pred = _pair(y_true, y_pred)
    return float(np.mean(np.abs(true - pred)))


def accuracy(y_true: Sequence[float] | np.ndarray, y_pred: Sequence[float] | np.ndarray) -> float:
    """Share of rows whose prediction, rounded to the nearest class, equals the label.

    Rounding makes it work both for class predictions and for binary probabilities (threshold 0.5).
    """
    import numpy as np

    true, pred = _pair(y_true, y_pred)
    return float(np.mean(np.rint(pred) == np.rint(true)))


def parse_label_first_csv(text: str) -> tuple[np.ndarray, np.ndarray]:
    """Split headerless label-first CSV (the training-channel format) into features X and labels y."""
    import numpy as np

    if not text or not text.strip():
        raise ValueError("The CSV text is empty")
    try:
        data = np.loadtxt(io.StringIO(text), delimiter=",", dtype=float, ndmin=2)
    except ValueError as error:
        raise ValueError(f"Not numeric label-first CSV without a header: {error}") from None
    if data.shape[1] < 2:
        raise ValueError(f"Expected a label and at least one feature per row, got {data.shape[1]} column(s)")
    return data[:, 1:], data[:, 0]


@dataclass(frozen=True)
class Decision:
    """Whether to promote a model, and why, in words a person reads in the task log."""

    promote: bool
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check_rmse(name: str, value: float) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"{name} must be a finite, non-negative number, got {value!r}")
    return number


def promotion_decision(new_rmse: float, live_rmse: float | None, tolerance: float) -> Decision:
    """Promote when there is no live model or ``new_rmse <= live_rmse * (1 + tolerance)``.

    The tolerance lets a model that is marginally worse on one night's test rows still replace one
    trained on older data; 0 demands no regression at all.
    """
    new = _check_rmse("new_rmse", new_rmse)
    tol = _check_rmse("tolerance", tolerance)
    if live_rmse is None:
        return Decision(True, f"Promote: no live model to compare with; new RMSE is {new:,.4f}.")
    live = _check_rmse("live_rmse", live_rmse)
    limit = live * (1 + tol)
    if new <= limit:
        return Decision(
            True,
            f"Promote: new RMSE {new:,.4f} is within the limit {limit:,.4f} "
            f"(live RMSE {live:,.4f} plus {tol:.1%} tolerance).",
        )
    return Decision(
        False,
        f"Keep the live model: new RMSE {new:,.4f} exceeds the limit {limit:,.4f} "
        f"(live RMSE {live:,.4f} plus {tol:.1%} tolerance).",
    )
