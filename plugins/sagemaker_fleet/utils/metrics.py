"""Model metrics on labelled rows, and the label-first CSV the built-in algorithms train on."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy stays out of import time; annotations only
    import numpy as np

__all__ = ["accuracy", "mae", "parse_label_first_csv", "rmse"]


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
