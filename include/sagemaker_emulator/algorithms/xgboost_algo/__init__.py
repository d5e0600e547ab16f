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

Layout: :mod:`.spec` (images, versions, hyperparameter rules, metric names), :mod:`.training` and
:mod:`.predictor`.
"""

from __future__ import annotations

from .predictor import XGBoostPredictor, load
from .spec import (
    COMMA_JOINED_CSV_VERSIONS,
    DEFAULT_VERSION,
    FRAMEWORK_VERSIONS,
    LEGACY_IMAGE_VERSION,
    MODEL_NAME,
    SUPPORTED_VERSIONS,
    build_spec,
    is_legacy,
    tuning_metric_names,
)
from .training import train

__all__ = [
    "COMMA_JOINED_CSV_VERSIONS",
    "DEFAULT_VERSION",
    "FRAMEWORK_VERSIONS",
    "LEGACY_IMAGE_VERSION",
    "MODEL_NAME",
    "SUPPORTED_VERSIONS",
    "XGBoostPredictor",
    "build_spec",
    "is_legacy",
    "load",
    "train",
    "tuning_metric_names",
]
