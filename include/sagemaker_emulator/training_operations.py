"""Training-job operations (request and response): Create/Describe/Stop/ListTrainingJobs. The behaviour
(staging, the worker, uploads, status transitions) is in ``training.py``."""

from __future__ import annotations

import re
from typing import Any

from . import script_mode
from .aws import MissingObject
from .control_plane import RequestContext, check_tags, list_page, now, operation, paged, save_tags
from .errors import AwsError, constraint_error, not_found, validation_error
from .jobs import TERMINAL
from .store import public
from .training import STATUS_MESSAGES
from .validation import arn, check_name, check_role, require, split_s3_uri

CHANNEL_NAME = re.compile(r"^[A-Za-z0-9\.\-_]+$")


def _check_channels(ctx: RequestContext, body: dict[str, Any], role: str) -> list[dict[str, Any]]:
    channels = body.get("InputDataConfig") or []
    if not isinstance(channels, list) or len(channels) > 20:
        raise constraint_error(channels, "inputDataConfig", "Member must have length less than or equal to 20")
    seen: set[str] = set()
    checked = []
    for index, channel in enumerate(channels, start=1):
        member = f"inputDataConfig.{index}.member"
        name = channel.get("ChannelName") if isinstance(channel, dict) else None
        if not name or len(name) > 64 or not CHANNEL_NAME.match(name):
            raise constraint_error(
                name, f"{member}.channelName", "Member must satisfy regular expression pattern: [A-Za-z0-9\\.\\-_]+"
            )
        if name in (".", ".."):
            # The pattern allows them, but as a directory below /opt/ml/input/data they would name another one.
            raise validation_error(
                f"Channel name {name!r} is not supported by the local emulator: it names a directory outside "
                "/opt/ml/input/data. Choose a channel name with a letter or digit."
            )
        if name in seen:
            raise validation_error(f"Channel names must be unique. Channel {name} is specified more than once.")
        seen.add(name)
        source = require(channel, "DataSource", "S3DataSource")
        uri = require(source, "S3Uri")
        data_type = require(source, "S3DataType")
        if data_type != "S3Prefix":
            raise validation_error(f"S3DataType {data_type} in channel {name} is not emulated locally; use S3Prefix.")
        bucket, prefix = split_s3_uri(uri, f"InputDataConfig channel {name} S3Uri")
        try:
            found = ctx.emulator.moto.s3_list(bucket, prefix)
        except MissingObject:
            found = []
        if not found:
            raise validation_error(
                f'No S3 objects found under S3 URL "{uri}" given in input data source. Please ensure that the '
                f"bucket exists in the selected region ({ctx.region}), that objects exist under that S3 prefix, "
                f'and that the role "{role}" has "s3:ListBucket" permissions on bucket "{bucket}".'
            )
        checked.append(
            {
                **channel,
                "DataSource": {"S3DataSource": {"S3DataDistributionType": "FullyReplicated", **source}},
                "CompressionType": channel.get("CompressionType", "None"),
                "RecordWrapperType": channel.get("RecordWrapperType", "None"),
            }
        )
    return checked


@operation("CreateTrainingJob")
def create_training_job(ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
    from .algorithms import UnsupportedImageError, algorithm_for_image, algorithm_version, default_metric_definitions

    name = check_name(body.get("TrainingJobName"), "trainingJobName")
    spec = require(body, "AlgorithmSpecification")
    image = spec.get("TrainingImage")
    if not image:
        raise validation_error(
            "AlgorithmSpecification.TrainingImage is required (algorithm resources are not emulated)."
        )
    raw_hyperparameters = body.get("HyperParameters") or {}
    script = script_mode.framework_for(image, raw_hyperparameters if isinstance(raw_hyperparameters, dict) else {})
    if script is not None:
        algorithm = script_mode.SCRIPT
    else:
        try:
            algorithm = algorithm_for_image(image)
        except UnsupportedImageError as exc:
            raise validation_error(
                f"Requested image {image} not found. {exc} Script mode: sagemaker-scikit-learn:<"
                f"{'|'.join(script_mode.sklearn_versions())}>[-cpu-py3], or sagemaker-xgboost with the "
                "hyperparameter sagemaker_program."
            ) from exc
    input_mode = require(spec, "TrainingInputMode")
    if input_mode not in ("File", "Pipe", "FastFile"):
        raise constraint_error(
            input_mode,
            "algorithmSpecification.trainingInputMode",
            "Member must satisfy enum value set: [Pipe, File, FastFile]",
        )
    role = check_role(require(body, "RoleArn"))
    output_path = require(body, "OutputDataConfig", "S3OutputPath")
    split_s3_uri(output_path, "OutputDataConfig.S3OutputPath")
    resources = require(body, "ResourceConfig")
    require(resources, "InstanceType")
    count = require(resources, "InstanceCount")
    if not isinstance(count, int) or count < 1:
        raise constraint_error(
            count, "resourceConfig.instanceCount", "Member must have value greater than or equal to 1"
        )
    volume = require(resources, "VolumeSizeInGB")
    if not isinstance(volume, int) or volume < 1:
        # The model allows 0 for instance groups, which are not emulated; one instance needs a volume.
        raise constraint_error(
            volume, "resourceConfig.volumeSizeInGB", "Member must have value greater than or equal to 1"
        )
    stopping = require(body, "StoppingCondition")
    max_runtime = stopping.get("MaxRuntimeInSeconds", 86400)
    if not isinstance(max_runtime, int) or max_runtime < 1:
        raise constraint_error(
            max_runtime, "stoppingCondition.maxRuntimeInSeconds", "Member must have value greater than or equal to 1"
        )
    hyperparameters = body.get("HyperParameters") or {}
    if not isinstance(hyperparameters, dict) or len(hyperparameters) > 100:
        raise constraint_error(hyperparameters, "hyperParameters", "Member must have length less than or equal to 100")
    for key, value in hyperparameters.items():
        if not isinstance(value, str):
            raise constraint_error(value, f"hyperParameters.{key}", "Member must be a string")
    script_settings = None
    if script is not None:
        try:
            script_settings = script_mode.check_request(image, hyperparameters, ctx.emulator.moto.s3_etag)
        except script_mode.ScriptRequestError as exc:
            raise validation_error(str(exc)) from None
    channels = _check_channels(ctx, body, role)
    tags = check_tags(body.get("Tags"))

    emulator = ctx.emulator
    job_arn = arn(ctx.region, "training-job", name)
    created = now()
    store = emulator.store
    with store.locked():
        if store.get("training-job", name) is not None:
            raise AwsError(
                "ResourceInUse",
                "Training job names must be unique within an AWS account and region, and a training job with "
                f"this name already exists ({job_arn})",
            )
        # The quota counts instances: a 2-instance job takes two.
        running = sum(
            int(j["ResourceConfig"].get("InstanceCount", 1))
            for j in store.list("training-job")
            if j["TrainingJobStatus"] in ("InProgress", "Stopping")
        )
        limit = emulator.config.max_concurrent_training_jobs
        if running + count > limit:
            raise AwsError(
                "ResourceLimitExceeded",
                f"The account-level service limit '{resources['InstanceType']} for training job usage' is {limit} "
                f"Instances, with current utilization of {running} Instances and a request delta of {count} Instances. "
                "Please use AWS Service Quotas to request an increase for this quota. If AWS Service Quotas is not "
                "available, contact AWS support to request an increase for this quota.",
            )
        record = {
            "TrainingJobName": name,
            "TrainingJobArn": job_arn,
            "ModelArtifacts": {"S3ModelArtifacts": ""},
            "TrainingJobStatus": "InProgress",
            "SecondaryStatus": "Starting",
            "HyperParameters": hyperparameters,
            "AlgorithmSpecification": {
                **spec,
                "MetricDefinitions": spec.get("MetricDefinitions")
                or ([] if script else default_metric_definitions(algorithm, algorithm_version(image))),
                "EnableSageMakerMetricsTimeSeries": spec.get("EnableSageMakerMetricsTimeSeries", False),
            },
            "RoleArn": role,
            "InputDataConfig": channels,
            "OutputDataConfig": {"KmsKeyId": "", "CompressionType": "GZIP", **body["OutputDataConfig"]},
            "ResourceConfig": resources,
            "StoppingCondition": {**stopping, "MaxRuntimeInSeconds": max_runtime},
            "CreationTime": created,
            "LastModifiedTime": created,
            "SecondaryStatusTransitions": [
                {"Status": "Starting", "StartTime": created, "StatusMessage": STATUS_MESSAGES["Starting"]}
            ],
            "EnableNetworkIsolation": bool(body.get("EnableNetworkIsolation", False)),
            "EnableInterContainerTrafficEncryption": bool(body.get("EnableInterContainerTrafficEncryption", False)),
            "EnableManagedSpotTraining": bool(body.get("EnableManagedSpotTraining", False)),
            "_algorithm": algorithm,
            # The container version decides validation and early-stopping rules (e.g. `silent` only in 1.0-1).
            "_algorithm_version": script[1] if script else algorithm_version(image),
            "_region": ctx.region,
            # Script mode: {"framework", "program", "submit_directory"} (script_mode.py runs it).
            "_script": {"framework": script[0], **script_settings} if script and script_settings else None,
            "_log_stream": f"{name}/algo-1-{int(created)}",
        }
        for optional in (
            "VpcConfig",
            "CheckpointConfig",
            "DebugHookConfig",
            "Environment",
            "RetryStrategy",
            "ExperimentConfig",
            "ProfilerConfig",
        ):
            if body.get(optional) is not None:
                record[optional] = body[optional]
        store.put("training-job", name, record)
    if tags:
        save_tags(ctx, job_arn, tags)
    emulator.training.submit(name)
    return {"TrainingJobArn": job_arn}


def _get_job(ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
    record = ctx.emulator.store.get("training-job", require(body, "TrainingJobName"))
    if record is None:
        raise not_found()
    return record


@operation("DescribeTrainingJob")
def describe_training_job(ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
    return public(_get_job(ctx, body))


@operation("StopTrainingJob")
def stop_training_job(ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
    record = _get_job(ctx, body)
    status = record["TrainingJobStatus"]
    if status in TERMINAL:
        raise validation_error(f"The request was rejected because the training job is in status {status}.")
    ctx.emulator.training.stop(record["TrainingJobName"])
    return {}


@operation("ListTrainingJobs")
def list_training_jobs(ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
    page, token = list_page(
        ctx.emulator.store.list("training-job"), body, name_key="TrainingJobName", status_key="TrainingJobStatus"
    )
    keys = (
        "TrainingJobName",
        "TrainingJobArn",
        "CreationTime",
        "TrainingEndTime",
        "LastModifiedTime",
        "TrainingJobStatus",
        "SecondaryStatus",
    )
    return paged("TrainingJobSummaries", [{k: r[k] for k in keys if k in r} for r in page], token)
