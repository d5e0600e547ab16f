"""Errors the control plane answers, in the awsJson1_1 shape botocore parses."""

from __future__ import annotations


class AwsError(Exception):
    """An error answered as HTTP ``status`` with ``{"__type": code, "message": message}``."""

    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def validation_error(message: str) -> AwsError:
    return AwsError("ValidationException", message)


def not_found() -> AwsError:
    return AwsError("ValidationException", "Requested resource not found.")


def constraint_error(value: object, member: str, constraint: str) -> AwsError:
    # AWS's own wording for a request that fails a shape constraint.
    shown = "null" if value is None else f"'{value}'"  # AWS writes a missing value as a bare null
    return AwsError(
        "ValidationException",
        f"1 validation error detected: Value {shown} at '{member}' failed to satisfy constraint: {constraint}",
    )
