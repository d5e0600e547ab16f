"""The CreateTrainingJob request both DAGs send: CSV label-first channels for a built-in algorithm."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# The channels every job reads (test is kept for evaluation, never sent to training).
TRAINING_CHANNELS = ("train", "validation")
MAX_TRAINING_SECONDS = 3600


def csv_training_request(
    *,
    job_name: str,
    image_uri: str,
    role_arn: str,
    channels: Mapping[str, str],
    output_path: str,
    instance_type: str,
    hyperparameters: Mapping[str, str],
    tags: list[dict[str, str]],
) -> dict[str, Any]:
    """A whole CreateTrainingJob request; ``channels`` maps train/validation to their S3 prefixes."""
    return {
        "TrainingJobName": job_name,
        "AlgorithmSpecification": {"TrainingImage": image_uri, "TrainingInputMode": "File"},
        "RoleArn": role_arn,
        "InputDataConfig": [
            {
                "ChannelName": name,
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": channels[name],
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
                "ContentType": "text/csv",
                "CompressionType": "None",
            }
            for name in TRAINING_CHANNELS
        ],
        "OutputDataConfig": {"S3OutputPath": output_path},
        "ResourceConfig": {"InstanceType": instance_type, "InstanceCount": 1, "VolumeSizeInGB": 5},
        "StoppingCondition": {"MaxRuntimeInSeconds": MAX_TRAINING_SECONDS},
        "HyperParameters": dict(hyperparameters),
        "Tags": tags,
    }
