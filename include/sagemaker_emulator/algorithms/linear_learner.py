"""SageMaker built-in Linear Learner, emulated with scikit-learn SGD models.

Training: CSV (label first, no header) in ``train`` and optional ``validation`` channels; hyperparameters
validated with Linear Learner's names and the first-party algorithms' jsonschema-style messages
(``Additional properties are not allowed ('foo' was unexpected)``, ``'predictor_type' is a required
property``). Each epoch streams shuffled mini-batches through ``partial_fit`` (seeded, deterministic),
logs ``#quality_metric`` lines like the real container, and early-stops on the validation loss
(``early_stopping_patience`` / ``early_stopping_tolerance``), keeping the best epoch's model.

Model artifact (EMULATOR-SPECIFIC): ``model_algo-1`` is a JSON document holding the learned weights,
bias, the data/label normalisation and the classification threshold. The real container writes an
MXNet parameter archive under the same name, which nobody opens outside SageMaker; artifacts are not
interchangeable between the emulator and AWS.

Serving: ``text/csv``, ``application/json`` (``{"instances": [{"features": [...]}]}`` or a list of rows)
and ``application/jsonlines`` in; ``application/json`` (default), ``application/jsonlines`` and
``text/csv`` out, with ``score`` (+ ``predicted_label`` for classifiers) per record.
"""

from __future__ import annotations

import json
import math
import os
import pathlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np

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


def _bool(name: str) -> Callable[[str], bool]:
    def parse(v: str) -> bool:
        if v.lower() in ("true", "1"):
            return True
        if v.lower() in ("false", "0"):
            return False
        raise _schema_error(f"'{v}' is not one of ['true', 'false'] (hyperparameter {name})")

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
    "normalize_data": _bool("normalize_data"),
    "normalize_label": _bool("normalize_label"),
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
    "unbias_data": _bool("unbias_data"),
    "unbias_label": _bool("unbias_label"),
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


def _load(job_dir: pathlib.Path, channel: str, log: Callable[[str], None]) -> np.ndarray | None:
    root = job_dir / "input" / "data" / channel
    files = _data.channel_files(root)
    if not files:
        return None
    data, _ = _data.load_csv(files, channel, root, lambda m: None, min_cols=2)
    return data if data.shape[0] else None


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


def _objective_value(model: _Model, x: np.ndarray, y: np.ndarray) -> float:
    s = model.scores(x)
    if model.ptype == "regressor":
        err = s - y
        if model.loss in ("absolute_loss", "eps_insensitive_absolute_loss"):
            return float(np.mean(np.abs(err)))
        return float(np.mean(err**2))
    if model.ptype == "binary_classifier":
        p = np.clip(s, 1e-12, 1 - 1e-12)
        return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    p = np.clip(s[np.arange(len(y)), y.astype(int)], 1e-12, 1.0)
    return float(-np.mean(np.log(p)))


def _snapshot(est: Any, base: dict[str, Any]) -> _Model:
    meta = dict(base)
    meta["coef"] = np.atleast_2d(est.coef_).tolist()
    meta["intercept"] = np.atleast_1d(est.intercept_).tolist()
    return _Model(meta)


def _best_threshold(p: np.ndarray, y: np.ndarray) -> float:
    """Threshold maximising accuracy (Linear Learner's default model selection criterion)."""
    order = np.argsort(-p)
    ys = y[order]
    # predicting the top-i as positive: correct = positives in top i + negatives after i
    tp = np.concatenate([[0], np.cumsum(ys)])
    neg_after = (len(ys) - ys.sum()) - np.concatenate([[0], np.cumsum(1 - ys)])
    i = int(np.argmax(tp + neg_after))
    if i == 0:
        return float(min(1.0, p.max() + 1e-9))
    if i == len(ys):
        return float(max(0.0, p.min()))
    return float((p[order][i - 1] + p[order][i]) / 2)


def train(job_dir: pathlib.Path, log: Callable[[str], None]) -> None:
    from sklearn.linear_model import SGDClassifier, SGDRegressor

    config = job_dir / "input" / "config"
    raw_hp = _data.read_json(config / "hyperparameters.json", {})
    data_config = _data.read_json(config / "inputdataconfig.json", {})
    resource = _data.read_json(config / "resourceconfig.json", {"current_host": "algo-1"})
    host = resource.get("current_host", "algo-1")
    hp = validate_hyperparameters(raw_hp)
    if not isinstance(data_config, dict) or "train" not in data_config:
        raise AlgorithmClientError("Unable to initialize the algorithm. Missing required channel: train")
    for name, cfg in data_config.items():
        if name not in ("train", "validation", "test"):
            raise AlgorithmClientError(f"Unable to initialize the algorithm. Extraneous channel found: {name}")
        media, params = _data.parse_media_type(cfg.get("ContentType") or "application/x-recordio-protobuf")
        if media not in ("text/csv", "csv"):
            raise AlgorithmClientError(
                f"Unable to read data channel '{name}'. Requested content-type is '{media}'. The local SageMaker "
                "emulator supports only 'text/csv' for Linear Learner (set ContentType='text/csv')."
            )
        if params.get("label_size", "1") != "1":
            raise AlgorithmClientError(f"Unable to read data channel '{name}': label_size must be 1.")

    emit = lambda m: log(f"{_prefix()} {m}")  # noqa: E731
    emit(f"Final configuration: {json.dumps({k: str(v) for k, v in raw_hp.items()}, sort_keys=True)}")
    train_data = _load(job_dir, "train", log)
    if train_data is None:
        raise AlgorithmClientError(f"No data in training channel path {_data.container_path('train')}")
    val_data = _load(job_dir, "validation", log) if "validation" in data_config else None
    test_data = _load(job_dir, "test", log) if "test" in data_config else None

    x, y = train_data[:, 1:], train_data[:, 0]
    d = x.shape[1]
    feature_dim = hp.get("feature_dim", "auto")
    if feature_dim != "auto" and feature_dim != d:
        raise AlgorithmClientError(
            f"Customer Error: The feature_dim hyperparameter ({feature_dim}) does not match the number of "
            f"features in the training data ({d}) (channel 'train')."
        )
    for name, other in (("validation", val_data), ("test", test_data)):
        if other is not None and other.shape[1] - 1 != d:
            raise AlgorithmClientError(
                f"Customer Error: channel '{name}' has {other.shape[1] - 1} features but training data has {d}."
            )

    ptype = hp["predictor_type"]
    loss = hp.get("loss", "auto")
    num_classes = hp.get("num_classes", 2)
    labels_to_check = [("train", y)] + [(n, a[:, 0]) for n, a in (("validation", val_data), ("test", test_data))
                                       if a is not None]  # fmt: skip
    for name, labels in labels_to_check:
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

    seed = int(hp.get("seed", 0)) % (2**32)
    rng = np.random.default_rng(seed)
    normalize_data = hp.get("normalize_data", True)
    if normalize_data:
        sample = x[: hp.get("num_point_for_scaler", 10000)]
        x_mean = sample.mean(axis=0) if hp.get("use_bias", True) else np.zeros(d)
        x_scale = sample.std(axis=0)
        x_scale[x_scale == 0] = 1.0
    else:
        x_mean, x_scale = np.zeros(d), np.ones(d)
    y_mean, y_scale = 0.0, 1.0
    if ptype == "regressor" and hp.get("normalize_label", True):
        y_mean = float(y.mean()) if hp.get("use_bias", True) else 0.0
        y_scale = float(y.std()) or 1.0

    lr = hp.get("learning_rate", "auto")
    lr = 0.01 if lr == "auto" else float(lr)
    wd = hp.get("wd", "auto")
    l1 = hp.get("l1", "auto")
    wd = 0.0 if wd == "auto" else float(wd)
    l1 = 0.0 if l1 == "auto" else float(l1)
    alpha = wd + l1
    penalty = "elasticnet" if (wd and l1) else ("l1" if l1 else "l2")
    common = dict(alpha=max(alpha, 1e-12), penalty=penalty, l1_ratio=(l1 / alpha) if alpha else 0.0,
                  fit_intercept=hp.get("use_bias", True), learning_rate="constant", eta0=lr,
                  random_state=seed, average=False)  # fmt: skip
    if ptype == "regressor":
        sk_loss = {"absolute_loss": "epsilon_insensitive", "eps_insensitive_absolute_loss": "epsilon_insensitive",
                   "eps_insensitive_squared_loss": "squared_epsilon_insensitive",
                   "huber_loss": "huber"}.get(loss, "squared_error")  # fmt: skip
        epsilon = float(hp.get("loss_insensitivity", 0.01)) if "insensitive" in loss else 0.0
        if loss == "huber_loss":
            epsilon = float(hp.get("huber_delta", 1.0))
        est: Any = SGDRegressor(loss=sk_loss, epsilon=epsilon, **common)
        classes = None
    else:
        est = SGDClassifier(loss="hinge" if loss == "hinge_loss" else "log_loss", **common)
        classes = np.arange(num_classes if ptype == "multiclass_classifier" else 2)

    base_meta = {"format": FORMAT_TAG, "predictor_type": ptype, "feature_dim": d, "loss": loss,
                 "num_classes": int(num_classes) if ptype == "multiclass_classifier" else None,
                 "x_mean": x_mean.tolist(), "x_scale": x_scale.tolist(), "y_mean": y_mean,
                 "y_scale": y_scale, "threshold": 0.5}  # fmt: skip
    xn = (x - x_mean) / x_scale
    yn = (y - y_mean) / y_scale if ptype == "regressor" else y.astype(int)
    objective = _objective_name(ptype, loss)
    batch = hp.get("mini_batch_size", 1000)
    epochs = hp.get("epochs", 15)
    patience = hp.get("early_stopping_patience", 3)
    tolerance = hp.get("early_stopping_tolerance", 0.001)
    best_model: _Model | None = None
    best_loss = math.inf
    since_best = 0
    try:
        for epoch in range(epochs):
            order = rng.permutation(len(xn))
            for start in range(0, len(order), batch):
                idx = order[start : start + batch]
                if classes is None:
                    est.partial_fit(xn[idx], yn[idx])
                else:
                    est.partial_fit(xn[idx], yn[idx], classes=classes)
            model = _snapshot(est, base_meta)
            train_loss = _objective_value(model, x, y)
            if not math.isfinite(train_loss):
                raise AlgorithmError(
                    f"Linear Learner training diverged at epoch {epoch} (train loss {train_loss}); "
                    "lower learning_rate or enable normalize_data."
                )
            emit(f"#quality_metric: host={host}, epoch={epoch}, train {objective} <loss>={train_loss}")
            emit(f"#progress_metric: host={host}, completed {100.0 * (epoch + 1) / epochs} % of epochs")
            watched = train_loss
            if val_data is not None:
                watched = _objective_value(model, val_data[:, 1:], val_data[:, 0])
                emit(f"#quality_metric: host={host}, epoch={epoch}, validation {objective} <loss>={watched}")
                emit(f"#early_stopping_criteria_metric: host={host}, epoch={epoch}, criteria={objective}, "
                     f"value={watched}")  # fmt: skip
            if best_model is None or watched < best_loss - tolerance * abs(best_loss):
                best_model, best_loss, since_best = model, watched, 0
                emit(f"Epoch {epoch}: Loss improved. Updating best model")
            else:
                since_best += 1
                emit(f"Epoch {epoch}: Loss has not improved for {since_best} epochs.")
                if val_data is not None and since_best >= patience:
                    emit(f"Reached early stopping criteria after {epoch + 1} epochs (patience {patience}). "
                         "Stopping training.")  # fmt: skip
                    break
    except (AlgorithmClientError, AlgorithmError):
        raise
    except Exception as e:
        raise AlgorithmError(f"Linear Learner training failed: {e}") from e
    assert best_model is not None

    if ptype == "binary_classifier":
        calib = val_data if val_data is not None else train_data
        best_model.meta["threshold"] = _best_threshold(best_model.scores(calib[:, 1:]), calib[:, 0])
        best_model.threshold = best_model.meta["threshold"]
    emit(f"#validation_score ({host}) : ('{objective}', {best_loss})")
    for name, data in (("train", train_data), ("validation", val_data), ("test", test_data)):
        if data is not None:
            for line in _final_metrics(best_model, data[:, 1:], data[:, 0], objective):
                emit(f"#quality_metric: host={host}, {name} {line}")

    model_dir = job_dir / "model"
    model_dir.mkdir(parents=True, exist_ok=True)
    tmp = model_dir / f".{MODEL_FILE}.tmp"
    tmp.write_text(json.dumps(best_model.meta))
    os.replace(tmp, model_dir / MODEL_FILE)


def _final_metrics(model: _Model, x: np.ndarray, y: np.ndarray, objective: str) -> list[str]:
    lines = [f"{objective} <loss>={_objective_value(model, x, y)}"]
    s = model.scores(x)
    if model.ptype == "regressor":
        err = s - y
        mse = float(np.mean(err**2))
        var = float(np.var(y))
        lines += [f"mse <loss>={mse}", f"rmse <loss>={math.sqrt(mse)}",
                  f"absolute_loss <loss>={float(np.mean(np.abs(err)))}",
                  f"r2 <score>={1 - mse / var if var else 0.0}"]  # fmt: skip
    elif model.ptype == "binary_classifier":
        pred = (s >= model.threshold).astype(int)
        yi = y.astype(int)
        tp = int(((pred == 1) & (yi == 1)).sum())
        precision = tp / max(int(pred.sum()), 1)
        recall = tp / max(int(yi.sum()), 1)
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        lines += [
            f"binary_classification_accuracy <score>={float((pred == yi).mean())}",
            f"binary_f_beta <score>={f1}",
            f"precision <score>={precision}",
            f"recall <score>={recall}",
        ]
        try:
            from sklearn.metrics import roc_auc_score

            lines.append(f"roc_auc_score <score>={float(roc_auc_score(yi, s))}")
        except ValueError:
            pass  # only one class present
    else:
        pred = s.argmax(axis=1)
        lines.append(f"multiclass_accuracy <score>={float((pred == y.astype(int)).mean())}")
    return lines


# ----------------------------------------------------------------------------------------------- serving


class LinearLearnerPredictor(Predictor):
    algorithm = "linear-learner"

    def __init__(self, meta: dict[str, Any]) -> None:
        self.model = _Model(meta)
        self.feature_count: int | None = int(meta["feature_dim"])

    def _rows(self, body: bytes, ctype: str, content_type: str | None) -> np.ndarray:
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
        if acc not in ("application/json", "application/jsonlines", "text/csv"):
            raise ModelInvocationError(
                406,
                f"Accept type {accept} is not supported. Please use one of: application/json, "
                "application/jsonlines, text/csv.",
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
