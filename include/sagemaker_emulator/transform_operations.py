"""Batch-transform operations (request and response): Create/Describe/Stop/ListTransformJobs. The behaviour
(staging, splitting, predicting, assembling, uploading) is in ``transform.py`` and ``transform_worker.py``.

botocore's model (``shapes.py``) has already checked types, enums, lengths and patterns; this module checks
what the model cannot say: the model exists and can run a batch transform here, the payload limits, the
DataProcessing paths, and which input and output modes are emulated. Every check runs before anything is
stored.
"""

from __future__ import annotations

from typing import Any

from .control_plane import Handler, RequestContext, check_tags, get_model, now
from .errors import validation_error
from .job_operations import JobOperations
from .transform import TRANSFORM
from .transform_worker import FilterError, compile_filter
from .validation import check_name, require, split_s3_uri

TRANSFORM_JOBS = JobOperations(
    kind=TRANSFORM,
    noun="transform job",
    arn_key="TransformJobArn",
    summaries_key="TransformJobSummaries",
    summary_keys=(
        "TransformJobName",
        "TransformJobArn",
        "CreationTime",
        "TransformEndTime",
        "LastModifiedTime",
        "TransformJobStatus",
        "FailureReason",
    ),
    instance_count=lambda job: int(job["TransformResources"].get("InstanceCount", 1)),
    quota_setting="max_transform_instances",
    duplicate_message=(
        "Job name must be unique within an AWS account and region, and a job with this name already exists ({arn})"
    ),
    runner=lambda emulator: emulator.transform,
    # ValidationException, as AWS answers: botocore's TransformJobCompletedOrStopped waiter stops on it.
    missing=lambda name: validation_error(f"Could not find requested job with name {name}"),
)

# SageMaker's limits: one request's payload, and the payload of every concurrent request together.
MAX_PAYLOAD_MB = 100
MAX_TOTAL_PAYLOAD_MB = 100
EMULATED_SPLIT_TYPES = ("None", "Line", "RecordIO")
EMULATED_DATA_TYPES = ("S3Prefix", "ManifestFile")


def model_container(model: dict[str, Any]) -> dict[str, Any]:
    """The one container of a model record (CreateModel keeps PrimaryContainer or a one-element Containers)."""
    return model.get("PrimaryContainer") or (model.get("Containers") or [{}])[0]


def _check_model(ctx: RequestContext, name: str) -> dict[str, Any]:
    model = get_model(ctx, name)  # 'Could not find model "arn:...:model/<name>".'
    container = model_container(model)
    if container.get("Mode") == "MultiModel":
        raise validation_error(
            f"Model {name} is a multi-model container (Mode MultiModel); batch transform needs a model with one "
            "model artifact (Mode SingleModel and ModelDataUrl pointing at a model.tar.gz)."
        )
    if not container.get("ModelDataUrl"):
        raise validation_error(
            f"Model {name} has no ModelDataUrl: the built-in algorithm containers need the model.tar.gz of a "
            "training job to run a batch transform."
        )
    return container


def _check_input(body: dict[str, Any]) -> dict[str, Any]:
    transform_input = require(body, "TransformInput")
    source = require(transform_input, "DataSource", "S3DataSource")
    data_type = source["S3DataType"]
    if data_type not in EMULATED_DATA_TYPES:
        raise validation_error(
            f"TransformInput.DataSource.S3DataSource.S3DataType {data_type} is not emulated locally; use "
            f"{' or '.join(EMULATED_DATA_TYPES)}."
        )
    split_s3_uri(source["S3Uri"], "TransformInput.DataSource.S3DataSource.S3Uri")
    split = transform_input.get("SplitType", "None")
    if split not in EMULATED_SPLIT_TYPES:
        raise validation_error(
            f"TransformInput.SplitType {split} is not emulated locally; use one of {', '.join(EMULATED_SPLIT_TYPES)}."
        )
    return {**transform_input, "CompressionType": transform_input.get("CompressionType", "None"), "SplitType": split}


def _check_limits(body: dict[str, Any]) -> None:
    payload = body.get("MaxPayloadInMB")
    concurrency = body.get("MaxConcurrentTransforms")
    if payload is not None:
        if payload > MAX_PAYLOAD_MB:
            raise validation_error(
                f"MaxPayloadInMB {payload} is larger than the maximum payload size of {MAX_PAYLOAD_MB} MB."
            )
        if payload == 0:
            raise validation_error(
                "MaxPayloadInMB 0 asks for chunked (streaming) requests, which the SageMaker built-in algorithm "
                "containers do not support. Use a size from 1 to 100 MB."
            )
    if concurrency and (payload or 6) * concurrency > MAX_TOTAL_PAYLOAD_MB:
        raise validation_error(
            f"MaxConcurrentTransforms ({concurrency}) x MaxPayloadInMB ({payload or 6}) is "
            f"{concurrency * (payload or 6)} MB; it must not exceed {MAX_TOTAL_PAYLOAD_MB} MB."
        )


def _check_data_processing(body: dict[str, Any], split: str, assemble: str) -> dict[str, Any] | None:
    processing = body.get("DataProcessing")
    if processing is None:
        return None
    for member in ("InputFilter", "OutputFilter"):
        if processing.get(member) is not None:
            try:
                compile_filter(processing[member])
            except FilterError as exc:
                raise validation_error(f"DataProcessing.{member} {processing[member]!r} is not valid: {exc}") from None
    join = processing.get("JoinSource", "None")
    if join == "Input" and (split != "Line" or assemble != "Line"):
        raise validation_error(
            "DataProcessing.JoinSource Input needs TransformInput.SplitType Line and TransformOutput.AssembleWith "
            f"Line (got SplitType {split} and AssembleWith {assemble}): each output record is joined to its input "
            "record."
        )
    has_filter = processing.get("InputFilter", "$") != "$"
    if has_filter and split != "Line":
        raise validation_error(
            "DataProcessing.InputFilter applies to each record, so it needs TransformInput.SplitType Line "
            f"(got {split})."
        )
    return {"InputFilter": "$", "OutputFilter": "$", **processing, "JoinSource": join}


def create_transform_job(ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
    name = check_name(body.get("TransformJobName"), "transformJobName")
    model_name = require(body, "ModelName")
    transform_input = _check_input(body)
    output = require(body, "TransformOutput")
    split_s3_uri(require(output, "S3OutputPath"), "TransformOutput.S3OutputPath")
    output = {**output, "AssembleWith": output.get("AssembleWith", "None")}
    resources = require(body, "TransformResources")
    require(resources, "InstanceType")
    _check_limits(body)
    processing = _check_data_processing(body, transform_input["SplitType"], output["AssembleWith"])
    if body.get("DataCaptureConfig") is not None:
        raise validation_error("DataCaptureConfig is not emulated locally; leave it out.")
    tags = check_tags(body.get("Tags"))
    container = _check_model(ctx, model_name)

    created = now()
    record: dict[str, Any] = {
        "TransformJobName": name,
        "TransformJobArn": TRANSFORM_JOBS.arn(ctx, name),
        "TransformJobStatus": "InProgress",
        "ModelName": model_name,
        "TransformInput": transform_input,
        "TransformOutput": output,
        "TransformResources": resources,
        "CreationTime": created,
        "LastModifiedTime": created,
        # What the job runs is fixed now: deleting or replacing the model later does not change it.
        "_container": container,
        "_region": ctx.region,
        "_epoch": int(created),
    }
    if processing is not None:
        record["DataProcessing"] = processing
    for optional in (
        "MaxConcurrentTransforms",
        "MaxPayloadInMB",
        "BatchStrategy",
        "ModelClientConfig",
        "Environment",
        "ExperimentConfig",
    ):
        if body.get(optional) is not None:
            record[optional] = body[optional]
    return TRANSFORM_JOBS.create(ctx, record, instance_type=resources["InstanceType"], tags=tags)


HANDLERS: dict[str, Handler] = {
    "CreateTransformJob": create_transform_job,
    "DescribeTransformJob": TRANSFORM_JOBS.describe,
    "StopTransformJob": TRANSFORM_JOBS.stop,
    "ListTransformJobs": TRANSFORM_JOBS.list,
}
