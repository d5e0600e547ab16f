"""TrainingJobTrigger: serialises and round-trips, really completes against the emulator, and turns every
terminal state, a missing job, transient errors and a timeout into one clear event."""

from __future__ import annotations

import asyncio
from unittest import mock

import pytest

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
        botocore_config={"retries": {"mode": "standard"}},
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == "sagemaker_fleet.triggers.training.TrainingJobTrigger"
    assert kwargs == {
        "job_name": "job",
        "poll_interval": 2.0,
        "timeout_seconds": 60.0,
        "aws_conn_id": "other",
        "region_name": "eu-west-1",
        "verify": False,
        "botocore_config": {"retries": {"mode": "standard"}},
    }
    assert TrainingJobTrigger(**kwargs).serialize() == (classpath, kwargs)
    hook = TrainingJobTrigger(**kwargs).hook()
    assert hook.aws_conn_id == "other" and hook.region_name == "eu-west-1" and hook.verify is False


def test_really_completes_against_the_emulator(emulator, sm, channels):
    name = unique("trigger-ok")
    sm.create_training_job(**training_config(name, channels))
    event = first_event(TrainingJobTrigger(name, poll_interval=0.1))
    assert event == {"status": "success", "job_name": name, "message": f"Training job {name} completed"}
    assert sm.describe_training_job(TrainingJobName=name)["TrainingJobStatus"] == "Completed"


def test_failed_job_gives_a_failed_event_with_its_reason(emulator, sm, channels, clear_faults):
    name = unique("trigger-fail")
    inject_fault(emulator, {"type": "training_failure", "count": 1, "name_contains": name, "reason": "out of memory"})
    sm.create_training_job(**training_config(name, channels))
    event = first_event(TrainingJobTrigger(name, poll_interval=0.1))
    assert event["status"] == "failed" and "out of memory" in event["message"]


def test_missing_job_is_an_error_event(emulator):
    event = first_event(TrainingJobTrigger("never-created-job", poll_interval=0.1))
    assert event["status"] == "error" and "does not exist" in event["message"]


def fake_hook(*descriptions):
    hook = mock.MagicMock()
    hook.describe_training_job_or_none.side_effect = list(descriptions)
    return hook


def test_stopped_and_timeout_events():
    trigger = TrainingJobTrigger("job", poll_interval=0.01)
    hook = fake_hook({"TrainingJobStatus": "InProgress"}, {"TrainingJobStatus": "Stopped"})
    with mock.patch.object(TrainingJobTrigger, "hook", return_value=hook):
        assert first_event(trigger)["status"] == "stopped"

    slow = TrainingJobTrigger("job", poll_interval=0.01, timeout_seconds=0.05)
    hook = mock.MagicMock()
    hook.describe_training_job_or_none.return_value = {"TrainingJobStatus": "InProgress", "SecondaryStatus": "Training"}
    with mock.patch.object(TrainingJobTrigger, "hook", return_value=hook):
        event = first_event(slow)
    assert event["status"] == "timeout" and "re-attaches" in event["message"]


def test_transient_errors_are_retried_and_persistent_ones_end_in_error():
    trigger = TrainingJobTrigger("job", poll_interval=0.01)
    flaky = fake_hook(RuntimeError("throttled"), RuntimeError("throttled"), {"TrainingJobStatus": "Completed"})
    with mock.patch.object(TrainingJobTrigger, "hook", return_value=flaky):
        assert first_event(trigger)["status"] == "success"

    broken = mock.MagicMock()
    broken.describe_training_job_or_none.side_effect = RuntimeError("network down")
    with mock.patch.object(TrainingJobTrigger, "hook", return_value=broken):
        event = first_event(trigger)
    assert event["status"] == "error" and "network down" in event["message"]


def test_on_kill_stops_the_job():
    hook = mock.MagicMock()
    with mock.patch.object(TrainingJobTrigger, "hook", return_value=hook):
        asyncio.run(TrainingJobTrigger("job").on_kill())
    hook.stop_training_job.assert_called_once_with("job")


@pytest.mark.parametrize("kwargs", [{"poll_interval": 0}, {"timeout_seconds": -1}])
def test_bad_arguments_are_refused(kwargs):
    with pytest.raises(ValueError):
        TrainingJobTrigger("job", **kwargs)
