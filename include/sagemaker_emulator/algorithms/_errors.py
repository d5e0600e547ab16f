"""Exceptions shared by the built-in algorithm emulations (kept apart to avoid import cycles)."""

from __future__ import annotations


class AlgorithmClientError(Exception):
    """Bad data or configuration (SageMaker reports it as ``ClientError: <message>``)."""


class AlgorithmError(Exception):
    """The algorithm itself failed (SageMaker reports it as ``AlgorithmError: <message>``)."""


class UnsupportedImageError(ValueError):
    """The training/serving image URI is not one of the built-in algorithms we emulate."""


class ModelInvocationError(Exception):
    """An inference request failed inside the serving container.

    ``status_code`` is the HTTP status the *container* answers with (400, 406, 415, 500); the
    emulator core wraps it the way SageMaker Runtime does (ModelError 424 with OriginalStatusCode).
    """

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message

    def __repr__(self) -> str:
        return f"ModelInvocationError({self.status_code}, {self.message!r})"
