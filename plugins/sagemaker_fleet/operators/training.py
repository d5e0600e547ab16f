"""SageMakerRetrySafeTrainingOperator: a training job per task that a retry never duplicates.

The provider's ``SageMakerTrainingOperator`` renames a job whose name exists (``-<epoch>``), so a retried or
cleared task starts a second job and the model path moves. Here the caller picks a deterministic base name
(from dag_id, location and run date, say) and the operator decides from what SageMaker already has, as every
job operator of the package does (:mod:`sagemaker_fleet.operators.retry_safe`):

========================  ===================================================
newest attempt            what execute does
========================  ===================================================
none                      create ``<base>``
InProgress / Stopping     re-attach: defer (or poll) on that job
Completed                 return it at once, no new job
Failed / Stopped          create the next attempt ``<base>-r1``, ``-r2``, ...
========================  ===================================================
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

from sagemaker_fleet.links.sagemaker import SageMakerTrainingJobLink
from sagemaker_fleet.operators.retry_safe import (
    MAX_ATTEMPTS,
    NON_TERMINAL,
    SageMakerRetrySafeJobOperator,
    attempt_name,
    cast_int_fields,
)
from sagemaker_fleet.triggers.training import TrainingJobTrigger

__all__ = ["MAX_ATTEMPTS", "NON_TERMINAL", "SageMakerRetrySafeTrainingOperator", "attempt_name"]

# CreateTrainingJob integer members a Jinja template renders as strings.
_INT_FIELDS = (
    ("ResourceConfig", "InstanceCount"),
    ("ResourceConfig", "VolumeSizeInGB"),
    ("StoppingCondition", "MaxRuntimeInSeconds"),
    ("StoppingCondition", "MaxWaitTimeInSeconds"),
    ("StoppingCondition", "MaxPendingTimeInSeconds"),
)


def _is_valid_name(name: object) -> bool:
    from sagemaker_fleet.utils.naming import is_valid_sagemaker_name

    return is_valid_sagemaker_name(name)


def prepare_training_config(config: Any) -> dict:
    """Copy of a rendered CreateTrainingJob request with templated numbers cast; ValueError when unusable."""
    if not isinstance(config, dict):
        raise ValueError(f"config must be a CreateTrainingJob request (a dict), got {type(config).__name__}")
    prepared = copy.deepcopy(config)
    name = prepared.get("TrainingJobName")
    if not _is_valid_name(name):
        raise ValueError(
            f"config['TrainingJobName'] must be a valid SageMaker name ([a-zA-Z0-9](-*[a-zA-Z0-9]){{0,62}}), got {name!r}"
        )
    for missing in ("AlgorithmSpecification", "RoleArn", "OutputDataConfig", "ResourceConfig", "StoppingCondition"):
        if missing not in prepared:
            raise ValueError(f"config is missing {missing!r} (a CreateTrainingJob request needs it)")
    cast_int_fields(prepared, _INT_FIELDS)
    hyperparameters = prepared.get("HyperParameters")
    if hyperparameters is not None:
        if not isinstance(hyperparameters, dict):
            raise ValueError("config['HyperParameters'] must be a dict")
        # SageMaker takes only strings; a native-rendered bool must read as the containers expect.
        prepared["HyperParameters"] = {
            str(k): (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in hyperparameters.items()
        }
    return prepared


def _fmt_time(value: Any) -> str:
    return value.isoformat(timespec="seconds") if isinstance(value, dt.datetime) else str(value)


class SageMakerRetrySafeTrainingOperator(SageMakerRetrySafeJobOperator):
    """Start (or re-attach to) a SageMaker training job under a deterministic name and wait for it.

    :param config: a whole CreateTrainingJob request (templated, JSON-rendered); its ``TrainingJobName``
        is the deterministic base name, at most 63 characters
    :param deferrable: wait in the triggerer (no worker slot held) instead of polling on the worker;
        defaults to ``[operators] default_deferrable``, True when unset
    :param check_interval: seconds between status checks
    :param max_wait_seconds: fail the task (the job keeps running; a retry re-attaches) after this long
    :param print_log: log the job's CloudWatch lines at completion
    :param tags: tags for the job besides the request's own ``Tags`` and the automatic ``airflow:dag_id`` and
        ``airflow:run_id`` (e.g. ``{"location": "Chicago_IL"}``)

    Returns ``{"job_name", "model_artifact", "metrics", "status", "billable_seconds"}``.

    Example::

        SageMakerRetrySafeTrainingOperator.partial(task_id="train", pool="sagemaker_training").expand(
            config=build_configs.output
        )
    """

    job_type = "training"
    name_key = "TrainingJobName"
    status_key = "TrainingJobStatus"
    job_link = SageMakerTrainingJobLink
    operator_extra_links = (SageMakerTrainingJobLink(),)
    ui_color = "#f0eee4"
    _transitions_seen = 0  # SecondaryStatusTransitions already logged while polling

    def prepare_config(self, config: Any) -> dict:
        return prepare_training_config(config)

    def trigger(self, job_name: str) -> TrainingJobTrigger:
        return TrainingJobTrigger(job_name, **self.trigger_settings())

    def warn_if_config_differs(self, description: dict, config: dict) -> None:
        existing = description.get("HyperParameters") or {}
        wanted = config.get("HyperParameters") or {}
        changed = {k for k in set(existing) | set(wanted) if existing.get(k) != wanted.get(k)}
        if changed:
            self.log.warning(
                "Job %s was started with other hyperparameters (%s differ); the deterministic name wins. "
                "Use a new base name to train with the new values.",
                description["TrainingJobName"],
                sorted(changed),
            )

    def log_progress(self, description: dict) -> None:
        transitions = description.get("SecondaryStatusTransitions", [])
        for transition in transitions[self._transitions_seen :]:
            self.log.info(
                "%s: %s - %s", description["TrainingJobName"], transition["Status"], transition.get("StatusMessage", "")
            )
        self._transitions_seen = len(transitions)

    def log_finished(self, description: dict) -> None:
        job_name = description.get("TrainingJobName", self._job_name)
        for transition in description.get("SecondaryStatusTransitions", []):
            self.log.info(
                "%s %s: %s - %s",
                job_name,
                _fmt_time(transition.get("StartTime", "")),
                transition["Status"],
                transition.get("StatusMessage", ""),
            )
        for metric in description.get("FinalMetricDataList", []):
            self.log.info("%s final metric %s = %s", job_name, metric["MetricName"], metric["Value"])

    def result(self, description: dict) -> dict:
        metrics = {m["MetricName"]: float(m["Value"]) for m in description.get("FinalMetricDataList", [])}
        billable = description.get("BillableTimeInSeconds")
        if billable is None and description.get("TrainingStartTime") and description.get("TrainingEndTime"):
            billable = self.hook.count_billable_seconds(
                description["TrainingStartTime"],
                description["TrainingEndTime"],
                int(description.get("ResourceConfig", {}).get("InstanceCount", 1)),
            )
        return {
            "job_name": description["TrainingJobName"],
            "model_artifact": description["ModelArtifacts"]["S3ModelArtifacts"],
            "metrics": metrics,
            "status": description["TrainingJobStatus"],
            "billable_seconds": int(billable) if billable is not None else None,
        }
