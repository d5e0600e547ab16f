"""SageMaker built-in XGBoost: what the images are (versions, model file name), their hyperparameter rules and
metric names. Shared by :mod:`.training` and :mod:`.predictor`; no xgboost import here."""

from __future__ import annotations

from typing import Any

from .._errors import AlgorithmClientError
from .._hyperparameters import Interval, Param, Spec, closed

MODEL_NAME = "xgboost-model"
# The generic ``xgboost:1`` image (tag ``latest`` is its alias): XGBoost 0.72, closed source, deprecated.
LEGACY_IMAGE_VERSION = "1"
# Tags of the ``sagemaker-xgboost`` repository (algorithm mode and framework mode).
FRAMEWORK_VERSIONS = ("0.90-1", "0.90-2", "1.0-1", "1.2-1", "1.2-2", "1.3-1", "1.5-1", "1.7-1")
SUPPORTED_VERSIONS = (LEGACY_IMAGE_VERSION, *FRAMEWORK_VERSIONS)
DEFAULT_VERSION = "1.7-1"
# The xgboost library each image shipped; one installed xgboost serves them all, these pick the image's rules.
LIBRARY_VERSIONS = {LEGACY_IMAGE_VERSION: (0, 72), "0.90-1": (0, 90), "0.90-2": (0, 90)}
# Images whose xgboost still had `silent` (removed in xgboost 1.2).
SILENT_VERSIONS = frozenset({LEGACY_IMAGE_VERSION, "0.90-1", "0.90-2", "1.0-1"})
# Single-model real-time CSV answers: these images comma-join every prediction on one line and ignore Accept
# (``",".join(map(str, preds))`` in their serve.py); 1.2-2 and later write one prediction per line
# (sagemaker-containers' array_to_csv). "1" is the legacy xgboost:1 (0.72) image.
COMMA_JOINED_CSV_VERSIONS = frozenset({"1", "latest", "0.90-1", "0.90-2", "1.0-1", "1.2-1"})
# Images that read only text/csv (the default) and libsvm requests: the closed-source xgboost:1 (0.72).
LEGACY_TEXT_ONLY_VERSIONS = frozenset({"1", "latest"})

MAXIMIZE_METRICS = [
    "accuracy", "auc", "aucpr", "balanced_accuracy", "f1", "f1_binary", "f1_macro", "map", "ndcg",
    "precision", "r2", "recall", "precision_macro", "precision_micro", "recall_macro", "recall_micro",
]  # fmt: skip
MINIMIZE_METRICS = [
    "aft-nloglik", "cox-nloglik", "error", "gamma-deviance", "gamma-nloglik", "interval-regression-accuracy",
    "logloss", "mae", "mape", "merror", "mlogloss", "mphe", "mse", "poisson-nloglik", "rmse", "rmsle",
    "tweedie-nloglik",
]  # fmt: skip
# The 0.90-x containers' metrics.py (reference §4): fewer names, the nloglik ones maximised.
MAXIMIZE_METRICS_090 = ["accuracy", "auc", "aucpr", "cox-nloglik", "f1", "gamma-nloglik", "map", "ndcg",
                        "poisson-nloglik", "tweedie-nloglik"]  # fmt: skip
MINIMIZE_METRICS_090 = ["error", "gamma-deviance", "logloss", "mae", "merror", "mlogloss", "mse", "rmse"]
# xgboost 0.72's own evaluation metrics (the closed-source xgboost:1 image computes nothing itself).
METRICS_072 = ["auc", "cox-nloglik", "error", "gamma-deviance", "gamma-nloglik", "logloss", "mae", "map",
               "merror", "mlogloss", "ndcg", "poisson-nloglik", "rmse", "tweedie-nloglik"]  # fmt: skip
# The metrics the xgboost:1 image defines for tuning (validation:<name>; the platform adds train:<name>).
TUNING_METRICS_072 = ["auc", "error", "logloss", "mae", "map", "merror", "mlogloss", "ndcg", "rmse"]
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
# Objectives of xgboost 0.72 (reg:linear is its own name for squared error) and what 0.90 added to them.
OBJECTIVES_072 = ["binary:logistic", "binary:logitraw", "count:poisson", "multi:softmax", "multi:softprob",
                  "rank:pairwise", "reg:gamma", "reg:linear", "reg:logistic", "reg:tweedie"]  # fmt: skip
OBJECTIVES_090 = [*OBJECTIVES_072, "binary:hinge", "rank:map", "rank:ndcg", "reg:squarederror",
                  "reg:squaredlogerror", "survival:cox"]  # fmt: skip
# The hyperparameters the xgboost:1 (0.72) image documents; anything else is extraneous there.
PARAMS_072 = frozenset({
    "num_round", "num_class", "alpha", "base_score", "booster", "colsample_bylevel", "colsample_bytree",
    "csv_weights", "early_stopping_rounds", "eta", "eval_metric", "gamma", "grow_policy", "lambda", "lambda_bias",
    "max_bin", "max_delta_step", "max_depth", "max_leaves", "min_child_weight", "normalize_type", "nthread",
    "objective", "one_drop", "process_type", "rate_drop", "refresh_leaf", "sample_type", "scale_pos_weight",
    "seed", "silent", "sketch_eps", "skip_drop", "subsample", "tree_method", "tweedie_variance_power", "updater",
})  # fmt: skip
# Parameters added after xgboost 0.90 that the 0.90-x images reject as extraneous.
PARAMS_AFTER_090 = frozenset({"aft_loss_distribution", "aft_loss_distribution_scale", "deterministic_histogram",
                              "sampling_method", "use_dask_gpu_training", "prob_buffer_row"})  # fmt: skip

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
    """The xgboost library version of an image version ("1" -> (0, 72), "0.90-2" -> (0, 90), "1.7-1" -> (1, 7))."""
    if version in LIBRARY_VERSIONS:
        return LIBRARY_VERSIONS[version]
    major, minor = version.split("-")[0].split(".")[:2]
    return int(major), int(minor)


def is_legacy(version: str) -> bool:
    """xgboost:1, 0.90-x, 1.0-1 and 1.2-x: xgboost < 1.3 semantics (pickle artifacts, old early stopping,
    old defaults)."""
    return _version_tuple(version) < (1, 3)


def is_pre_1_0(version: str) -> bool:
    """xgboost:1 (0.72) and 0.90-x: the 0.x parameter and metric sets."""
    return _version_tuple(version) < (1, 0)


def eval_metric_names(version: str) -> tuple[list[str], list[str]]:
    """(metrics to maximise, metrics to minimise) the image's ``eval_metric`` accepts."""
    if version == LEGACY_IMAGE_VERSION:
        return [m for m in METRICS_072 if m in MAXIMIZE_METRICS_090], [
            m for m in METRICS_072 if m not in MAXIMIZE_METRICS_090
        ]
    if is_pre_1_0(version):
        return MAXIMIZE_METRICS_090, MINIMIZE_METRICS_090
    return MAXIMIZE_METRICS, MINIMIZE_METRICS


def tuning_metric_names(version: str) -> list[str]:
    """The names of the image's metric definitions (each as ``train:<m>`` and ``validation:<m>``)."""
    if version == LEGACY_IMAGE_VERSION:
        return TUNING_METRICS_072
    if is_pre_1_0(version):
        return sorted(MAXIMIZE_METRICS_090 + MINIMIZE_METRICS_090)
    return ["rmse", "mae", "logloss", "error", "auc", "merror", "mlogloss", "ndcg", "map", "aucpr",
            "mse", "mape", "rmsle", "accuracy", "f1", "r2"]  # fmt: skip


def _eval_metric_ok(metric: str, known: list[str]) -> bool:
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
    return metric in known


class _MetricRange:
    def __init__(self, version: str) -> None:
        maximize, minimize = eval_metric_names(version)
        self.known = maximize + minimize

    def __call__(self, metric: str) -> bool:
        return _eval_metric_ok(metric, self.known)

    def __str__(self) -> str:
        return str(self.known)


def _objectives(version: str) -> list[str]:
    if version == LEGACY_IMAGE_VERSION:
        return OBJECTIVES_072
    return OBJECTIVES_090 if is_pre_1_0(version) else OBJECTIVES


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
        Param("objective", "cat", _objectives(version)),
        Param("num_class", "int", closed(2)),
        Param("base_score", "float", ge0),
        Param("_kfold", "int", closed(2)),
        Param("_num_cv_round", "int", closed(1)),
        Param("_tuning_objective_metric", "str"),
        Param("eval_metric", "list", _MetricRange(version)),
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
    if version in SILENT_VERSIONS:
        # xgboost <= 1.0 still had `silent`; it was dropped from the 1.2-1 image onwards.
        params.append(Param("silent", "int", closed(0, 1)))
    if version == LEGACY_IMAGE_VERSION:
        params = [p for p in params if p.name in PARAMS_072]
    elif is_pre_1_0(version):
        params = [p for p in params if p.name not in PARAMS_AFTER_090]
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
