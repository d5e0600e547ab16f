"""What every DAG's plan shares: the project's bucket and execution role, instance types, run name prefixes.

One account, one bucket, one execution role (see ``iam/``): every DAG reads them from the same Airflow
Variables or environment variables, checks them the same way, and names a run's resources
``<dag prefix>-<run date>-<6 hex digits of the run id>``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Callable, Mapping
from typing import Any

from sagemaker_fleet.utils.naming import coerce_run_date, sagemaker_name

DEFAULT_BUCKET = "sagemaker-fleet-local"
DEFAULT_ROLE_ARN = "arn:aws:iam::123456789012:role/SageMakerExecution"
# setting -> (Airflow Variable, environment variable, default). Environment-level values, not Params: a
# person triggering a run does not choose the bucket or the role.
PROJECT_SETTINGS: dict[str, tuple[str, str, str]] = {
    "bucket": ("housing_bucket", "HOUSING_BUCKET", DEFAULT_BUCKET),
    "role_arn": ("housing_role_arn", "HOUSING_ROLE_ARN", DEFAULT_ROLE_ARN),
}
INSTANCE_TYPE_PATTERN = re.compile(r"^ml\.[a-z0-9]+\.[a-z0-9]+$")
BUCKET_PATTERN = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
ROLE_ARN_PATTERN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")

Lookup = Callable[[str, str, str], "str | None"]


def read_settings(lookup: Lookup, specs: Mapping[str, tuple[str, str, str]] = PROJECT_SETTINGS) -> dict[str, str]:
    """Each setting from ``lookup(variable, env_var, default)`` (the default when it answers nothing), stripped."""
    return {name: (lookup(*spec) or spec[2]).strip() for name, spec in specs.items()}


def settings_problems(values: Mapping[str, str]) -> list[str]:
    """What is wrong with the bucket and role ARN, each naming where it comes from; empty when both are usable."""
    problems = []
    if not BUCKET_PATTERN.match(values["bucket"]):
        problems.append(f"bucket {values['bucket']!r} (housing_bucket / HOUSING_BUCKET) is not a valid S3 bucket name")
    if not ROLE_ARN_PATTERN.match(values["role_arn"]):
        problems.append(
            f"role_arn {values['role_arn']!r} (housing_role_arn / HOUSING_ROLE_ARN) is not an IAM role ARN "
            "(arn:aws:iam::<account>:role/<name>)"
        )
    return problems


def checked_settings(lookup: Lookup, error: Callable[[list[str]], Exception]) -> dict[str, str]:
    """The bucket and role ARN from ``lookup``; ``error(problems)`` is raised when either is unusable."""
    values = read_settings(lookup)
    if problems := settings_problems(values):
        raise error(problems)
    return values


def unknown_param_problems(merged: Mapping[str, object], defaults: Mapping[str, object]) -> list[str]:
    """One line naming the Params a DAG does not know (a typo in a triggered run's conf), if any."""
    unknown = sorted(set(merged) - set(defaults))
    return [f"unknown parameter(s) {unknown}; known: {sorted(defaults)}"] if unknown else []


def integer_problems(merged: Mapping[str, object], limits: Mapping[str, tuple[int, int]]) -> list[str]:
    """One line per Param of ``limits`` (name -> (low, high)) that is not an integer in that range (bools are not)."""
    return [
        f"{name} must be an integer from {low} to {high}, got {merged[name]!r}"
        for name, (low, high) in limits.items()
        if isinstance(merged[name], bool) or not isinstance(merged[name], int) or not low <= merged[name] <= high
    ]


def instance_type_problems(params: Mapping[str, object], names: tuple[str, ...] | list[str]) -> list[str]:
    """One line per Param in ``names`` that is not a SageMaker instance type."""
    return [
        f"{name} must be a SageMaker instance type such as ml.m5.large, got {params[name]!r}"
        for name in names
        if not isinstance(params[name], str) or not INSTANCE_TYPE_PATTERN.match(params[name])
    ]


def instance_type_param(default: str, title: str, description: str) -> Any:
    """A DAG's instance-type Param: a string the form checks against :data:`INSTANCE_TYPE_PATTERN`, in the
    form's Instances section."""
    from airflow.sdk import Param  # the DAG files that call this have Airflow loaded already

    return Param(
        default, type="string", pattern=INSTANCE_TYPE_PATTERN.pattern, title=title, description=description,
        section="Instances",
    )  # fmt: skip


def dated_run_prefix(name_prefix: str, run_id: str, run_date: dt.date | str) -> str:
    """``<name_prefix>-20261123-1a2b3c``: the DAG's name prefix, the run's date, 6 hex digits of the run id.

    The same on every retry of the run (so a retried task finds what its first try created), different for
    two runs of one date.
    """
    if not run_id:
        raise ValueError("run_id must not be empty")
    digest = hashlib.sha1(run_id.encode("utf-8")).hexdigest()[:6]
    return sagemaker_name(name_prefix, coerce_run_date(run_date).strftime("%Y%m%d"), digest)
