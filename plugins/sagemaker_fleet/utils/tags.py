"""Tags for cost allocation: every model, endpoint config, endpoint and training job the operators create carries
the DAG and run that created it (and whatever the DAG adds, such as the location).

Tags are set when a resource is created and left alone afterwards: a resource another run re-uses (the MME's
shared model, an endpoint that lives across runs) keeps the tags of the run that created it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["DAG_ID_TAG", "RUN_ID_TAG", "merge_tags", "run_tags"]

DAG_ID_TAG = "airflow:dag_id"
RUN_ID_TAG = "airflow:run_id"
MAX_KEY_LENGTH = 128
MAX_VALUE_LENGTH = 256
# What SageMaker accepts in a tag value: letters, digits, spaces and _ . : / = + - @
_NOT_ALLOWED = re.compile(r"[^\w .:/=+\-@]", re.UNICODE)


def _clean(value: object, limit: int) -> str:
    return _NOT_ALLOWED.sub("_", str(value))[:limit]


def run_tags(context: Mapping[str, Any] | None, extra: Mapping[str, Any] | None = None) -> list[dict[str, str]]:
    """``airflow:dag_id`` and ``airflow:run_id`` of the running task (when the context has them) plus ``extra``."""
    tags: dict[str, str] = {}
    context = context or {}
    dag_run = context.get("dag_run")
    dag_id = getattr(dag_run, "dag_id", None) or getattr(context.get("dag"), "dag_id", None)
    run_id = context.get("run_id") or getattr(dag_run, "run_id", None)
    if dag_id:
        tags[DAG_ID_TAG] = dag_id
    if run_id:
        tags[RUN_ID_TAG] = run_id
    if extra is not None:
        if not isinstance(extra, Mapping):
            raise ValueError(f"tags must be a mapping of tag key to value, got {extra!r}")
        tags.update({str(k): v for k, v in extra.items() if v is not None})
    return [{"Key": _clean(k, MAX_KEY_LENGTH), "Value": _clean(v, MAX_VALUE_LENGTH)} for k, v in tags.items()]


def merge_tags(*groups: Iterable[Mapping[str, str]] | None) -> list[dict[str, str]]:
    """One Tags list from several, keyed by ``Key``: a later group's value wins, first-seen order is kept."""
    merged: dict[str, str] = {}
    for group in groups:
        for tag in group or []:
            if not isinstance(tag, Mapping) or "Key" not in tag:
                raise ValueError(f"A tag must be {{'Key': ..., 'Value': ...}}, got {tag!r}")
            merged[str(tag["Key"])] = str(tag.get("Value", ""))
    return [{"Key": key, "Value": value} for key, value in merged.items()]
