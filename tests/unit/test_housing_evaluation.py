"""Metrics, the label-first CSV reader and the promotion rule's edges."""

import math

import numpy as np
import pytest

from include.housing.evaluation import Decision, accuracy, mae, parse_label_first_csv, promotion_decision, rmse


def test_metrics_on_known_values():
    assert rmse([1, 2, 3], [1, 2, 3]) == 0.0
    assert rmse([0, 0], [3, 4]) == pytest.approx(math.sqrt(12.5))
    assert mae([0, 0], [3, -4]) == pytest.approx(3.5)
    assert accuracy([0, 1, 1, 0], [0.1, 0.7, 0.4, 0.0]) == pytest.approx(0.75)


def test_metrics_refuse_bad_input():
    with pytest.raises(ValueError, match="3 values"):
        rmse([1, 2, 3], [1, 2])
    with pytest.raises(ValueError):
        mae([], [])
    with pytest.raises(ValueError, match="finite"):
        rmse([1.0, float("nan")], [1.0, 2.0])


def test_parse_label_first_csv():
    X, y = parse_label_first_csv("300000,1990,2000,3,2.0,0.5,1\n250000,2001,1500,2,1.0,0.25,0\n")
    assert y.tolist() == [300000, 250000]
    assert X.shape == (2, 6) and X[1, 1] == 1500
    X, y = parse_label_first_csv("5,1\n")
    assert X.shape == (1, 1) and y.tolist() == [5]
    with pytest.raises(ValueError):
        parse_label_first_csv("PRICE,YEAR_BUILT\n1,2\n")
    with pytest.raises(ValueError):
        parse_label_first_csv("")
    with pytest.raises(ValueError):
        parse_label_first_csv("1\n2\n")
    assert isinstance(X, np.ndarray)


def test_promote_without_live_model():
    decision = promotion_decision(1234.5, None, 0.05)
    assert decision == Decision(True, decision.reason)
    assert "no live model" in decision.reason and "1,234.5" in decision.reason


def test_promotion_edges():
    assert promotion_decision(100.0, 100.0, 0.0).promote  # equal is fine
    assert not promotion_decision(100.01, 100.0, 0.0).promote
    assert promotion_decision(105.0, 100.0, 0.05).promote  # exactly at the limit
    assert not promotion_decision(105.01, 100.0, 0.05).promote
    assert promotion_decision(80.0, 100.0, 0.0).promote


def test_reason_has_the_figures():
    decision = promotion_decision(120.0, 100.0, 0.05)
    assert not decision.promote
    for figure in ("120.0000", "105.0000", "100.0000", "5.0%"):
        assert figure in decision.reason
    assert decision.to_dict() == {"promote": False, "reason": decision.reason}


@pytest.mark.parametrize(
    ("new", "live", "tolerance"),
    [(float("nan"), 1.0, 0.0), (-1.0, 1.0, 0.0), (1.0, -1.0, 0.0), (1.0, 1.0, -0.1), ("x", 1.0, 0.0)],
)
def test_promotion_refuses_bad_numbers(new, live, tolerance):
    with pytest.raises(ValueError):
        promotion_decision(new, live, tolerance)
