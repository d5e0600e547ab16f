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


def test_traffic_shift_chart_draws_the_steps_not_the_ab_comparison():
    import io

    import pytest
    from matplotlib.image import imread

    from sagemaker_fleet.utils.reports import render_traffic_shift_png

    def metrics(a: int, b: int) -> dict:
        return {
            "champion": {"invocations": a, "errors_4xx": 0, "errors_5xx": 0, "error_rate": 0.0},
            "challenger": {"invocations": b, "errors_4xx": 0, "errors_5xx": 1, "error_rate": 1 / max(b, 1)},
        }

    steps = [
        {"step": 1, "effective_weights": {"champion": 0.5, "challenger": 0.5}, "metrics": metrics(20, 20)},
        {"step": 2, "effective_weights": {"champion": 0.0, "challenger": 1.0}, "metrics": metrics(0, 40)},
    ]
    png = render_traffic_shift_png(steps, initial_weights={"champion": 1, "challenger": 1}, winner="challenger")
    assert png.startswith(PNG_SIGNATURE) and len(png) > 5000
    assert imread(io.BytesIO(png)).shape[:2] == (400, 900)
    # Other steps draw another picture: the chart follows the data.
    steps[1]["effective_weights"] = {"champion": 0.2, "challenger": 0.8}
    assert render_traffic_shift_png(steps, winner="challenger") != png
    with pytest.raises(ValueError, match="no traffic-shift steps"):
        render_traffic_shift_png([])
