"""What every DAG task of a run resolves the same way: environment-level settings and the run's date."""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

from sagemaker_fleet.utils.naming import coerce_run_date

__all__ = ["environment_setting", "resolve_run_date", "run_date"]


def environment_setting(variable: str, env_var: str, default: str) -> str:
    """An environment-level setting: the Airflow Variable, else the environment variable, else the default.

    Read inside tasks only (never at parse time): a Variable lookup is a metadata-DB or API call.
    """
    from airflow.sdk import Variable

    return Variable.get(variable, default=None) or os.environ.get(env_var) or default


def run_date(context: Any) -> dt.date:
    """The date whose data and models the run builds: the data interval's end for scheduled and backfill
    runs, else the logical date, else (a manual run without one) the time it was queued for."""
    return resolve_run_date(
        context.get("data_interval_end"), context.get("logical_date"), getattr(context["dag_run"], "run_after", None)
    )


def resolve_run_date(
    data_interval_end: dt.datetime | None, logical_date: dt.datetime | None, run_after: dt.datetime | None
) -> dt.date:
    """The date whose data and models the run builds.

    Scheduled and backfill runs have a data interval; manual runs in Airflow 3 may have no logical
    date at all, and then the time the run was queued for (``run_after``) is the date.
    """
    for value in (data_interval_end, logical_date, run_after):
        if value is not None:
            return coerce_run_date(value)
    raise ValueError("The run has neither a data interval, a logical date nor a run_after time")
