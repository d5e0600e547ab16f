"""Registers the sagemaker_fleet extra links with Airflow, so the UI can render them for every task that uses them."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from sagemaker_fleet.links.sagemaker import SageMakerEndpointLink, SageMakerTrainingJobLink


class SageMakerFleetPlugin(AirflowPlugin):
    name = "sagemaker_fleet"
    operator_extra_links = [SageMakerTrainingJobLink(), SageMakerEndpointLink()]
