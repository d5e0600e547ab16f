"""The ``apache_airflow_provider`` entry point: what ``airflow providers list`` and the UI learn about the package
when it is pip-installed. The extra links are declared here once, as class paths (``links.sagemaker.ALL_LINKS``
and the plugin are built from them).

Nothing here may import Airflow: the providers manager calls ``get_provider_info`` while Airflow's own
configuration is still being set up, and an import of the links module then is a circular import.
"""

from __future__ import annotations

from typing import Any

EXTRA_LINKS = (
    "sagemaker_fleet.links.sagemaker.SageMakerTrainingJobLink",
    "sagemaker_fleet.links.sagemaker.SageMakerProcessingJobLink",
    "sagemaker_fleet.links.sagemaker.SageMakerTransformJobLink",
    "sagemaker_fleet.links.sagemaker.SageMakerEndpointLink",
    "sagemaker_fleet.links.sagemaker.MMEArtifactLink",
    "sagemaker_fleet.links.sagemaker.MMERegistryRecordLink",
    "sagemaker_fleet.links.sagemaker.S3ReportLink",
)
PACKAGE_NAME = "airflow-provider-sagemaker-fleet"
VERSION = "0.1.0"
INTEGRATION = "Amazon SageMaker fleets"


def get_provider_info() -> dict[str, Any]:
    def modules(role: str, names: list[str]) -> list[dict[str, Any]]:
        return [{"integration-name": INTEGRATION, "python-modules": [f"sagemaker_fleet.{role}.{n}" for n in names]}]

    return {
        "package-name": PACKAGE_NAME,
        "name": "SageMaker fleet",
        "description": "Per-location SageMaker model fleets on Airflow: retry-safe training, a versioned "
        "multi-model-endpoint registry, verified no-downtime deployments, A/B evaluation and traffic shifts.",
        "versions": [VERSION],
        "integrations": [{"integration-name": INTEGRATION, "tags": ["aws"]}],
        "hooks": modules("hooks", ["sagemaker"]),
        "operators": modules(
            "operators",
            ["ab_evaluation", "deploy", "mme", "processing", "teardown", "traffic", "training", "transform"],
        ),
        "sensors": modules("sensors", ["endpoint", "mme"]),
        "triggers": modules("triggers", ["endpoint", "jobs", "training"]),
        "extra-links": list(EXTRA_LINKS),
        "config": {
            "sagemaker_fleet": {
                "description": "Settings of the sagemaker_fleet operators.",
                "options": {
                    "public_emulator_url": {
                        "description": "Where a browser reaches the local SageMaker emulator, when that differs "
                        "from the connection's endpoint_url (docker compose: http://localhost:4566). Used for "
                        "extra links only; unset on AWS.",
                        "version_added": VERSION,
                        "type": "string",
                        "example": "http://localhost:4566",
                        "default": None,
                    }
                },
            }
        },
    }
