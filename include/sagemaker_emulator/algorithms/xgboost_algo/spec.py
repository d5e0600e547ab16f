"""SageMaker built-in XGBoost: what the images are (versions, model file name), their hyperparameter rules and
metric names. Shared by :mod:`.training` and :mod:`.predictor`; no xgboost import here."""

from __future__ import annotations

from typing import Any

from .._errors import AlgorithmClientError
from .._hyperparameters import Interval, Param, Spec, closed

MODEL_NAME = "xgboost-model"
SUPPORTED_VERSIONS = ("1.0-1", "1.2-1", "1.2-2", "1.3-1", "1.5-1", "1.7-1")
DEFAULT_VERSION = "1.7-1"
# Single-model real-time CSV answers: these images comma-join every prediction on one line and ignore Accept
# (``",".join(map(str, preds))`` in their serve.py); 1.2-2 and later write one prediction per line
# (sagemaker-containers' array_to_csv). "1" is the legacy xgboost:1 (0.72) image.
COMMA_JOINED_CSV_VERSIONS = frozenset({"1", "latest", "0.90-1", "0.90-2", "1.0-1", "1.2-1"})

MAXIMIZE_METRICS = [
    "accuracy", "auc", "aucpr", "balanced_accuracy", "f1", "f1_binary", "f1_macro", "map", "ndcg",
    "precision", "r2", "recall", "precision_macro", "precision_micro", "recall_macro", "recall_micro",
]  # fmt: skip
MINIMIZE_METRICS = [
    "aft-nloglik", "cox-nloglik", "error", "gamma-deviance", "gamma-nloglik", "interval-regression-accuracy",
    "logloss", "mae", "mape", "merror", "mlogloss", "mphe", "mse", "poisson-nloglik", "rmse", "rmsle",
    "tweedie-nloglik",
]  # fmt: skip
# Metrics the container computes itself (feval) instead of asking xgboost for them.
CONTAINER_METRICS = {
    "accuracy", "balanced_accuracy", "f1", "f1_binary", "f1_macro", "mse", "precision", "precision_macro",
    "precision_micro", "recall", "recall_macro", "recall_micro", "r2",
}  # fmt: skip

OBJECTIVES = [
    "aft_loss_distribution", "binary:logistic", "binary:logitraw", "binary:hinge", "count:poisson",
    "multi:softmax", "multi:softprob", "rank:pairwise", "rank:ndcg", "rank:map", "reg:linear",
    "reg:squarederror", "reg:logistic", "reg:gamma", "reg:pseudohubererror", "reg:squaredlogerror",
    "reg:absoluteerror", "reg:tweedie", "survival:aft", "survival:cox",
]  # fmt: skip

# Substrings of xgboost errors the container reports as ClientError rather than AlgorithmError.
CUSTOMER_ERRORS = [
    "label must be in [0,1] for logistic regression",
    "label must be in [0, num_class)",
    "Target is multiclass but average='binary'",
    "feature_names mismatch",
    "Check failed: preds.size() == info.labels_.size()",
    "the dataset only contains pos or neg samples",
    "base_score must be in (0,1)",
    "label must be nonnegative",
    "Parameter reg_lambda should be greater equal to 0",
    "label must be greater than -1",
    "Number of classes",
]

# Container-only keys (not xgboost training parameters).
_CONTAINER_KEYS = {
    "num_round", "early_stopping_rounds", "csv_weights", "save_model_on_termination", "_kfold",
    "_num_cv_round", "_tuning_objective_metric", "use_dask_gpu_training", "eval_metric",
}  # fmt: skip
# Parameters the old images accepted that xgboost 3.x removed: accepted, validated, then dropped.
_DROPPED_KEYS = {"silent", "predictor", "dsplit", "sketch_eps", "lambda_bias", "deterministic_histogram",
                 "prob_buffer_row"}  # fmt: skip


def _version_tuple(version: str) -> tuple[int, int]:
    major, minor = version.split("-")[0].split(".")[:2]
    return int(major), int(minor)


def is_legacy(version: str) -> bool:
    """1.0-1 and 1.2-x: xgboost < 1.3 semantics (pickle artifacts, old early stopping, old defaults)."""
    return _version_tuple(version) < (1, 3)


def _eval_metric_ok(metric: str) -> bool:
    if "<function" in metric:
        raise AlgorithmClientError(f"User defined evaluation metric {metric} is not supported yet.")
    if "@" in metric:
        name, threshold = (part.strip() for part in metric.split("@", 1))
        if name not in ("error", "ndcg", "map"):
            raise AlgorithmClientError(
                f"Metric '{metric}' is not supported. Parameter 'eval_metric' with customized threshold should "
                "be one of these options: 'error', 'ndcg', 'map'."
            )
        try:
            float(threshold.rstrip("-"))
        except ValueError:
            raise AlgorithmClientError(f"Threshold value 't' in '{name}@t' expects float input.") from None
        return True
    return metric in MAXIMIZE_METRICS or metric in MINIMIZE_METRICS


class _MetricRange:
    def __call__(self, metric: str) -> bool:
        return _eval_metric_ok(metric)

    def __str__(self) -> str:
        return str(MAXIMIZE_METRICS + MINIMIZE_METRICS)


def build_spec(version: str) -> Spec:
    ge0 = closed(0)
    unit = closed(0, 1)
    open_unit = Interval(0, False, 1, True)
    params = [
        Param("num_round", "int", closed(1), required=True),
        Param("csv_weights", "int", closed(0, 1)),
        Param("early_stopping_rounds", "int", closed(1)),
        Param("booster", "cat", ["gbtree", "gblinear", "dart"]),
        Param("verbosity", "int", closed(0, 3)),
        Param("nthread", "int", closed(1)),
        Param("eta", "float", unit),
        Param("gamma", "float", ge0),
        Param("max_depth", "int", ge0),
        Param("min_child_weight", "float", ge0),
        Param("max_delta_step", "float", ge0),
        Param("subsample", "float", open_unit),
        Param("colsample_bytree", "float", open_unit),
        Param("colsample_bylevel", "float", open_unit),
        Param("colsample_bynode", "float", open_unit),
        Param("lambda", "float", ge0),
        Param("alpha", "float", ge0),
        Param("tree_method", "cat", ["auto", "exact", "approx", "hist", "gpu_hist"]),
        Param("sketch_eps", "float", Interval(0, False, 1, False)),
        Param("scale_pos_weight", "float", Interval(0, False)),
        Param(
            "updater",
            "list",
            [
                "grow_colmaker",
                "distcol",
                "grow_histmaker",
                "grow_skmaker",
                "sync",
                "refresh",
                "prune",
                "shotgun",
                "coord_descent",
                "grow_quantile_histmaker",
            ],
        ),
        Param("dsplit", "cat", ["row", "col"]),
        Param("refresh_leaf", "int", closed(0, 1)),
        Param("process_type", "cat", ["default", "update"]),
        Param("grow_policy", "cat", ["depthwise", "lossguide"]),
        Param("max_leaves", "int", ge0),
        Param("max_bin", "int", ge0),
        Param("predictor", "cat", ["auto", "cpu_predictor", "gpu_predictor"]),
        Param("monotone_constraints", "tuple", [-1, 0, 1]),
        Param("interaction_constraints", "nested", closed(1)),
        Param("sample_type", "cat", ["uniform", "weighted"]),
        Param("normalize_type", "cat", ["tree", "forest"]),
        Param("rate_drop", "float", unit),
        Param("one_drop", "int", closed(0, 1)),
        Param("skip_drop", "float", unit),
        Param("lambda_bias", "float", unit),
        Param("tweedie_variance_power", "float", Interval(1, False, 2, False)),
        Param("objective", "cat", OBJECTIVES),
        Param("num_class", "int", closed(2)),
        Param("base_score", "float", ge0),
        Param("_kfold", "int", closed(2)),
        Param("_num_cv_round", "int", closed(1)),
        Param("_tuning_objective_metric", "str"),
        Param("eval_metric", "list", _MetricRange()),
        Param("seed", "int", Interval(-(2**31), False, 2**31 - 1, False)),
        Param("num_parallel_tree", "int", closed(1)),
        Param("save_model_on_termination", "cat", ["true", "false"]),
        Param("aft_loss_distribution", "cat", ["normal", "logistic", "extreme"]),
        Param("aft_loss_distribution_scale", "float", ge0),
        Param("deterministic_histogram", "cat", ["true", "false"]),
        Param("sampling_method", "cat", ["uniform", "gradient_based"]),
        Param("prob_buffer_row", "float", Interval(1.0, False)),
        Param("use_dask_gpu_training", "cat", ["true", "false"]),
    ]
    if version == "1.0-1":
        # xgboost 1.0 still had `silent`; it was dropped from the 1.2-1 image onwards.
        params.append(Param("silent", "int", closed(0, 1)))
    aliases = {"learning_rate": "eta", "min_split_loss": "gamma", "reg_lambda": "lambda", "reg_alpha": "alpha"}
    return Spec(params, aliases)


def _check_dependencies(hp: dict[str, Any]) -> None:
    """Cross-parameter rules of the container's dependency validators."""
    objective = hp.get("objective")
    if objective in ("multi:softmax", "multi:softprob") and "num_class" not in hp:
        raise AlgorithmClientError("Require input for parameter 'num_class' for multi-classification")
    if objective is None and "num_class" in hp:
        raise AlgorithmClientError(
            "Do not need to setup parameter 'num_class' for learning task other than multi-classification."
        )
    metrics = hp.get("eval_metric") or []
    obj = objective or "reg:squarederror"
    if "auc" in metrics and not obj.startswith(("binary:", "rank:")):
        raise AlgorithmClientError("Metric 'auc' can only be applied for classification and ranking problems.")
    if "aft-nloglik" in metrics and obj != "survival:aft":
        raise AlgorithmClientError("Metric 'aft-nloglik' can only be applied for 'survival:aft' objective.")
    tree_method = hp.get("tree_method")
    if "monotone_constraints" in hp and tree_method not in ("exact", "hist"):
        raise AlgorithmClientError(
            "monotone_constraints can be used only when the tree_method parameter is set to either 'exact' or 'hist'."
        )
    if "interaction_constraints" in hp and tree_method not in ("exact", "hist", "approx"):
        raise AlgorithmClientError(
            "interaction_constraints can be used only when the tree_method parameter is set to "
            "either 'exact', 'hist' or 'approx'."
        )
    updater = hp.get("updater")
    if updater:
        if hp.get("booster") == "gblinear":
            if not (len(updater) == 1 and updater[0] in ("shotgun", "coord_descent")):
                raise AlgorithmClientError("Linear updater should be one of these options: 'shotgun', 'coord_descent'.")
        elif hp.get("process_type") == "update":
            if not all(u in ("refresh", "prune") for u in updater):
                raise AlgorithmClientError("process_type 'update' can only be used with updater 'refresh' and 'prune'")
        else:
            growers = {"grow_colmaker", "distcol", "grow_histmaker", "grow_quantile_histmaker"}
            if sum(u in growers for u in updater) > 1:
                raise AlgorithmClientError(
                    "Only one tree grow plugin can be selected. Choose one from the"
                    "following: 'grow_colmaker', 'distcol', 'grow_histmaker', 'grow_skmaker'"
                )


def _default_metric(objective: str, version: str) -> str | None:
    """xgboost's default eval metric for the objective, as of the image's xgboost version."""
    if objective.startswith("binary:logistic") or objective == "binary:logitraw":
        return "error" if is_legacy(version) else "logloss"
    if objective.startswith("multi:"):
        return "merror" if is_legacy(version) else "mlogloss"
    return None  # let xgboost decide (rmse for reg:*, etc.)
