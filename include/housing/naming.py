"""Deterministic SageMaker resource names, model versions and MME artifact keys.

Names are pure functions of (dag_id, location, run date, attempt) so a retried task computes the
same name and can re-attach to the job it already started instead of starting a duplicate.
"""

from __future__ import annotations

import datetime as dt
import re

from include.housing.locations import resource_slug, validate_location
from sagemaker_fleet.utils.naming import (
    MAX_NAME_LENGTH,
    MME_ARTIFACT_SUFFIX,
    NAME_PATTERN,
    VERSION_PATTERN,
    check_version,
    coerce_run_date,
    is_valid_sagemaker_name,
    sagemaker_name,
)
from sagemaker_fleet.utils.naming import mme_artifact_key as _fleet_mme_artifact_key

__all__ = [
    "MAX_NAME_LENGTH",
    "MME_ARTIFACT_SUFFIX",
    "NAME_PATTERN",
    "VERSION_PATTERN",
    "coerce_run_date",
    "dag_prefix",
    "is_valid_sagemaker_name",
    "mme_artifact_key",
    "model_version",
    "parse_mme_artifact_key",
    "sagemaker_name",
    "training_job_name",
]

_ARTIFACT_KEY = re.compile(r"^(?P<location>[^/]+)/(?P=location)-(?P<version>[^/]+)\.tar\.gz$")


def dag_prefix(dag_id: str) -> str:
    """Short, stable prefix for a DAG's resources: the initials of its words.

    ``housing_mme_nightly`` -> ``hmn``; keeps the location and date visible within 63 characters.
    """
    words = [word for word in re.split(r"[^A-Za-z0-9]+", dag_id) if word]
    if not words:
        raise ValueError(f"dag_id {dag_id!r} has no alphanumeric words")
    return "".join(word[0] for word in words).lower()


def training_job_name(
    dag_id: str, location: str, run_date: dt.date | str, attempt: int = 0, *, revision: int = 0
) -> str:
    """``hmn-chicago-il-20261123`` (``-r1``, ``-r2`` ... for attempt > 0); deterministic, <= 63 chars.

    A further build of the same date (``revision`` 1..99, see :func:`model_version`) is
    ``hmn-chicago-il-20261123-v01``: its own job, never the first build's.
    """
    if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 0:
        raise ValueError(f"attempt must be a non-negative int, got {attempt!r}")
    if isinstance(revision, bool) or not isinstance(revision, int) or not 0 <= revision <= 99:
        raise ValueError(f"revision must be an int from 0 to 99, got {revision!r}")
    parts = [dag_prefix(dag_id), resource_slug(location), coerce_run_date(run_date).strftime("%Y%m%d")]
    if revision:
        parts.append(f"v{revision:02d}")
    if attempt:
        parts.append(f"r{attempt}")
    return sagemaker_name(*parts)


def model_version(location: str, run_date: dt.date | str, revision: int = 0) -> str:
    """Sortable version label of a location's model for a run date: ``"20261123"``.

    ``revision`` > 0 gives ``"20261123-r01"`` for a further model of the same date, so an existing
    artifact never has to be overwritten (MME caches by key and would keep serving the old one).
    """
    validate_location(location)
    if isinstance(revision, bool) or not isinstance(revision, int) or not 0 <= revision <= 99:
        raise ValueError(f"revision must be an int from 0 to 99, got {revision!r}")
    version = coerce_run_date(run_date).strftime("%Y%m%d")
    return f"{version}-r{revision:02d}" if revision else version


def mme_artifact_key(location: str, version: str) -> str:
    """``TargetModel`` path relative to the MME prefix: ``"Chicago_IL/Chicago_IL-20261123.tar.gz"``.

    One folder per location makes "latest version of X" a single sorted listing.
    """
    validate_location(location)
    return _fleet_mme_artifact_key(location, version)


def parse_mme_artifact_key(key: str) -> tuple[str, str]:
    """Inverse of :func:`mme_artifact_key`; raises ValueError for keys this project did not write."""
    match = _ARTIFACT_KEY.match(key) if isinstance(key, str) else None
    if match is None:
        raise ValueError(f"Not an MME artifact key of this project: {key!r}")
    location, version = match.group("location"), match.group("version")
    try:
        validate_location(location)
        check_version(version)
    except ValueError as error:
        raise ValueError(f"Not an MME artifact key of this project: {key!r} ({error})") from None
    return location, version
