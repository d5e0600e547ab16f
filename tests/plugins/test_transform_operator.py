"""Batch transform from Airflow against the emulator: the package's retry-safe operator (real jobs scoring a real
XGBoost model, retries that start no duplicate, deferral through TransformJobTrigger), and, through
``dag.test()``, the Amazon provider's SageMakerTransformOperator (sync, deferrable, and its model-creation path
``{"Model": ..., "Transform": ...}``) and SageMakerTransformSensor, unchanged, beside ours."""

from __future__ import annotations

import asyncio
import io
import json
import tarfile
import tempfile
import textwrap
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from airflow.exceptions import AirflowException
from airflow.sdk.exceptions import TaskDeferred

from sagemaker_fleet.operators.transform import SageMakerRetrySafeTransformOperator
from sagemaker_fleet.triggers.jobs import TransformJobTrigger
from tests.conftest import client, inject_fault
from tests.dags.conftest import _airflow_env, dag_runner
from tests.emulator.helpers import unique
from tests.emulator.serving_helpers import ROLE, XGB_IMAGE, create_model, ensure_bucket, housing_like, upload_xgboost

BUCKET = "plugin-transform"
DAG_ID = "provider_sagemaker_transform"


@pytest.fixture(scope="module")
def xgb_model(emulator) -> dict:
    """A real XGBoost artifact in S3, a SageMaker model on it, and the booster to compute the expected scores."""
    import xgboost as xgb

    s3, sm = client(emulator, "s3"), client(emulator, "sagemaker")
    ensure_bucket(s3, BUCKET)
    url = upload_xgboost(s3, BUCKET, "models/xgb/model.tar.gz")
    raw = s3.get_object(Bucket=BUCKET, Key="models/xgb/model.tar.gz")["Body"].read()
    with tempfile.TemporaryDirectory() as tmp, tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        tar.extractall(tmp, filter="data")
        booster = xgb.Booster()
        native = Path(tmp) / "xgboost-model"
        booster.load_model(str(native.rename(native.with_suffix(".ubj"))))  # the extension names the format
    name = unique("plugin-xgb")
    create_model(sm, name, url, image=XGB_IMAGE)
    return {"name": name, "url": url, "booster": booster}


def upload_rows(s3, name: str, rows: int = 60, seed: int = 3) -> np.ndarray:
    values = housing_like(rows, seed=seed)[0]
    body = "".join(",".join(f"{v:g}" for v in row) + "\n" for row in values).encode()
    s3.put_object(Bucket=BUCKET, Key=f"in/{name}/rows.csv", Body=body)
    return np.array([[float(f"{v:g}") for v in row] for row in values], dtype=np.float32)


def request(name: str, model: str, **extra) -> dict:
    return {
        "TransformJobName": name,
        "ModelName": model,
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/in/{name}/"}},
            "ContentType": "text/csv",
            "SplitType": "Line",
        },
        "TransformOutput": {"S3OutputPath": f"s3://{BUCKET}/out/{name}", "AssembleWith": "Line"},
        "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
        "BatchStrategy": "MultiRecord",
        **extra,
    }


def scores(s3, name: str) -> list[float]:
    text = s3.get_object(Bucket=BUCKET, Key=f"out/{name}/rows.csv.out")["Body"].read().decode()
    return [float(line) for line in text.splitlines()]


def attempts(sm, base: str) -> list[str]:
    return sorted(j["TransformJobName"] for j in sm.list_transform_jobs(NameContains=base)["TransformJobSummaries"])


def operator(config: dict, **kwargs) -> SageMakerRetrySafeTransformOperator:
    kwargs.setdefault("check_interval", 0.2)
    return SageMakerRetrySafeTransformOperator(task_id="score", config=config, **kwargs)


# -- the package's retry-safe operator -----------------------------------------------------------------------
def test_scores_the_input_and_a_retry_returns_the_same_job(emulator, sm, s3, xgb_model) -> None:
    name = unique("tr-op")
    rows = upload_rows(s3, name)
    result = operator(request(name, xgb_model["name"]), deferrable=False).execute(context={})
    assert result["TransformJobName"] == name and result["TransformJobStatus"] == "Completed"
    assert result["ModelName"] == xgb_model["name"]
    json.dumps(result)  # XCom-ready: the times are strings
    assert isinstance(result["CreationTime"], str)
    expected = xgb_model["booster"].inplace_predict(rows).tolist()
    assert scores(s3, name) == pytest.approx(expected, rel=1e-6)
    again = operator(request(name, xgb_model["name"]), deferrable=True).execute(context={})  # Completed: returned
    assert again == result
    assert attempts(sm, name) == [name]


def test_a_running_job_is_re_attached_not_duplicated(emulator, sm, s3, xgb_model) -> None:
    name = unique("tr-attach")
    upload_rows(s3, name)
    sm.create_transform_job(**request(name, xgb_model["name"]))  # a previous try of the task started it
    result = operator(request(name, xgb_model["name"]), deferrable=False).execute(context={})
    assert result["TransformJobName"] == name and result["TransformJobStatus"] == "Completed"
    assert attempts(sm, name) == [name]


def test_a_failed_attempt_fails_the_task_and_the_retry_starts_the_next(emulator, sm, s3, xgb_model, clear_faults):
    name = unique("tr-retry")
    upload_rows(s3, name)
    inject_fault(emulator, {"type": "transform_failure", "name_contains": name, "count": 1})
    with pytest.raises(AirflowException, match="ended Failed: AlgorithmError"):
        operator(request(name, xgb_model["name"]), deferrable=False).execute(context={})
    result = operator(request(name, xgb_model["name"]), deferrable=False).execute(context={})
    assert result["TransformJobName"] == f"{name}-r1" and result["TransformJobStatus"] == "Completed"
    assert attempts(sm, name) == [name, f"{name}-r1"]


def test_deferrable_waits_in_the_transform_trigger_and_resumes(emulator, sm, s3, xgb_model) -> None:
    name = unique("tr-defer")
    upload_rows(s3, name, rows=20000)  # enough rows that the job is still running when the operator looks
    task = operator(request(name, xgb_model["name"]), deferrable=True, check_interval=1)
    with pytest.raises(TaskDeferred) as deferred:
        task.execute(context={})
    classpath, kwargs = deferred.value.trigger.serialize()
    assert classpath == "sagemaker_fleet.triggers.jobs.TransformJobTrigger" and kwargs["job_name"] == name
    trigger = TransformJobTrigger(**{**kwargs, "poll_interval": 0.2, "first_poll_delay": 0})

    async def first_event() -> dict:
        async for event in trigger.run():
            return event.payload

    event = asyncio.run(asyncio.wait_for(first_event(), timeout=180))
    assert event == {"status": "success", "job_name": name}
    resumed = operator(request(name, xgb_model["name"])).execute_complete(context={}, event=event)
    assert resumed["TransformJobStatus"] == "Completed" and len(scores(s3, name)) == 20000


def test_transform_job_link_opens_the_console_or_the_emulators_description(emulator, sm, s3, xgb_model) -> None:
    from airflow.providers.amazon.aws.links.base_aws import BaseAwsLink

    from sagemaker_fleet.links.sagemaker import SageMakerTransformJobLink

    console = SageMakerTransformJobLink().format_link(
        region_name="eu-west-1", aws_domain=BaseAwsLink.get_aws_domain("aws"), name="digits-score"
    )
    assert console == "https://console.aws.amazon.com/sagemaker/home?region=eu-west-1#/transform-jobs/digits-score"
    name = unique("tr-link")
    upload_rows(s3, name, rows=5)
    sm.create_transform_job(**request(name, xgb_model["name"]))
    link = SageMakerTransformJobLink().format_link(emulator_url=emulator.url, name=name)
    assert link == f"{emulator.url}/_emulator/resources/transform-job/{name}"
    with urllib.request.urlopen(link, timeout=10) as answer:
        assert json.loads(answer.read())["TransformJobName"] == name


# -- the provider's own operator and sensor, unchanged, beside ours, through dag.test() ----------------------
DAG_FILE = """
import datetime as dt, json
from airflow.providers.amazon.aws.operators.sagemaker import SageMakerTransformOperator
from airflow.providers.amazon.aws.sensors.sagemaker import SageMakerTransformSensor
from airflow.sdk import DAG
from sagemaker_fleet.operators.transform import SageMakerRetrySafeTransformOperator

SETTINGS = json.loads({settings!r})

with DAG(dag_id="{dag_id}", schedule=None, start_date=dt.datetime(2026, 11, 1), catchup=False, tags=["test"]):
    sync = SageMakerTransformOperator(task_id="sync", config=SETTINGS["sync"], check_interval=1)
    # The model-creation path: CreateModel, then the job on it, waiting in the provider's trigger.
    with_model = SageMakerTransformOperator(
        task_id="with_model",
        config={{"Model": SETTINGS["model"], "Transform": SETTINGS["with_model"]}},
        deferrable=True,
        check_interval=1,
    )
    started = SageMakerTransformOperator(task_id="started", config=SETTINGS["sensed"], wait_for_completion=False)
    sensed = SageMakerTransformSensor(task_id="sensed", job_name=SETTINGS["sensed"]["TransformJobName"], poke_interval=1)
    ours = SageMakerRetrySafeTransformOperator(
        task_id="ours", config=SETTINGS["ours"], deferrable=True, check_interval=1
    )
    sync >> with_model >> started >> sensed >> ours
"""


@pytest.fixture(scope="module")
def migrated_home(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    import os
    import subprocess
    import sys

    home = tmp_path_factory.mktemp("transform_airflow_home")
    env = {**os.environ, **_airflow_env(home)}
    airflow = str(Path(sys.executable).with_name("airflow"))
    subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True, timeout=300)
    return _airflow_env(home)


def test_provider_transform_operator_sync_model_path_deferrable_sensor_and_ours(
    emulator, sm, s3, xgb_model, migrated_home, tmp_path
) -> None:
    names = {kind: unique(f"prov-tr-{kind.replace('_', '-')}") for kind in ("sync", "with_model", "sensed", "ours")}
    # Enough rows that the deferrable tasks find their jobs running and really defer.
    rows = {
        kind: upload_rows(s3, name, rows=20000 if kind in ("with_model", "ours") else 50)
        for kind, name in names.items()
    }
    model_name = unique("prov-tr-model")
    settings = {kind: request(name, xgb_model["name"]) for kind, name in names.items()}
    settings["with_model"]["ModelName"] = model_name
    settings["model"] = {
        "ModelName": model_name,
        "ExecutionRoleArn": ROLE,
        "PrimaryContainer": {"Image": XGB_IMAGE, "ModelDataUrl": xgb_model["url"]},
    }
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / f"{DAG_ID}.py").write_text(textwrap.dedent(DAG_FILE.format(settings=json.dumps(settings), dag_id=DAG_ID)))

    result = dag_runner(migrated_home)(DAG_ID, env={"AIRFLOW__CORE__DAGS_FOLDER": str(dags)}, timeout=900)

    assert result.state == "success", result.log[-6000:]
    assert result.tasks == {
        "sync": "success",
        "with_model": "success",
        "started": "success",
        "sensed": "success",
        "ours": "success",
    }
    # with_model waited in the provider's SageMakerTrigger, ours in TransformJobTrigger.
    assert result.log.count("[DAG TEST] running trigger in line") == 2, result.log[-6000:]
    assert sm.describe_model(ModelName=model_name)["PrimaryContainer"]["ModelDataUrl"] == xgb_model["url"]
    for kind, name in names.items():
        job = sm.describe_transform_job(TransformJobName=name)
        assert job["TransformJobStatus"] == "Completed", (kind, job.get("FailureReason"))
        expected = xgb_model["booster"].inplace_predict(rows[kind]).tolist()
        assert scores(s3, name) == pytest.approx(expected, rel=1e-6), kind
    assert sm.describe_transform_job(TransformJobName=names["with_model"])["ModelName"] == model_name
    # Our operator tagged its job with the run; nothing was started twice.
    ours_arn = sm.describe_transform_job(TransformJobName=names["ours"])["TransformJobArn"]
    tags = {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=ours_arn)["Tags"]}
    assert tags["airflow:dag_id"] == DAG_ID
    assert attempts(sm, names["ours"]) == [names["ours"]]
