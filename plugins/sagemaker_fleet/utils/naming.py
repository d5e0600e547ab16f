"""SageMaker name rules and the versioned MME artifact keys, shared by every operator of the package.

Names are pure functions of their parts, so a retried task computes the same name and can re-attach to
what it already started instead of creating a duplicate.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re

__all__ = [
    "MAX_NAME_LENGTH",
    "MME_ARTIFACT_SUFFIX",
    "NAME_PATTERN",
    "VERSION_PATTERN",
    "check_version",
    "coerce_run_date",
    "is_valid_sagemaker_name",
    "mme_artifact_key",
    "sagemaker_name",
]

# TrainingJobName, EndpointName, EndpointConfigName, ModelName and VariantName share this pattern.
NAME_PATTERN: re.Pattern[str] = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
MAX_NAME_LENGTH = 63
_HASH_LENGTH = 8
_INVALID_RUN = re.compile(r"[^a-z0-9]+")

# "20261123", or "20261123-r01" for a second model of the same date (a re-run must never overwrite the
# first artifact: an MME caches by key). Two-digit revisions keep plain string order == age order.
VERSION_PATTERN: re.Pattern[str] = re.compile(r"^(?P<date>\d{8})(?:-r(?P<revision>\d{2}))?$")
MME_ARTIFACT_SUFFIX = ".tar.gz"
# One path segment, as an S3 key part and a TargetModel folder: letters, digits, '_', '-', '.'.
_MODEL_GROUP = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def is_valid_sagemaker_name(name: object) -> bool:
    """True when ``name`` is usable as a SageMaker job/endpoint/config/model/variant name."""
    return isinstance(name, str) and NAME_PATTERN.match(name) is not None


def _slug(text: str) -> str:
    return _INVALID_RUN.sub("-", text.lower()).strip("-")


def sagemaker_name(*parts: str, max_length: int = MAX_NAME_LENGTH) -> str:
    """Join slugified ``parts`` with ``-`` into a valid SageMaker name of at most ``max_length``.

    Over-long names are cut and suffixed with 8 hex digits of the SHA-1 of the full name, so two
    inputs that share a long prefix still get different names, and the same input always gets
    the same name.
    """
    if not 1 + _HASH_LENGTH <= max_length <= MAX_NAME_LENGTH:
        raise ValueError(f"max_length must be between {1 + _HASH_LENGTH} and {MAX_NAME_LENGTH}, got {max_length}")
    slugs = [_slug(str(part)) for part in parts]
    full = "-".join(slug for slug in slugs if slug)
    if not full:
        raise ValueError(f"Cannot build a SageMaker name from {parts!r}: nothing alphanumeric in it")
    if len(full) <= max_length:
        return full
    digest = hashlib.sha1(full.encode("utf-8")).hexdigest()[:_HASH_LENGTH]
    head = full[: max_length - _HASH_LENGTH - 1].rstrip("-")
    return f"{head}-{digest}" if head else digest


def coerce_run_date(run_date: dt.date | str) -> dt.date:
    """Accept a date, a datetime (Airflow's logical date) or an ISO string (``ds`` or a timestamp)."""
    if isinstance(run_date, dt.datetime):
        return run_date.date()
    if isinstance(run_date, dt.date):
        return run_date
    if isinstance(run_date, str):
        text = run_date.strip()
        try:
            if len(text) == 8 and text.isdigit():
                return dt.datetime.strptime(text, "%Y%m%d").date()
            if len(text) == 10:
                return dt.date.fromisoformat(text)
            return dt.datetime.fromisoformat(text).date()
        except ValueError:
            pass
    raise ValueError(f"Not a date: {run_date!r} (expected a date or an ISO string such as '2026-11-23')")


def check_version(version: str) -> str:
    """``version`` when it is ``YYYYMMDD`` or ``YYYYMMDD-rNN`` with a real date; else ValueError."""
    match = VERSION_PATTERN.match(version) if isinstance(version, str) else None
    if match is None:
        raise ValueError(f"Invalid model version {version!r}: expected YYYYMMDD or YYYYMMDD-rNN")
    try:
        dt.datetime.strptime(match.group("date"), "%Y%m%d")
    except ValueError:
        raise ValueError(f"Invalid model version {version!r}: {match.group('date')} is not a date") from None
    return version


def mme_artifact_key(model_group: str, version: str) -> str:
    """``TargetModel`` path relative to the MME prefix: ``"Chicago_IL/Chicago_IL-20261123.tar.gz"``.

    ``model_group`` is what one line of models is kept for (a location, a customer); one folder per group
    makes "latest version of X" a single sorted listing.
    """
    if not isinstance(model_group, str) or _MODEL_GROUP.match(model_group) is None:
        raise ValueError(
            f"Invalid model group {model_group!r}: one path segment of letters, digits, '_', '-' or '.', "
            "starting with a letter or digit, at most 128 characters"
        )
    check_version(version)
    return f"{model_group}/{model_group}-{version}{MME_ARTIFACT_SUFFIX}"
