"""SageMaker built-in Linear Learner: num_models linear models trained at once, the best one served.

Training input: RecordIO-protobuf (``application/x-recordio-protobuf``, the default when a channel has no
ContentType; float32 tensors only, dense or sparse, read by :mod:`include.formats.recordio`) or ``text/csv``
(label first, no header) in ``train`` and optional ``validation``/``test`` channels. Hyperparameters are
validated with Linear Learner's names and the first-party algorithms' jsonschema-style messages
(``Additional properties are not allowed ('foo' was unexpected)``, ``'predictor_type' is a required property``).

How it trains (vectorised numpy, seeded, deterministic):

* data normalised on the first ``num_point_for_scaler`` rows (``normalize_data``), regression labels too
  (``normalize_label``); weights of all ``num_models`` models (auto: 32) live in one (d, models, outputs)
  tensor, so a mini-batch step updates every model with one matrix product;
* model 0 uses the hyperparameters as given; the others vary whatever is ``auto`` among ``learning_rate``
  and ``wd``/``l1`` (a fixed ``learning_rate`` is varied by 0.3x..3x around it);
* ``loss`` per ``predictor_type``: squared, absolute, huber, eps-insensitive squared/absolute and quantile for
  ``regressor``; logistic and hinge for ``binary_classifier``; softmax for ``multiclass_classifier``;
  ``optimizer`` adam (auto), sgd (with ``momentum``) or rmsprop; a step learning-rate schedule;
* each epoch logs ``#metrics`` per model and ``#quality_metric`` lines for the leading model; every model keeps
  its best epoch; training stops early when no model improved for ``early_stopping_patience`` epochs;
* the served model is chosen on the validation channel as the container reports it: regression by the
  objective loss, binary classification by ``binary_classifier_model_selection_criteria`` after calibrating
  each model's threshold there; without validation data, on the training data (the container's documents say
  choosing is "not possible" then and are silent on what it keeps);
* final ``#quality_metric`` lines for train/validation/test (``test absolute_loss``, ``validation mse``, ...)
  feed the platform's metric regexes, hence ``FinalMetricDataList``.

Model artifact (EMULATOR-SPECIFIC): ``model_algo-1`` is a JSON document holding the chosen model's weights,
bias, the data/label normalisation and the classification threshold. The real container writes an MXNet
parameter archive under the same name; artifacts are not interchangeable between the emulator and AWS.

Serving: ``text/csv``, ``application/json`` (``{"instances": [{"features": [...]}]}`` or a list of rows),
``application/jsonlines`` and ``application/x-recordio-protobuf`` in; ``application/json`` (default),
``application/jsonlines``, ``text/csv`` and ``application/x-recordio-protobuf`` out, with ``score``
(+ ``predicted_label`` for classifiers) per record (in recordIO, float32 tensors under ``label``).
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np

from include.formats import recordio

from . import _data
from ._base import Predictor
from ._errors import AlgorithmClientError, AlgorithmError, ModelInvocationError

MODEL_FILE = "model_algo-1"
FORMAT_TAG = "sagemaker-emulator/linear-learner/1"

_LOSSES = ["auto", "logistic", "squared_loss", "absolute_loss", "hinge_loss", "eps_insensitive_squared_loss",
           "eps_insensitive_absolute_loss", "quantile_loss", "huber_loss", "softmax_loss"]  # fmt: skip
_REGRESSION_LOSSES = {"auto", "squared_loss", "absolute_loss", "eps_insensitive_squared_loss",
                      "eps_insensitive_absolute_loss", "quantile_loss", "huber_loss"}  # fmt: skip
_BINARY_LOSSES = {"auto", "logistic", "hinge_loss"}
_MULTI_LOSSES = {"auto", "softmax_loss"}


def _schema_error(detail: str) -> AlgorithmClientError:
    return AlgorithmClientError(
        "Unable to initialize the algorithm. Failed to validate input hyperparameters (caused by "
        f"ValidationError)\n\nCaused by: {detail}"
    )


def _bool(name: str, auto: bool = False) -> Callable[[str], bool | str]:
    def parse(v: str) -> bool | str:
        if v.lower() in ("true", "1"):
            return True
        if v.lower() in ("false", "0"):
            return False
        if auto and v.lower() == "auto":
            return "auto"
        choices = "['true', 'false', 'auto']" if auto else "['true', 'false']"
        raise _schema_error(f"'{v}' is not one of {choices} (hyperparameter {name})")

    return parse


def _num(name: str, kind: type, lo: float | None = None, hi: float | None = None, auto: bool = False,
         lo_open: bool = False) -> Callable[[str], Any]:  # fmt: skip
    def parse(v: str) -> Any:
        if auto and v.lower() == "auto":
            return "auto"
        try:
            x = kind(v)
        except ValueError:
            expected = "an integer" if kind is int else "a number"
            raise _schema_error(f"'{v}' is not valid under any of the given schemas ({name} must be {expected}"
                                f"{' or auto' if auto else ''})") from None  # fmt: skip
        if (lo is not None and (x < lo or (lo_open and x == lo))) or (hi is not None and x > hi):
            bound = f"{'>' if lo_open else '>='} {lo}" if lo is not None else ""
            bound += (" and " if bound and hi is not None else "") + (f"<= {hi}" if hi is not None else "")
            raise _schema_error(f"{v} is not valid for {name}: must be {bound}")
        return x

    return parse


def _choice(name: str, choices: list[str]) -> Callable[[str], str]:
    def parse(v: str) -> str:
        if v not in choices:
            raise _schema_error(f"'{v}' is not one of {choices} (hyperparameter {name})")
        return v

    return parse


_SPEC: dict[str, Callable[[str], Any]] = {
    "predictor_type": _choice("predictor_type", ["binary_classifier", "multiclass_classifier", "regressor"]),
    "feature_dim": _num("feature_dim", int, 1, auto=True),
    "num_classes": _num("num_classes", int, 3, 1_000_000),
    "mini_batch_size": _num("mini_batch_size", int, 1),
    "epochs": _num("epochs", int, 1),
    "learning_rate": _num("learning_rate", float, 0, lo_open=True, auto=True),
    "l1": _num("l1", float, 0, auto=True),
    "wd": _num("wd", float, 0, auto=True),
    "use_bias": _bool("use_bias"),
    "use_lr_scheduler": _bool("use_lr_scheduler"),
    "normalize_data": _bool("normalize_data"),
    "normalize_label": _bool("normalize_label", auto=True),
    "num_point_for_scaler": _num("num_point_for_scaler", int, 1),
    "loss": _choice("loss", _LOSSES),
    "optimizer": _choice("optimizer", ["auto", "sgd", "adam", "rmsprop"]),
    "early_stopping_patience": _num("early_stopping_patience", int, 1),
    "early_stopping_tolerance": _num("early_stopping_tolerance", float, 0, lo_open=True),
    "binary_classifier_model_selection_criteria": _choice(
        "binary_classifier_model_selection_criteria",
        ["accuracy", "f_beta", "precision_at_target_recall", "recall_at_target_precision", "loss_function"],
    ),
    "target_recall": _num("target_recall", float, 0, 1),
    "target_precision": _num("target_precision", float, 0, 1),
    "positive_example_weight_mult": lambda v: (
        v if v in ("auto", "balanced") else _num("positive_example_weight_mult", float, 0, lo_open=True)(v)
    ),
    "num_models": _num("num_models", int, 1, auto=True),
    "num_calibration_samples": _num("num_calibration_samples", int, 1),
    "init_method": _choice("init_method", ["uniform", "normal"]),
    "init_scale": _num("init_scale", float, 0, lo_open=True),
    "init_sigma": _num("init_sigma", float, 0, lo_open=True),
    "init_bias": _num("init_bias", float),
    "momentum": _num("momentum", float, 0, 1, auto=True),
    "beta_1": _num("beta_1", float, 0, 1, auto=True),
    "beta_2": _num("beta_2", float, 0, 1, auto=True),
    "bias_lr_mult": _num("bias_lr_mult", float, 0, lo_open=True, auto=True),
    "bias_wd_mult": _num("bias_wd_mult", float, 0, auto=True),
    "lr_scheduler_step": _num("lr_scheduler_step", int, 1, auto=True),
    "lr_scheduler_factor": _num("lr_scheduler_factor", float, 0, 1, auto=True),
    "lr_scheduler_minimum_lr": _num("lr_scheduler_minimum_lr", float, 0, auto=True),
    "unbias_data": _bool("unbias_data", auto=True),
    "unbias_label": _bool("unbias_label", auto=True),
    "margin": _num("margin", float, 0),
    "quantile": _num("quantile", float, 0, 1, lo_open=True),
    "loss_insensitivity": _num("loss_insensitivity", float, 0),
    "huber_delta": _num("huber_delta", float, 0),
    "f_beta": _num("f_beta", float, 0, lo_open=True),
    "accuracy_top_k": _num("accuracy_top_k", int, 1),
    "balance_multiclass_weights": _bool("balance_multiclass_weights"),
    "_kvstore": lambda v: v,
    "_num_gpus": lambda v: v,
    "_num_kv_servers": lambda v: v,
    "_log_level": lambda v: v,
    "_tuning_objective_metric": lambda v: v,
    "seed": _num("seed", int),
}


def validate_hyperparameters(raw: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(k for k in raw if k not in _SPEC)
    if unknown:
        names = ", ".join(repr(k) for k in unknown)
        verb = "was" if len(unknown) == 1 else "were"
        raise _schema_error(f"Additional properties are not allowed ({names} {verb} unexpected)")
    if "predictor_type" not in raw:
        raise _schema_error("'predictor_type' is a required property")
    hp = {k: _SPEC[k](str(v).strip()) for k, v in raw.items()}
    ptype = hp["predictor_type"]
    if ptype == "multiclass_classifier" and "num_classes" not in hp:
        raise AlgorithmClientError(
            "Unable to initialize the algorithm. The hyperparameter 'num_classes' is required when "
            "predictor_type is 'multiclass_classifier'."
        )
    loss = hp.get("loss", "auto")
    allowed = {"regressor": _REGRESSION_LOSSES, "binary_classifier": _BINARY_LOSSES,
               "multiclass_classifier": _MULTI_LOSSES}[ptype]  # fmt: skip
    if loss not in allowed:
        raise AlgorithmClientError(
            f"Unable to initialize the algorithm. Loss '{loss}' is not compatible with predictor_type "
            f"'{ptype}' (allowed: {sorted(allowed)})."
        )
    return hp


# ----------------------------------------------------------------------------------------------- training

_FLOAT32_ONLY = frozenset({"float32"})
# Variants tried beside the configured model (model 0) for every hyperparameter left on "auto":
# learning rate x (wd, l1). Vectorised: all models are columns of one weight tensor.
_LR_GRID = (0.1, 0.01, 0.3, 0.03)
_LR_FACTORS = (1.0, 0.3, 3.0, 0.1)  # "nearby" learning rates when the user fixed learning_rate
_REG_GRID = ((0.0, 0.0), (1e-4, 0.0), (1e-3, 0.0), (1e-2, 0.0), (0.0, 1e-4), (0.0, 1e-3), (1e-4, 1e-4), (1e-3, 1e-3))
_DEFAULT_NUM_MODELS = 32
_MAX_PARAMETERS = 5_000_000  # all models' weights live in memory at once, several copies (optimiser state)  # what the container trained with num_models=auto in the observed job logs


def _prefix() -> str:
    return datetime.now(UTC).strftime("[%m/%d/%Y %H:%M:%S INFO 140000000000000]")


def _objective_name(ptype: str, loss: str) -> str:
    if ptype == "binary_classifier":
        return "hinge_loss_objective" if loss == "hinge_loss" else "binary_classification_cross_entropy_objective"
    if ptype == "multiclass_classifier":
        return "multiclass_cross_entropy_objective"
    return {"absolute_loss": "absolute_loss_objective", "huber_loss": "huber_loss_objective",
            "quantile_loss": "quantile_loss_objective",
            "eps_insensitive_squared_loss": "eps_insensitive_squared_loss_objective",
            "eps_insensitive_absolute_loss": "eps_insensitive_absolute_loss_objective"}.get(
        loss, "mse_objective")  # fmt: skip


def _channel_format(name: str, cfg: dict[str, Any]) -> str:
    """CSV or RecordIO-protobuf (the default when ContentType is absent), as the container decides."""
    content_type = cfg.get("ContentType") or "application/x-recordio-protobuf"
    media, params = _data.parse_media_type(content_type)
    if media in ("text/csv", "csv"):
        if params.get("label_size", "1") != "1":
            raise AlgorithmClientError(f"Unable to read data channel '{name}': label_size must be 1.")
        return _data.CSV
    if media in ("application/x-recordio-protobuf", "recordio-protobuf"):
        return _data.RECORDIO_PROTOBUF
    raise AlgorithmClientError(
        f"Unable to read data channel '{name}'. Requested content-type is '{media}'. Linear Learner reads "
        "'application/x-recordio-protobuf' (the default) or 'text/csv'."
    )


def _load(job_dir: pathlib.Path, channel: str, fmt: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(features, labels) of a channel, float64, or None when it has no data."""
    root = job_dir / "input" / "data" / channel
    files = _data.channel_files(root)
    if not files:
        return None
    if fmt == _data.CSV:
        data, _ = _data.load_csv(files, channel, root, lambda m: None, min_cols=2)
        return (data[:, 1:], data[:, 0]) if data.shape[0] else None
    dataset = _data.load_recordio(files, channel, root, require_labels=True, allowed_kinds=_FLOAT32_ONLY)
    if dataset.num_rows == 0:
        return None
    features = dataset.features
    if not isinstance(features, np.ndarray):  # sparse records: Linear Learner works on dense mini-batches here
        if features.shape[0] * features.shape[1] > 50_000_000:
            raise AlgorithmClientError(
                f"Channel '{channel}': sparse recordio data of shape {features.shape} is too large for the local "
                "emulator's dense Linear Learner (limit 50M cells)."
            )
        features = features.toarray()
    return np.asarray(features, dtype=np.float64), dataset.labels


class _Model:
    """The learned linear model in original feature space terms (what gets saved)."""

    def __init__(self, meta: dict[str, Any]) -> None:
        self.meta = meta
        self.ptype: str = meta["predictor_type"]
        self.coef = np.asarray(meta["coef"], dtype=np.float64)  # (k, d) in normalised space
        self.intercept = np.asarray(meta["intercept"], dtype=np.float64)
        self.x_mean = np.asarray(meta["x_mean"], dtype=np.float64)
        self.x_scale = np.asarray(meta["x_scale"], dtype=np.float64)
        self.y_mean = float(meta.get("y_mean", 0.0))
        self.y_scale = float(meta.get("y_scale", 1.0))
        self.threshold = float(meta.get("threshold", 0.5))
        self.loss = meta.get("loss", "auto")

    def raw(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.x_mean) / self.x_scale) @ self.coef.T + self.intercept

    def scores(self, x: np.ndarray) -> np.ndarray:
        z = self.raw(x)
        if self.ptype == "regressor":
            return z[:, 0] * self.y_scale + self.y_mean
        if self.ptype == "binary_classifier":
            return 1.0 / (1.0 + np.exp(-np.clip(z[:, 0], -500, 500)))
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)


class _Objective:
    """Loss, its gradient and the reported objective for one predictor_type/loss, over k models at once.

    ``z`` is (n, k, c): n rows, k models, c outputs (1, or num_classes for multiclass); labels ``y`` are (n,)
    in the space the models learn in (normalised for regression, 0/1 or class index for classifiers).
    """

    def __init__(self, ptype: str, loss: str, hp: dict[str, Any]) -> None:
        if loss == "auto":
            loss = {"regressor": "squared_loss", "binary_classifier": "logistic"}.get(ptype, "softmax_loss")
        self.ptype, self.loss = ptype, loss
        self.delta = float(hp.get("huber_delta", 1.0))
        self.eps = float(hp.get("loss_insensitivity", 0.01))
        self.quantile = float(hp.get("quantile", 0.5))
        self.margin = float(hp.get("margin", 1.0))

    def grad(self, z: np.ndarray, y: np.ndarray) -> np.ndarray:
        if self.ptype == "multiclass_classifier":
            p = _softmax(z)
            p[np.arange(len(y)), :, y.astype(int)] -= 1.0
            return p
        r = z[:, :, 0] - y[:, None]
        loss = self.loss
        if loss == "squared_loss":
            g = r
        elif loss == "absolute_loss":
            g = np.sign(r)
        elif loss == "huber_loss":
            g = np.clip(r, -self.delta, self.delta)
        elif loss == "eps_insensitive_absolute_loss":
            g = np.sign(r) * (np.abs(r) > self.eps)
        elif loss == "eps_insensitive_squared_loss":
            g = np.sign(r) * np.maximum(np.abs(r) - self.eps, 0.0)
        elif loss == "quantile_loss":
            g = np.where(r < 0, -self.quantile, 1.0 - self.quantile)
        elif loss == "logistic":
            g = _sigmoid(z[:, :, 0]) - y[:, None]
        else:  # hinge_loss on labels mapped to -1/+1
            s = (2.0 * y - 1.0)[:, None]
            g = np.where(s * z[:, :, 0] < self.margin, -s, 0.0)
        return g[:, :, None]

    def value(self, pred: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Mean objective per model; ``pred`` in label units (regression), ``z`` raw outputs (classifiers)."""
        if self.ptype == "multiclass_classifier":
            p = _softmax(z)[np.arange(len(y)), :, y.astype(int)]
            return -np.log(np.clip(p, 1e-12, 1.0)).mean(axis=0)
        if self.ptype == "binary_classifier":
            if self.loss == "hinge_loss":
                s = (2.0 * y - 1.0)[:, None]
                return np.maximum(0.0, self.margin - s * z[:, :, 0]).mean(axis=0)
            p = np.clip(_sigmoid(z[:, :, 0]), 1e-12, 1 - 1e-12)
            return -(y[:, None] * np.log(p) + (1 - y[:, None]) * np.log(1 - p)).mean(axis=0)
        r = pred - y[:, None]
        a = np.abs(r)
        if self.loss == "absolute_loss":
            return a.mean(axis=0)
        if self.loss == "huber_loss":
            return np.where(a <= self.delta, 0.5 * r**2, self.delta * (a - 0.5 * self.delta)).mean(axis=0)
        if self.loss == "eps_insensitive_absolute_loss":
            return np.maximum(a - self.eps, 0.0).mean(axis=0)
        if self.loss == "eps_insensitive_squared_loss":
            return (np.maximum(a - self.eps, 0.0) ** 2).mean(axis=0)
        if self.loss == "quantile_loss":
            return np.maximum(-self.quantile * r, (1.0 - self.quantile) * r).mean(axis=0)
        return (r**2).mean(axis=0)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -500, 500)))


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _variants(hp: dict[str, Any], k: int) -> list[dict[str, float]]:
    """Per-model learning rate, wd and l1: model 0 is the configuration as given, the rest vary what is auto."""
    lr, wd, l1 = hp.get("learning_rate", "auto"), hp.get("wd", "auto"), hp.get("l1", "auto")
    first = {"learning_rate": _LR_GRID[0] if lr == "auto" else float(lr), "wd": 0.0 if wd == "auto" else float(wd),
             "l1": 0.0 if l1 == "auto" else float(l1)}  # fmt: skip
    lrs = _LR_GRID if lr == "auto" else tuple(float(lr) * f for f in _LR_FACTORS)
    regs = [(w if wd == "auto" else float(wd), a if l1 == "auto" else float(l1)) for w, a in _REG_GRID]
    out, seen = [first], {tuple(first.values())}
    for rate in lrs:
        for w, a in regs:
            key = (rate, w, a)
            if key not in seen:
                seen.add(key)
                out.append({"learning_rate": rate, "wd": w, "l1": a})
    while len(out) < k:  # more models than distinct settings: repeat them (different random init)
        out.append(dict(out[len(out) % max(len(seen), 1)]))
    return out[:k]


def _threshold_table(scores: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each model (column), candidate thresholds and the true/false positives when predicting >= them."""
    order = np.argsort(-scores, axis=0, kind="stable")
    sorted_scores = np.take_along_axis(scores, order, axis=0)
    ys = y[order]
    tp = np.vstack([np.zeros((1, scores.shape[1])), np.cumsum(ys, axis=0)])
    fp = np.vstack([np.zeros((1, scores.shape[1])), np.cumsum(1 - ys, axis=0)])
    # cut i predicts the top i rows positive; its threshold lies between sorted score i-1 and i
    upper = np.vstack([np.minimum(sorted_scores[:1] + 1e-9, 1.0), sorted_scores])
    lower = np.vstack([sorted_scores, np.maximum(sorted_scores[-1:] - 1e-9, 0.0)])
    thresholds = np.where(np.arange(len(upper))[:, None] == 0, upper[:1], (upper + lower) / 2)
    thresholds[-1] = sorted_scores[-1]
    return thresholds, tp, fp


def _binary_selection(scores: np.ndarray, y: np.ndarray, hp: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, str]:
    """Per model: (criterion value to maximise, calibrated threshold, criterion name), as the container selects."""
    criterion = hp.get("binary_classifier_model_selection_criteria", "accuracy")
    thresholds, tp, fp = _threshold_table(scores, y)
    positives, n = float(y.sum()), float(len(y))
    tn = (n - positives) - fp
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 1.0)
        recall = tp / positives if positives else np.zeros_like(tp)
        if criterion == "f_beta":
            beta2 = float(hp.get("f_beta", 1.0)) ** 2
            value = np.nan_to_num((1 + beta2) * precision * recall / (beta2 * precision + recall))
        elif criterion == "precision_at_target_recall":
            value = np.where(recall >= float(hp.get("target_recall", 0.8)), precision, -1.0)
        elif criterion == "recall_at_target_precision":
            value = np.where(precision >= float(hp.get("target_precision", 0.8)), recall, -1.0)
        else:  # accuracy; loss_function also calibrates its threshold on accuracy
            value = (tp + tn) / n
    best_cut = np.argmax(value, axis=0)
    columns = np.arange(scores.shape[1])
    return value[best_cut, columns], thresholds[best_cut, columns], criterion


def train(job_dir: pathlib.Path, log: Callable[[str], None]) -> None:
    config = job_dir / "input" / "config"
    raw_hp = _data.read_json(config / "hyperparameters.json", {})
    data_config = _data.read_json(config / "inputdataconfig.json", {})
    resource = _data.read_json(config / "resourceconfig.json", {"current_host": "algo-1"})
    host = resource.get("current_host", "algo-1")
    hp = validate_hyperparameters(raw_hp)
    if not isinstance(data_config, dict) or "train" not in data_config:
        raise AlgorithmClientError("Unable to initialize the algorithm. Missing required channel: train")
    formats = {}
    for name, cfg in data_config.items():
        if name not in ("train", "validation", "test"):
            raise AlgorithmClientError(f"Unable to initialize the algorithm. Extraneous channel found: {name}")
        formats[name] = _channel_format(name, cfg)

    emit = lambda m: log(f"{_prefix()} {m}")  # noqa: E731
    emit(f"Final configuration: {json.dumps({k: str(v) for k, v in raw_hp.items()}, sort_keys=True)}")
    train_data = _load(job_dir, "train", formats["train"])
    if train_data is None:
        raise AlgorithmClientError(f"No data in training channel path {_data.container_path('train')}")
    val_data = _load(job_dir, "validation", formats["validation"]) if "validation" in formats else None
    test_data = _load(job_dir, "test", formats["test"]) if "test" in formats else None

    x, y = train_data
    n, d = x.shape
    feature_dim = hp.get("feature_dim", "auto")
    if feature_dim != "auto" and feature_dim != d:
        raise AlgorithmClientError(
            f"Customer Error: The feature_dim hyperparameter ({feature_dim}) does not match the number of "
            f"features in the training data ({d}) (channel 'train')."
        )
    for name, other in (("validation", val_data), ("test", test_data)):
        if other is not None and other[0].shape[1] != d:
            raise AlgorithmClientError(
                f"Customer Error: channel '{name}' has {other[0].shape[1]} features but training data has {d}."
            )
    ptype = hp["predictor_type"]
    num_classes = hp.get("num_classes", 2)
    labelled = [("train", y)] + [(n_, a[1]) for n_, a in (("validation", val_data), ("test", test_data)) if a]
    for name, labels in labelled:
        if not np.isfinite(labels).all():
            raise AlgorithmClientError(f"Customer Error: channel '{name}' has a missing or non-finite label.")
        if ptype == "binary_classifier" and not np.isin(labels, (0.0, 1.0)).all():
            raise AlgorithmClientError(
                f"Customer Error: Label values in channel '{name}' must be 0 or 1 for predictor_type "
                f"binary_classifier (found {labels[~np.isin(labels, (0.0, 1.0))][0]})."
            )
        if ptype == "multiclass_classifier":
            bad = (labels != np.round(labels)) | (labels < 0) | (labels >= num_classes)
            if bad.any():
                raise AlgorithmClientError(
                    f"Customer Error: Label values in channel '{name}' must be integers in [0, {num_classes}) "
                    f"for predictor_type multiclass_classifier (found {labels[bad][0]})."
                )
    for name, data in (("train", train_data), ("validation", val_data), ("test", test_data)):
        if data is not None and not np.isfinite(data[0]).all():
            raise AlgorithmClientError(
                f"Customer Error: channel '{name}' has NaN or infinite feature values; Linear Learner needs "
                "every feature present."
            )

    seed = int(hp.get("seed", 0)) % (2**32)
    rng = np.random.default_rng(seed)
    use_bias = hp.get("use_bias", True)
    # unbias_* (centre the data/label) default to auto: on when the model has a bias term
    unbias_data = hp.get("unbias_data", "auto") is True or (hp.get("unbias_data", "auto") == "auto" and use_bias)
    unbias_label = hp.get("unbias_label", "auto") is True or (hp.get("unbias_label", "auto") == "auto" and use_bias)
    if hp.get("normalize_data", True):
        sample = x[: hp.get("num_point_for_scaler", 10000)]
        x_mean = sample.mean(axis=0) if unbias_data else np.zeros(d)
        x_scale = sample.std(axis=0)
        x_scale[x_scale == 0] = 1.0
    else:
        x_mean, x_scale = np.zeros(d), np.ones(d)
    y_mean, y_scale = 0.0, 1.0
    if ptype == "regressor" and hp.get("normalize_label", "auto") in (True, "auto"):  # auto: on for regression
        y_mean = float(y.mean()) if unbias_label else 0.0
        y_scale = float(y.std()) or 1.0

    loss = hp.get("loss", "auto")
    objective = _Objective(ptype, loss, hp)
    objective_name = _objective_name(ptype, loss)
    num_models = hp.get("num_models", "auto")
    k = _DEFAULT_NUM_MODELS if num_models == "auto" else int(num_models)
    c = int(num_classes) if ptype == "multiclass_classifier" else 1
    if d * k * c > _MAX_PARAMETERS:
        raise AlgorithmClientError(
            f"Customer Error: {k} models x {d} features x {c} outputs = {d * k * c:,} weights is more than the local "
            f"emulator trains at once ({_MAX_PARAMETERS:,}); lower num_models."
        )
    variants = _variants(hp, k)
    lr = np.array([v["learning_rate"] for v in variants])[None, :, None]
    wd = np.array([v["wd"] for v in variants])[None, :, None]
    l1 = np.array([v["l1"] for v in variants])[None, :, None]
    if hp.get("init_method", "uniform") == "normal":
        w = rng.normal(0.0, hp.get("init_sigma", 0.01), (d, k, c))
    else:
        scale = hp.get("init_scale", 0.07)
        w = rng.uniform(-scale, scale, (d, k, c))
    b = np.full((k, c), float(hp.get("init_bias", 0.0)))
    optimizer = hp.get("optimizer", "auto")
    optimizer = "adam" if optimizer == "auto" else optimizer
    beta1 = hp.get("beta_1", "auto")
    beta1 = 0.9 if beta1 == "auto" else float(beta1)
    beta2 = hp.get("beta_2", "auto")
    beta2 = 0.999 if beta2 == "auto" else float(beta2)
    momentum = hp.get("momentum", "auto")
    momentum = 0.0 if momentum == "auto" else float(momentum)
    bias_lr = hp.get("bias_lr_mult", "auto")
    bias_lr = 1.0 if bias_lr == "auto" else float(bias_lr)
    state = {"w1": np.zeros_like(w), "w2": np.zeros_like(w), "b1": np.zeros_like(b), "b2": np.zeros_like(b)}

    xn = (x - x_mean) / x_scale
    yn = (y - y_mean) / y_scale if ptype == "regressor" else y
    example_weight = np.ones(n)
    if ptype == "binary_classifier":
        mult = hp.get("positive_example_weight_mult", 1.0)
        if mult in ("auto", "balanced"):
            mult = (n - y.sum()) / max(y.sum(), 1.0) if mult == "balanced" else 1.0
        example_weight[y == 1] = float(mult)
    elif ptype == "multiclass_classifier" and hp.get("balance_multiclass_weights", False):
        counts = np.bincount(y.astype(int), minlength=c).astype(float)
        example_weight = (n / (c * np.maximum(counts, 1.0)))[y.astype(int)]

    batch = hp.get("mini_batch_size", 1000)
    epochs = hp.get("epochs", 15)
    patience = hp.get("early_stopping_patience", 3)
    tolerance = hp.get("early_stopping_tolerance", 0.001)
    batches_per_epoch = math.ceil(n / batch)
    schedule_on = hp.get("use_lr_scheduler", True)
    sched_step = hp.get("lr_scheduler_step", "auto")
    sched_step = batches_per_epoch if sched_step == "auto" else int(sched_step)
    sched_factor = hp.get("lr_scheduler_factor", "auto")
    sched_factor = 0.9 if sched_factor == "auto" else float(sched_factor)
    sched_min = hp.get("lr_scheduler_minimum_lr", "auto")
    sched_min = 1e-5 if sched_min == "auto" else float(sched_min)

    def outputs(normalised: np.ndarray, weights: np.ndarray, bias: np.ndarray) -> np.ndarray:
        return (normalised @ weights.reshape(d, k * c)).reshape(len(normalised), k, c) + bias

    def to_label_units(z: np.ndarray) -> np.ndarray:
        return z[:, :, 0] * y_scale + y_mean

    watch_x, watch_y = val_data if val_data is not None else (x, y)
    watch_xn = (watch_x - x_mean) / x_scale if val_data is not None else xn
    watch_name = "validation" if val_data is not None else "train"
    if val_data is None:
        emit("No validation data: evaluating and selecting the most optimal model on the validation set is not "
             "possible; the emulator selects on the training data instead.")  # fmt: skip
    best_w, best_b = w.copy(), b.copy()
    best_watch = np.full(k, np.inf)
    since_best = 0
    step = 0
    started = time.monotonic()
    for epoch in range(epochs):
        order = rng.permutation(n)
        running_loss = np.zeros(k)  # the epoch's train objective, accumulated over its mini-batches
        for start in range(0, n, batch):
            idx = order[start : start + batch]
            xb = xn[idx]
            z = (xb @ w.reshape(d, k * c)).reshape(len(idx), k, c) + b
            if val_data is not None:
                running_loss += objective.value(to_label_units(z), y[idx], z) * len(idx)
            g = objective.grad(z, yn[idx]) * (example_weight[idx] / example_weight[idx].sum())[:, None, None]
            gw = (xb.T @ g.reshape(len(idx), k * c)).reshape(d, k, c) + wd * w + l1 * np.sign(w)
            gb = g.sum(axis=0) if use_bias else np.zeros_like(b)
            rate = lr
            if schedule_on:
                rate = np.maximum(lr * sched_factor ** (step // sched_step), np.minimum(lr, sched_min))
            step += 1
            if optimizer == "adam":
                for key, grad in (("w", gw), ("b", gb)):
                    state[key + "1"] = beta1 * state[key + "1"] + (1 - beta1) * grad
                    state[key + "2"] = beta2 * state[key + "2"] + (1 - beta2) * grad**2
                mhat = 1.0 / (1 - beta1**step)
                vhat = 1.0 / (1 - beta2**step)
                w -= rate * (state["w1"] * mhat) / (np.sqrt(state["w2"] * vhat) + 1e-8)
                b -= rate[0] * bias_lr * (state["b1"] * mhat) / (np.sqrt(state["b2"] * vhat) + 1e-8)
            elif optimizer == "rmsprop":
                state["w2"] = 0.9 * state["w2"] + 0.1 * gw**2
                state["b2"] = 0.9 * state["b2"] + 0.1 * gb**2
                w -= rate * gw / (np.sqrt(state["w2"]) + 1e-8)
                b -= rate[0] * bias_lr * gb / (np.sqrt(state["b2"]) + 1e-8)
            else:  # sgd with momentum
                state["w1"] = momentum * state["w1"] - rate * gw
                state["b1"] = momentum * state["b1"] - rate[0] * bias_lr * gb
                w += state["w1"]
                b += state["b1"]
        if not np.isfinite(w).any():
            raise AlgorithmError(
                f"Linear Learner training diverged at epoch {epoch} in every model; lower learning_rate or "
                "enable normalize_data."
            )
        z_watch = outputs(watch_xn, w, b)
        watch_loss = objective.value(to_label_units(z_watch), watch_y, z_watch)
        # with validation data the train figure is the epoch's running loss (no second pass over train)
        train_loss = running_loss / n if val_data is not None else watch_loss
        watch_loss = np.where(np.isfinite(watch_loss), watch_loss, np.inf)
        for model in range(k):
            metrics = {f"train_{objective_name}": train_loss[model]}
            if val_data is not None:
                metrics[f"validation_{objective_name}"] = watch_loss[model]
            log("#metrics " + json.dumps({
                "Dimensions": {"Algorithm": "Linear Learner", "Host": host, "Operation": "training",
                               "epoch": epoch, "model": model},
                "Metrics": {name: {"sum": float(v), "count": 1, "min": float(v), "max": float(v)}
                            for name, v in metrics.items()}}))  # fmt: skip
        leader = int(np.argmin(watch_loss))
        emit(f"#quality_metric: host={host}, epoch={epoch}, train {objective_name} <loss>={train_loss[leader]}")
        if val_data is not None:
            emit(f"#quality_metric: host={host}, epoch={epoch}, validation {objective_name} "
                 f"<loss>={watch_loss[leader]}")  # fmt: skip
            emit(f"#early_stopping_criteria_metric: host={host}, epoch={epoch}, criteria={objective_name}, "
                 f"value={watch_loss[leader]}")  # fmt: skip
        emit(f"#progress_metric: host={host}, completed {100.0 * (epoch + 1) / epochs} % of epochs")
        improved = watch_loss < best_watch - tolerance * np.abs(np.where(np.isfinite(best_watch), best_watch, 0))
        best_w[:, improved], best_b[improved] = w[:, improved], b[improved]
        best_watch = np.where(improved, watch_loss, best_watch)
        if improved.any():
            since_best = 0
            emit(f"Epoch {epoch}: Loss improved. Updating best model")
        else:
            since_best += 1
            emit(f"Epoch {epoch}: Loss has not improved for {since_best} epochs.")
            if val_data is not None and since_best >= patience:
                emit(f"Reached early stopping criteria after {epoch + 1} epochs (patience {patience}). "
                     "Stopping training.")  # fmt: skip
                break
    elapsed = max(time.monotonic() - started, 1e-9)
    emit(f"#throughput_metric: host={host}, train throughput={n * (epoch + 1) / elapsed} records/second")
    if not np.isfinite(best_watch).any():
        raise AlgorithmError("Linear Learner training diverged in every model; lower learning_rate.")

    # Selection on the validation channel (else train), as the container reports it
    z_watch = outputs(watch_xn, best_w, best_b)
    thresholds = np.full(k, 0.5)
    if ptype == "binary_classifier":
        criterion_value, thresholds, criterion = _binary_selection(_sigmoid(z_watch[:, :, 0]), watch_y, hp)
        if criterion == "loss_function":
            criterion_value = -best_watch
        chosen = int(np.lexsort((best_watch, -criterion_value))[0])
        emit(f"#validation_score ({host}) : ('{objective_name}', {best_watch[chosen]})")
        emit(f"Selected model {chosen} of {k} on {watch_name} {criterion}={criterion_value[chosen]}")
    else:
        chosen = int(np.argmin(best_watch))
        emit(f"#validation_score ({host}) : ('{objective_name}', {best_watch[chosen]})")
    chosen_hp = {"optimizer": optimizer, **variants[chosen], "num_models": k, "model": chosen}
    emit(f"Best model found for hyperparameters: {json.dumps(chosen_hp, sort_keys=True)}")

    meta = {"format": FORMAT_TAG, "predictor_type": ptype, "feature_dim": d, "loss": objective.loss,
            "num_classes": c if ptype == "multiclass_classifier" else None,
            "x_mean": x_mean.tolist(), "x_scale": x_scale.tolist(), "y_mean": y_mean, "y_scale": y_scale,
            "threshold": float(thresholds[chosen]), "coef": best_w[:, chosen, :].T.tolist(),
            "intercept": best_b[chosen].tolist(), "model_index": chosen, "num_models": k,
            "hyperparameters": chosen_hp}  # fmt: skip
    best_model = _Model(meta)
    for name, data in (("train", train_data), ("validation", val_data), ("test", test_data)):
        if data is not None:
            for line in _final_metrics(best_model, objective, data[0], data[1], objective_name):
                emit(f"#quality_metric: host={host}, {name} {line}")

    model_dir = job_dir / "model"
    model_dir.mkdir(parents=True, exist_ok=True)
    tmp = model_dir / f".{MODEL_FILE}.tmp"
    tmp.write_text(json.dumps(meta))
    os.replace(tmp, model_dir / MODEL_FILE)


def _roc_auc(y: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve as the Mann-Whitney U statistic (ties get their average rank)."""
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    average_rank = np.cumsum(counts) - (counts - 1) / 2.0
    ranks = average_rank[inverse]
    positives = float(y.sum())
    negatives = len(y) - positives
    return float((ranks[y == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def _final_metrics(model: _Model, objective: _Objective, x: np.ndarray, y: np.ndarray, name: str) -> list[str]:
    z = model.raw(x)[:, None, :]
    s = model.scores(x)
    pred = s[:, None] if model.ptype == "regressor" else None
    lines = [f"{name} <loss>={float(objective.value(pred, y, z)[0])}"]
    if model.ptype == "regressor":
        err = s - y
        mse = float(np.mean(err**2))
        var = float(np.var(y))
        lines += [f"mse <loss>={mse}", f"rmse <loss>={math.sqrt(mse)}",
                  f"absolute_loss <loss>={float(np.mean(np.abs(err)))}",
                  f"r2 <score>={1 - mse / var if var else 0.0}"]  # fmt: skip
    elif model.ptype == "binary_classifier":
        pred_label = (s >= model.threshold).astype(int)
        yi = y.astype(int)
        tp = int(((pred_label == 1) & (yi == 1)).sum())
        precision = tp / max(int(pred_label.sum()), 1)
        recall = tp / max(int(yi.sum()), 1)
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        lines += [
            f"binary_classification_accuracy <score>={float((pred_label == yi).mean())}",
            f"binary_f_beta <score>={f1}",
            f"precision <score>={precision}",
            f"recall <score>={recall}",
        ]
        if 0 < yi.sum() < len(yi):
            lines.append(f"roc_auc_score <score>={_roc_auc(yi, s)}")
    else:
        lines.append(f"multiclass_accuracy <score>={float((s.argmax(axis=1) == y.astype(int)).mean())}")
    return lines


# ----------------------------------------------------------------------------------------------- serving


_ACCEPTS = ("application/json", "application/jsonlines", "text/csv", recordio.CONTENT_TYPE)


class LinearLearnerPredictor(Predictor):
    algorithm = "linear-learner"

    def __init__(self, meta: dict[str, Any]) -> None:
        self.model = _Model(meta)
        self.feature_count: int | None = int(meta["feature_dim"])

    def _rows(self, body: bytes, ctype: str, content_type: str | None) -> np.ndarray:
        if ctype in (recordio.CONTENT_TYPE, "recordio-protobuf"):
            return self._check_width(self._recordio_rows(body))
        try:
            text = body.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise ModelInvocationError(400, "Unable to evaluate payload provided: payload is not UTF-8") from None
        try:
            if ctype in ("text/csv", "csv"):
                rows = [[float(c) if c.strip() else math.nan for c in line.split(",")]
                        for line in text.split("\n") if line.strip()]  # fmt: skip
            elif ctype in ("application/json", "json", "application/jsonlines", "jsonlines"):
                if ctype.endswith("lines"):
                    docs = [json.loads(line) for line in text.split("\n") if line.strip()]
                else:
                    doc = json.loads(text)
                    docs = doc.get("instances", [doc]) if isinstance(doc, dict) else doc
                rows = [r.get("features", r.get("data", {}).get("features") if isinstance(r.get("data"), dict)
                              else None) if isinstance(r, dict) else r for r in docs]  # fmt: skip
                if rows and not isinstance(rows[0], list):
                    rows = [rows]
            else:
                raise ModelInvocationError(415, f"Content-type {content_type} is not supported.")
            widths = {len(r) for r in rows}
            if len(widths) > 1:
                raise ValueError(f"rows have different numbers of features: {sorted(widths)}")
            x = np.asarray(rows, dtype=np.float64)
        except ModelInvocationError:
            raise
        except (ValueError, TypeError, AttributeError) as e:
            raise ModelInvocationError(400, f"Unable to evaluate payload provided: {e}") from None
        return self._check_width(x)

    def _recordio_rows(self, body: bytes) -> np.ndarray:
        """``features["values"]`` of each record, dense or sparse (``keys`` within ``shape``)."""
        try:
            matrix = recordio.to_matrix([("request body", body)], dtype=np.float64)
        except recordio.RecordIOError as e:
            raise ModelInvocationError(400, f"Unable to evaluate payload provided: {e}") from None
        features = matrix.features
        if not matrix.sparse:
            return features
        if features.shape[1] < (self.feature_count or 0):  # trailing all-zero columns carry no keys
            features.resize((features.shape[0], self.feature_count))
        return features.toarray()

    def _check_width(self, x: np.ndarray) -> np.ndarray:
        if x.ndim != 2 or x.shape[1] != self.feature_count:
            got = x.shape[1] if x.ndim == 2 else 0
            raise ModelInvocationError(
                400,
                f"Unable to evaluate payload provided: Feature dimension mismatch: the model expects "
                f"{self.feature_count} features per record, got {got}.",
            )
        return x

    def invoke(self, body: bytes, content_type: str | None, accept: str | None, multi_model: bool) -> tuple[bytes, str]:
        ctype = (content_type or "text/csv").split(";", 1)[0].strip().lower()
        acc = (accept or "").split(";", 1)[0].strip().lower()
        if not acc or acc == "*/*":
            acc = "application/json"
        if acc not in _ACCEPTS:
            raise ModelInvocationError(
                406, f"Accept type {accept} is not supported. Please use one of: {', '.join(_ACCEPTS)}."
            )
        if not body:
            return b"", acc
        x = self._rows(body, ctype, content_type)
        scores = self.model.scores(x)
        ptype = self.model.ptype
        if ptype == "regressor":
            records = [{"score": float(s)} for s in scores]
        elif ptype == "binary_classifier":
            thr = self.model.threshold
            records = [{"score": float(s), "predicted_label": int(s >= thr)} for s in scores]
        else:
            records = [{"score": row.tolist(), "predicted_label": int(row.argmax())} for row in scores]
        if acc == "application/json":
            return json.dumps({"predictions": records}).encode(), acc
        if acc == "application/jsonlines":
            return "".join(json.dumps(r) + "\n" for r in records).encode(), acc
        if acc == recordio.CONTENT_TYPE:
            # one Record per row, label {"score": [...], "predicted_label": [...]} as float32 tensors
            labels = ({key: np.asarray(value, dtype=np.float32) for key, value in r.items()} for r in records)
            return recordio.encode_records((None, label) for label in labels), acc
        lines = []
        for r in records:
            score = r["score"]
            score_text = ",".join(map(str, score)) if isinstance(score, list) else str(score)
            lines.append(f"{r['predicted_label']},{score_text}" if "predicted_label" in r else score_text)
        return ("\n".join(lines) + "\n").encode(), "text/csv"


def is_model_dir(model_dir: pathlib.Path) -> bool:
    path = model_dir / MODEL_FILE
    if not path.is_file():
        return False
    with path.open("rb") as f:
        head = f.read(200)
    return FORMAT_TAG.encode() in head


def load(model_dir: pathlib.Path) -> LinearLearnerPredictor:
    try:
        meta = json.loads((model_dir / MODEL_FILE).read_text())
        if meta.get("format") != FORMAT_TAG:
            raise ValueError(f"not an emulator Linear Learner model (format {meta.get('format')!r})")
        return LinearLearnerPredictor(meta)
    except Exception as e:
        raise ModelInvocationError(500, f"Unable to load model: {e}") from None
