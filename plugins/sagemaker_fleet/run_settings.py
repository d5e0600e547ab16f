"""What every DAG task of a run resolves the same way: environment-level settings and the run's date."""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

__all__ = ["environment_setting", "resolve_run_date", "run_date"]


def environment_setting(variable: str, env_var: str, default: str) -> str:
    """An environment-level setting: the Airflow Variable, else the environment variable, else the default.

    Read inside tasks only (never at parse time): a Variable lookup is a metadata-DB or API call.
    """
    from airflow.sdk import Variable

    return Variable.get(variable, default=None) or os.environ.get(env_var) or default


def resolve_run_date(logical_date: dt.datetime | None, run_after: dt.datetime | None) -> dt.date:
    """The (UTC) date a run builds: its logical date, else (a run created without one) its ``run_after``.

    The logical date is what a person or the scheduler asked for, whichever way the run was created
    (schedule, backfill, ``dags trigger --logical-date``, the UI). The data interval is not used: a
    manual run's interval is inferred from the time it was triggered, not from the date it names.
    """
    for value in (logical_date, run_after):
        if value is not None:
            if value.tzinfo is not None:
                value = value.astimezone(dt.UTC)
            return value.date()
    raise ValueError("The run has neither a logical date nor a run_after time")


def run_date(context: Any) -> dt.date:
    """:func:`resolve_run_date` of the task's run (from the task context)."""
    dag_run = context["dag_run"]
    logical_date = context.get("logical_date") or getattr(dag_run, "logical_date", None)
    return resolve_run_date(logical_date, getattr(dag_run, "run_after", None))
