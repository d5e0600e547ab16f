"""The one way to get a Predictor for a model record: ``predictor_for_model(model_record, model_dir, batch=...)``.

Batch transform asks for ``batch=True``: the built-in containers then run with ``SAGEMAKER_BATCH=true``, which
changes XGBoost's answer to one prediction per line (``"\\n".join(map(str, preds)) + "\\n"``) whatever the image
version and Accept; ``multi:softprob`` rows render as Python lists (``[0.1, 0.2, 0.7]``) and ``multi:softmax``
as the class index as a float (``2.0``). Linear Learner answers as in real time.

Batch requests are large (up to MaxPayloadInMB of records), so CSV goes through pandas' C parser; anything it
refuses is parsed again by the container-exact parser, whose error message is the answer.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..algorithms import ModelInvocationError, Predictor, algorithm_version, load_predictor
from ..algorithms.xgboost_algo.spec import LEGACY_TEXT_ONLY_VERSIONS

# What the XGBoost container's GET /execution-parameters answers (its defaults; workers = CPU count).
XGBOOST_MAX_PAYLOAD_MB = 6


def model_container(model_record: dict[str, Any]) -> dict[str, Any]:
    return model_record.get("PrimaryContainer") or (model_record.get("Containers") or [{}])[0]


def predictor_for_model(
    model_record: dict[str, Any],
    model_dir: Path,
    *,
    batch: bool = True,
    s3_get: Callable[[str, str], bytes] | None = None,
    log_line: Callable[[str], None] | None = None,
    environment: dict[str, str] | None = None,
    region: str = "us-east-1",
) -> Predictor:
    """The Predictor of a CreateModel record whose model.tar.gz is extracted in ``model_dir``.

    Built-in images: the algorithm's predictor (XGBoost in its SAGEMAKER_BATCH format when ``batch``).
    Script mode (a scikit-learn image with SAGEMAKER_PROGRAM): serving workers running the user's script,
    with ``SAGEMAKER_BATCH=true`` when ``batch`` and ``environment`` (e.g. the transform job's) added; the
    code comes from SAGEMAKER_SUBMIT_DIRECTORY through ``s3_get(bucket, key)`` or from ``model_dir/code``.
    Raises ModelInvocationError when the model cannot be loaded. Call ``close()`` on a script-mode result
    when done.
    """
    from ..validation import split_s3_uri
    from . import script_mode

    container = model_container(model_record)
    source = script_mode.script_source(container)
    if source is None:
        return builtin_predictor(container, Path(model_dir), batch=batch)
    code_raw = None
    if source.submit_directory is not None:
        if s3_get is None:
            raise ValueError("predictor_for_model needs s3_get for a model whose code is in S3")
        code_raw = s3_get(*split_s3_uri(source.submit_directory, "SAGEMAKER_SUBMIT_DIRECTORY"))
    return script_mode.start_predictor(
        source,
        workdir=Path(tempfile.mkdtemp(prefix="sm-script-")),
        model_dir=Path(model_dir),
        code_raw=code_raw,
        log_line=log_line or (lambda line: None),
        region=region,
        batch=batch,
        extra_env=environment,
    )


def builtin_predictor(container: dict[str, Any], model_dir: Path, *, batch: bool) -> Predictor:
    """A built-in algorithm's predictor; under batch transform XGBoost answers in its SAGEMAKER_BATCH format."""
    predictor = load_predictor(Path(model_dir), algorithm_version(container["Image"]))
    if batch and predictor.algorithm == "xgboost":
        return XGBoostBatchPredictor(predictor)
    return predictor


def _delimiter(first_line: str) -> str:
    # The container's csv.Sniffer settles on these for numeric rows; ',' when there is nothing to sniff.
    for candidate in (",", "\t", ";", "|"):
        if candidate in first_line:
            return candidate
    return " " if " " in first_line.strip() else ","


class XGBoostBatchPredictor(Predictor):
    """The built-in XGBoost container under batch transform (``SAGEMAKER_BATCH=true``)."""

    algorithm = "xgboost"

    def __init__(self, realtime: Any):
        self.realtime = realtime  # the loaded real-time predictor: its booster and container-exact parsers
        self.feature_count = realtime.feature_count

    @staticmethod
    def execution_parameters() -> dict[str, Any]:
        return {
            "MaxConcurrentTransforms": os.cpu_count() or 1,
            "BatchStrategy": "MULTI_RECORD",
            "MaxPayloadInMB": XGBOOST_MAX_PAYLOAD_MB,
        }

    def _fast_csv(self, body: bytes) -> Any:
        import numpy as np
        import pandas as pd

        text_start = body[:4096].split(b"\n", 1)[0].decode("utf-8", "replace")
        try:
            frame = pd.read_csv(io.BytesIO(body), header=None, sep=_delimiter(text_start), dtype=np.float32, engine="c")
        except (ValueError, pd.errors.ParserError, UnicodeDecodeError):
            return None
        return frame.to_numpy()

    def invoke(self, body: bytes, content_type: str | None, accept: str | None, multi_model: bool) -> tuple[bytes, str]:
        realtime = self.realtime
        media = (content_type or "").split(";", 1)[0].strip().lower()
        answer_type = (accept or "").split(";", 1)[0].strip() or "text/csv"
        if not body.strip():
            return b"", answer_type
        if media in ("application/x-recordio-protobuf", "recordio-protobuf"):
            if realtime.version in LEGACY_TEXT_ONLY_VERSIONS:  # xgboost:1 (0.72) reads CSV and libsvm only
                raise ModelInvocationError(415, f"Content-type {content_type} is not supported.")
            x = realtime._parse_recordio(body)
        elif media in ("text/csv", "csv") and body.find(b"\n", 0, len(body) - 1) >= 0:  # more than one row
            x = self._fast_csv(body)
            # The container's own parser explains what pandas refused (and pads nothing that it would not).
            x = realtime._check_width(x, "csv") if x is not None else realtime._parse_text(body, media, content_type)
        else:
            x = realtime._parse_text(body, media, content_type)
        try:
            preds = realtime.booster.inplace_predict(x, validate_features=False)
        except Exception as exc:
            raise ModelInvocationError(400, f"Unable to evaluate payload provided: {exc}") from None
        return ("\n".join(map(str, preds.tolist())) + "\n").encode(), answer_type
