"""SageMakerRetrySafeProcessingOperator: a processing job per task that a retry never duplicates.

The provider's ``SageMakerProcessingOperator`` renames a job whose name exists (``-<epoch>``), so a retried or
cleared task starts a second job, writing its outputs again. Here the caller picks a deterministic base name
and the operator decides from what SageMaker already has, as every job operator of the package does
(:mod:`sagemaker_fleet.operators.retry_safe`):

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
from typing import Any

from sagemaker_fleet.links.sagemaker import SageMakerProcessingJobLink
from sagemaker_fleet.operators.retry_safe import SageMakerRetrySafeJobOperator, cast_int_fields
from sagemaker_fleet.triggers.jobs import ProcessingJobTrigger
from sagemaker_fleet.utils.naming import is_valid_sagemaker_name

__all__ = ["SageMakerRetrySafeProcessingOperator", "prepare_processing_config"]

# CreateProcessingJob integer members a Jinja template renders as strings.
_INT_FIELDS = (
    ("ProcessingResources", "ClusterConfig", "InstanceCount"),
    ("ProcessingResources", "ClusterConfig", "VolumeSizeInGB"),
    ("StoppingCondition", "MaxRuntimeInSeconds"),
)


def prepare_processing_config(config: Any) -> dict:
    """Copy of a rendered CreateProcessingJob request with templated numbers cast; ValueError when unusable."""
    if not isinstance(config, dict):
        raise ValueError(f"config must be a CreateProcessingJob request (a dict), got {type(config).__name__}")
    prepared = copy.deepcopy(config)
    name = prepared.get("ProcessingJobName")
    if not is_valid_sagemaker_name(name):
        raise ValueError(
            "config['ProcessingJobName'] must be a valid SageMaker name ([a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}), "
            f"got {name!r}"
        )
    for missing in ("AppSpecification", "RoleArn", "ProcessingResources"):
        if missing not in prepared:
            raise ValueError(f"config is missing {missing!r} (a CreateProcessingJob request needs it)")
    cast_int_fields(prepared, _INT_FIELDS)
    environment = prepared.get("Environment")
    if environment is not None:
        if not isinstance(environment, dict):
            raise ValueError("config['Environment'] must be a dict")
        prepared["Environment"] = {str(k): str(v) for k, v in environment.items()}
    return prepared


class SageMakerRetrySafeProcessingOperator(SageMakerRetrySafeJobOperator):
    """Start (or re-attach to) a SageMaker processing job under a deterministic name and wait for it.

    :param config: a whole CreateProcessingJob request (templated, JSON-rendered); its ``ProcessingJobName``
        is the deterministic base name, at most 63 characters
    :param deferrable: wait in the triggerer (:class:`~sagemaker_fleet.triggers.jobs.ProcessingJobTrigger`)
        instead of polling on the worker; defaults to ``[operators] default_deferrable``, True when unset
    :param check_interval: seconds between status checks
    :param max_wait_seconds: fail the task (the job keeps running; a retry re-attaches) after this long
    :param print_log: log the job's CloudWatch lines at the end
    :param tags: tags for the job besides the request's own ``Tags`` and ``airflow:dag_id``/``airflow:run_id``

    Returns ``{"job_name", "status", "outputs": {OutputName: S3Uri}, "exit_message"}``.
    """

    job_type = "processing"
    name_key = "ProcessingJobName"
    status_key = "ProcessingJobStatus"
    job_link = SageMakerProcessingJobLink
    operator_extra_links = (SageMakerProcessingJobLink(),)
    ui_color = "#eef0e4"

    def prepare_config(self, config: Any) -> dict:
        return prepare_processing_config(config)

    def trigger(self, job_name: str) -> ProcessingJobTrigger:
        return ProcessingJobTrigger(job_name, **self.trigger_settings())

    def result(self, description: dict) -> dict:
        outputs = (description.get("ProcessingOutputConfig") or {}).get("Outputs") or []
        return {
            "job_name": description["ProcessingJobName"],
            "status": description["ProcessingJobStatus"],
            "outputs": {o["OutputName"]: o["S3Output"]["S3Uri"] for o in outputs if o.get("S3Output")},
            "exit_message": description.get("ExitMessage"),
        }
