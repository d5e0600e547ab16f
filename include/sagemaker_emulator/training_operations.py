"""Training-job operations (request and response): Create/Describe/Stop/ListTrainingJobs. The behaviour
(staging, the worker, uploads, status transitions) is in ``training.py``."""

from __future__ import annotations

import re
from typing import Any

from . import script_mode
from .aws import MissingObject
from .control_plane import Handler, RequestContext, check_tags, now
from .errors import constraint_error, not_found, validation_error
from .framework_images import sklearn_versions
from .job_operations import JobOperations
from .training import STATUS_MESSAGES, TRAINING
from .validation import check_name, check_role, require, split_s3_uri

CHANNEL_NAME = re.compile(r"^[A-Za-z0-9\.\-_]+$")

TRAINING_JOBS = JobOperations(
    kind=TRAINING,
    noun="training job",
    arn_key="TrainingJobArn",
    summaries_key="TrainingJobSummaries",
    summary_keys=(
        "TrainingJobName",
        "TrainingJobArn",
        "CreationTime",
        "TrainingEndTime",
        "LastModifiedTime",
        "TrainingJobStatus",
        "SecondaryStatus",
    ),
    # The quota counts instances: a 2-instance job takes two.
    instance_count=lambda job: int(job["ResourceConfig"].get("InstanceCount", 1)),
    quota_setting="max_concurrent_training_jobs",
    duplicate_message=(
        "Training job names must be unique within an AWS account and region, and a training job with "
        "this name already exists ({arn})"
    ),
    runner=lambda emulator: emulator.training,
    missing=lambda name: not_found(),
)


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
                f"{'|'.join(sklearn_versions())}>[-cpu-py3], or sagemaker-xgboost with the "
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

    job_arn = TRAINING_JOBS.arn(ctx, name)
    created = now()
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
    return TRAINING_JOBS.create(ctx, record, instance_type=resources["InstanceType"], tags=tags)


HANDLERS: dict[str, Handler] = {
    "CreateTrainingJob": create_training_job,
    "DescribeTrainingJob": TRAINING_JOBS.describe,
    "StopTrainingJob": TRAINING_JOBS.stop,
    "ListTrainingJobs": TRAINING_JOBS.list,
}
