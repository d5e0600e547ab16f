"""A/B statistics for two production variants measured on the same labelled rows.

The significance test is a two-sided **paired t-test** (``scipy.stats.ttest_rel``) on the per-row
losses of the two variants: squared error for ``rmse`` (a lower mean squared error is exactly a
lower RMSE), absolute error for ``mae`` and the 0/1 miss for ``accuracy``. Pairing removes the
row-to-row spread of house prices, which dwarfs the difference between two good models.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sagemaker_fleet.utils.naming import is_valid_sagemaker_name

__all__ = [
    "METRICS",
    "MIN_ROWS",
    "TEST_NAME",
    "compare_variants",
    "shift_schedule",
    "traffic_share_check",
    "validate_weights",
]

METRICS = ("rmse", "mae", "accuracy")
MIN_ROWS = 10
TEST_NAME = "paired t-test (two-sided) on per-row losses"


def _is_number(value: Any) -> bool:
    """A real number but not a bool (numpy scalars included)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


_LOSS_NAMES = {"rmse": "squared error", "mae": "absolute error", "accuracy": "0/1 miss"}


def _numbers(name: str, values: Any):
    import numpy as np

    try:
        array = np.asarray(values, dtype=float).ravel()
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a sequence of numbers") from None
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return array


def _latency(name: str, values: Sequence[float] | None) -> dict[str, float | None]:
    import numpy as np

    if values is None:
        return {"latency_p50_ms": None, "latency_p95_ms": None}
    array = _numbers(name, values)
    if array.size == 0:
        raise ValueError(f"{name} is empty; pass None when latency was not measured")
    if (array < 0).any():
        raise ValueError(f"{name} contains negative latencies")
    return {
        "latency_p50_ms": float(np.percentile(array, 50)),
        "latency_p95_ms": float(np.percentile(array, 95)),
    }


def compare_variants(
    y_true: Sequence[float],
    pred_a: Sequence[float],
    pred_b: Sequence[float],
    *,
    latency_a_ms: Sequence[float] | None = None,
    latency_b_ms: Sequence[float] | None = None,
    metric: str = "rmse",
    min_improvement: float = 0.0,
    confidence: float = 0.95,
    names: tuple[str, str] = ("champion", "challenger"),
) -> dict[str, Any]:
    """Compare champion (``pred_a``) and challenger (``pred_b``) on the same rows; JSON-safe result.

    The challenger wins only if its metric is better by at least ``min_improvement`` (relative to the
    champion's) AND the paired test is significant at ``confidence``; otherwise the champion stays.
    """
    import numpy as np
    from scipy import stats

    from sagemaker_fleet.utils.metrics import accuracy, mae, rmse

    if metric not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
    if not _is_number(confidence) or not 0 < confidence < 1:
        raise ValueError(f"confidence must be a number strictly between 0 and 1, got {confidence!r}")
    if not _is_number(min_improvement) or not math.isfinite(min_improvement) or min_improvement < 0:
        raise ValueError(f"min_improvement must be a finite number >= 0, got {min_improvement!r}")
    if len(names) != 2 or not all(isinstance(n, str) and n for n in names) or names[0] == names[1]:
        raise ValueError(f"names must be two different non-empty strings, got {names!r}")
    truth, a, b = _numbers("y_true", y_true), _numbers("pred_a", pred_a), _numbers("pred_b", pred_b)
    if not truth.size == a.size == b.size:
        raise ValueError(f"y_true, pred_a and pred_b must have equal lengths, got {truth.size}, {a.size} and {b.size}")
    if truth.size < MIN_ROWS:
        raise ValueError(f"At least {MIN_ROWS} labelled rows are needed for a comparison, got {truth.size}")

    champion, challenger = names
    per_variant: dict[str, dict[str, Any]] = {}
    for name, pred, latency, latency_name in (
        (champion, a, latency_a_ms, "latency_a_ms"),
        (challenger, b, latency_b_ms, "latency_b_ms"),
    ):
        scores: dict[str, Any] = {"rmse": rmse(truth, pred), "mae": mae(truth, pred)}
        if metric == "accuracy":
            scores["accuracy"] = accuracy(truth, pred)
        scores["mean_prediction"] = float(pred.mean())
        scores.update(_latency(latency_name, latency))
        per_variant[name] = scores

    if metric == "rmse":
        loss_a, loss_b = (a - truth) ** 2, (b - truth) ** 2
    elif metric == "mae":
        loss_a, loss_b = np.abs(a - truth), np.abs(b - truth)
    else:
        loss_a = (np.rint(a) != np.rint(truth)).astype(float)
        loss_b = (np.rint(b) != np.rint(truth)).astype(float)
    differences = loss_a - loss_b  # > 0 where the challenger did better
    if np.allclose(differences, differences[0], rtol=0, atol=1e-12 * max(1.0, float(np.abs(loss_a).max()))):
        # Constant differences (e.g. identical predictions) have no variance: the t statistic is
        # undefined, and "no evidence of a difference" is the honest answer when they are all 0.
        p_value = 1.0 if abs(float(differences[0])) <= 1e-12 else 0.0
    else:
        p_value = float(stats.ttest_rel(loss_a, loss_b).pvalue)

    value_a, value_b = per_variant[champion][metric], per_variant[challenger][metric]
    higher_is_better = metric == "accuracy"
    gain = (value_b - value_a) if higher_is_better else (value_a - value_b)
    effect = gain / abs(value_a) if value_a else (0.0 if gain == 0 else math.copysign(1.0, gain))
    alpha = 1 - confidence
    challenger_better = gain > 0
    significant = p_value < alpha  # two-sided: a significantly worse challenger is significant too
    wins = significant and challenger_better and effect >= min_improvement
    winner, loser = (challenger, champion) if wins else (champion, challenger)

    shown = f"{metric.upper()} {value_a:,.4f} ({champion}) vs {value_b:,.4f} ({challenger})"
    if wins:
        reason = (
            f"{challenger} wins: {shown}, {effect:+.2%} relative improvement (needed {min_improvement:.2%}), "
            f"p={p_value:.3g} < {alpha:.3g} on {truth.size} paired rows."
        )
    elif not challenger_better:
        reason = f"{champion} stays: {challenger} is not better ({shown}) on {truth.size} paired rows."
    elif not significant:
        reason = (
            f"{champion} stays: the difference is not significant ({shown}, p={p_value:.3g} >= {alpha:.3g} "
            f"at {confidence:.1%} confidence, {truth.size} paired rows)."
        )
    else:
        reason = (
            f"{champion} stays: {challenger} improves {metric.upper()} by only {effect:.2%}, less than the "
            f"required {min_improvement:.2%} ({shown}, p={p_value:.3g})."
        )
    return {
        "winner": winner,
        "loser": loser,
        "metric": metric,
        "effect": float(effect),
        "p_value": p_value,
        "confidence": float(confidence),
        "significant": bool(significant),
        "sample_size": int(truth.size),
        "min_improvement": float(min_improvement),
        "test": f"{TEST_NAME} ({_LOSS_NAMES[metric]})",
        "per_variant": per_variant,
        "reason": reason,
    }


def validate_weights(weights: Mapping[str, float], known_variants: Iterable[str] | None = None) -> dict[str, float]:
    """Production-variant weights as floats; all problems reported in one ValueError.

    Weights are relative (SageMaker routes by weight / sum), so they must be finite, >= 0 and not
    all zero; variant names must be valid SageMaker names and, if given, among ``known_variants``.
    """
    if not isinstance(weights, Mapping) or not weights:
        raise ValueError(f"weights must be a non-empty mapping of variant name to weight, got {weights!r}")
    known = list(known_variants) if known_variants is not None else None
    problems: list[str] = []
    cleaned: dict[str, float] = {}
    for variant, raw in weights.items():
        if not is_valid_sagemaker_name(variant):
            problems.append(f"variant name {variant!r} is not a valid SageMaker name")
        elif known is not None and variant not in known:
            problems.append(f"unknown variant {variant!r} (known: {', '.join(known)})")
        try:
            if isinstance(raw, bool):
                raise TypeError
            value = float(raw)
        except (TypeError, ValueError):
            problems.append(f"weight of {variant!r} is not a number: {raw!r}")
            continue
        if not math.isfinite(value):
            problems.append(f"weight of {variant!r} is not finite: {raw!r}")
        elif value < 0:
            problems.append(f"weight of {variant!r} is negative: {raw!r}")
        else:
            cleaned[variant] = value
    if not problems and not any(cleaned.values()):
        problems.append("all weights are zero; at least one variant must receive traffic")
    if problems:
        raise ValueError("Invalid variant weights: " + "; ".join(problems))
    return cleaned


def traffic_share_check(
    invocations: Mapping[str, float], weights: Mapping[str, float], tolerance: float
) -> dict[str, Any]:
    """Compare each variant's observed share of invocations with its expected weight share.

    ``ok`` is True when every variant is within ``tolerance`` (absolute share, e.g. 0.05) of its
    expected share. A variant missing from ``invocations`` counts as 0 invocations.
    """
    checked = validate_weights(weights)
    if not _is_number(tolerance) or not 0 <= tolerance <= 1:
        raise ValueError(f"tolerance must be a number within [0, 1], got {tolerance!r}")
    unknown = [name for name in invocations if name not in checked]
    if unknown:
        raise ValueError(f"Invocations reported for unknown variant(s): {', '.join(map(repr, unknown))}")
    counts: dict[str, float] = {}
    for name in checked:
        value = invocations.get(name, 0)
        if not _is_number(value) or not math.isfinite(value) or value < 0:
            raise ValueError(f"invocations of {name!r} must be a finite number >= 0, got {value!r}")
        counts[name] = float(value)
    total_weight = sum(checked.values())
    total = sum(counts.values())
    per_variant: dict[str, dict[str, float]] = {}
    for name, weight in checked.items():
        expected = weight / total_weight
        observed = counts[name] / total if total else 0.0
        per_variant[name] = {
            "invocations": counts[name],
            "expected_share": expected,
            "observed_share": observed,
            "deviation": observed - expected,
        }
    ok = total > 0 and all(abs(v["deviation"]) <= tolerance for v in per_variant.values())
    if total == 0:
        reason = "No invocations observed; the traffic split cannot be checked."
    else:
        worst = max(per_variant, key=lambda n: abs(per_variant[n]["deviation"]))
        w = per_variant[worst]
        reason = (
            f"{'Traffic split as configured' if ok else 'Traffic split off'}: largest deviation is {worst!r} "
            f"with {w['observed_share']:.1%} observed vs {w['expected_share']:.1%} expected "
            f"(tolerance {tolerance:.1%}, {int(total)} invocations)."
        )
    return {
        "ok": bool(ok),
        "tolerance": float(tolerance),
        "total_invocations": total,
        "per_variant": per_variant,
        "reason": reason,
    }


def shift_schedule(steps: Sequence[float], names: tuple[str, str] = ("champion", "challenger")) -> list[dict[str, Any]]:
    """Weights per traffic-shift step: ``[0.1, 0.5, 1.0]`` -> challenger gets 10%, 50%, then 100%.

    Steps are the challenger's share; they must be strictly increasing within (0, 1].
    """
    if isinstance(steps, str | bytes) or not isinstance(steps, Sequence) or not steps:
        raise ValueError(f"shift steps must be a non-empty list of shares, got {steps!r}")
    champion, challenger = names
    problems: list[str] = []
    shares: list[float] = []
    for position, raw in enumerate(steps, start=1):
        try:
            if isinstance(raw, bool):
                raise TypeError
            share = float(raw)
        except (TypeError, ValueError):
            problems.append(f"step {position} is not a number: {raw!r}")
            continue
        if not math.isfinite(share) or not 0 < share <= 1:
            problems.append(f"step {position} ({raw!r}) is outside (0, 1]")
        elif shares and share <= shares[-1]:
            problems.append(f"step {position} ({raw!r}) does not increase on the step before ({shares[-1]!r})")
        shares.append(share)
    if problems:
        raise ValueError("Invalid shift steps: " + "; ".join(problems))
    return [
        {
            "step": position,
            "challenger_share": share,
            # Rounded so 1 - 0.7 reads 0.3 in logs and in the UpdateEndpointWeightsAndCapacities call.
            "weights": {champion: round(1 - share, 6), challenger: round(share, 6)},
        }
        for position, share in enumerate(shares, start=1)
    ]
