"""Processing-job operations (request and response): Create/Describe/Stop/ListProcessingJobs. The behaviour
(staging, running the script, uploads) is in ``processing.py``.

Images: the scikit-learn images of every version in sagemaker-core's image config (``sagemaker-scikit-learn:``
0.20.0 to 1.9-0, any account and region) and, for "bring your own script", any image whose repository is
named ``python`` (``python:3.11``, ``public.ecr.aws/docker/library/python:3.12-slim``,
``<account>.dkr.ecr.<region>.amazonaws.com/python:3``). All run on the emulator's own Python stack, so a script
written for an older scikit-learn API fails on its own calls, and the job reports that error.
"""

from __future__ import annotations

import re
from typing import Any

from .control_plane import Handler, RequestContext, check_tags, now
from .errors import validation_error
from .framework_images import sklearn_image_version, sklearn_versions
from .job_operations import JobOperations
from .processing import PROCESSING, local_relative
from .validation import check_name, check_role, require, split_s3_uri

PYTHON_IMAGE = re.compile(r"(^|/)python(:[A-Za-z0-9_.\-]+)?$")

PROCESSING_JOBS = JobOperations(
    kind=PROCESSING,
    noun="processing job",
    arn_key="ProcessingJobArn",
    summaries_key="ProcessingJobSummaries",
    summary_keys=(
        "ProcessingJobName",
        "ProcessingJobArn",
        "CreationTime",
        "ProcessingEndTime",
        "LastModifiedTime",
        "ProcessingJobStatus",
        "FailureReason",
        "ExitMessage",
    ),
    instance_count=lambda job: int(job["ProcessingResources"]["ClusterConfig"].get("InstanceCount", 1)),
    quota_setting="max_concurrent_processing_jobs",
    duplicate_message=(
        "Job name must be unique within an AWS account and region, and a job with this name already exists ({arn})"
    ),
    runner=lambda emulator: emulator.processing,
    # ValidationException, as AWS answers: botocore's ProcessingJobCompletedOrStopped waiter stops on it.
    missing=lambda name: validation_error(f"Could not find requested job with name {name}"),
)


def image_kind(image: str) -> str:
    """ "sklearn-<version>" or "python" for the images processing jobs run; ValidationException otherwise."""
    version = sklearn_image_version(image)
    if version:
        return f"sklearn-{version}"
    if PYTHON_IMAGE.search(image):
        return "python"
    raise validation_error(
        f"Requested image {image} not found. The local emulator runs processing jobs in the scikit-learn images "
        f"(sagemaker-scikit-learn:{{{', '.join(sklearn_versions())}}}[-cpu-py3]) or a plain Python image "
        "(repository named python, e.g. python:3.11)."
    )


def _local_path(value: str, member: str) -> str:
    try:
        return local_relative(value)
    except ValueError:
        raise validation_error(
            f"{member} {value!r} is not valid: a LocalPath must be a directory below /opt/ml/processing/ "
            "(e.g. /opt/ml/processing/input)."
        ) from None


def _check_inputs(body: dict[str, Any]) -> list[dict[str, Any]]:
    checked = []
    names: set[str] = set()
    paths: dict[str, str] = {}
    for index, item in enumerate(body.get("ProcessingInputs") or [], start=1):
        name = item["InputName"]
        if name in names:
            raise validation_error(f"ProcessingInputs must have unique InputName; {name} is used more than once.")
        names.add(name)
        if item.get("DatasetDefinition") is not None:
            raise validation_error(
                f"ProcessingInput {name}: DatasetDefinition (Athena, Redshift) is not emulated locally; use S3Input."
            )
        source = item.get("S3Input")
        if source is None:
            if item.get("AppManaged"):
                checked.append(item)
                continue
            raise validation_error(f"ProcessingInput {name} needs S3Input (or AppManaged).")
        split_s3_uri(source["S3Uri"], f"ProcessingInput {name} S3Input.S3Uri")
        if source.get("S3DataType") != "S3Prefix":
            raise validation_error(
                f"ProcessingInput {name}: S3DataType {source.get('S3DataType')} is not emulated locally; use S3Prefix."
            )
        mode = source.get("S3InputMode", "File")
        if mode != "File":
            raise validation_error(f"ProcessingInput {name}: S3InputMode {mode} is not emulated locally; use File.")
        if source.get("S3CompressionType", "None") == "Gzip":
            raise validation_error(f"ProcessingInput {name}: S3CompressionType Gzip is only valid with Pipe mode.")
        if not source.get("LocalPath"):
            raise validation_error(f"ProcessingInput {name}: S3Input.LocalPath is required.")
        relative = _local_path(source["LocalPath"], f"processingInputs.{index}.member.s3Input.localPath")
        _no_overlap(paths, relative, f"input {name}")
        checked.append(
            {
                **item,
                "AppManaged": bool(item.get("AppManaged", False)),
                "S3Input": {
                    "S3InputMode": "File",
                    "S3DataDistributionType": "FullyReplicated",
                    "S3CompressionType": "None",
                    **source,
                },
            }
        )
    return checked


def _no_overlap(paths: dict[str, str], relative: str, what: str) -> None:
    """Two inputs (or two outputs) in one directory would mix their files. Nesting is fine: the SDK stages its
    ``code`` input at /opt/ml/processing/input/code, often below a data input at /opt/ml/processing/input."""
    owner = paths.get(relative)
    if owner is not None:
        raise validation_error(
            f"The LocalPath of {what} (/opt/ml/processing/{relative}) is the same as the LocalPath of {owner}. "
            "Give each its own directory."
        )
    paths[relative] = what


def _check_outputs(body: dict[str, Any]) -> dict[str, Any] | None:
    config = body.get("ProcessingOutputConfig")
    if config is None:
        return None
    names: set[str] = set()
    paths: dict[str, str] = {}
    outputs = []
    for index, output in enumerate(config["Outputs"], start=1):
        name = output["OutputName"]
        if name in names:
            raise validation_error(f"ProcessingOutputs must have unique OutputName; {name} is used more than once.")
        names.add(name)
        if output.get("FeatureStoreOutput") is not None:
            raise validation_error(
                f"ProcessingOutput {name}: FeatureStoreOutput is not emulated locally; use S3Output."
            )
        target = output.get("S3Output")
        if target is None:
            if not output.get("AppManaged"):
                raise validation_error(f"ProcessingOutput {name} needs S3Output (or AppManaged).")
            outputs.append(output)
            continue
        split_s3_uri(target["S3Uri"], f"ProcessingOutput {name} S3Output.S3Uri")
        if not target.get("LocalPath"):
            raise validation_error(f"ProcessingOutput {name}: S3Output.LocalPath is required.")
        relative = _local_path(target["LocalPath"], f"processingOutputConfig.outputs.{index}.member.s3Output.localPath")
        _no_overlap(paths, relative, f"output {name}")
        outputs.append({**output, "AppManaged": bool(output.get("AppManaged", False))})
    return {**config, "Outputs": outputs}


def create_processing_job(ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
    name = check_name(body.get("ProcessingJobName"), "processingJobName")
    app = require(body, "AppSpecification")
    image = require(app, "ImageUri")
    kind = image_kind(image)
    if not app.get("ContainerEntrypoint") and not app.get("ContainerArguments"):
        raise validation_error(
            "AppSpecification needs ContainerEntrypoint or ContainerArguments: the local emulator runs no image's "
            'default command (e.g. ContainerEntrypoint ["python3", "/opt/ml/processing/input/code/script.py"]).'
        )
    role = check_role(require(body, "RoleArn"))
    cluster = require(body, "ProcessingResources", "ClusterConfig")
    count = require(cluster, "InstanceCount")
    if count != 1:
        raise validation_error(
            f"ProcessingResources.ClusterConfig.InstanceCount {count} is not emulated locally: processing jobs run "
            "on one instance here. Use InstanceCount 1."
        )
    require(cluster, "InstanceType")
    require(cluster, "VolumeSizeInGB")
    stopping = body.get("StoppingCondition") or {}
    max_runtime = stopping.get("MaxRuntimeInSeconds", 86400)
    inputs = _check_inputs(body)
    outputs = _check_outputs(body)
    tags = check_tags(body.get("Tags"))

    job_arn = PROCESSING_JOBS.arn(ctx, name)
    created = now()
    record: dict[str, Any] = {
        "ProcessingJobName": name,
        "ProcessingJobArn": job_arn,
        "ProcessingJobStatus": "InProgress",
        "AppSpecification": app,
        "ProcessingResources": body["ProcessingResources"],
        "StoppingCondition": {**stopping, "MaxRuntimeInSeconds": max_runtime},
        "RoleArn": role,
        "CreationTime": created,
        "LastModifiedTime": created,
        "_image": kind,
        "_region": ctx.region,
        "_log_stream": f"{name}/algo-1-{int(created)}",
    }
    if inputs:
        record["ProcessingInputs"] = inputs
    if outputs is not None:
        record["ProcessingOutputConfig"] = outputs
    for optional in ("Environment", "NetworkConfig", "ExperimentConfig"):
        if body.get(optional) is not None:
            record[optional] = body[optional]
    return PROCESSING_JOBS.create(ctx, record, instance_type=cluster["InstanceType"], tags=tags)


HANDLERS: dict[str, Handler] = {
    "CreateProcessingJob": create_processing_job,
    "DescribeProcessingJob": PROCESSING_JOBS.describe,
    "StopProcessingJob": PROCESSING_JOBS.stop,
    "ListProcessingJobs": PROCESSING_JOBS.list,
}
