"""Processing jobs from Airflow: the package's retry-safe operator (real jobs in the emulator, retries that start
no duplicate), and the Amazon provider's SageMakerProcessingOperator (sync and deferrable) and
SageMakerProcessingSensor, unchanged, through ``dag.test()``."""

from __future__ import annotations

import asyncio
import json
import textwrap
import urllib.request
from pathlib import Path

import pytest
from airflow.exceptions import AirflowException
from airflow.providers.amazon.aws.triggers.sagemaker import SageMakerTrigger
from airflow.sdk.exceptions import TaskDeferred

from sagemaker_fleet.operators.processing import SageMakerRetrySafeProcessingOperator, prepare_processing_config
from sagemaker_fleet.triggers.base import FIRST_POLL_DELAY_SECONDS
from sagemaker_fleet.triggers.jobs import ProcessingJobTrigger
from tests.dags.conftest import _airflow_env, dag_runner
from tests.emulator.helpers import unique
from tests.emulator.processing_helpers import (
    CHURN_SCRIPT,
    churn_csv,
    ensure_bucket,
    processing_request,
    s3_input,
    s3_output,
)

BUCKET = "plugin-processing"
DAG_ID = "provider_sagemaker_processing"
COUNT_SCRIPT = textwrap.dedent(
    """
    import os
    rows = sum(1 for _ in open("/opt/ml/processing/input/data/raw_churn.csv")) - 1
    open("/opt/ml/processing/output/rows.txt", "w").write(str(rows))
    print("rows", rows)
    """
)
FAIL_SCRIPT = "import sys\nopen('/opt/ml/output/message', 'w').write('no rows')\nsys.exit(2)\n"


def job_config(s3, name: str, script: str = COUNT_SCRIPT, script_name: str = "count.py") -> dict:
    ensure_bucket(s3, BUCKET)
    s3.put_object(Bucket=BUCKET, Key=f"data/{name}/raw_churn.csv", Body=churn_csv(50))
    s3.put_object(Bucket=BUCKET, Key=f"code/{name}/{script_name}", Body=script.encode())
    return processing_request(
        name,
        code_uri=f"s3://{BUCKET}/code/{name}/{script_name}",
        script=script_name,
        inputs=[s3_input("data", f"s3://{BUCKET}/data/{name}/", "/opt/ml/processing/input/data")],
        outputs=[s3_output("rows", f"s3://{BUCKET}/out/{name}", "/opt/ml/processing/output")],
    )


def attempts(sm, base: str) -> list[str]:
    return sorted(s["ProcessingJobName"] for s in sm.list_processing_jobs(NameContains=base)["ProcessingJobSummaries"])


def operator(config: dict, **kwargs) -> SageMakerRetrySafeProcessingOperator:
    kwargs.setdefault("check_interval", 0.2)
    return SageMakerRetrySafeProcessingOperator(task_id="process", config=config, **kwargs)


def test_runs_a_job_and_a_retry_returns_it_without_a_new_one(emulator, sm, s3) -> None:
    name = unique("proc-op")
    result = operator(job_config(s3, name), deferrable=False).execute(context={})
    assert result == {
        "job_name": name,
        "status": "Completed",
        "outputs": {"rows": f"s3://{BUCKET}/out/{name}"},
        "exit_message": None,
    }
    assert s3.get_object(Bucket=BUCKET, Key=f"out/{name}/rows.txt")["Body"].read() == b"50"
    again = operator(job_config(s3, name), deferrable=True).execute(context={})  # Completed: no deferral
    assert again == result
    assert attempts(sm, name) == [name]


def test_a_job_already_running_is_re_attached_not_duplicated(emulator, sm, s3) -> None:
    name = unique("proc-attach")
    config = job_config(s3, name)
    sm.create_processing_job(**config)  # a previous try of the task started it
    result = operator(config, deferrable=False).execute(context={})
    assert result["job_name"] == name and result["status"] == "Completed"
    assert attempts(sm, name) == [name]


def test_a_failed_attempt_is_followed_by_the_next_one(emulator, sm, s3) -> None:
    name = unique("proc-retry")
    with pytest.raises(AirflowException) as failed:
        operator(job_config(s3, name, FAIL_SCRIPT, "fail.py"), deferrable=False).execute(context={})
    assert "ended Failed" in str(failed.value) and "ExitMessage: no rows" in str(failed.value)
    result = operator(job_config(s3, name), deferrable=False).execute(context={})
    assert result["job_name"] == f"{name}-r1" and result["status"] == "Completed"
    assert attempts(sm, name) == [name, f"{name}-r1"]


def test_deferrable_uses_the_processing_job_trigger(emulator, sm, s3) -> None:
    name = unique("proc-defer")
    task = operator(job_config(s3, name), deferrable=True, check_interval=1)
    with pytest.raises(TaskDeferred) as deferred:
        task.execute(context={})
    classpath, kwargs = deferred.value.trigger.serialize()
    # The provider's SageMakerTrigger underneath (its ProcessingJobComplete waiter), with a first-poll delay.
    assert classpath == "sagemaker_fleet.triggers.jobs.ProcessingJobTrigger"
    assert isinstance(deferred.value.trigger, SageMakerTrigger) and deferred.value.trigger.job_type == "processing"
    assert kwargs["job_name"] == name and kwargs["first_poll_delay"] == FIRST_POLL_DELAY_SECONDS
    trigger = ProcessingJobTrigger(**{**kwargs, "first_poll_delay": 0})

    async def first_event() -> dict:
        async for event in trigger.run():
            return event.payload

    event = asyncio.run(asyncio.wait_for(first_event(), timeout=120))
    assert event["status"] == "success" and event["job_name"] == name
    assert task.execute_complete(context={}, event=event)["status"] == "Completed"


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda c: c.update(ProcessingJobName="bad_name"), "ProcessingJobName"),
        (lambda c: c.pop("AppSpecification"), "AppSpecification"),
        (lambda c: c["ProcessingResources"]["ClusterConfig"].update(InstanceCount="two"), "InstanceCount"),
    ],
)
def test_bad_configs_are_refused_before_any_call(change, words) -> None:
    config = processing_request("ok", code_uri="s3://b/c.py", script="c.py")
    change(config)
    with pytest.raises(ValueError, match=words):
        prepare_processing_config(config)


def test_templated_numbers_are_cast() -> None:
    config = processing_request("ok", code_uri="s3://b/c.py", script="c.py")
    config["ProcessingResources"]["ClusterConfig"]["InstanceCount"] = "1"
    config["StoppingCondition"]["MaxRuntimeInSeconds"] = " 60 "
    prepared = prepare_processing_config(config)
    assert prepared["ProcessingResources"]["ClusterConfig"]["InstanceCount"] == 1
    assert prepared["StoppingCondition"]["MaxRuntimeInSeconds"] == 60


# -- the provider's own operator and sensor, unchanged --------------------------------------------------------
DAG_FILE = """
import datetime as dt, json
from airflow.providers.amazon.aws.operators.sagemaker import SageMakerProcessingOperator
from airflow.providers.amazon.aws.sensors.sagemaker import SageMakerProcessingSensor
from airflow.sdk import DAG

SETTINGS = json.loads({settings!r})

with DAG(dag_id="{dag_id}", schedule=None, start_date=dt.datetime(2026, 11, 1), catchup=False, tags=["test"]):
    sync = SageMakerProcessingOperator(task_id="sync", config=SETTINGS["sync"], check_interval=1)
    deferred = SageMakerProcessingOperator(
        task_id="deferred", config=SETTINGS["deferred"], deferrable=True, check_interval=1
    )
    started = SageMakerProcessingOperator(
        task_id="started", config=SETTINGS["sensed"], wait_for_completion=False
    )
    sensed = SageMakerProcessingSensor(
        task_id="sensed", job_name=SETTINGS["sensed"]["ProcessingJobName"], poke_interval=1
    )
    sync >> deferred >> started >> sensed
"""


@pytest.fixture(scope="module")
def migrated_home(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    import os
    import subprocess
    import sys

    home = tmp_path_factory.mktemp("processing_airflow_home")
    env = {**os.environ, **_airflow_env(home)}
    airflow = str(Path(sys.executable).with_name("airflow"))
    subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True, timeout=300)
    return _airflow_env(home)


def test_provider_processing_operator_sync_deferrable_and_sensor(emulator, sm, s3, migrated_home, tmp_path):
    ensure_bucket(s3, BUCKET)
    names = {kind: unique(f"prov-proc-{kind}") for kind in ("sync", "deferred", "sensed")}
    settings = {}
    for kind, name in names.items():
        s3.put_object(Bucket=BUCKET, Key=f"raw/{name}/raw_churn.csv", Body=churn_csv(200))
        s3.put_object(Bucket=BUCKET, Key=f"code/{name}/preprocessing.py", Body=CHURN_SCRIPT.read_bytes())
        settings[kind] = processing_request(
            name,
            code_uri=f"s3://{BUCKET}/code/{name}/preprocessing.py",
            script="preprocessing.py",
            inputs=[s3_input("input-1", f"s3://{BUCKET}/raw/{name}/", "/opt/ml/processing/input")],
            outputs=[
                s3_output("train.csv", f"s3://{BUCKET}/processed/{name}", "/opt/ml/processing/train"),
                s3_output("test.csv", f"s3://{BUCKET}/processed/{name}", "/opt/ml/processing/test"),
            ],
            arguments=["--train-test-split-ratio", "0.2"],
        )
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / f"{DAG_ID}.py").write_text(textwrap.dedent(DAG_FILE.format(settings=json.dumps(settings), dag_id=DAG_ID)))

    result = dag_runner(migrated_home)(DAG_ID, env={"AIRFLOW__CORE__DAGS_FOLDER": str(dags)}, timeout=600)

    assert result.state == "success", result.log[-6000:]
    assert result.tasks == {"sync": "success", "deferred": "success", "started": "success", "sensed": "success"}
    assert result.log.count("[DAG TEST] running trigger in line") == 1, result.log[-6000:]
    for name in names.values():
        assert sm.describe_processing_job(ProcessingJobName=name)["ProcessingJobStatus"] == "Completed"
        keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=f"processed/{name}/")["Contents"]}
        assert keys == {f"processed/{name}/train.csv", f"processed/{name}/test.csv"}


def test_processing_job_link_opens_the_console_or_the_emulators_description(emulator, sm, s3) -> None:
    from airflow.providers.amazon.aws.links.base_aws import BaseAwsLink

    from sagemaker_fleet.links.sagemaker import SageMakerProcessingJobLink

    console = SageMakerProcessingJobLink().format_link(
        region_name="eu-west-1", aws_domain=BaseAwsLink.get_aws_domain("aws"), name="churn-preprocessing"
    )
    assert (
        console == "https://console.aws.amazon.com/sagemaker/home?region=eu-west-1#/processing-jobs/churn-preprocessing"
    )
    name = unique("proc-link")
    sm.create_processing_job(**job_config(s3, name))
    link = SageMakerProcessingJobLink().format_link(emulator_url=emulator.url, name=name)
    assert link == f"{emulator.url}/_emulator/resources/processing-job/{name}"
    with urllib.request.urlopen(link, timeout=10) as answer:
        assert json.loads(answer.read())["ProcessingJobName"] == name
