"""The retry-safe job operator base and the transform operator on it, without a server: a fake SageMaker that
keeps jobs in a dict decides what the operator sees, so every branch (none, InProgress, Completed,
Failed/Stopped, ended before deferring, created concurrently, killed) is exercised exactly."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any
from unittest import mock

import pytest
from airflow.exceptions import AirflowException
from airflow.providers.amazon.aws.triggers.sagemaker import SageMakerTrigger
from airflow.sdk.exceptions import TaskDeferred

from sagemaker_fleet.operators.processing import SageMakerRetrySafeProcessingOperator
from sagemaker_fleet.operators.retry_safe import MAX_ATTEMPTS, attempt_name
from sagemaker_fleet.operators.transform import SageMakerRetrySafeTransformOperator, prepare_transform_config
from sagemaker_fleet.triggers.base import FIRST_POLL_DELAY_SECONDS
from sagemaker_fleet.triggers.jobs import ProcessingJobTrigger, TransformJobTrigger

CREATED = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)


def transform_request(name: str = "digits-score-20261123", **overrides: Any) -> dict:
    request = {
        "TransformJobName": name,
        "ModelName": "digits-20261123",
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://bucket/test/"}},
            "ContentType": "text/csv",
            "SplitType": "Line",
        },
        "TransformOutput": {"S3OutputPath": "s3://bucket/scored/", "AssembleWith": "Line"},
        "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
    }
    request.update(overrides)
    return request


class ResourceInUse(Exception):
    pass


class FakeSageMaker:
    """Jobs of one kind by name. ``script[name]`` lists the statuses the next describes of a job return (the
    last one sticks), so a test says exactly when a job ends."""

    def __init__(self, kind: str, name_key: str, status_key: str):
        self.kind, self.name_key, self.status_key = kind, name_key, status_key
        self.jobs: dict[str, dict] = {}
        self.script: dict[str, list[str]] = {}
        self.created: list[dict] = []
        self.stopped: list[str] = []
        self.log_lines_of: dict[str, list[str]] = {}
        self.collide_on_create = False
        client = mock.MagicMock()
        client.exceptions.ResourceInUse = ResourceInUse
        setattr(client, f"create_{kind}_job", self._create)
        self.client = client

    def add(self, name: str, *statuses: str, **fields: Any) -> None:
        self.jobs[name] = {self.name_key: name, "CreationTime": CREATED, **fields}
        self.script[name] = list(statuses)

    def _create(self, **request: Any) -> dict:
        self.created.append(request)
        if self.collide_on_create:
            self.add(request[self.name_key], "InProgress", "Completed")
            raise ResourceInUse(f"{request[self.name_key]} already exists")
        # Seen InProgress once (the look before deferring), then Completed.
        self.add(request[self.name_key], "InProgress", "Completed", **{k: v for k, v in request.items() if k != "Tags"})
        return {}

    def describe_or_none(self, name: str) -> dict | None:
        if name not in self.jobs:
            return None
        statuses = self.script[name]
        status = statuses.pop(0) if len(statuses) > 1 else statuses[0]
        return {**self.jobs[name], self.status_key: status, "ResponseMetadata": {"HTTPStatusCode": 200}}

    def describe(self, name: str) -> dict:
        description = self.describe_or_none(name)
        assert description is not None, f"describe of a job that does not exist: {name}"
        return description

    def hook(self) -> mock.MagicMock:
        hook = mock.MagicMock()
        hook.get_conn.return_value = self.client
        setattr(hook, f"describe_{self.kind}_job_or_none", self.describe_or_none)
        setattr(hook, f"describe_{self.kind}_job", self.describe)
        setattr(hook, f"stop_{self.kind}_job", self.stopped.append)
        setattr(hook, f"{self.kind}_log_lines", lambda name: iter(self.log_lines_of.get(name, [])))
        hook.conn_region_name, hook.endpoint_url = "us-east-1", None
        return hook


@pytest.fixture
def transforms() -> FakeSageMaker:
    return FakeSageMaker("transform", "TransformJobName", "TransformJobStatus")


def run(op: SageMakerRetrySafeTransformOperator, fake: FakeSageMaker, method: str = "execute", **kwargs: Any) -> Any:
    with mock.patch.object(type(op), "hook", fake.hook()):
        return getattr(op, method)(context={}, **kwargs)


def transform_operator(config: dict | None = None, **kwargs: Any) -> SageMakerRetrySafeTransformOperator:
    kwargs.setdefault("check_interval", 0.01)
    config = transform_request() if config is None else config
    return SageMakerRetrySafeTransformOperator(task_id="score", config=config, **kwargs)


# -- deciding from the newest attempt ----------------------------------------------------------------------
def test_no_job_yet_creates_the_base_name_and_defers_on_the_transform_trigger(transforms):
    op = transform_operator(deferrable=True, max_wait_seconds=600, check_interval=10)
    with pytest.raises(TaskDeferred) as deferred:
        run(op, transforms)
    assert [r["TransformJobName"] for r in transforms.created] == ["digits-score-20261123"]
    trigger = deferred.value.trigger
    assert isinstance(trigger, TransformJobTrigger) and isinstance(trigger, SageMakerTrigger)
    assert trigger.job_type == "transform" and trigger.waiter_name == "TransformJobComplete"
    assert deferred.value.method_name == "execute_complete"
    classpath, kwargs = trigger.serialize()
    assert classpath == "sagemaker_fleet.triggers.jobs.TransformJobTrigger"
    assert kwargs["job_name"] == "digits-score-20261123" and kwargs["poll_interval"] == 10.0
    assert kwargs["timeout_seconds"] == 600.0 and kwargs["first_poll_delay"] == FIRST_POLL_DELAY_SECONDS
    assert TransformJobTrigger(**kwargs).serialize() == (classpath, kwargs)
    # The backstop timeout is later than the trigger's own, which reports more clearly.
    assert deferred.value.timeout > dt.timedelta(seconds=600)


def test_an_in_progress_attempt_is_re_attached_without_a_new_job(transforms):
    transforms.add("digits-score-20261123", "Failed", FailureReason="bad model")
    transforms.add("digits-score-20261123-r1", "InProgress", ModelName="digits-20261123")
    with pytest.raises(TaskDeferred) as deferred:
        run(transform_operator(deferrable=True), transforms)
    assert deferred.value.trigger.job_name == "digits-score-20261123-r1"
    assert transforms.created == []


def test_a_completed_job_is_returned_json_safe_without_a_new_job_or_a_deferral(transforms):
    transforms.add(
        "digits-score-20261123",
        "Completed",
        ModelName="digits-20261123",
        TransformEndTime=CREATED + dt.timedelta(minutes=3),
        TransformOutput={"S3OutputPath": "s3://bucket/scored/"},
    )
    op = transform_operator(deferrable=True)
    with mock.patch.object(op, "defer") as defer:
        result = run(op, transforms)
    defer.assert_not_called()
    assert transforms.created == []
    assert result["TransformJobName"] == "digits-score-20261123" and result["TransformJobStatus"] == "Completed"
    assert result["CreationTime"] == "2026-11-23T10:00:00+00:00"
    assert result["TransformEndTime"] == "2026-11-23T10:03:00+00:00"
    assert "ResponseMetadata" not in result
    assert json.loads(json.dumps(result)) == result  # XCom takes it as it is


def test_only_a_failed_or_stopped_newest_attempt_gets_the_next_suffix(transforms):
    transforms.add("digits-score-20261123", "Failed", FailureReason="ClientError: bad input")
    transforms.add("digits-score-20261123-r1", "Stopped")
    result = run(transform_operator(deferrable=False), transforms)
    assert [r["TransformJobName"] for r in transforms.created] == ["digits-score-20261123-r2"]
    assert result["TransformJobName"] == "digits-score-20261123-r2"


def test_too_many_failed_attempts_refuse_to_start_another(transforms):
    for attempt in range(MAX_ATTEMPTS + 1):
        transforms.add(attempt_name("digits-score-20261123", attempt), "Failed")
    with pytest.raises(AirflowException, match=f"already has {MAX_ATTEMPTS} failed attempts"):
        run(transform_operator(deferrable=False), transforms)
    assert transforms.created == []


def test_a_job_created_concurrently_is_attached_not_failed(transforms):
    transforms.collide_on_create = True
    result = run(transform_operator(deferrable=False), transforms)
    assert len(transforms.created) == 1 and result["TransformJobStatus"] == "Completed"


def test_the_create_request_carries_the_run_tags_and_the_cast_numbers(transforms):
    config = transform_request(MaxConcurrentTransforms="4", MaxPayloadInMB=" 6 ", Environment={"THREADS": 2})
    config["TransformResources"]["InstanceCount"] = "1"
    op = transform_operator(config, deferrable=True, tags={"location": "digits"})
    dag_run = mock.MagicMock(dag_id="digits_xgboost_multiclass", run_id="manual__1")
    with mock.patch.object(type(op), "hook", transforms.hook()), pytest.raises(TaskDeferred):
        op.execute(context={"dag_run": dag_run})
    (request,) = transforms.created
    assert request["MaxConcurrentTransforms"] == 4 and request["MaxPayloadInMB"] == 6
    assert request["TransformResources"]["InstanceCount"] == 1 and request["Environment"] == {"THREADS": "2"}
    assert {"Key": "airflow:dag_id", "Value": "digits_xgboost_multiclass"} in request["Tags"]
    assert {"Key": "location", "Value": "digits"} in request["Tags"]


# -- waiting and finishing ------------------------------------------------------------------------------------
def test_a_job_that_ends_before_the_deferral_returns_without_deferring(transforms):
    """A job that finishes at once never defers, so no trigger can race the scheduler (apache/airflow#71580)."""
    op = transform_operator(deferrable=True)

    def create_fast(**request: Any) -> dict:
        transforms.created.append(request)
        transforms.add(request["TransformJobName"], "Completed")
        return {}

    transforms.client.create_transform_job = create_fast
    with mock.patch.object(op, "defer") as defer:
        result = run(op, transforms)
    defer.assert_not_called()
    assert result["TransformJobStatus"] == "Completed"


def test_inline_wait_returns_a_job_that_ends_within_the_window_without_deferring(transforms):
    """``inline_wait_seconds``: a short job is watched on the worker (describes ever further apart) until it ends."""
    op = transform_operator(deferrable=True, inline_wait_seconds=5)

    def create_slowish(**request: Any) -> dict:
        transforms.created.append(request)
        transforms.add(request["TransformJobName"], "InProgress", "InProgress", "Completed")
        return {}

    transforms.client.create_transform_job = create_slowish
    with mock.patch.object(op, "defer") as defer, mock.patch("time.sleep") as sleep:
        result = run(op, transforms)
    defer.assert_not_called()
    assert result["TransformJobStatus"] == "Completed"
    assert [call.args[0] for call in sleep.call_args_list] == [0.1, 0.2], "describes 0.1 s, then 0.2 s apart"


def test_inline_wait_defers_a_job_still_running_at_the_end_of_the_window(transforms):
    op = transform_operator(deferrable=True, inline_wait_seconds=0.05)
    transforms.client.create_transform_job = lambda **request: transforms.add(request["TransformJobName"], "InProgress")
    with pytest.raises(TaskDeferred) as deferred:
        run(op, transforms)
    assert isinstance(deferred.value.trigger, TransformJobTrigger)


def test_inline_wait_must_not_be_negative():
    with pytest.raises(ValueError, match="inline_wait_seconds must be >= 0"):
        transform_operator(inline_wait_seconds=-1)


def test_polling_on_the_worker_waits_until_the_job_ends(transforms):
    transforms.add("digits-score-20261123", "InProgress", "InProgress", "InProgress", "Completed")
    result = run(transform_operator(deferrable=False), transforms)
    assert result["TransformJobStatus"] == "Completed" and transforms.script["digits-score-20261123"] == ["Completed"]


def test_polling_gives_up_after_max_wait_and_leaves_the_job_running(transforms):
    transforms.add("digits-score-20261123", "InProgress")
    with pytest.raises(AirflowException, match="still InProgress after 1 s; it keeps running"):
        run(transform_operator(deferrable=False, max_wait_seconds=1, check_interval=0.2), transforms)
    assert transforms.stopped == []


def test_a_failed_job_fails_the_task_with_its_reason_and_prints_its_log(transforms, capsys):
    transforms.add("digits-score-20261123", "InProgress", "Failed", FailureReason="AlgorithmError: bad row 7")
    transforms.log_lines_of["digits-score-20261123"] = ["[digits-score-20261123/i-1] row 7: could not parse"]
    with pytest.raises(AirflowException, match="Transform job digits-score-20261123 ended Failed: AlgorithmError"):
        run(transform_operator(deferrable=False), transforms)
    assert "row 7: could not parse" in capsys.readouterr().out


def test_a_log_that_cannot_be_read_never_fails_a_finished_job(transforms):
    transforms.add("digits-score-20261123", "Completed")
    hook = transforms.hook()
    hook.transform_log_lines.side_effect = RuntimeError("logs unavailable")
    op = transform_operator(deferrable=False)
    with mock.patch.object(type(op), "hook", hook):
        assert op.execute(context={})["TransformJobStatus"] == "Completed"


def test_execute_complete_describes_again_and_judges_the_event(transforms):
    transforms.add("digits-score-20261123", "Completed")
    done = run(
        transform_operator(),
        transforms,
        "execute_complete",
        event={"status": "success", "job_name": "digits-score-20261123"},
    )
    assert done["TransformJobStatus"] == "Completed"
    transforms.add("digits-score-20261123-r1", "Failed", FailureReason="ClientError: model not found")
    with pytest.raises(AirflowException, match=r"failed: boom \(FailureReason: ClientError: model not found\)"):
        run(
            transform_operator(),
            transforms,
            "execute_complete",
            event={"status": "failed", "job_name": "digits-score-20261123-r1", "message": "boom"},
        )


@pytest.mark.parametrize("event", [None, {"status": "success"}])
def test_execute_complete_refuses_an_unusable_event(transforms, event):
    with pytest.raises(AirflowException, match="Transform trigger returned no usable event"):
        run(transform_operator(), transforms, "execute_complete", event=event)


def test_on_kill_stops_the_job_the_task_waits_on_and_nothing_before(transforms):
    op = transform_operator(deferrable=False)
    with mock.patch.object(type(op), "hook", transforms.hook()):
        op.on_kill()  # nothing started yet: nothing to stop
        assert transforms.stopped == []
        op._job_name = "digits-score-20261123"
        op.on_kill()
    assert transforms.stopped == ["digits-score-20261123"]


def test_a_reattached_job_started_with_another_model_is_named_in_a_warning(transforms, capsys):
    transforms.add(
        "digits-score-20261123",
        "Completed",
        ModelName="digits-20261122",
        TransformInput=transform_request()["TransformInput"],
        TransformOutput={"S3OutputPath": "s3://bucket/scored/"},
    )
    run(transform_operator(deferrable=False), transforms)
    out = capsys.readouterr().out
    assert "was started with another ModelName" in out and "TransformOutput" not in out.split("another")[1][:40]


# -- the base serves other kinds the same way -------------------------------------------------------------
def test_the_processing_operator_is_the_same_base_with_its_own_trigger_and_result():
    processing = FakeSageMaker("processing", "ProcessingJobName", "ProcessingJobStatus")
    processing.add("churn-prep-20261123", "Stopped")
    config = {
        "ProcessingJobName": "churn-prep-20261123",
        "AppSpecification": {"ImageUri": "python:3.11", "ContainerEntrypoint": ["python3", "x.py"]},
        "RoleArn": "arn:aws:iam::123456789012:role/r",
        "ProcessingResources": {
            "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 1}
        },
    }
    op = SageMakerRetrySafeProcessingOperator(task_id="prep", config=config, deferrable=True)
    with mock.patch.object(SageMakerRetrySafeProcessingOperator, "hook", processing.hook()):
        with pytest.raises(TaskDeferred) as deferred:
            op.execute(context={})
        assert [r["ProcessingJobName"] for r in processing.created] == ["churn-prep-20261123-r1"]
        assert isinstance(deferred.value.trigger, ProcessingJobTrigger)
        assert deferred.value.trigger.waiter_name == "ProcessingJobComplete"
        processing.script["churn-prep-20261123-r1"] = ["Completed"]
        result = op.execute_complete(context={}, event={"status": "success", "job_name": "churn-prep-20261123-r1"})
    assert result == {"job_name": "churn-prep-20261123-r1", "status": "Completed", "outputs": {}, "exit_message": None}


# -- the request checks ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("config", "words"),
    [
        ([], "a dict"),
        ({"Model": {}, "Transform": transform_request()}, "not the provider's"),
        (transform_request(name="bad_name"), "TransformJobName"),
        (transform_request(ModelName="no spaces allowed"), "ModelName"),
        ({k: v for k, v in transform_request().items() if k != "TransformResources"}, "TransformResources"),
        (transform_request(TransformInput={"ContentType": "text/csv"}), "S3Uri"),
        (transform_request(TransformOutput={"AssembleWith": "Line"}), "S3OutputPath"),
        (transform_request(MaxPayloadInMB="six"), r"\['MaxPayloadInMB'\] must be an integer"),
        (transform_request(Environment=["A=1"]), "Environment"),
    ],
)
def test_bad_configs_are_refused_before_any_call(config, words, transforms):
    with pytest.raises(ValueError, match=words):
        prepare_transform_config(config)
    op = transform_operator(config)
    with pytest.raises(ValueError, match=words):
        run(op, transforms)
    assert transforms.created == []


def test_the_config_is_not_changed_in_place():
    config = transform_request(MaxConcurrentTransforms="2")
    prepare_transform_config(config)
    assert config["MaxConcurrentTransforms"] == "2"


# -- the transform trigger --------------------------------------------------------------------------------------
def test_trigger_on_kill_stops_the_transform_job():
    client = mock.AsyncMock()
    connection = mock.AsyncMock()
    connection.__aenter__.return_value = client
    hook = mock.MagicMock()
    hook.get_async_conn = mock.AsyncMock(return_value=connection)
    with mock.patch.object(TransformJobTrigger, "hook", return_value=hook):
        asyncio.run(TransformJobTrigger("digits-score-20261123").on_kill())
    client.stop_transform_job.assert_awaited_once_with(TransformJobName="digits-score-20261123")


def test_trigger_timeout_says_the_transform_job_keeps_running():
    from airflow.providers.amazon.aws.exceptions import WaiterMaxAttemptsError

    trigger = TransformJobTrigger("job", poll_interval=1, timeout_seconds=30)
    event = trigger._event_from_exception(WaiterMaxAttemptsError("max attempts")).payload
    assert event["status"] == "timeout" and event["message"].startswith("Transform job job still running after 30 s")
    assert "re-attaches" in event["message"]
