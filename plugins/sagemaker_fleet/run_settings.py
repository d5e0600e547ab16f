"""What every DAG task of a run resolves the same way: environment-level settings and the run's date."""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

__all__ = ["environment_setting", "run_date"]


def environment_setting(variable: str, env_var: str, default: str) -> str:
    """An environment-level setting: the Airflow Variable, else the environment variable, else the default.

    Read inside tasks only (never at parse time): a Variable lookup is a metadata-DB or API call.
    """
    from airflow.sdk import Variable

    return Variable.get(variable, default=None) or os.environ.get(env_var) or default


def run_date(context: Any) -> dt.date:
    """The date whose data and models the run builds: the data interval's end for scheduled and backfill
    runs, else the logical date, else (a manual run without one) the time it was queued for."""
    from include.housing.nightly import resolve_run_date

    return resolve_run_date(
        context.get("data_interval_end"), context.get("logical_date"), getattr(context["dag_run"], "run_after", None)
    )
