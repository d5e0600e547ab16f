"""TrainingJobTrigger: the provider's SageMakerTrigger underneath; serialises and round-trips, really completes
against the emulator (through aiobotocore), and turns every terminal state, a missing job, throttling and a
timeout into one clear event; on_kill stops the job."""

from __future__ import annotations

import asyncio
from unittest import mock

import pytest
from airflow.providers.amazon.aws.exceptions import WaiterMaxAttemptsError
from airflow.providers.amazon.aws.triggers.sagemaker import SageMakerTrigger
from airflow.triggers.base import TriggerEvent

from sagemaker_fleet.hooks.sagemaker import DEFAULT_RETRIES, SageMakerFleetHook
from sagemaker_fleet.triggers.training import TrainingJobTrigger
from tests.conftest import inject_fault
from tests.plugins.conftest import training_config, unique


def first_event(trigger: TrainingJobTrigger, timeout: float = 60) -> dict:
    async def run():
        async for event in trigger.run():
            return event.payload

    return asyncio.run(asyncio.wait_for(run(), timeout=timeout))


def test_serialize_round_trips_with_the_aws_settings():
    trigger = TrainingJobTrigger(
        "job",
        poll_interval=2,
        timeout_seconds=60,
        aws_conn_id="other",
        region_name="eu-west-1",
        verify=False,
        botocore_config={"retries": {"mode": "adaptive"}},
    )
    assert isinstance(trigger, SageMakerTrigger)
    # 55 s of polling every 2 s after the 5 s first-poll delay.
    assert trigger.waiter_name == "TrainingJobComplete" and trigger.attempts == 29
    classpath, kwargs = trigger.serialize()
    assert classpath == "sagemaker_fleet.triggers.training.TrainingJobTrigger"
    assert kwargs == {
        "job_name": "job",
        "poll_interval": 2.0,
        "timeout_seconds": 60.0,
        "first_poll_delay": 5.0,
        "aws_conn_id": "other",
        "region_name": "eu-west-1",
        "verify": False,
        "botocore_config": {"retries": {"mode": "adaptive"}},
    }
    assert TrainingJobTrigger(**kwargs).serialize() == (classpath, kwargs)
    hook = TrainingJobTrigger(**kwargs).hook()
    assert isinstance(hook, SageMakerFleetHook)
    assert hook.aws_conn_id == "other" and hook.region_name == "eu-west-1" and hook.verify is False
    # The caller's retry mode wins; without one, botocore's standard mode applies.
    assert hook._get_config().retries == {"mode": "adaptive"}
    assert TrainingJobTrigger("job").hook()._get_config().retries == DEFAULT_RETRIES


def test_really_completes_against_the_emulator(emulator, sm, channels):
    name = unique("trigger-ok")
    sm.create_training_job(**training_config(name, channels))
    event = first_event(TrainingJobTrigger(name, poll_interval=0.1, first_poll_delay=0))
    assert event == {"status": "success", "job_name": name}
    assert sm.describe_training_job(TrainingJobName=name)["TrainingJobStatus"] == "Completed"


def test_throttling_is_retried_not_reported(emulator, sm, channels, clear_faults):
    name = unique("trigger-throttled")
    sm.create_training_job(**training_config(name, channels))
    inject_fault(emulator, {"type": "throttle", "count": 4, "operations": ["DescribeTrainingJob"]})
    event = first_event(TrainingJobTrigger(name, poll_interval=0.1, first_poll_delay=0))
    assert event == {"status": "success", "job_name": name}


def test_failed_job_gives_a_failed_event_with_its_reason(emulator, sm, channels, clear_faults):
    name = unique("trigger-fail")
    inject_fault(emulator, {"type": "training_failure", "count": 1, "name_contains": name, "reason": "out of memory"})
    sm.create_training_job(**training_config(name, channels))
    event = first_event(TrainingJobTrigger(name, poll_interval=0.1, first_poll_delay=0))
    assert event["status"] == "failed" and "out of memory" in event["message"] and event["job_name"] == name


def test_missing_job_is_an_error_event(emulator):
    event = first_event(TrainingJobTrigger("never-created-job", poll_interval=0.1, first_poll_delay=0))
    assert event["status"] == "error" and event["job_name"] == "never-created-job"


def test_timeout_says_the_job_keeps_running():
    trigger = TrainingJobTrigger("job", poll_interval=0.01, timeout_seconds=0.05)
    event = trigger._event_from_exception(WaiterMaxAttemptsError("Waiter error: max attempts reached")).payload
    assert event["status"] == "timeout" and event["job_name"] == "job" and "re-attaches" in event["message"]


def test_on_kill_stops_the_job():
    client = mock.AsyncMock()
    connection = mock.AsyncMock()
    connection.__aenter__.return_value = client
    hook = mock.MagicMock()
    hook.get_async_conn = mock.AsyncMock(return_value=connection)
    with mock.patch.object(TrainingJobTrigger, "hook", return_value=hook):
        asyncio.run(TrainingJobTrigger("job").on_kill())
    client.stop_training_job.assert_awaited_once_with(TrainingJobName="job")


def test_on_kill_of_a_finished_job_is_quiet(emulator, sm, channels):
    name = unique("trigger-done")
    sm.create_training_job(**training_config(name, channels))
    assert first_event(TrainingJobTrigger(name, poll_interval=0.1, first_poll_delay=0))["status"] == "success"
    asyncio.run(TrainingJobTrigger(name).on_kill())  # ValidationException (not running) is not an error
    assert sm.describe_training_job(TrainingJobName=name)["TrainingJobStatus"] == "Completed"


@pytest.mark.parametrize("kwargs", [{"poll_interval": 0}, {"timeout_seconds": -1}, {"first_poll_delay": -1}])
def test_bad_arguments_are_refused(kwargs):
    with pytest.raises(ValueError):
        TrainingJobTrigger("job", **kwargs)


def test_first_poll_waits_the_delay_before_any_describe():
    """apache/airflow#71580: a trigger firing before the scheduler recorded the deferral kills the task."""
    calls: list[str] = []

    async def sleep(seconds: float) -> None:
        calls.append(f"sleep {seconds}")

    async def provider_run(self):
        calls.append("describe")
        yield TriggerEvent({"status": "success", "job_name": self.job_name})

    trigger = TrainingJobTrigger("job", poll_interval=2, timeout_seconds=60, first_poll_delay=3)
    with (
        mock.patch("sagemaker_fleet.triggers.base.asyncio.sleep", sleep),
        mock.patch.object(SageMakerTrigger, "run", provider_run),
    ):
        assert first_event(trigger) == {"status": "success", "job_name": "job"}
    assert calls == ["sleep 3.0", "describe"]
    # Never longer than the whole wait.
    assert TrainingJobTrigger("job", timeout_seconds=2, first_poll_delay=10).first_poll_delay == 2.0
