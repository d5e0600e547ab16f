"""Params validation: casting, defaults, and every problem reported at once."""

import pytest

from include.housing.locations import SEED_LOCATIONS
from include.housing.params import (
    AB_DEFAULTS,
    NIGHTLY_DEFAULTS,
    InvalidParamsError,
    hyperparameters_for_sagemaker,
    validate_ab_params,
    validate_nightly_params,
)


def test_nightly_defaults_are_as_specified_and_valid():
    assert NIGHTLY_DEFAULTS["locations"] == list(SEED_LOCATIONS)
    assert NIGHTLY_DEFAULTS["houses_per_location"] == 1000
    assert NIGHTLY_DEFAULTS["hyperparameters"]["num_round"] == 25
    assert NIGHTLY_DEFAULTS["endpoint_name"] == "housing-mme"
    assert validate_nightly_params(NIGHTLY_DEFAULTS) == NIGHTLY_DEFAULTS
    assert validate_nightly_params({}) == NIGHTLY_DEFAULTS


def test_nightly_casts_strings_from_forms():
    params = validate_nightly_params(
        {
            "locations": '["Chicago_IL", "Houston_TX"]',
            "houses_per_location": "500",
            "hyperparameters": {"max_depth": "3", "eta": "0.1", "num_round": 40.0},
            "promotion_tolerance": "0.1",
            "max_bad_fraction": "0",
        }
    )
    assert params["locations"] == ["Chicago_IL", "Houston_TX"]
    assert params["houses_per_location"] == 500
    assert params["hyperparameters"]["max_depth"] == 3 and params["hyperparameters"]["eta"] == 0.1
    assert params["hyperparameters"]["num_round"] == 40 and isinstance(params["hyperparameters"]["num_round"], int)
    assert params["hyperparameters"]["subsample"] == 0.8  # untouched defaults kept
    assert params["promotion_tolerance"] == 0.1 and params["max_bad_fraction"] == 0.0
    assert validate_nightly_params({"locations": "Chicago_IL,Dallas_TX"})["locations"] == ["Chicago_IL", "Dallas_TX"]


def test_nightly_lists_all_problems_at_once():
    with pytest.raises(InvalidParamsError) as error:
        validate_nightly_params(
            {
                "locations": ["Chicago_IL", "Gotham_XX", "bad"],
                "houses_per_location": 0,
                "hyperparameters": {"max_depth": 0, "eta": "fast", "subsample": 1.5, "colour": "red"},
                "instance_type": "m5.xlarge",
                "promotion_tolerance": -0.1,
                "endpoint_name": "housing_mme",
                "max_bad_fraction": 2,
            }
        )
    problems = error.value.problems
    text = str(error.value)
    assert len(problems) == 10, problems
    assert text.startswith("10 problem(s)")
    for fragment in (
        "unknown state code 'XX'",
        "'bad' is malformed",
        "houses_per_location: 0 is outside",
        "hyperparameters.max_depth",
        "hyperparameters.eta: expected a number, got 'fast'",
        "hyperparameters.subsample",
        "hyperparameters.colour: unknown xgboost hyperparameter",
        "instance_type",
        "promotion_tolerance: -0.1",
        "endpoint_name: 'housing_mme' is not a valid",
        "max_bad_fraction",
    ):
        assert fragment in text, fragment
    assert isinstance(error.value, ValueError)


@pytest.mark.parametrize("houses", [-5, "ten", 2.5, True, 10**9])
def test_bad_house_counts(houses):
    with pytest.raises(InvalidParamsError, match="houses_per_location"):
        validate_nightly_params({"houses_per_location": houses})


def test_validation_does_not_mutate_defaults_or_input():
    given = {"hyperparameters": {"max_depth": "3"}}
    validate_nightly_params(given)
    assert given == {"hyperparameters": {"max_depth": "3"}}
    assert NIGHTLY_DEFAULTS["hyperparameters"]["max_depth"] == 5


def test_unknown_top_level_keys_pass_through():
    assert validate_nightly_params({"note": "rerun"})["note"] == "rerun"


def test_hyperparameters_for_sagemaker_are_strings():
    assert hyperparameters_for_sagemaker({"max_depth": 5, "eta": 0.2, "normalize_data": True}) == {
        "max_depth": "5",
        "eta": "0.2",
        "normalize_data": "true",
    }


def test_ab_defaults_are_valid():
    params = validate_ab_params({})
    assert params["endpoint_name"] == "housing-ab" and params["location"] == AB_DEFAULTS["location"]
    assert params["initial_weights"] == {"champion": 1.0, "challenger": 1.0}
    assert params["shift_steps"] == [0.1, 0.5, 1.0]
    assert params["promotion"] == {"metric": "rmse", "min_improvement": 0.0, "confidence": 0.95}


def test_ab_normalises_and_completes():
    params = validate_ab_params(
        {
            "challenger": {
                "algorithm": "linear-learner",
                "hyperparameters": {"epochs": "20", "normalize_data": "false"},
            },
            "promotion": {"confidence": "0.9"},
            "shift_steps": "0.25, 1",
            "evaluation_rows": "60",
        }
    )
    assert params["challenger"]["hyperparameters"]["predictor_type"] == "regressor"
    assert params["challenger"]["hyperparameters"]["epochs"] == 20
    assert params["challenger"]["hyperparameters"]["normalize_data"] is False
    assert params["promotion"] == {"metric": "rmse", "min_improvement": 0.0, "confidence": 0.9}
    assert params["shift_steps"] == [0.25, 1.0]
    assert params["evaluation_rows"] == 60


def test_ab_lists_all_problems_at_once():
    with pytest.raises(InvalidParamsError) as error:
        validate_ab_params(
            {
                "location": "Chicago_IL,Houston_TX",
                "champion": {"algorithm": "random-forest"},
                "challenger": {"algorithm": "xgboost", "hyperparameters": {"num_round": 0}, "image": "x"},
                "initial_weights": {"champion": 0, "challenger": 0},
                "evaluation_rows": 29,
                "promotion": {"metric": "accuracy", "min_improvement": -1, "confidence": 0.9999},
                "shift_steps": [0.5, 0.1],
                "endpoint_name": "-housing",
            }
        )
    text = str(error.value)
    assert len(error.value.problems) == 11, error.value.problems
    for fragment in (
        "location:",
        "champion.algorithm: 'random-forest'",
        "challenger.hyperparameters.num_round",
        "challenger: unknown key(s) 'image'",
        "all weights are zero",
        "evaluation_rows: 29 is outside [30",
        "promotion.metric",
        "promotion.min_improvement",
        "promotion.confidence",
        "shift_steps",
        "endpoint_name",
    ):
        assert fragment in text, fragment
