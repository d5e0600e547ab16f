"""The A/B chart is a real PNG; log tables line up."""

import numpy as np

from sagemaker_fleet.utils.ab_statistics import compare_variants
from sagemaker_fleet.utils.reports import render_ab_chart_png, summary_table

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_chart_is_png_with_and_without_latency():
    rng = np.random.default_rng(0)
    y = rng.normal(500_000, 100_000, 50)
    decision = compare_variants(y, y + rng.normal(0, 20_000, 50), y + rng.normal(0, 10_000, 50))
    png = render_ab_chart_png(decision)
    assert png.startswith(PNG_SIGNATURE) and len(png) > 5000
    decision_with_latency = compare_variants(y, y + 1, y + 2, latency_a_ms=[5, 9], latency_b_ms=[6, 7])
    assert render_ab_chart_png(decision_with_latency).startswith(PNG_SIGNATURE)


def test_chart_refuses_decision_without_results():
    try:
        render_ab_chart_png({"winner": "champion"})
    except ValueError as error:
        assert "per_variant" in str(error)
    else:
        raise AssertionError("expected ValueError")


def test_summary_table_is_fixed_width():
    rows = [
        {"location": "Chicago_IL", "rmse": 12345.678, "rows": 1000, "promoted": True},
        {"location": "SanFrancisco_CA", "rmse": None, "rows": 10, "promoted": False},
        {"location": "Houston_TX"},
    ]
    table = summary_table(rows, ["location", "rmse", "rows", "promoted"])
    lines = table.splitlines()
    assert len(lines) == 5
    assert lines[0].split() == ["location", "rmse", "rows", "promoted"]
    assert set(lines[1].replace(" ", "")) == {"-"}
    assert "12,345.6780" in lines[2] and "1,000" in lines[2] and "yes" in lines[2]
    widths = {len(line) for line in lines[1:3]}
    assert len(widths) == 1  # the numbers are right-aligned to the same edge
    assert lines[4].startswith("Houston_TX") and lines[4].rstrip().endswith("-")
