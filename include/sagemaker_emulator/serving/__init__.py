"""The emulator's serving plane: endpoints (control plane, ``endpoints.HANDLERS`` in the operation table)
and InvokeEndpoint (runtime). ``predictor_for_model`` (in ``predictors.py``) is the one way to get the
Predictor of a model record, for endpoints' script-mode models and for batch transform."""

from __future__ import annotations

from . import script_mode  # noqa: F401  (imported here so serving workers can be stopped at shutdown)
from .plane import ServingPlane
from .predictors import predictor_for_model

__all__ = ["ServingPlane", "predictor_for_model"]
