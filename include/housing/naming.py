"""Deterministic SageMaker resource names, model versions and MME artifact keys.

Names are pure functions of (dag_id, location, run date, attempt) so a retried task computes the
same name and can re-attach to the job it already started instead of starting a duplicate.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re

from include.housing.locations import resource_slug, validate_location

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

# TrainingJobName, EndpointName, EndpointConfigName, VariantName all share this pattern (max 63).
NAME_PATTERN: re.Pattern[str] = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
MAX_NAME_LENGTH = 63
_HASH_LENGTH = 8
_INVALID_RUN = re.compile(r"[^a-z0-9]+")

# "20261123", or "20261123-r01" for a second model of the same date (e.g. a re-run backfill that
# must not overwrite the first artifact). Two-digit revisions keep plain string order == age order.
VERSION_PATTERN: re.Pattern[str] = re.compile(r"^(?P<date>\d{8})(?:-r(?P<revision>\d{2}))?$")
MME_ARTIFACT_SUFFIX = ".tar.gz"
_ARTIFACT_KEY = re.compile(r"^(?P<location>[^/]+)/(?P=location)-(?P<version>[^/]+)\.tar\.gz$")


def is_valid_sagemaker_name(name: object) -> bool:
    """True when ``name`` is usable as a SageMaker job/endpoint/config/variant name."""
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


def dag_prefix(dag_id: str) -> str:
    """Short, stable prefix for a DAG's resources: the initials of its words.

    ``housing_mme_nightly`` -> ``hmn``; keeps the location and date visible within 63 characters.
    """
    words = [word for word in re.split(r"[^A-Za-z0-9]+", dag_id) if word]
    if not words:
        raise ValueError(f"dag_id {dag_id!r} has no alphanumeric words")
    return "".join(word[0] for word in words).lower()


def training_job_name(dag_id: str, location: str, run_date: dt.date | str, attempt: int = 0) -> str:
    """``hmn-chicago-il-20261123`` (``-r1``, ``-r2`` ... for attempt > 0); deterministic, <= 63 chars."""
    if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 0:
        raise ValueError(f"attempt must be a non-negative int, got {attempt!r}")
    parts = [dag_prefix(dag_id), resource_slug(location), coerce_run_date(run_date).strftime("%Y%m%d")]
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


def _check_version(version: str) -> str:
    match = VERSION_PATTERN.match(version) if isinstance(version, str) else None
    if match is None:
        raise ValueError(f"Invalid model version {version!r}: expected YYYYMMDD or YYYYMMDD-rNN")
    try:
        dt.datetime.strptime(match.group("date"), "%Y%m%d")
    except ValueError:
        raise ValueError(f"Invalid model version {version!r}: {match.group('date')} is not a date") from None
    return version


def mme_artifact_key(location: str, version: str) -> str:
    """``TargetModel`` path relative to the MME prefix: ``"Chicago_IL/Chicago_IL-20261123.tar.gz"``.

    One folder per location makes "latest version of X" a single sorted listing.
    """
    validate_location(location)
    _check_version(version)
    return f"{location}/{location}-{version}{MME_ARTIFACT_SUFFIX}"


def parse_mme_artifact_key(key: str) -> tuple[str, str]:
    """Inverse of :func:`mme_artifact_key`; raises ValueError for keys this project did not write."""
    match = _ARTIFACT_KEY.match(key) if isinstance(key, str) else None
    if match is None:
        raise ValueError(f"Not an MME artifact key of this project: {key!r}")
    location, version = match.group("location"), match.group("version")
    try:
        validate_location(location)
        _check_version(version)
    except ValueError as error:
        raise ValueError(f"Not an MME artifact key of this project: {key!r} ({error})") from None
    return location, version
