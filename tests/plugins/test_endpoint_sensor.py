"""SageMakerEndpointStateSensor: defers to EndpointStateTrigger; bad states and silent rollbacks fail it."""

from __future__ import annotations

import asyncio
from unittest import mock

import pytest
from airflow.exceptions import AirflowException
from airflow.sdk.exceptions import TaskDeferred

from sagemaker_fleet.sensors.endpoint import SageMakerEndpointStateSensor
from sagemaker_fleet.triggers.endpoint import EndpointStateTrigger
from tests.conftest import inject_fault
from tests.plugins.endpoint_helpers import config_request, deploy_direct, unique


def sensor(endpoint: str = "ep", **kwargs) -> SageMakerEndpointStateSensor:
    kwargs.setdefault("poll_interval", 0.1)
    return SageMakerEndpointStateSensor(task_id="endpoint_ready", endpoint_name=endpoint, **kwargs)


def run_trigger(trigger: EndpointStateTrigger) -> dict:
    async def first_event():
        async for event in trigger.run():
            return event.payload

    return asyncio.run(asyncio.wait_for(first_event(), timeout=60))


def test_defers_while_updating_and_the_trigger_completes_against_the_emulator(emulator, sm, s3):
    endpoint = unique("ep-sensor")
    _, models = deploy_direct(sm, s3, endpoint, {"AllTraffic": 3})
    new_config = unique("cfg-sensor")
    sm.create_endpoint_config(**config_request(new_config, models))
    sm.update_endpoint(EndpointName=endpoint, EndpointConfigName=new_config)

    watcher = sensor(endpoint, expected_config_name=new_config, timeout=120)
    # The emulator (time scale 0) may finish before the first poke; make that poke see "still updating".
    with (
        mock.patch.object(SageMakerEndpointStateSensor, "poke", return_value=False),
        pytest.raises(TaskDeferred) as deferred,
    ):
        watcher.execute(context={})
    trigger = deferred.value.trigger
    assert isinstance(trigger, EndpointStateTrigger) and trigger.timeout_seconds == 120
    path, kwargs = trigger.serialize()
    assert EndpointStateTrigger(**kwargs).serialize() == (path, kwargs)
    event = run_trigger(EndpointStateTrigger(**kwargs))
    assert event["status"] == "success"
    watcher.execute_complete({}, event)  # verified again by name
    sm.delete_endpoint(EndpointName=endpoint)


def test_silent_rollback_fails_the_polling_sensor(emulator, sm, s3, clear_faults):
    endpoint = unique("ep-sens-rb")
    _, models = deploy_direct(sm, s3, endpoint, {"AllTraffic": 3})
    new_config = unique("cfg-sens-rb")
    sm.create_endpoint_config(**config_request(new_config, models))
    inject_fault(emulator, {"type": "deployment_failure", "endpoint_name": endpoint, "count": 1})
    sm.update_endpoint(EndpointName=endpoint, EndpointConfigName=new_config)
    with pytest.raises(AirflowException, match="rolled back"):
        sensor(endpoint, expected_config_name=new_config, deferrable=False, timeout=60).execute(context={})
    sm.delete_endpoint(EndpointName=endpoint)


def test_already_in_service_returns_without_deferring(emulator, sm, s3):
    endpoint = unique("ep-sens-ok")
    config, _ = deploy_direct(sm, s3, endpoint, {"AllTraffic": 3})
    sensor(endpoint, expected_config_name=config).execute(context={})
    sm.delete_endpoint(EndpointName=endpoint)


@pytest.mark.parametrize("status", ["Failed", "UpdateRollbackFailed", "OutOfService"])
def test_bad_states_fail_the_poke(status):
    with mock.patch.object(SageMakerEndpointStateSensor, "hook", new_callable=mock.PropertyMock) as hook:
        hook.return_value.describe_endpoint_or_none.return_value = {
            "EndpointStatus": status,
            "EndpointConfigName": "c",
            "FailureReason": "the container exited",
        }
        with pytest.raises(AirflowException, match="the container exited"):
            sensor().poke({})


def test_failed_event_fails_the_task():
    with pytest.raises(AirflowException, match="UpdateRollbackFailed"):
        sensor().execute_complete({}, {"status": "failed", "message": "Endpoint ep is UpdateRollbackFailed"})


def test_template_fields():
    assert {"endpoint_name", "expected_config_name"} <= set(SageMakerEndpointStateSensor.template_fields)
