"""Our operators wait in the triggerer unless told otherwise: ``[operators] default_deferrable``, True when unset
(the provider's own fallback is False). The default is read when the module is imported, as the provider's is,
so each case runs in a fresh interpreter."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHECK = """
from sagemaker_fleet.operators.deploy import SageMakerDeployEndpointOperator
from sagemaker_fleet.operators.training import SageMakerRetrySafeTrainingOperator
from sagemaker_fleet.sensors.endpoint import SageMakerEndpointStateSensor
print(
    SageMakerRetrySafeTrainingOperator(task_id="t", config={}).deferrable,
    SageMakerDeployEndpointOperator(task_id="d", endpoint_name="e", endpoint_config={}).deferrable,
    SageMakerEndpointStateSensor(task_id="s", endpoint_name="e").deferrable,
)
"""


@pytest.mark.parametrize(
    ("variable", "config_file", "expected"),
    [
        (None, None, "True True True"),  # Airflow's built-in default (False) is not a choice the user made
        ("False", None, "False False False"),
        ("True", None, "True True True"),
        (None, "False", "False False False"),
    ],
)
def test_default_deferrable_follows_the_airflow_setting(
    variable: str | None, config_file: str | None, expected: str, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE")}
    env.update(AIRFLOW_HOME=str(tmp_path), PYTHONPATH=f"{ROOT}{os.pathsep}{ROOT / 'plugins'}")
    if variable is not None:
        env["AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE"] = variable
    if config_file is not None:
        (tmp_path / "airflow.cfg").write_text(f"[operators]\ndefault_deferrable = {config_file}\n")
    result = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == expected
