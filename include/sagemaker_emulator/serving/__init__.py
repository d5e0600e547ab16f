"""The emulator's serving plane: endpoints (control plane, ``endpoints.HANDLERS`` in the operation table)
and InvokeEndpoint (runtime)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import script_mode
from .plane import ServingPlane

__all__ = ["ServingPlane", "predictor_for_model"]


def predictor_for_model(
    model_record: dict[str, Any],
    model_dir: Path,
    *,
    batch: bool = True,
    s3_get: Callable[[str, str], bytes] | None = None,
    log_line: Callable[[str], None] | None = None,
    environment: dict[str, str] | None = None,
    region: str = "us-east-1",
) -> Any:
    """The Predictor that serves a CreateModel record whose model.tar.gz is extracted in ``model_dir``.

    Script mode (a scikit-learn image with SAGEMAKER_PROGRAM): serving workers running the user's script,
    with ``SAGEMAKER_BATCH=true`` when ``batch`` and ``environment`` (e.g. the transform job's) added; the
    code comes from SAGEMAKER_SUBMIT_DIRECTORY through ``s3_get(bucket, key)`` or from ``model_dir/code``.
    Raises ModelInvocationError when the model cannot be loaded. Call ``close()`` on the result when done.
    """
    from ..algorithms import algorithm_version, load_predictor
    from ..validation import split_s3_uri

    container = model_record.get("PrimaryContainer") or (model_record.get("Containers") or [{}])[0]
    source = script_mode.script_source(container)
    if source is None:
        return load_predictor(Path(model_dir), algorithm_version(container["Image"]))
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
