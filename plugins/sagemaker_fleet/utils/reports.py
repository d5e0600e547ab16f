"""Human-readable output: the A/B chart attached to a run and fixed-width tables for task logs."""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["render_ab_chart_png", "render_traffic_shift_png", "summary_table"]

_ERROR_KEYS = ("rmse", "mae")
_LATENCY_KEYS = ("latency_p50_ms", "latency_p95_ms")


def render_ab_chart_png(decision: Mapping[str, Any]) -> bytes:
    """PNG bar chart of each variant's error (RMSE, MAE) and latency (p50, p95) from compare_variants."""
    # The Agg canvas bound to one Figure, not pyplot: no display needed on workers, no global
    # backend switch, no figure left open in a long-lived worker process.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    per_variant = decision.get("per_variant")
    if not isinstance(per_variant, Mapping) or not per_variant:
        raise ValueError("decision has no per_variant results to chart")
    variants = list(per_variant)
    figure = Figure(figsize=(9, 4), dpi=100)
    FigureCanvasAgg(figure)
    error_axes, latency_axes = figure.subplots(1, 2)
    width = 0.8 / len(variants)

    for axes, keys, title, unit in (
        (error_axes, _ERROR_KEYS, "Prediction error", "error (label units)"),
        (latency_axes, _LATENCY_KEYS, "Invocation latency", "milliseconds"),
    ):
        labels = [key.replace("latency_", "").replace("_ms", "").upper() for key in keys]
        plotted = False
        for index, variant in enumerate(variants):
            values = [per_variant[variant].get(key) for key in keys]
            heights = [v if isinstance(v, int | float) and math.isfinite(v) else 0.0 for v in values]
            if any(isinstance(v, int | float) for v in values):
                plotted = True
            positions = [k + (index - (len(variants) - 1) / 2) * width for k in range(len(keys))]
            name = f"{variant} (winner)" if variant == decision.get("winner") else variant
            axes.bar(positions, heights, width=width, label=name)
        axes.set_xticks(range(len(keys)), labels)
        axes.set_title(title)
        axes.set_ylabel(unit)
        if plotted:
            axes.legend(fontsize="small")
        else:
            axes.text(0.5, 0.5, "not measured", ha="center", va="center", transform=axes.transAxes)

    p_value = decision.get("p_value")
    subtitle = f"metric {decision.get('metric', '?')}, winner {decision.get('winner', '?')}"
    if isinstance(p_value, int | float):
        subtitle += f", p={p_value:.3g}, n={decision.get('sample_size', '?')}"
    figure.suptitle(f"A/B comparison: {subtitle}")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def render_traffic_shift_png(
    steps: Sequence[Mapping[str, Any]], *, initial_weights: Mapping[str, float] | None = None, winner: str | None = None
) -> bytes:
    """PNG of a traffic shift (the traffic operator's applied steps): each variant's share of the endpoint's
    traffic per step (stacked, from the A/B weights to all on the winner) and the invocations CloudWatch
    counted per variant in each step's window, errors marked."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not steps:
        raise ValueError("no traffic-shift steps to chart")
    phases: list[tuple[str, Mapping[str, float], Mapping[str, Any]]] = []
    if initial_weights:
        phases.append(("A/B", initial_weights, {}))
    for step in steps:
        weights = step.get("effective_weights") or step.get("weights") or {}
        phases.append((f"step {step.get('step', len(phases))}", weights, step.get("metrics") or {}))
    variants = sorted({v for _, weights, _ in phases for v in weights}, key=lambda v: (v == winner, v))
    figure = Figure(figsize=(9, 4), dpi=100)
    FigureCanvasAgg(figure)
    share_axes, count_axes = figure.subplots(1, 2)
    labels = [label for label, _, _ in phases]
    bottoms = [0.0] * len(phases)
    for variant in variants:
        shares = []
        for _, weights, _ in phases:
            total = sum(float(w) for w in weights.values()) or 1.0
            shares.append(float(weights.get(variant, 0.0)) / total)
        name = f"{variant} (winner)" if variant == winner else variant
        share_axes.bar(labels, shares, bottom=bottoms, label=name)
        bottoms = [b + v for b, v in zip(bottoms, shares, strict=True)]
    share_axes.set_ylim(0, 1)
    share_axes.set_ylabel("share of traffic")
    share_axes.set_title("Traffic per step")
    share_axes.legend(fontsize="small")

    measured = [(label, metrics) for label, _, metrics in phases if metrics]
    width = 0.8 / max(len(variants), 1)
    for index, variant in enumerate(variants):
        positions = [k + (index - (len(variants) - 1) / 2) * width for k in range(len(measured))]
        counts = [float((metrics.get(variant) or {}).get("invocations") or 0) for _, metrics in measured]
        errors = [
            float((metrics.get(variant) or {}).get("errors_4xx") or 0)
            + float((metrics.get(variant) or {}).get("errors_5xx") or 0)
            for _, metrics in measured
        ]
        count_axes.bar(positions, counts, width=width, label=variant)
        if any(errors):
            count_axes.bar(positions, errors, width=width, color="red", label=f"{variant} errors")
    count_axes.set_xticks(range(len(measured)), [label for label, _ in measured])
    count_axes.set_ylabel("invocations (CloudWatch)")
    count_axes.set_title("Invocations per step")
    if measured:
        count_axes.legend(fontsize="small")
    else:
        count_axes.text(0.5, 0.5, "no metrics", ha="center", va="center", transform=count_axes.transAxes)
    figure.suptitle(f"Traffic shift to {winner or 'the winner'}: {len(steps)} step(s)")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.4f}" if abs(value) < 1e9 else f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def summary_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """Fixed-width text table of ``rows`` (dicts) in ``columns`` order; numbers right-aligned.

    Missing keys and None show as ``-``, so partial results (a failed location) still line up.
    """
    if not columns:
        raise ValueError("columns must name at least one column")
    cells = [[_cell(row.get(column)) for column in columns] for row in rows]
    numeric = [
        all(isinstance(row.get(column), int | float) or row.get(column) is None for row in rows) and bool(rows)
        for column in columns
    ]
    widths = [max([len(column), *(len(line[i]) for line in cells)]) for i, column in enumerate(columns)]

    def line(values: Sequence[str]) -> str:
        padded = [value.rjust(widths[i]) if numeric[i] else value.ljust(widths[i]) for i, value in enumerate(values)]
        return "  ".join(padded).rstrip()

    output = [line(list(columns)), "  ".join("-" * w for w in widths)]
    output.extend(line(values) for values in cells)
    return "\n".join(output)
