"""Registers the sagemaker_fleet extra links with Airflow, so the UI can render them for every task that uses them.

Loaded from Airflow's plugins folder (and from an MWAA-style plugins.zip unpacked into it). When the package is
pip-installed instead, its ``apache_airflow_provider`` entry point declares the same links.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from sagemaker_fleet.links.sagemaker import ALL_LINKS


class SageMakerFleetPlugin(AirflowPlugin):
    name = "sagemaker_fleet"
    operator_extra_links = [link() for link in ALL_LINKS]
