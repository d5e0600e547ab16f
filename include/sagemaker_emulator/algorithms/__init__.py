"""Local re-implementations of SageMaker's built-in algorithm containers (training and serving).

Pure Python (xgboost, scikit-learn, numpy); no HTTP, boto3 or Airflow. The emulator core prepares an
``/opt/ml``-like job directory and calls :func:`train`; for endpoints it extracts ``model.tar.gz`` and
calls :func:`load_predictor`, then ``Predictor.invoke`` per request.

Supported images: ``sagemaker-xgboost:<0.90-1|0.90-2|1.0-1|1.2-1|1.2-2|1.3-1|1.5-1|1.7-1>[-...]`` and the
legacy ``xgboost:1`` (XGBoost 0.72) (algorithm mode), and
``linear-learner:<tag>``. Model formats are documented in :mod:`.xgboost_algo` (package: spec, training, predictor; ``xgboost-model``, the
native xgboost format loadable with ``xgb.Booster().load_model``) and :mod:`.linear_learner`
(``model_algo-1``, an emulator-specific JSON document).
"""

from __future__ import annotations

import pathlib
import re
from collections.abc import Callable

from . import linear_learner, xgboost_algo
from ._base import Predictor
from ._errors import (
    AlgorithmClientError,
    AlgorithmError,
    ModelInvocationError,
    UnsupportedImageError,
)

__all__ = [
    "DEFAULT_METRIC_DEFINITIONS",
    "AlgorithmClientError",
    "AlgorithmError",
    "ModelInvocationError",
    "Predictor",
    "UnsupportedImageError",
    "algorithm_for_image",
    "algorithm_version",
    "default_metric_definitions",
    "load_predictor",
    "train",
]

XGBOOST = "xgboost"
LINEAR_LEARNER = "linear-learner"

_IMAGE_RE = re.compile(r"^(?:.*/)?(?P<repo>[a-z0-9._-]+)(?::(?P<tag>[A-Za-z0-9._-]+))?(?:@sha256:[0-9a-f]+)?$")
_XGB_VERSION_RE = re.compile(r"^(?P<version>\d+\.\d+-\d+)(?:-.*)?$")


def _parse_image(image_uri: str) -> tuple[str, str | None, str | None]:
    """Return (algorithm, version, tag) or raise UnsupportedImageError."""
    supported = (
        f"supported: sagemaker-xgboost:<{'|'.join(xgboost_algo.FRAMEWORK_VERSIONS)}>[-cpu-py3] "
        "(e.g. 683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1), the legacy xgboost:1 "
        "(e.g. 811284229777.dkr.ecr.us-east-1.amazonaws.com/xgboost:1) and linear-learner:<tag> "
        "(e.g. 382416733822.dkr.ecr.us-east-1.amazonaws.com/linear-learner:1)"
    )
    match = _IMAGE_RE.match((image_uri or "").strip())
    if not match:
        raise UnsupportedImageError(f"Image {image_uri!r} is not a SageMaker built-in algorithm image; {supported}.")
    repo, tag = match.group("repo"), match.group("tag")
    if repo == "sagemaker-xgboost":
        version_match = _XGB_VERSION_RE.match(tag or "")
        version = version_match.group("version") if version_match else None
        if version not in xgboost_algo.FRAMEWORK_VERSIONS:
            raise UnsupportedImageError(
                f"Image {image_uri!r}: XGBoost version {tag or '(no tag)'} is not supported by the local "
                f"emulator; supported XGBoost algorithm-mode versions are "
                f"{', '.join(xgboost_algo.FRAMEWORK_VERSIONS)} (and the legacy xgboost:1)."
            )
        return XGBOOST, version, tag
    if repo == "xgboost":
        if tag not in ("1", "latest"):
            raise UnsupportedImageError(
                f"Image {image_uri!r}: the legacy XGBoost image exists only as xgboost:1 (alias latest, "
                f"XGBoost 0.72); {supported}."
            )
        return XGBOOST, xgboost_algo.LEGACY_IMAGE_VERSION, tag
    if repo == "linear-learner":
        return LINEAR_LEARNER, None, tag
    raise UnsupportedImageError(f"Image {image_uri!r} is not supported by the local emulator; {supported}.")


def algorithm_for_image(image_uri: str) -> str:
    """``"xgboost"`` or ``"linear-learner"`` for a built-in algorithm image URI (any region/account)."""
    return _parse_image(image_uri)[0]


def algorithm_version(image_uri: str) -> str | None:
    """The XGBoost container version of an image (``"1.7-1"``; ``"1"`` for the legacy xgboost:1 image, XGBoost
    0.72), None for Linear Learner.

    Pass it to :func:`train` as ``version=`` to get version-specific behaviour (``silent`` only in 1.0-1,
    pre-1.3 early stopping and default metrics); without it 1.7-1 behaviour is used.
    """
    return _parse_image(image_uri)[1]


def _xgb_definitions(version: str = xgboost_algo.DEFAULT_VERSION) -> list[dict[str, str]]:
    number = r"([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"
    metrics = xgboost_algo.tuning_metric_names(version)
    out = []
    for metric in metrics:
        for channel in ("train", "validation"):
            regex = r".*\[[0-9]+\].*#011" + f"{channel}-{metric}:" + number + ".*"
            out.append({"Name": f"{channel}:{metric}", "Regex": regex})
    return out


def _ll_definitions() -> list[dict[str, str]]:
    q = r".*#quality_metric: host=\S+, "
    defs = [
        {"Name": "train:progress", "Regex": r".*#progress_metric: host=\S+, completed (\S+) %"},
        {"Name": "train:objective_loss", "Regex": q + r"epoch=\S+, train \S+_objective <loss>=(\S+)"},
        {"Name": "validation:objective_loss", "Regex": q + r"epoch=\S+, validation \S+_objective <loss>=(\S+)"},
        {"Name": "validation:objective_loss:final", "Regex": q + r"validation \S+_objective <loss>=(\S+)"},
        {"Name": "test:objective_loss", "Regex": q + r"test \S+_objective <loss>=(\S+)"},
        {"Name": "train:throughput", "Regex": r".*#throughput_metric: host=\S+, train throughput=(\S+) records/second"},
    ]
    for channel in ("validation", "test"):
        for name, kind in (("mse", "loss"), ("rmse", "loss"), ("absolute_loss", "loss"), ("r2", "score"),
                           ("binary_classification_accuracy", "score"), ("binary_f_beta", "score"),
                           ("precision", "score"), ("recall", "score"), ("roc_auc_score", "score"),
                           ("multiclass_accuracy", "score")):  # fmt: skip
            defs.append({"Name": f"{channel}:{name}", "Regex": q + f"{channel} {name} <{kind}>=" + r"(\S+)"})
    return defs


DEFAULT_METRIC_DEFINITIONS: dict[str, list[dict[str, str]]] = {
    XGBOOST: _xgb_definitions(),
    LINEAR_LEARNER: _ll_definitions(),
}


def default_metric_definitions(algorithm: str, version: str | None = None) -> list[dict[str, str]]:
    """The MetricDefinitions SageMaker fills in for a built-in image (XGBoost's depend on the image version)."""
    if algorithm == XGBOOST:
        return _xgb_definitions(version or xgboost_algo.DEFAULT_VERSION)
    return DEFAULT_METRIC_DEFINITIONS.get(algorithm, [])


def train(
    algorithm: str,
    job_dir: pathlib.Path,
    log: Callable[[str], None],
    version: str | None = None,
    cluster: dict | None = None,
) -> None:
    """Run one training job in ``job_dir`` (an ``/opt/ml``-like tree); writes the model to ``job_dir/model``.

    ``cluster`` makes this one host of a distributed XGBoost job (see ``xgboost_algo.train``).

    Raises AlgorithmClientError (user's data/config) or AlgorithmError (crash); on failure nothing is left
    in the model directory.
    """
    job_dir = pathlib.Path(job_dir)
    model_dir = job_dir / "model"
    before = set(model_dir.iterdir()) if model_dir.exists() else set()
    try:
        if algorithm == XGBOOST or algorithm.startswith(XGBOOST + ":"):
            version = version or (algorithm.split(":", 1)[1] if ":" in algorithm else xgboost_algo.DEFAULT_VERSION)
            if version not in xgboost_algo.SUPPORTED_VERSIONS:
                raise UnsupportedImageError(
                    f"XGBoost version {version} is not supported; supported: "
                    f"{', '.join(xgboost_algo.SUPPORTED_VERSIONS)}."
                )
            xgboost_algo.train(job_dir, log, version, cluster)
        elif algorithm == LINEAR_LEARNER:
            linear_learner.train(job_dir, log)
        else:
            raise UnsupportedImageError(f"Unknown algorithm {algorithm!r}; expected 'xgboost' or 'linear-learner'.")
    except (AlgorithmClientError, AlgorithmError, UnsupportedImageError):
        _clean(model_dir, before)
        raise
    except MemoryError as e:
        _clean(model_dir, before)
        raise AlgorithmError(f"Out of memory: {e}") from e
    except Exception as e:
        _clean(model_dir, before)
        raise AlgorithmError(f"framework error: {type(e).__name__}: {e}") from e


def _clean(model_dir: pathlib.Path, keep: set[pathlib.Path]) -> None:
    if model_dir.exists():
        for path in model_dir.iterdir():
            if path not in keep and path.is_file():
                path.unlink(missing_ok=True)


def load_predictor(model_dir: pathlib.Path, version: str | None = None) -> Predictor:
    """Load the extracted contents of a model.tar.gz; detects XGBoost vs Linear Learner from the files.

    ``version`` is the serving image's XGBoost container version (:func:`algorithm_version`); it selects the
    answer format (comma-joined CSV up to 1.2-1, one per line after). None means 1.7-1.
    """
    xgb_version = version or xgboost_algo.DEFAULT_VERSION
    model_dir = pathlib.Path(model_dir)
    if not model_dir.is_dir():
        raise ModelInvocationError(500, f"Unable to load model: model directory {model_dir} does not exist")
    if linear_learner.is_model_dir(model_dir):
        return linear_learner.load(model_dir)
    names = [p.name for p in model_dir.iterdir() if p.is_file() and not p.name.startswith(".")]
    if xgboost_algo.MODEL_NAME in names or any(n.startswith(xgboost_algo.MODEL_NAME) for n in names):
        return xgboost_algo.load(model_dir, xgb_version)
    if linear_learner.MODEL_FILE in names:
        raise ModelInvocationError(
            500,
            "Unable to load model: model_algo-1 is not an emulator Linear Learner model (artifacts trained on "
            "AWS are MXNet archives the local emulator cannot serve).",
        )
    if len(names) == 1:
        return xgboost_algo.load(model_dir, xgb_version)  # the container loads whatever single file it finds
    raise ModelInvocationError(
        500,
        f"Unable to load model: no xgboost-model or model_algo-1 in the model archive (found: {sorted(names)})",
    )
