"""A/B statistics: the paired test, the decision, weights, traffic shares and shift schedules."""

import json

import numpy as np
import pytest

from sagemaker_fleet.utils.ab_statistics import compare_variants, shift_schedule, traffic_share_check, validate_weights


def _data(rows=300, noise_a=30_000.0, noise_b=20_000.0, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.normal(500_000, 120_000, rows)
    return y, y + rng.normal(0, noise_a, rows), y + rng.normal(0, noise_b, rows)


def test_challenger_that_is_truly_better_wins():
    y, a, b = _data()
    result = compare_variants(y, a, b, latency_a_ms=[10, 12, 15], latency_b_ms=[11, 13, 40])
    assert result["winner"] == "challenger" and result["loser"] == "champion"
    assert result["significant"] and result["p_value"] < 0.05
    assert result["effect"] > 0.2
    assert result["sample_size"] == 300
    assert result["per_variant"]["challenger"]["rmse"] < result["per_variant"]["champion"]["rmse"]
    assert result["per_variant"]["challenger"]["latency_p95_ms"] > 30
    assert "paired t-test" in result["test"]
    assert json.loads(json.dumps(result, allow_nan=False)) == result


def test_worse_challenger_loses_even_when_significant():
    y, a, b = _data(noise_a=20_000, noise_b=30_000)
    result = compare_variants(y, a, b)
    assert result["winner"] == "champion" and result["significant"]
    assert result["effect"] < 0


def test_identical_predictions_never_declare_a_winner():
    y, a, _ = _data()
    result = compare_variants(y, a, a.copy())
    assert result["winner"] == "champion"
    assert not result["significant"] and result["p_value"] == 1.0 and result["effect"] == 0.0


def test_tiny_noisy_difference_is_not_significant():
    rng = np.random.default_rng(3)
    y = rng.normal(500_000, 100_000, 40)
    a = y + rng.normal(0, 30_000, 40)
    b = a + rng.normal(0, 10, 40)  # practically the same model
    result = compare_variants(y, a, b)
    assert result["winner"] == "champion" and not result["significant"]


def test_min_improvement_is_required_on_top_of_significance():
    y, a, b = _data(noise_a=30_000, noise_b=27_000, rows=3000, seed=1)
    loose = compare_variants(y, a, b, min_improvement=0.0)
    strict = compare_variants(y, a, b, min_improvement=0.5)
    assert loose["winner"] == "challenger"
    assert strict["winner"] == "champion" and strict["significant"]
    assert "less than the required" in strict["reason"]


def test_mae_and_accuracy_metrics():
    y, a, b = _data()
    assert compare_variants(y, a, b, metric="mae")["winner"] == "challenger"
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 2, 400).astype(float)
    good = np.where(rng.random(400) < 0.9, labels, 1 - labels)
    poor = np.where(rng.random(400) < 0.6, labels, 1 - labels)
    result = compare_variants(labels, poor, good, metric="accuracy", names=("blue", "green"))
    assert result["winner"] == "green"
    assert result["per_variant"]["green"]["accuracy"] > result["per_variant"]["blue"]["accuracy"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"metric": "f1"}, "metric"),
        ({"confidence": 1.0}, "confidence"),
        ({"confidence": 0}, "confidence"),
        ({"min_improvement": -0.1}, "min_improvement"),
        ({"names": ("a", "a")}, "names"),
        ({"latency_a_ms": []}, "latency_a_ms"),
    ],
)
def test_invalid_options(kwargs, message):
    y, a, b = _data(rows=20)
    with pytest.raises(ValueError, match=message):
        compare_variants(y, a, b, **kwargs)


def test_invalid_data():
    y, a, b = _data(rows=20)
    with pytest.raises(ValueError, match="equal lengths"):
        compare_variants(y, a, b[:-1])
    with pytest.raises(ValueError, match="At least 10"):
        compare_variants(y[:9], a[:9], b[:9])
    with pytest.raises(ValueError, match="NaN"):
        compare_variants(y, np.append(a[:-1], np.nan), b)


def test_validate_weights():
    assert validate_weights({"champion": "1", "challenger": 0}) == {"champion": 1.0, "challenger": 0.0}
    with pytest.raises(ValueError) as error:
        validate_weights({"champion": -1, "challenger": "x", "bad_name": 1}, known_variants=("champion", "challenger"))
    message = str(error.value)
    assert "'champion' is negative" in message
    assert "'challenger' is not a number" in message
    assert "'bad_name' is not a valid SageMaker name" in message
    with pytest.raises(ValueError, match="unknown variant 'blue'"):
        validate_weights({"blue": 1}, known_variants=["champion"])
    with pytest.raises(ValueError, match="all weights are zero"):
        validate_weights({"champion": 0, "challenger": 0.0})
    with pytest.raises(ValueError, match="not finite"):
        validate_weights({"champion": float("inf")})
    with pytest.raises(ValueError, match="non-empty"):
        validate_weights({})


def test_traffic_share_check():
    weights = {"champion": 3, "challenger": 1}
    ok = traffic_share_check({"champion": 740, "challenger": 260}, weights, 0.05)
    assert ok["ok"] and ok["per_variant"]["champion"]["expected_share"] == pytest.approx(0.75)
    off = traffic_share_check({"champion": 500, "challenger": 500}, weights, 0.05)
    assert not off["ok"] and "off" in off["reason"]
    assert not traffic_share_check({}, weights, 0.05)["ok"]
    assert traffic_share_check({"champion": 10}, {"champion": 1, "challenger": 0}, 0.0)["ok"]
    with pytest.raises(ValueError, match="unknown variant"):
        traffic_share_check({"blue": 3}, weights, 0.05)


def test_shift_schedule():
    schedule = shift_schedule([0.1, 0.5, 1.0])
    assert [s["weights"] for s in schedule] == [
        {"champion": 0.9, "challenger": 0.1},
        {"champion": 0.5, "challenger": 0.5},
        {"champion": 0.0, "challenger": 1.0},
    ]
    assert [s["step"] for s in schedule] == [1, 2, 3]
    with pytest.raises(ValueError) as error:
        shift_schedule([0.5, 0.5, 1.2, 0])
    assert "step 2" in str(error.value) and "step 3" in str(error.value) and "step 4" in str(error.value)
    for bad in ([], "0.1", [None]):
        with pytest.raises(ValueError):
            shift_schedule(bad)
