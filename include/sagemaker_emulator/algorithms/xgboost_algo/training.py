"""SageMaker built-in XGBoost training (algorithm mode), as ``sagemaker_xgboost_container.algorithm_mode.train``
does it; the rules per image version are in :mod:`.spec`."""

from __future__ import annotations

import contextlib
import json
import math
import os
import pathlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np

from .. import _data
from .._errors import AlgorithmClientError, AlgorithmError
from .spec import (
    _CONTAINER_KEYS,
    _DROPPED_KEYS,
    CONTAINER_METRICS,
    CUSTOMER_ERRORS,
    DEFAULT_VERSION,
    LEGACY_IMAGE_VERSION,
    MODEL_NAME,
    _check_dependencies,
    _default_metric,
    build_spec,
    eval_metric_names,
    is_legacy,
    is_pre_1_0,
)

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
    if "silent" in hp and not is_pre_1_0(version):
        log(warn("Parameter 'silent' is deprecated in xgboost 1.0 (use verbosity); ignored."))
    params["nthread"] = nthread
    params.setdefault("verbosity", 0)
    objective = params.get("objective", "reg:squarederror")
    if objective == "reg:linear":
        # xgboost 0.90 to 1.x only warn and train reg:squarederror; xgboost 3.x rejects the old name; in
        # 0.72 (xgboost:1) it is the objective's own name.
        if version != LEGACY_IMAGE_VERSION:
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
                maximize = (es_metric or "").split("@")[0] in eval_metric_names(version)[0]
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
