"""Validation of the DAGs' Params before any work starts.

A person triggers from the UI form, from ``--conf`` or a backfill's ``--dag-run-conf``; values may
arrive as strings ("1000", "0.2", '["Chicago_IL"]'). The validators cast them, fill what is missing
from the defaults, and report ALL problems in one :class:`InvalidParamsError`, so one correction
round is enough. Keys they do not know are passed through untouched (the DAG may add its own).
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Mapping
from typing import Any

from include.housing.locations import SEED_LOCATIONS, InvalidLocationError, validate_location, validate_locations
from include.housing.naming import NAME_PATTERN
from include.project_settings import INSTANCE_TYPE_PATTERN

__all__ = [
    "AB_DEFAULTS",
    "ALGORITHMS",
    "BOSTON_NOTEBOOK_PRESET",
    "DATASETS",
    "PRESETS",
    "INSTANCE_TYPE_PATTERN",
    "NIGHTLY_DEFAULTS",
    "InvalidParamsError",
    "hyperparameters_for_sagemaker",
    "validate_ab_params",
    "validate_hyperparameters",
    "validate_nightly_params",
]

_XGBOOST_DEFAULTS: dict[str, Any] = {
    "max_depth": 5,
    "eta": 0.2,
    "gamma": 4,
    "min_child_weight": 6,
    "subsample": 0.8,
    "num_round": 25,
    "early_stopping_rounds": 5,
    "objective": "reg:squarederror",
    # The built-in container applies early stopping only when eval_metric is set.
    "eval_metric": "rmse",
}
_LINEAR_LEARNER_DEFAULTS: dict[str, Any] = {
    "predictor_type": "regressor",
    "epochs": 15,
    "mini_batch_size": 100,
    "normalize_data": True,
    "normalize_label": True,
}

NIGHTLY_DEFAULTS: dict[str, Any] = {
    "locations": list(SEED_LOCATIONS),
    "houses_per_location": 1000,
    "hyperparameters": dict(_XGBOOST_DEFAULTS),
    "instance_type": "ml.m5.xlarge",
    "promotion_tolerance": 0.05,
    "endpoint_name": "housing-mme",
    "max_bad_fraction": 0.2,
    "revision": 0,
}

AB_DEFAULTS: dict[str, Any] = {
    "preset": "custom",
    "dataset": "synthetic",
    "location": "Chicago_IL",
    "houses_per_location": 1000,
    "champion": {"algorithm": "xgboost", "hyperparameters": dict(_XGBOOST_DEFAULTS)},
    "challenger": {
        "algorithm": "xgboost",
        "hyperparameters": {**_XGBOOST_DEFAULTS, "max_depth": 7, "eta": 0.1, "num_round": 60},
    },
    "initial_weights": {"champion": 1.0, "challenger": 1.0},
    "evaluation_rows": 200,
    "promotion": {"metric": "rmse", "min_improvement": 0.0, "confidence": 0.95},
    "shift_steps": [0.1, 0.5, 1.0],
    "endpoint_name": "housing-ab",
    "instance_type": "ml.m5.xlarge",
    "batch_transform": True,
}

DATASETS = ("synthetic", "boston")
# "custom": the form's champion and challenger. "boston-notebook": seed notebook 000 (Boston housing, XGBoost
# against Linear Learner behind one endpoint at 1:1, then an update to one model), one click in the form.
PRESETS = ("custom", "boston-notebook")
XGBOOST_IMAGE_VERSION = "1.7-1"
# The notebook's estimators, exactly (no defaults merged in); its XGBoost image accepts ``reg:linear``.
BOSTON_NOTEBOOK_PRESET: dict[str, Any] = {
    "dataset": "boston",
    "champion": {
        "algorithm": "xgboost",
        "hyperparameters": {
            "max_depth": 5,
            "eta": 0.2,
            "gamma": 4,
            "min_child_weight": 6,
            "subsample": 0.8,
            "objective": "reg:linear",
            "early_stopping_rounds": 10,
            "num_round": 200,
        },
    },
    "challenger": {
        "algorithm": "linear-learner",
        "hyperparameters": {"feature_dim": 13, "predictor_type": "regressor", "mini_batch_size": 200},
    },
    "initial_weights": {"champion": 1.0, "challenger": 1.0},
    "variant_names": {"champion": "XGB-Model", "challenger": "Linear-Model"},
    "xgboost_image_version": "1.0-1",
}

ALGORITHMS = ("xgboost", "linear-learner")
PROMOTION_METRICS = ("rmse", "mae")
ALGORITHM_DEFAULTS: dict[str, dict[str, Any]] = {
    "xgboost": _XGBOOST_DEFAULTS,
    "linear-learner": _LINEAR_LEARNER_DEFAULTS,
}
INSTANCE_TYPE_EXAMPLES = ("ml.m5.large", "ml.m5.xlarge", "ml.m5.2xlarge", "ml.c5.xlarge", "ml.c5.2xlarge")
# The trigger forms' sections.
SECTION_CORE, SECTION_ADVANCED, SECTION_TESTING = "Core", "Advanced", "Testing only"
MIN_HOUSES, MAX_HOUSES = 10, 1_000_000  # fewer than 10 cannot fill a 60/30/10 split
MIN_EVALUATION_ROWS, MAX_EVALUATION_ROWS = 30, 100_000
MAX_REVISION = 99  # model versions YYYYMMDD-r01 .. -r99

# name -> (kind, low, high, low_inclusive) for numbers, or ("choice", options) / ("bool",).
# Ranges follow the algorithms' documented limits, narrowed to what makes sense for this product.
_XGBOOST_RULES: dict[str, tuple] = {
    "max_depth": ("int", 1, 20, True),
    "eta": ("float", 0, 1, False),
    "gamma": ("float", 0, 1e6, True),
    "min_child_weight": ("float", 0, 1e6, True),
    "subsample": ("float", 0, 1, False),
    "colsample_bytree": ("float", 0, 1, False),
    "num_round": ("int", 1, 10_000, True),
    "early_stopping_rounds": ("int", 1, 10_000, True),
    "lambda": ("float", 0, 1e6, True),
    "alpha": ("float", 0, 1e6, True),
    "max_delta_step": ("float", 0, 1e6, True),
    "seed": ("int", 0, 2**31 - 1, True),
    "verbosity": ("int", 0, 3, True),
    "objective": (
        "choice",
        # reg:linear: the old name of reg:squarederror, which the notebooks' images (up to 1.0-1) still take.
        (
            "reg:squarederror",
            "reg:linear",
            "reg:absoluteerror",
            "reg:pseudohubererror",
            "reg:squaredlogerror",
            "reg:gamma",
        ),
    ),
    "eval_metric": ("choice", ("rmse", "mae", "rmsle", "mape")),
    "tree_method": ("choice", ("auto", "exact", "approx", "hist")),
}
_LINEAR_LEARNER_RULES: dict[str, tuple] = {
    # House prices are a regression; a classifier would make the metrics meaningless.
    "predictor_type": ("choice", ("regressor",)),
    "feature_dim": ("int", 1, 100_000, True),
    "epochs": ("int", 1, 1000, True),
    "mini_batch_size": ("int", 1, 100_000, True),
    "learning_rate": ("float", 0, 1, False),
    "l1": ("float", 0, 1e6, True),
    "wd": ("float", 0, 1e6, True),
    "num_models": ("int", 1, 64, True),
    "early_stopping_patience": ("int", 1, 1000, True),
    "loss": ("choice", ("auto", "squared_loss", "absolute_loss", "huber_loss", "eps_insensitive_squared_loss")),
    "optimizer": ("choice", ("auto", "sgd", "adam", "rmsprop")),
    "normalize_data": ("bool",),
    "normalize_label": ("bool",),
}
_RULES = {"xgboost": _XGBOOST_RULES, "linear-learner": _LINEAR_LEARNER_RULES}


class InvalidParamsError(ValueError):
    """The run's parameters are invalid; ``problems`` lists every one of them."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  - {problem}" for problem in self.problems)
        super().__init__(f"{len(self.problems)} problem(s) with the run's parameters:\n{lines}")


# --- casting: each returns the value or raises ValueError with the reason -------------------------


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(f"expected a whole number, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        value = value.strip()
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"expected a whole number, got {value!r}") from None
    if not math.isfinite(number) or number != int(number):
        raise ValueError(f"expected a whole number, got {value!r}")
    return int(number)


def _to_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {value!r}")
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise ValueError(f"expected a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"expected a finite number, got {value!r}")
    return number


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ValueError(f"expected true or false, got {value!r}")


def _shown(bound: float) -> str:
    return f"{int(bound):,}" if float(bound).is_integer() else f"{bound:g}"


def _number_in_range(value: Any, kind: str, low: float, high: float, low_inclusive: bool = True):
    number = _to_int(value) if kind == "int" else _to_float(value)
    too_low = number < low if low_inclusive else number <= low
    if too_low or number > high:
        left = "[" if low_inclusive else "("
        raise ValueError(f"{number!r} is outside {left}{_shown(low)}, {_shown(high)}]")
    return number


def _maybe_json(value: Any) -> Any:
    """UI text fields and --conf sometimes carry a JSON document as a string."""
    if isinstance(value, str) and value.strip()[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _mapping(value: Any, what: str, problems: list[str]) -> Mapping[str, Any] | None:
    value = _maybe_json(value)
    if not isinstance(value, Mapping):
        problems.append(f"{what} must be an object (mapping), got {value!r}")
        return None
    return value


def validate_hyperparameters(
    hyperparameters: Any, algorithm: str = "xgboost", *, where: str = "hyperparameters"
) -> tuple[dict[str, Any], list[str]]:
    """Merge ``hyperparameters`` over the algorithm's defaults and check each one.

    Returns (normalised values, problems). Unknown names are problems: the built-in XGBoost
    container fails the job with "Extraneous hyperparameter found" for them.
    """
    problems: list[str] = []
    given = _mapping(hyperparameters, where, problems)
    merged = dict(ALGORITHM_DEFAULTS[algorithm])
    if given is None:
        return merged, problems
    rules = _RULES[algorithm]
    for name, raw in given.items():
        rule = rules.get(name)
        if rule is None:
            problems.append(f"{where}.{name}: unknown {algorithm} hyperparameter (known: {', '.join(rules)})")
            continue
        try:
            if rule[0] == "choice":
                if raw not in rule[1]:
                    raise ValueError(f"{raw!r} is not one of {', '.join(rule[1])}")
                merged[name] = raw
            elif rule[0] == "bool":
                merged[name] = _to_bool(raw)
            else:
                merged[name] = _number_in_range(raw, *rule)
        except ValueError as error:
            problems.append(f"{where}.{name}: {error}")
    return merged, problems


def hyperparameters_for_sagemaker(hyperparameters: Mapping[str, Any]) -> dict[str, str]:
    """CreateTrainingJob wants every hyperparameter as a string; booleans as "true"/"false"."""
    return {
        name: ("true" if value else "false") if isinstance(value, bool) else str(value)
        for name, value in hyperparameters.items()
    }


def _check(problems: list[str], name: str, value: Any, convert) -> Any:
    try:
        return convert(value)
    except ValueError as error:
        problems.append(f"{name}: {error}")
        return value


def _endpoint_name(value: Any) -> str:
    if not isinstance(value, str) or NAME_PATTERN.match(value) is None:
        raise ValueError(
            f"{value!r} is not a valid SageMaker endpoint name "
            "(letters, digits and single hyphens inside, at most 63 characters)"
        )
    return value


def _instance_type(value: Any) -> str:
    if not isinstance(value, str) or INSTANCE_TYPE_PATTERN.match(value) is None:
        raise ValueError(f"{value!r} is not a SageMaker instance type such as 'ml.m5.xlarge'")
    return value


def _locations(value: Any) -> list[str]:
    try:
        return validate_locations(_maybe_json(value))
    except InvalidLocationError as error:
        raise ValueError(str(error)) from None


def _merge(defaults: Mapping[str, Any], params: Mapping[str, Any] | None) -> dict[str, Any]:
    if params is not None and not isinstance(params, Mapping):
        raise InvalidParamsError([f"params must be a mapping, got {type(params).__name__}"])
    merged = copy.deepcopy(dict(defaults))
    # None from an untouched optional form field means "use the default".
    merged.update({key: value for key, value in (params or {}).items() if value is not None})
    return merged


def validate_nightly_params(params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Normalised Params of ``housing_mme_nightly``; raises InvalidParamsError listing every problem."""
    merged = _merge(NIGHTLY_DEFAULTS, params)
    problems: list[str] = []
    merged["locations"] = _check(problems, "locations", merged["locations"], _locations)
    merged["houses_per_location"] = _check(
        problems,
        "houses_per_location",
        merged["houses_per_location"],
        lambda v: _number_in_range(v, "int", MIN_HOUSES, MAX_HOUSES),
    )
    merged["hyperparameters"], hyper_problems = validate_hyperparameters(merged["hyperparameters"], "xgboost")
    problems.extend(hyper_problems)
    merged["instance_type"] = _check(problems, "instance_type", merged["instance_type"], _instance_type)
    merged["promotion_tolerance"] = _check(
        problems,
        "promotion_tolerance",
        merged["promotion_tolerance"],
        lambda v: _number_in_range(v, "float", 0, 1),
    )
    merged["endpoint_name"] = _check(problems, "endpoint_name", merged["endpoint_name"], _endpoint_name)
    merged["max_bad_fraction"] = _check(
        problems, "max_bad_fraction", merged["max_bad_fraction"], lambda v: _number_in_range(v, "float", 0, 1)
    )
    merged["revision"] = _check(
        problems, "revision", merged["revision"], lambda v: _number_in_range(v, "int", 0, MAX_REVISION)
    )
    if problems:
        raise InvalidParamsError(problems)
    return merged


def _model_spec(value: Any, role: str, problems: list[str], *, with_defaults: bool = True) -> dict[str, Any]:
    spec = _mapping(value, role, problems)
    if spec is None:
        return {"algorithm": None, "hyperparameters": {}}
    unknown = [key for key in spec if key not in ("algorithm", "hyperparameters")]
    if unknown:
        problems.append(f"{role}: unknown key(s) {', '.join(map(repr, unknown))} (known: algorithm, hyperparameters)")
    algorithm = spec.get("algorithm", "xgboost")
    if algorithm not in ALGORITHMS:
        problems.append(f"{role}.algorithm: {algorithm!r} is not one of {', '.join(ALGORITHMS)}")
        return {"algorithm": algorithm, "hyperparameters": spec.get("hyperparameters", {})}
    hyperparameters, hyper_problems = validate_hyperparameters(
        spec.get("hyperparameters", {}), algorithm, where=f"{role}.hyperparameters"
    )
    problems.extend(hyper_problems)
    if not with_defaults:  # exactly what was given (a preset reproduces its notebook's job as it was)
        given = spec.get("hyperparameters", {})
        hyperparameters = {name: given[name] for name in given}  # as written: 4 stays "4", not "4.0"
    return {"algorithm": algorithm, "hyperparameters": hyperparameters}


def validate_ab_params(params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Normalised Params of ``housing_ab_rollout``; raises InvalidParamsError listing every problem.

    A champion/challenger spec given without hyperparameters gets its algorithm's defaults; given
    hyperparameters are merged over those defaults.
    """
    from sagemaker_fleet.utils.ab_statistics import shift_schedule, validate_weights

    merged = _merge(AB_DEFAULTS, params)
    problems: list[str] = []
    preset = merged["preset"]
    if preset not in PRESETS:
        problems.append(f"preset: {preset!r} is not one of {', '.join(PRESETS)}")
        preset = "custom"
    merged["preset"] = preset
    merged["variant_names"] = {"champion": "champion", "challenger": "challenger"}
    merged["xgboost_image_version"] = XGBOOST_IMAGE_VERSION
    if preset == "boston-notebook":
        # The preset replaces what it names (the form still sends its own champion/challenger values).
        merged.update(copy.deepcopy(BOSTON_NOTEBOOK_PRESET))
    if merged["dataset"] not in DATASETS:
        problems.append(f"dataset: {merged['dataset']!r} is not one of {', '.join(DATASETS)}")
    merged["batch_transform"] = _check(problems, "batch_transform", merged["batch_transform"], _to_bool)

    def location(value: Any) -> str:
        try:
            return validate_location(value.strip() if isinstance(value, str) else value)
        except InvalidLocationError as error:
            raise ValueError(str(error)) from None

    merged["location"] = _check(problems, "location", merged["location"], location)
    merged["houses_per_location"] = _check(
        problems,
        "houses_per_location",
        merged["houses_per_location"],
        lambda v: _number_in_range(v, "int", MIN_HOUSES, MAX_HOUSES),
    )
    for role in ("champion", "challenger"):
        merged[role] = _model_spec(merged[role], role, problems, with_defaults=preset == "custom")

    def weights(value: Any) -> dict[str, float]:
        value = _maybe_json(value)
        if isinstance(value, Mapping):
            missing = [role for role in ("champion", "challenger") if role not in value]
            if missing:
                raise ValueError(f"a weight is needed for {' and '.join(missing)}")
        return validate_weights(value, known_variants=("champion", "challenger"))

    merged["initial_weights"] = _check(problems, "initial_weights", merged["initial_weights"], weights)
    merged["evaluation_rows"] = _check(
        problems,
        "evaluation_rows",
        merged["evaluation_rows"],
        lambda v: _number_in_range(v, "int", MIN_EVALUATION_ROWS, MAX_EVALUATION_ROWS),
    )

    promotion = _mapping(merged["promotion"], "promotion", problems)
    if promotion is not None:
        rule = {**AB_DEFAULTS["promotion"], **promotion}  # a partial rule is completed, not replaced
        unknown = [key for key in rule if key not in AB_DEFAULTS["promotion"]]
        if unknown:
            problems.append(f"promotion: unknown key(s) {', '.join(map(repr, unknown))}")
        if rule["metric"] not in PROMOTION_METRICS:
            problems.append(f"promotion.metric: {rule['metric']!r} is not one of {', '.join(PROMOTION_METRICS)}")
        rule["min_improvement"] = _check(
            problems,
            "promotion.min_improvement",
            rule["min_improvement"],
            lambda v: _number_in_range(v, "float", 0, 1),
        )
        rule["confidence"] = _check(
            problems, "promotion.confidence", rule["confidence"], lambda v: _number_in_range(v, "float", 0.5, 0.999)
        )
        merged["promotion"] = {key: rule[key] for key in AB_DEFAULTS["promotion"]}

    def steps(value: Any) -> list[float]:
        value = _maybe_json(value)
        if isinstance(value, str):
            value = [part for part in value.split(",") if part.strip()]
        return [step["challenger_share"] for step in shift_schedule(value)]

    merged["shift_steps"] = _check(problems, "shift_steps", merged["shift_steps"], steps)
    merged["endpoint_name"] = _check(problems, "endpoint_name", merged["endpoint_name"], _endpoint_name)
    merged["instance_type"] = _check(problems, "instance_type", merged["instance_type"], _instance_type)
    if problems:
        raise InvalidParamsError(problems)
    return merged
