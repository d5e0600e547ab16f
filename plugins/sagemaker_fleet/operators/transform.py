"""SageMakerRetrySafeTransformOperator: a batch transform job per task that a retry never duplicates.

The provider's ``SageMakerTransformOperator`` renames a job whose name exists (``-<epoch>``), so a retried or
cleared task scores the same input again into the same output path. Here the caller picks a deterministic
base name and the operator decides from what SageMaker already has, as every job operator of the package
does (:mod:`sagemaker_fleet.operators.retry_safe`):

========================  ===================================================
newest attempt            what execute does
========================  ===================================================
none                      create ``<base>``
InProgress / Stopping     re-attach: defer (or poll) on that job
Completed                 return it at once, no new job
Failed / Stopped          create the next attempt ``<base>-r1``, ``-r2``, ...
========================  ===================================================

The model is the caller's (``ModelName`` in the request, created by an earlier task); this operator does not
create models, so a retry never meets a half-created one.
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

from sagemaker_fleet.links.sagemaker import SageMakerTransformJobLink
from sagemaker_fleet.operators.retry_safe import SageMakerRetrySafeJobOperator, cast_int_fields
from sagemaker_fleet.triggers.jobs import TransformJobTrigger
from sagemaker_fleet.utils.naming import is_valid_sagemaker_name

__all__ = ["SageMakerRetrySafeTransformOperator", "json_safe", "prepare_transform_config"]

# CreateTransformJob integer members a Jinja template renders as strings.
_INT_FIELDS = (
    ("TransformResources", "InstanceCount"),
    ("MaxConcurrentTransforms",),
    ("MaxPayloadInMB",),
    ("ModelClientConfig", "InvocationsTimeoutInSeconds"),
    ("ModelClientConfig", "InvocationsMaxRetries"),
)
# Members whose change means a job found under the name is not the one asked for (the name still wins).
_IDENTITY = (
    ("ModelName",),
    ("TransformInput", "DataSource", "S3DataSource", "S3Uri"),
    ("TransformOutput", "S3OutputPath"),
)


def prepare_transform_config(config: Any) -> dict:
    """Copy of a rendered CreateTransformJob request with templated numbers cast; ValueError when unusable."""
    if not isinstance(config, dict):
        raise ValueError(f"config must be a CreateTransformJob request (a dict), got {type(config).__name__}")
    if "Transform" in config or "Model" in config:
        raise ValueError(
            "config must be the CreateTransformJob request itself, not the provider's {'Model': ..., "
            "'Transform': ...} form: create the model in an earlier task and name it in config['ModelName']"
        )
    prepared = copy.deepcopy(config)
    name = prepared.get("TransformJobName")
    if not is_valid_sagemaker_name(name):
        raise ValueError(
            "config['TransformJobName'] must be a valid SageMaker name ([a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}), "
            f"got {name!r}"
        )
    for missing in ("ModelName", "TransformInput", "TransformOutput", "TransformResources"):
        if missing not in prepared:
            raise ValueError(f"config is missing {missing!r} (a CreateTransformJob request needs it)")
    if not is_valid_sagemaker_name(prepared["ModelName"]):
        raise ValueError(f"config['ModelName'] must be a valid SageMaker name, got {prepared['ModelName']!r}")
    source = _member(prepared, ("TransformInput", "DataSource", "S3DataSource", "S3Uri"))
    if not isinstance(source, str) or not source:
        raise ValueError("config['TransformInput']['DataSource']['S3DataSource']['S3Uri'] is required")
    output = _member(prepared, ("TransformOutput", "S3OutputPath"))
    if not isinstance(output, str) or not output:
        raise ValueError("config['TransformOutput']['S3OutputPath'] is required")
    cast_int_fields(prepared, _INT_FIELDS)
    environment = prepared.get("Environment")
    if environment is not None:
        if not isinstance(environment, dict):
            raise ValueError("config['Environment'] must be a dict")
        prepared["Environment"] = {str(k): str(v) for k, v in environment.items()}
    return prepared


def _member(config: dict, path: tuple[str, ...]) -> Any:
    value: Any = config
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def json_safe(value: Any) -> Any:
    """``value`` with datetimes as ISO 8601 strings, so XCom's JSON takes it (botocore answers datetimes)."""
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


class SageMakerRetrySafeTransformOperator(SageMakerRetrySafeJobOperator):
    """Start (or re-attach to) a SageMaker batch transform job under a deterministic name and wait for it.

    :param config: a whole CreateTransformJob request (templated, JSON-rendered); its ``TransformJobName``
        is the deterministic base name, at most 63 characters; ``ModelName`` names an existing model
    :param deferrable: wait in the triggerer (:class:`~sagemaker_fleet.triggers.jobs.TransformJobTrigger`)
        instead of polling on the worker; defaults to ``[operators] default_deferrable``, True when unset
    :param check_interval: seconds between status checks
    :param max_wait_seconds: fail the task (the job keeps running; a retry re-attaches) after this long
    :param print_log: log the job's CloudWatch lines at the end
    :param tags: tags for the job besides the request's own ``Tags`` and ``airflow:dag_id``/``airflow:run_id``

    Returns the DescribeTransformJob answer of the Completed job (JSON-safe: times as ISO 8601 strings).

    Example::

        score = SageMakerRetrySafeTransformOperator(
            task_id="batch_score",
            config={
                # A manual run may have no logical date: fall back to run_after, as the DAGs do.
                "TransformJobName": "digits-score-{{ (logical_date or dag_run.run_after) | ds_nodash }}",
                "ModelName": "digits-{{ (logical_date or dag_run.run_after) | ds_nodash }}",
                "TransformInput": {
                    "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://bucket/test/"}},
                    "ContentType": "text/csv",
                    "SplitType": "Line",
                },
                "TransformOutput": {
                    "S3OutputPath": "s3://bucket/scored/{{ (logical_date or dag_run.run_after) | ds }}/",
                    "AssembleWith": "Line",
                },
                "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
            },
        )
    """

    job_type = "transform"
    name_key = "TransformJobName"
    status_key = "TransformJobStatus"
    job_link = SageMakerTransformJobLink
    operator_extra_links = (SageMakerTransformJobLink(),)
    ui_color = "#e4eef0"

    def prepare_config(self, config: Any) -> dict:
        return prepare_transform_config(config)

    def trigger(self, job_name: str) -> TransformJobTrigger:
        return TransformJobTrigger(job_name, **self.trigger_settings())

    def warn_if_config_differs(self, description: dict, config: dict) -> None:
        changed = [".".join(path) for path in _IDENTITY if _member(description, path) != _member(config, path)]
        if changed:
            self.log.warning(
                "Job %s was started with another %s; the deterministic name wins. Use a new base name to "
                "transform with the new values.",
                description["TransformJobName"],
                ", ".join(changed),
            )

    def result(self, description: dict) -> dict:
        return json_safe({k: v for k, v in description.items() if k != "ResponseMetadata"})
