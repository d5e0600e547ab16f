"""SageMaker built-in XGBoost (algorithm mode, images 1.0-1 ... 1.7-1) re-implemented on local xgboost.

Training follows ``sagemaker_xgboost_container.algorithm_mode.train``: string hyperparameters validated
with the container's names, ranges and messages; ``train`` (required) and ``validation`` (optional)
channels; CSV label-first without header, libsvm (the default when ContentType is absent), parquet, or
RecordIO-protobuf (``application/x-recordio-protobuf``, which every image from 1.0-1 reads for training and
inference: ``features["values"]`` dense or sparse with ``keys``/``shape``, ``label["values"]``); the
``[i]#011train-rmse:...`` evaluation lines CloudWatch shows; early stopping as the image version did it:

* 1.0-1 / 1.2-x ran ``xgb.train(early_stopping_rounds=...)``: it watches the LAST eval set (validation
  when present, else train) and its last metric, whether or not ``eval_metric`` was given.
* 1.3-1 and later add ``EarlyStopping(data_name="validation", metric_name=eval_metric[-1],
  save_best=True)`` only when there is a validation channel AND ``eval_metric`` is set; otherwise
  ``early_stopping_rounds`` is silently ignored by the real container (we log a warning line about it).

Model artifact: ``<model_dir>/xgboost-model`` written with ``Booster.save_model`` (no extension, so
xgboost 3.x writes UBJSON). That is what 1.3-1+ images do (with their xgboost's native format); the
1.0-1/1.2-x images pickled the Booster instead, but we always write the native format so the
documented ``bst = xgb.Booster(); bst.load_model("xgboost-model")`` works for every version. The
saved model is truncated to the best iteration when early stopping triggered, so serving predicts
with the best trees exactly as the containers did (``save_best`` / ``best_ntree_limit``).

Serving mirrors ``algorithm_mode/serve.py`` (single model, gunicorn/flask) and
``algorithm_mode/handler_service.py`` (multi-model server); see :class:`XGBoostPredictor`.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import pathlib
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np

from . import _data
from ._base import Predictor
from ._errors import AlgorithmClientError, AlgorithmError, ModelInvocationError
from ._hyperparameters import Interval, Param, Spec, closed
from ._pickled_booster import load_pickled_booster

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


# ----------------------------------------------------------------------------------------------- metrics


def _pred_labels(preds: np.ndarray, objective: str) -> np.ndarray:
    if preds.ndim == 2:
        return preds.argmax(axis=1)
    if objective == "multi:softmax" or objective == "binary:hinge":
        return preds.astype(int)
    if objective == "binary:logitraw":
        return (preds > 0).astype(int)
    return (preds > 0.5).astype(int)


def _container_metric_fn(names: list[str], objective: str) -> Callable[[np.ndarray, Any], list]:
    from sklearn import metrics as skm

    classification = {
        "accuracy": skm.accuracy_score,
        "balanced_accuracy": skm.balanced_accuracy_score,
        "f1": lambda y, p: skm.f1_score(y, p, average="macro"),
        "f1_binary": lambda y, p: skm.f1_score(y, p, average="binary"),
        "f1_macro": lambda y, p: skm.f1_score(y, p, average="macro"),
        "precision": lambda y, p: skm.precision_score(y, p, zero_division=0),
        "precision_macro": lambda y, p: skm.precision_score(y, p, average="macro", zero_division=0),
        "precision_micro": lambda y, p: skm.precision_score(y, p, average="micro", zero_division=0),
        "recall": lambda y, p: skm.recall_score(y, p, zero_division=0),
        "recall_macro": lambda y, p: skm.recall_score(y, p, average="macro", zero_division=0),
        "recall_micro": lambda y, p: skm.recall_score(y, p, average="micro", zero_division=0),
    }
    regression = {"mse": skm.mean_squared_error, "r2": skm.r2_score}

    def metric(preds: np.ndarray, dmatrix: Any) -> list[tuple[str, float]]:
        labels = dmatrix.get_label()
        out = []
        for name in names:
            if name in regression:
                out.append((name, float(regression[name](labels, preds))))
            else:
                out.append((name, float(classification[name](labels.astype(int), _pred_labels(preds, objective)))))
        return out

    return metric


# ----------------------------------------------------------------------------------------------- training


def _log_line(level: str = "INFO") -> Callable[[str], str]:
    def fmt(message: str) -> str:
        ts = datetime.now(UTC).strftime("%Y-%m-%d:%H:%M:%S")
        return f"[{ts}:{level}] {message}"

    return fmt


def _fmt_score(score: float, legacy: bool) -> str:
    # xgboost < 1.3 printed C++ stream floats (6 significant digits); 1.3+ prints f"{score:.5f}".
    return f"{score:.6g}" if legacy else f"{score:.5f}"


def _make_monitor(log: Callable[[str], None], legacy: bool, es_rounds: int | None, es_target: list) -> Any:
    import xgboost as xgb

    class Monitor(xgb.callback.TrainingCallback):
        """Prints the per-round eval line the way CloudWatch shows it (tab -> #011)."""

        def __init__(self) -> None:
            super().__init__()
            self.lines: list[str] = []

        def after_iteration(self, model: Any, epoch: int, evals_log: dict) -> bool:
            if not evals_log:
                return False
            if epoch == 0 and es_rounds:
                data_name = list(evals_log)[-1]
                metric_name = es_target[1] or list(evals_log[data_name])[-1]
                target = f"{es_target[0] or data_name}-{metric_name}"
                if len(evals_log[data_name]) > 1 and legacy:
                    log(f"Multiple eval metrics have been passed: '{target}' will be used for early stopping.")
                log(f"Will train until {target} hasn't improved in {es_rounds} rounds.")
            parts = [f"[{epoch}]"]
            for data, metrics in evals_log.items():
                for name, history in metrics.items():
                    score = history[-1][0] if isinstance(history[-1], tuple) else history[-1]
                    parts.append(f"{data}-{name}:{_fmt_score(float(score), legacy)}")
            line = "#011".join(parts)
            self.lines.append(line)
            log(line)
            return False

    return Monitor()


def _to_dmatrix(dataset: _data.Dataset, nthread: int) -> Any:
    import xgboost as xgb

    kwargs: dict[str, Any] = {"label": dataset.labels, "nthread": nthread}
    if dataset.weights is not None:
        kwargs["weight"] = dataset.weights
    if dataset.qid is not None:
        kwargs["qid"] = dataset.qid
    return xgb.DMatrix(dataset.features, missing=math.nan, **kwargs)


def _load_channel(
    job_dir: pathlib.Path, channel: str, fmt: str, csv_weights: int, log: Callable[[str], None]
) -> _data.Dataset | None:
    root = job_dir / "input" / "data" / channel
    files = _data.channel_files(root)
    if not files:
        return None
    if fmt == _data.CSV:
        data, _ = _data.load_csv(files, channel, root, log, min_cols=2 + csv_weights)
        if data.shape[0] == 0:
            return None
        if csv_weights == 1:
            return _data.Dataset(features=data[:, 2:], labels=data[:, 0], weights=data[:, 1])
        return _data.Dataset(features=data[:, 1:], labels=data[:, 0])
    if fmt == _data.LIBSVM:
        dataset = _data.load_libsvm(files, channel, root)
        return dataset if dataset.num_rows else None
    if fmt == _data.PARQUET:
        data = _data.load_parquet(files, channel)
        return _data.Dataset(features=data[:, 1:], labels=data[:, 0]) if data.shape[0] else None
    dataset = _data.load_recordio(files, channel, root, require_labels=True)
    return dataset if dataset.num_rows else None


def train(
    job_dir: pathlib.Path, log: Callable[[str], None], version: str = DEFAULT_VERSION, cluster: dict | None = None
) -> None:
    """Train on this host's channels; with ``cluster`` (InstanceCount > 1) as one xgboost collective job.

    ``cluster`` = {"workers": [hosts with data, sorted], "rendezvous": file where the first worker publishes
    its tracker's address}. A host outside ``workers`` logs the container's message and sits out; only the
    first worker (rank 0, the master) saves the model.
    """
    import xgboost as xgb

    info = _log_line("INFO")
    warn = _log_line("WARNING")
    legacy = is_legacy(version)
    config = job_dir / "input" / "config"
    raw_hp = _data.read_json(config / "hyperparameters.json", {})
    data_config = _data.read_json(config / "inputdataconfig.json", {})
    resource = _data.read_json(config / "resourceconfig.json", {"current_host": "algo-1", "hosts": ["algo-1"]})

    log(info("Running XGBoost Sagemaker in algorithm mode"))
    hp = build_spec(version).validate(raw_hp)
    _check_dependencies(hp)
    if not isinstance(data_config, dict) or "train" not in data_config:
        raise AlgorithmClientError("Missing required channel: train")
    for name in data_config:
        if name not in ("train", "validation"):
            raise AlgorithmClientError(f"Extraneous channel found: {name}")
    if "_kfold" in hp:
        raise AlgorithmClientError("_kfold cross-validation is not supported by the local SageMaker emulator.")

    fmt = _data.xgboost_training_format(data_config["train"].get("ContentType"))
    if "validation" in data_config:
        _data.xgboost_training_format(data_config["validation"].get("ContentType"))
    if not legacy:
        log(info("Determined 0 GPU(s) available on the instance."))

    csv_weights = int(hp.get("csv_weights", 0))
    train_set = _load_channel(job_dir, "train", fmt, csv_weights, lambda m: log(info(m)))
    val_set = None
    if "validation" in data_config:
        val_set = _load_channel(job_dir, "validation", fmt, csv_weights, lambda m: log(info(m)))
    hosts = resource.get("hosts") or ["algo-1"]
    current_host = resource.get("current_host", "algo-1")
    if cluster is not None:
        rows = [f"{train_set.num_rows if train_set else 0} rows in channel train"]
        if "validation" in data_config:
            rows.append(f"{val_set.num_rows if val_set else 0} rows in channel validation")
        log(info(f"Host {current_host} read {' and '.join(rows)}."))
        if current_host not in cluster["workers"]:
            log(info(f"Host {current_host} does not have data. Will broadcast to cluster and this host "
                     f"{current_host} will not be used in distributed training."))  # fmt: skip
            return
    if train_set is None:
        raise AlgorithmClientError(f"No data in training channel path {_data.container_path('train')}")
    if "validation" in data_config and val_set is None:
        raise AlgorithmClientError(f"No data in validation channel path {_data.container_path('validation')}")
    if cluster is None:
        log(info("Single node training."))
        nthread = int(hp.get("nthread", 1))
    else:
        workers = cluster["workers"]
        log(info(f"Distributed node training with {len(workers)} hosts: {workers}"))
        # Every host shares this machine's cores, as the container gives each instance its own.
        nthread = int(hp.get("nthread", max(1, (os.cpu_count() or 1) // len(hosts))))
    num_round = hp.pop("num_round")
    early_stopping_rounds = hp.pop("early_stopping_rounds", None)
    eval_metric: list[str] | None = hp.pop("eval_metric", None)
    tuning_metric = hp.pop("_tuning_objective_metric", None)
    for key in _CONTAINER_KEYS:
        hp.pop(key, None)

    params: dict[str, Any] = {k: v for k, v in hp.items() if k not in _DROPPED_KEYS}
    if "silent" in hp:
        log(warn("Parameter 'silent' is deprecated in xgboost 1.0 (use verbosity); ignored."))
    params["nthread"] = nthread
    params.setdefault("verbosity", 0)
    objective = params.get("objective", "reg:squarederror")
    if objective == "reg:linear":
        # xgboost >= 1.0 only warns and trains reg:squarederror; xgboost 3.x rejects the old name.
        log(warn("reg:linear is now deprecated in favor of reg:squarederror."))
        objective = "reg:squarederror"
    params["objective"] = objective
    if params.get("tree_method") == "gpu_hist":
        log(warn("tree_method gpu_hist requested; no GPU in the local emulator, training with hist on CPU."))
        params["tree_method"] = "hist"
    if "updater" in params:
        params["updater"] = ",".join(params["updater"])
    for key in ("monotone_constraints", "interaction_constraints"):
        if key in params:
            params[key] = json.dumps(list(params[key])).replace(" ", "")
            if key == "monotone_constraints":
                params[key] = "(" + params[key][1:-1] + ")"
    for key in ("deterministic_histogram",):
        params.pop(key, None)

    # Metrics: user's list (+ HPO objective metric), split between xgboost-native and container-computed.
    requested = list(eval_metric or [])
    tuning_names: list[str] = []
    if tuning_metric:
        tuning_names = tuning_metric.split(":", 1)[-1].split(",")
        log(info(f"Setting up HPO optimized metric to be : {tuning_metric.split(':', 1)[-1]}"))
        requested = sorted(set(requested) | set(tuning_names)) if requested else tuning_names
    native = [m for m in requested if m not in CONTAINER_METRICS]
    custom = [m for m in requested if m in CONTAINER_METRICS]
    if native:
        params["eval_metric"] = native
    elif not custom:
        default = _default_metric(objective, version)
        if default:
            params["eval_metric"] = default
    custom_metric = _container_metric_fn(custom, objective) if custom else None

    if legacy:
        log(info(f"Train matrix has {train_set.num_rows} rows"))
    else:
        log(info(f"Train matrix has {train_set.num_rows} rows and {train_set.num_cols} columns"))
    if val_set is not None:
        log(info(f"Validation matrix has {val_set.num_rows} rows"))

    # Which (data, metric) early stopping watches, by image generation.
    es_data = es_metric = None
    if early_stopping_rounds:
        if legacy:
            es_data = "validation" if val_set is not None else "train"
            names = native + custom
            es_metric = names[-1] if names else None
        elif val_set is not None and (tuning_names or eval_metric):
            es_data = "validation"
            es_metric = (tuning_names or eval_metric)[-1]
        else:
            why = "there is no validation channel" if val_set is None else "eval_metric is not set"
            log(
                warn(
                    f"early_stopping_rounds={early_stopping_rounds} has no effect because {why} "
                    "(same as the SageMaker XGBoost 1.3-1+ container)."
                )
            )
            early_stopping_rounds = None

    from scipy.sparse import issparse

    sparse_sets = val_set is not None and issparse(train_set.features) and issparse(val_set.features)
    if sparse_sets and val_set.num_cols != train_set.num_cols:
        # sparse files only name the columns they use; give both matrices the same width
        width = max(val_set.num_cols, train_set.num_cols)
        for ds in (train_set, val_set):
            ds.features.resize((ds.num_rows, width))
    collective = _Collective(cluster, current_host, log) if cluster else contextlib.nullcontext()
    try:
        with collective:
            dtrain = _to_dmatrix(train_set, nthread)
            evals = [(dtrain, "train")]
            if val_set is not None:
                if val_set.num_cols != train_set.num_cols and fmt == _data.CSV:
                    raise AlgorithmClientError(
                        f"Validation data has {val_set.num_cols} feature columns but training data has "
                        f"{train_set.num_cols}; both channels must have the same columns (label first)."
                    )
                evals.append((_to_dmatrix(val_set, nthread), "validation"))
            monitor = _make_monitor(log, legacy, early_stopping_rounds, [es_data, es_metric])
            callbacks: list[Any] = [monitor]
            stopper = None
            if early_stopping_rounds:
                maximize = (es_metric or "").split("@")[0] in MAXIMIZE_METRICS
                stopper = xgb.callback.EarlyStopping(
                    rounds=early_stopping_rounds, data_name=es_data, metric_name=es_metric,
                    maximize=maximize, save_best=not legacy,
                )  # fmt: skip
                callbacks.append(stopper)
            bst = xgb.train(
                params, dtrain, num_boost_round=num_round, evals=evals, verbose_eval=False,
                callbacks=callbacks, custom_metric=custom_metric,
            )  # fmt: skip
    except AlgorithmClientError:
        raise
    except Exception as e:
        text = str(e)
        if any(marker in text for marker in CUSTOMER_ERRORS):
            raise AlgorithmClientError(text) from e
        raise AlgorithmError(f"XGB train call failed with exception:\n {text}") from e

    if stopper is not None and stopper.stopping_history:
        best = bst.best_iteration
        rounds_done = len(monitor.lines)
        if rounds_done < num_round:
            log("Stopping. Best iteration:")
            log(monitor.lines[best] if best < len(monitor.lines) else f"[{best}]")
        if legacy and best + 1 < bst.num_boosted_rounds():
            # Old images served with best_ntree_limit; keep only the best trees so serving matches.
            best_attrs = {k: bst.attr(k) for k in ("best_iteration", "best_score")}
            bst = bst[: best + 1]
            bst.set_attr(**best_attrs)

    if cluster is not None and not collective.is_master:
        log(info(f"Host {current_host} is not the master; the master host {cluster['workers'][0]} saves the model."))
        return
    model_dir = job_dir / "model"
    model_dir.mkdir(parents=True, exist_ok=True)
    target = model_dir / MODEL_NAME
    tmp = model_dir / f".{MODEL_NAME}.tmp.ubj"
    try:
        bst.save_model(str(tmp))
        os.replace(tmp, target)
    except Exception as e:
        tmp.unlink(missing_ok=True)
        raise AlgorithmError(f"Failed to save model: {e}") from e


class _Collective:
    """xgboost's collective for one host of a distributed job, as the container's RabitHelper sets it up.

    The first worker (sorted hosts, algo-1 unless it has no data) runs the tracker, as the container's master
    does, and publishes the tracker's address in the rendezvous file (written whole, then renamed) - the
    emulator's stand-in for the master's DNS name and port 9099. The others wait for that file, then join.
    """

    def __init__(self, cluster: dict, host: str, log: Callable[[str], None]):
        self.cluster = cluster
        self.host = host
        self.log = log
        self.tracker: Any = None
        self.is_master = host == cluster["workers"][0]
        self._context: Any = None

    def __enter__(self) -> _Collective:
        import time

        from xgboost import collective
        from xgboost.tracker import RabitTracker

        rendezvous = pathlib.Path(self.cluster["rendezvous"])
        workers = self.cluster["workers"]
        timeout = int(self.cluster.get("timeout", 300))
        if self.is_master:
            self.tracker = RabitTracker(n_workers=len(workers), host_ip="127.0.0.1", port=0, sortby="task",
                                        timeout=timeout)  # fmt: skip
            self.tracker.start()
            args = self.tracker.worker_args()
            staging = rendezvous.with_suffix(".tmp")
            staging.write_text(json.dumps(args))
            os.replace(staging, rendezvous)
            self.log(f"[{self.host}] Rabit tracker started on {args['dmlc_tracker_uri']}:{args['dmlc_tracker_port']}")
        deadline = time.monotonic() + timeout
        while not rendezvous.exists():
            if time.monotonic() > deadline:
                raise AlgorithmError(f"Host {self.host}: the master host {workers[0]} did not start the tracker.")
            time.sleep(0.05)
        args = json.loads(rendezvous.read_text())
        # Ranks follow the hosts' order (the tracker sorts by task id), padded so algo-10 comes after algo-9.
        task_id = f"{workers.index(self.host):06d}-{self.host}"
        self._context = collective.CommunicatorContext(**args, dmlc_task_id=task_id, dmlc_timeout=timeout)
        self._context.__enter__()
        self.log(
            f"[{self.host}] Connected to the cluster as rank {collective.get_rank()} of {collective.get_world_size()}"
        )
        return self

    def __exit__(self, *exc: object) -> None:
        if self._context is not None:
            self._context.__exit__(*exc)
        if self.tracker is not None and exc[0] is None:
            self.tracker.wait_for(60)


# ----------------------------------------------------------------------------------------------- serving

_SINGLE_ACCEPTS = ("application/json", "application/jsonlines", "application/x-recordio-protobuf", "text/csv")


def _media(value: str | None) -> str:
    return value.split(";", 1)[0].strip().lower() if value else ""


class XGBoostPredictor(Predictor):
    """Loaded ``xgboost-model``; ``invoke`` is thread-safe (``inplace_predict`` is) and allocation-light."""

    algorithm = "xgboost"

    def __init__(self, booster: Any, source: pathlib.Path, version: str = DEFAULT_VERSION) -> None:
        self.booster = booster
        self.source = source
        self.version = version  # the serving image's container version: it picks the answer's format
        self.feature_count: int | None = int(booster.num_features()) or None
        config = json.loads(booster.save_config())
        self.objective: str = config["learner"]["objective"]["name"]
        self.num_class = int(config["learner"]["learner_model_param"].get("num_class", "0") or 0)

    # -- parsing -------------------------------------------------------------------------------
    def _parse_csv(self, text: str) -> np.ndarray:
        lines = text.split("\n")
        first = lines[0]
        if "," in first:
            delimiter = ","
        elif "\t" in first:
            delimiter = "\t"
        elif ";" in first:
            delimiter = ";"
        elif "|" in first:
            delimiter = "|"
        elif " " in first.strip():
            delimiter = " "
        else:
            delimiter = ","
        if len(lines) == 1:
            cells = first.split(delimiter)
            try:
                return np.array([float(c) if c.strip() else math.nan for c in cells], dtype=np.float32)[None, :]
            except ValueError:
                pass  # fall through to the row-by-row diagnosis below
        rows = []
        width = None
        for i, line in enumerate(lines, 1):
            line = line.rstrip("\r")
            cells = line.split(delimiter)
            if width is None:
                width = len(cells)
            elif len(cells) != width:
                raise ModelInvocationError(
                    400,
                    "Unable to evaluate payload provided: Loading csv data failed with Exception, please ensure "
                    f"data is in csv format: row {i} has {len(cells)} values but row 1 has {width}.",
                )
            try:
                rows.append([float(c) if c.strip() else math.nan for c in cells])
            except ValueError:
                bad = next((j, c) for j, c in enumerate(cells, 1) if c.strip() and not _data._looks_like_number(c))
                raise ModelInvocationError(
                    400,
                    "Unable to evaluate payload provided: Loading csv data failed with Exception, please ensure "
                    f"data is in csv format: could not convert string to float: {bad[1].strip()!r} "
                    f"(row {i}, column {bad[0]}).",
                ) from None
        return np.asarray(rows, dtype=np.float32)

    def _parse_libsvm(self, text: str) -> Any:
        from scipy.sparse import csr_matrix

        indptr = [0]
        indices: list[int] = []
        values: list[float] = []
        for i, line in enumerate(text.split("\n"), 1):
            for token in line.split():
                if ":" not in token:
                    continue  # the leading label (if any) is ignored, like the container
                key, _, val = token.partition(":")
                try:
                    indices.append(int(key))
                    values.append(float(val))
                except ValueError:
                    raise ModelInvocationError(
                        400,
                        "Unable to evaluate payload provided: Loading libsvm data failed with Exception, please "
                        f"ensure data is in libsvm format: bad token {token[:40]!r} on row {i}.",
                    ) from None
            indptr.append(len(indices))
        n_cols = max(indices) + 1 if indices else 0
        if self.feature_count and n_cols > self.feature_count + 1:
            raise ModelInvocationError(
                400,
                f"Unable to evaluate payload provided: Feature size of libsvm inference data {n_cols} is larger "
                f"than feature size of trained model {self.feature_count}.",
            )
        width = max(n_cols, self.feature_count or 0)
        return csr_matrix(
            (np.asarray(values, dtype=np.float32), np.asarray(indices, dtype=np.int64), np.asarray(indptr)),
            shape=(len(indptr) - 1, width),
        )[:, : self.feature_count or width]

    def _parse_json(self, text: str, lines: bool) -> np.ndarray:
        try:
            if lines:
                doc = [json.loads(line) for line in text.split("\n") if line.strip()]
            else:
                doc = json.loads(text)
            if isinstance(doc, dict):
                doc = doc.get("instances", doc.get("features"))
            rows = []
            for row in doc if isinstance(doc, list) else [None]:
                if isinstance(row, dict):
                    row = row.get("features", row.get("values"))
                rows.append(row)
            if rows and not isinstance(rows[0], list):
                rows = [rows]  # a single bare row: [1.0, 2.0, ...]
            return np.asarray(rows, dtype=np.float32)
        except (ValueError, TypeError) as e:
            raise ModelInvocationError(
                400,
                "Unable to evaluate payload provided: Loading json data failed with Exception, please send "
                f'{{"instances": [[f1, f2, ...], ...]}} or a list of rows: {e}',
            ) from None

    def _check_width(self, x: np.ndarray, kind: str) -> np.ndarray:
        # Strict, like the container's check for pickled models; (xgboost 1.7 would silently treat
        # missing trailing columns as missing values for native models - a trap we do not copy).
        expected = self.feature_count
        if x.ndim != 2 or expected is None or x.shape[1] == expected:
            return x
        raise ModelInvocationError(
            400,
            f"Unable to evaluate payload provided: Feature size of {kind} inference data {x.shape[1]} is not "
            f"consistent with feature size of trained model {expected}.",
        )

    def _parse_recordio(self, body: bytes) -> Any:
        """``features["values"]`` of each record: a dense matrix, or CSR when the records carry ``keys``."""
        from include.formats import recordio

        try:
            matrix = recordio.to_matrix([("request body", body)])
        except recordio.RecordIOError as e:
            raise ModelInvocationError(400, f"Unable to evaluate payload provided: {e}") from None
        if not matrix.sparse:
            return self._check_width(matrix.features, "recordio-protobuf")
        features = matrix.features
        if self.feature_count and features.shape[1] < self.feature_count:
            features.resize((features.shape[0], self.feature_count))
        return features

    # -- invoke --------------------------------------------------------------------------------
    def invoke(self, body: bytes, content_type: str | None, accept: str | None, multi_model: bool) -> tuple[bytes, str]:
        ctype = _media(content_type)
        acc = _media(accept)
        if multi_model:
            if not acc or acc == "*/*":
                acc = "application/json"
        elif not acc or acc == "*/*":
            acc = "text/csv"
        if not body:
            return b"", acc  # the container answers 204 No Content
        if ctype in ("application/x-recordio-protobuf", "recordio-protobuf"):
            if multi_model:  # the MME handler decodes only CSV and libsvm
                raise ModelInvocationError(415, "Content type must be either libsvm or csv.")
            x = self._parse_recordio(body)  # binary: never decoded as text
        else:
            x = self._parse_text(body, ctype, content_type)
        try:
            preds = self.booster.inplace_predict(x, validate_features=False)
        except Exception as e:
            raise ModelInvocationError(400, f"Unable to evaluate payload provided: {e}") from None
        if not multi_model and self.version in COMMA_JOINED_CSV_VERSIONS:
            # softprob rows render as Python lists: "[0.1, 0.2, 0.7],[...]", as those images answer.
            return ",".join(map(str, preds.tolist())).encode(), "text/csv"
        return self._encode(preds.tolist(), acc, accept, multi_model)

    def _parse_text(self, body: bytes, ctype: str, content_type: str | None) -> Any:
        try:
            text = body.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise ModelInvocationError(400, "Unable to evaluate payload provided: payload is not UTF-8") from None
        if ctype in ("text/csv", "csv"):
            x = self._check_width(self._parse_csv(text), "csv")
        elif ctype in ("", "libsvm", "text/libsvm", "text/x-libsvm"):
            x = self._parse_libsvm(text)  # libsvm is the container's default when Content-Type is absent
        elif ctype in ("application/json", "json"):
            x = self._check_width(self._parse_json(text, lines=False), "json")
        elif ctype in ("application/jsonlines", "application/json-lines", "jsonlines"):
            x = self._check_width(self._parse_json(text, lines=True), "json")
        else:
            raise ModelInvocationError(415, f"Content-type {content_type} is not supported.")
        return x

    @staticmethod
    def _encode(preds: list, acc: str, accept: str | None, multi_model: bool) -> tuple[bytes, str]:
        if multi_model:
            if acc in ("text/csv", "csv"):
                return ",".join(map(str, preds)).encode(), "text/csv"
            if acc in ("application/json", "json"):
                return json.dumps(preds).encode(), "application/json"
            raise ModelInvocationError(
                415,
                f"Encoding to accept type {accept} failed with exception: {accept} is not an accepted Accept "
                "type. Please choose one of the following: ['text/csv', 'application/json'].",
            )
        if acc == "text/csv":
            if preds and isinstance(preds[0], list):
                out = "".join(",".join(map(str, row)) + "\n" for row in preds)
            else:
                out = "".join(f"{p}\n" for p in preds)
            return out.encode(), "text/csv; charset=utf-8"
        if acc == "application/json":
            return json.dumps({"predictions": [{"score": p} for p in preds]}).encode(), "application/json"
        if acc == "application/jsonlines":
            return "".join(json.dumps({"score": p}) + "\n" for p in preds).encode(), "application/jsonlines"
        if acc == "application/x-recordio-protobuf":
            raise ModelInvocationError(
                406, "Accept type application/x-recordio-protobuf is not supported by the local SageMaker emulator."
            )
        raise ModelInvocationError(
            406,
            f"Accept type {accept} is not supported. Please use supported accept types: {list(_SINGLE_ACCEPTS)}.",
        )


def load(model_dir: pathlib.Path, version: str = DEFAULT_VERSION) -> XGBoostPredictor:
    """Load like the container: ignore dotfiles, take ``xgboost-model`` (else the first file),
    accept native xgboost formats (JSON, UBJSON) and pickled Boosters (through the restricted unpickler
    of :mod:`._pickled_booster`, never ``pickle.load``); predict with one thread."""
    import xgboost as xgb

    files = sorted(p for p in model_dir.iterdir() if p.is_file() and not p.name.startswith("."))
    path = next((p for p in files if p.name == MODEL_NAME), files[0] if files else None)
    if path is None:
        raise ModelInvocationError(500, f"Unable to load model: no model file found in {model_dir.name}")
    try:
        booster = xgb.Booster()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Unknown file format: ``. Using UBJSON as a guess."
            booster.load_model(str(path))
    except Exception as native_error:
        try:
            # 1.0-1/1.2-x artifacts are pickled Boosters; a pickle from a client is never pickle.load()ed.
            booster = load_pickled_booster(path.read_bytes())
        except Exception as pickle_error:
            raise ModelInvocationError(
                500,
                f"Unable to load model: Model {path.name} cannot be loaded:\nPickle load error={pickle_error}"
                f"\nXGB load model error={native_error}",
            ) from None
    booster.set_param("nthread", 1)
    return XGBoostPredictor(booster, path, version)
