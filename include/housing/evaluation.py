"""Model metrics and the rule that decides whether a new model replaces the live one."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # numpy stays out of import time; annotations only
    pass

from sagemaker_fleet.utils.metrics import accuracy, mae, parse_label_first_csv, rmse

__all__ = ["Decision", "accuracy", "mae", "parse_label_first_csv", "promotion_decision", "rmse"]


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
