"""SageMakerRetrySafeTrainingOperator: real jobs in the emulator, retries that start no duplicate, edge paths."""

from __future__ import annotations

import asyncio
import json
from unittest import mock

import pytest
from airflow.exceptions import AirflowException
from airflow.sdk.exceptions import TaskDeferred

from sagemaker_fleet.operators.training import (
    SageMakerRetrySafeTrainingOperator,
    attempt_name,
    prepare_training_config,
)
from sagemaker_fleet.triggers.training import TrainingJobTrigger
from tests.conftest import inject_fault
from tests.plugins.conftest import jobs_named, training_config, unique, upload_channels, wait_for_job


def operator(config: dict, **kwargs) -> SageMakerRetrySafeTrainingOperator:
    kwargs.setdefault("check_interval", 0.1)
    return SageMakerRetrySafeTrainingOperator(task_id="train", config=config, **kwargs)


def logged(capsys) -> str:
    """Airflow's structlog writes task logs to stdout, not to the logging module caplog reads."""
    captured = capsys.readouterr()
    return captured.out + captured.err


def run_trigger(trigger: TrainingJobTrigger) -> dict:
    async def first_event():
        async for event in trigger.run():
            return event.payload

    return asyncio.run(asyncio.wait_for(first_event(), timeout=60))


# -- against the emulator ------------------------------------------------------------------------------------
def test_trains_a_real_model_and_returns_json_safe_result(emulator, s3, channels):
    name = unique("hmn-chicago-il-20261123")
    result = operator(training_config(name, channels), deferrable=False).execute(context={})

    assert result["job_name"] == name and result["status"] == "Completed"
    assert result["model_artifact"] == f"s3://plugin-tests/output/{name}/output/model.tar.gz"
    s3.head_object(Bucket="plugin-tests", Key=f"output/{name}/output/model.tar.gz")
    assert "validation:rmse" in result["metrics"] and result["metrics"]["validation:rmse"] > 0
    assert isinstance(result["billable_seconds"], int)
    assert json.loads(json.dumps(result)) == result


def test_retry_of_a_completed_task_returns_the_same_job_and_starts_none(emulator, sm, channels, capsys):
    name = unique("retry-done")
    first = operator(training_config(name, channels), deferrable=False).execute(context={})
    capsys.readouterr()
    second = operator(training_config(name, channels), deferrable=True).execute(context={})

    assert second == first  # returned at once: no deferral, no new job
    assert jobs_named(sm, name) == [name]
    assert "already Completed" in logged(capsys)


def test_deferrable_path_defers_trigger_completes_and_execute_complete_redescribes(emulator, sm, channels, capsys):
    name = unique("deferred")
    op = operator(training_config(name, channels))
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context={})
    trigger = deferred.value.trigger
    assert isinstance(trigger, TrainingJobTrigger) and trigger.job_name == name
    assert deferred.value.method_name == "execute_complete"
    classpath, kwargs = trigger.serialize()
    assert classpath == "sagemaker_fleet.triggers.training.TrainingJobTrigger"
    assert TrainingJobTrigger(**kwargs).serialize() == (classpath, kwargs)

    event = run_trigger(TrainingJobTrigger(**kwargs))
    assert event == {"status": "success", "job_name": name}
    # A fresh operator instance (another worker) resumes: nothing from execute() is needed.
    result = operator(training_config(name, channels)).execute_complete(context={}, event=event)
    assert result["job_name"] == name and result["metrics"]
    text = logged(capsys)
    assert "Completed - Training job completed" in text and "final metric validation:rmse" in text
    assert "[" + name + "/algo-1" in text  # CloudWatch lines of the job are in the task log


def test_failed_job_fails_the_task_with_its_reason_then_retry_creates_the_next_attempt(
    emulator, sm, channels, clear_faults
):
    name = unique("fails-once")
    inject_fault(emulator, {"type": "training_failure", "count": 1, "name_contains": name, "reason": "disk full"})
    with pytest.raises(AirflowException, match="ended Failed: .*disk full"):
        operator(training_config(name, channels), deferrable=False).execute(context={})

    result = operator(training_config(name, channels), deferrable=False).execute(context={})
    assert result["job_name"] == f"{name}-r1" and result["status"] == "Completed"
    # A third try finds -r1 Completed and returns it: still exactly two jobs.
    again = operator(training_config(name, channels), deferrable=False).execute(context={})
    assert again["job_name"] == f"{name}-r1"
    assert jobs_named(sm, name) == [name, f"{name}-r1"]


def test_trigger_failure_event_fails_execute_complete_with_the_jobs_failure_reason(
    emulator, sm, channels, clear_faults
):
    name = unique("deferred-fail")
    inject_fault(emulator, {"type": "training_failure", "count": 1, "name_contains": name, "reason": "bad shard"})
    # Created directly: the operator would see the at-once failure before deferring and fail on the worker.
    sm.create_training_job(**training_config(name, channels))
    event = run_trigger(TrainingJobTrigger(name, poll_interval=0.1, first_poll_delay=0))
    assert event["status"] == "failed"
    with pytest.raises(AirflowException, match="FailureReason: .*bad shard"):
        operator(training_config(name, channels)).execute_complete(context={}, event=event)


def test_retry_while_job_runs_reattaches_and_on_kill_stops_it(slow_emulator):
    """The retry-safety proof: a second try of the task while the job is InProgress starts no job."""
    import boto3

    sm = boto3.client("sagemaker", endpoint_url=slow_emulator.url, region_name="us-east-1")
    s3 = boto3.client("s3", endpoint_url=slow_emulator.url, region_name="us-east-1")
    chans = upload_channels(s3, "slow/chicago")
    name = unique("hmn-chicago-il-running")
    config = training_config(name, chans)

    first = operator(config, aws_conn_id="aws_slow")
    with pytest.raises(TaskDeferred) as one:
        first.execute(context={})
    assert sm.describe_training_job(TrainingJobName=name)["TrainingJobStatus"] == "InProgress"

    retry = operator(config, aws_conn_id="aws_slow")  # the task's next try, maybe on another worker
    with pytest.raises(TaskDeferred) as two:
        retry.execute(context={})
    assert one.value.trigger.job_name == two.value.trigger.job_name == name
    assert jobs_named(sm, name) == [name]

    non_deferrable = operator(config, aws_conn_id="aws_slow", deferrable=False)
    non_deferrable._job_name = name  # as execute() sets it before waiting
    non_deferrable.on_kill()
    assert wait_for_job(sm, name, timeout=30)["TrainingJobStatus"] == "Stopped"

    # After a stop, the next try starts the next attempt (a stopped job has no model to return).
    with pytest.raises(TaskDeferred) as three:
        operator(config, aws_conn_id="aws_slow").execute(context={})
    assert three.value.trigger.job_name == f"{name}-r1"
    assert jobs_named(sm, name) == [name, f"{name}-r1"]
    sm.stop_training_job(TrainingJobName=f"{name}-r1")


def test_mapped_over_locations_builds_a_mapped_task():
    from airflow.sdk import DAG

    with DAG("mapped_training", schedule=None) as dag:
        SageMakerRetrySafeTrainingOperator.partial(task_id="train", check_interval=30).expand(
            config=[{"TrainingJobName": "a"}, {"TrainingJobName": "b"}]
        )
    task = dag.get_task("train")
    assert type(task).__name__ == "MappedOperator"
    assert "config" in task.expand_input.value


# -- edge paths with mocks -------------------------------------------------------------------------------------
def test_templated_numbers_and_hyperparameters_are_cast():
    config = training_config(
        "ok-name",
        {"train": "s3://b/t/", "validation": "s3://b/v/"},
        ResourceConfig={"InstanceType": "ml.m5.xlarge", "InstanceCount": "2", "VolumeSizeInGB": " 10 "},
        StoppingCondition={"MaxRuntimeInSeconds": "3600"},
        HyperParameters={"num_round": 10, "eta": 0.2, "early_stop": True},
    )
    prepared = prepare_training_config(config)
    assert prepared["ResourceConfig"]["InstanceCount"] == 2 and prepared["ResourceConfig"]["VolumeSizeInGB"] == 10
    assert prepared["StoppingCondition"]["MaxRuntimeInSeconds"] == 3600
    assert prepared["HyperParameters"] == {"num_round": "10", "eta": "0.2", "early_stop": "true"}
    assert config["ResourceConfig"]["InstanceCount"] == "2"  # the rendered field itself is not mutated


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"TrainingJobName": "Chicago_IL"}, "valid SageMaker name"),
        ({"TrainingJobName": "x" * 64}, "valid SageMaker name"),
        ({"ResourceConfig": {"InstanceCount": "two"}}, "must be an integer"),
        ({"RoleArn": None}, None),
    ],
)
def test_bad_config_is_refused_before_anything_is_created(change, message):
    config = training_config("ok-name", {"train": "s3://b/t/", "validation": "s3://b/v/"}, **change)
    if change.get("RoleArn", "x") is None:
        del config["RoleArn"]
        message = "missing 'RoleArn'"
    op = operator(config)
    with (
        mock.patch.object(SageMakerRetrySafeTrainingOperator, "hook") as hook,
        pytest.raises(ValueError, match=message),
    ):
        op.execute(context={})
    hook.assert_not_called()
    assert not hook.get_conn.return_value.create_training_job.called


def test_attempt_names_stay_valid_and_within_63_characters():
    base = "h" * 63
    assert attempt_name(base, 0) == base
    assert attempt_name(base, 1) == "h" * 60 + "-r1" and len(attempt_name(base, 12)) == 63
    assert attempt_name("a" * 59 + "-xyz", 1) == "a" * 59 + "-r1"  # no "--" left at the cut


def test_newest_attempt_decides_and_in_progress_is_reattached():
    op = operator(training_config("job", {"train": "s3://b/t/", "validation": "s3://b/v/"}))
    states = {"job": "Failed", "job-r1": "Stopped", "job-r2": "InProgress"}
    hook = mock.MagicMock()
    hook.describe_training_job_or_none.side_effect = lambda n: (
        {"TrainingJobName": n, "TrainingJobStatus": states[n], "HyperParameters": {}} if n in states else None
    )
    hook.conn_region_name, hook.endpoint_url = "us-east-1", None
    with mock.patch.object(SageMakerRetrySafeTrainingOperator, "hook", hook), pytest.raises(TaskDeferred) as d:
        op.execute(context={})
    assert d.value.trigger.job_name == "job-r2"
    hook.get_conn.return_value.create_training_job.assert_not_called()


def test_job_that_ends_before_the_deferral_is_returned_without_deferring():
    """A job that finishes at once never defers, so no trigger can race the scheduler (apache/airflow#71580)."""
    op = operator(training_config("job", {"train": "s3://b/t/", "validation": "s3://b/v/"}))
    completed = {
        "TrainingJobName": "job",
        "TrainingJobStatus": "Completed",
        "ModelArtifacts": {"S3ModelArtifacts": "s3://b/out/job/output/model.tar.gz"},
        "FinalMetricDataList": [{"MetricName": "validation:rmse", "Value": 1.5}],
        "BillableTimeInSeconds": 1,
    }
    hook = mock.MagicMock()
    # Not there when the task looks for earlier attempts; Completed when it looks again after creating it.
    hook.describe_training_job_or_none.side_effect = [None, completed]
    hook.describe_training_job.return_value = completed
    hook.training_log_lines.return_value = []
    with mock.patch.object(SageMakerRetrySafeTrainingOperator, "hook", hook), mock.patch.object(op, "defer") as defer:
        result = op.execute(context={})
    defer.assert_not_called()
    hook.get_conn.return_value.create_training_job.assert_called_once()
    assert (
        result["job_name"] == "job"
        and result["status"] == "Completed"
        and result["metrics"] == {"validation:rmse": 1.5}
    )


def test_concurrently_created_job_is_attached_not_failed():
    op = operator(training_config("job", {"train": "s3://b/t/", "validation": "s3://b/v/"}))
    hook = mock.MagicMock()
    hook.describe_training_job_or_none.return_value = None

    class ResourceInUse(Exception):
        pass

    hook.get_conn.return_value.exceptions.ResourceInUse = ResourceInUse
    hook.get_conn.return_value.create_training_job.side_effect = ResourceInUse("already exists")
    with mock.patch.object(SageMakerRetrySafeTrainingOperator, "hook", hook), pytest.raises(TaskDeferred) as d:
        op.execute(context={})
    assert d.value.trigger.job_name == "job"


@pytest.mark.parametrize("event", [None, {"status": "timeout"}])
def test_execute_complete_rejects_unusable_events(event):
    with pytest.raises(AirflowException, match="no usable event"):
        operator({"TrainingJobName": "j"}).execute_complete(context={}, event=event)


def test_timeout_event_fails_with_the_message_and_keeps_the_job():
    op = operator({"TrainingJobName": "j"})
    hook = mock.MagicMock()
    hook.describe_training_job_or_none.return_value = {"TrainingJobStatus": "InProgress"}
    with (
        mock.patch.object(SageMakerRetrySafeTrainingOperator, "hook", hook),
        pytest.raises(AirflowException, match="timeout: still running"),
    ):
        op.execute_complete(context={}, event={"status": "timeout", "job_name": "j", "message": "still running"})
    hook.stop_training_job.assert_not_called()


def test_link_is_persisted_when_a_ti_is_in_the_context():
    op = operator(training_config("job", {"train": "s3://b/t/", "validation": "s3://b/v/"}))
    hook = mock.MagicMock()
    hook.describe_training_job_or_none.return_value = None
    hook.conn_region_name, hook.conn_partition = "us-east-1", "aws"
    hook.conn_config.get_service_endpoint_url.return_value = "http://127.0.0.1:4566/"
    ti = mock.MagicMock()
    with mock.patch.object(SageMakerRetrySafeTrainingOperator, "hook", hook), pytest.raises(TaskDeferred):
        op.execute(context={"ti": ti})
    ti.xcom_push.assert_called_once_with(
        key="sagemaker_fleet_training_job",
        value={
            "region_name": "us-east-1",
            "aws_domain": "aws.amazon.com",
            "emulator_url": "http://127.0.0.1:4566",
            "name": "job",
        },
    )


def test_validation_of_constructor_arguments():
    with pytest.raises(ValueError, match="check_interval"):
        SageMakerRetrySafeTrainingOperator(task_id="t", config={}, check_interval=0)
    with pytest.raises(ValueError, match="max_wait_seconds"):
        SageMakerRetrySafeTrainingOperator(task_id="t", config={}, max_wait_seconds=0)
