"""The Amazon provider's own SageMakerTrainingOperator and SageMakerEndpointOperator, unchanged, in deferrable mode
against the emulator, run through ``dag.test()``: each task defers, its provider trigger (aiobotocore, the
provider's waiters) runs in line, and the task resumes and finishes. This is what needs the aiobotocore pins."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from tests.dags.conftest import _airflow_env, dag_runner
from tests.emulator.helpers import training_request, unique, upload_housing_channels, xgboost_image
from tests.plugins.conftest import ROLE_ARN

BUCKET = "provider-deferrable"
DAG_ID = "provider_sagemaker_deferrable"

DAG_FILE = """
import datetime as dt, json
from airflow.providers.amazon.aws.operators.sagemaker import SageMakerEndpointOperator, SageMakerTrainingOperator
from airflow.sdk import DAG

SETTINGS = json.loads({settings!r})

with DAG(dag_id="{dag_id}", schedule=None, start_date=dt.datetime(2026, 11, 1), catchup=False, tags=["test"]):
    train = SageMakerTrainingOperator(
        task_id="train", config=SETTINGS["training"], deferrable=True, check_interval=1, print_log=False,
        check_if_job_exists=False,
    )
    deploy = SageMakerEndpointOperator(
        task_id="deploy",
        deferrable=True,
        check_interval=1,
        operation="create",
        config={{
            "Model": {{
                "ModelName": SETTINGS["model"],
                "ExecutionRoleArn": SETTINGS["role"],
                "PrimaryContainer": {{
                    "Image": SETTINGS["image"],
                    "ModelDataUrl": "{{{{ ti.xcom_pull(task_ids='train')['Training']['ModelArtifacts']['S3ModelArtifacts'] }}}}",
                }},
            }},
            "EndpointConfig": {{
                "EndpointConfigName": SETTINGS["config"],
                "ProductionVariants": [{{"VariantName": "AllTraffic", "ModelName": SETTINGS["model"],
                    "InitialInstanceCount": 1, "InstanceType": "ml.m5.large", "InitialVariantWeight": 1.0}}],
            }},
            "Endpoint": {{"EndpointName": SETTINGS["endpoint"], "EndpointConfigName": SETTINGS["config"]}},
        }},
    )
    train >> deploy
"""


@pytest.fixture(scope="module")
def migrated_home(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    import os
    import subprocess
    import sys

    home = tmp_path_factory.mktemp("provider_airflow_home")
    env = {**os.environ, **_airflow_env(home)}
    airflow = str(Path(sys.executable).with_name("airflow"))
    subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True, timeout=300)
    return _airflow_env(home)


def test_provider_training_and_endpoint_operators_defer_and_finish(emulator, sm, s3, migrated_home, tmp_path):
    channels = upload_housing_channels(s3, BUCKET, "provider-deferrable", houses=300)
    job, model, config, endpoint = unique("prov-train"), unique("prov-model"), unique("prov-cfg"), unique("prov-ep")
    settings = {
        "training": training_request(job, channels, f"s3://{BUCKET}/output"),
        "model": model,
        "config": config,
        "endpoint": endpoint,
        "role": ROLE_ARN,
        "image": xgboost_image(),
    }
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / f"{DAG_ID}.py").write_text(textwrap.dedent(DAG_FILE.format(settings=json.dumps(settings), dag_id=DAG_ID)))

    result = dag_runner(migrated_home)(DAG_ID, env={"AIRFLOW__CORE__DAGS_FOLDER": str(dags)}, timeout=600)

    assert result.state == "success", result.log[-6000:]
    assert result.tasks == {"train": "success", "deploy": "success"}
    # Both tasks really deferred: dag.test() ran each one's trigger in line.
    assert result.log.count("[DAG TEST] running trigger in line") == 2, result.log[-6000:]
    assert sm.describe_training_job(TrainingJobName=job)["TrainingJobStatus"] == "Completed"
    described = sm.describe_endpoint(EndpointName=endpoint)
    assert described["EndpointStatus"] == "InService" and described["EndpointConfigName"] == config
    sm.delete_endpoint(EndpointName=endpoint)
