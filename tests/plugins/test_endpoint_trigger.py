"""EndpointStateTrigger: real endpoints in the emulator (success, silent rollback), edge paths with mocks."""

from __future__ import annotations

import asyncio
from unittest import mock

import pytest
from airflow.providers.amazon.aws.exceptions import WaiterMaxAttemptsError
from airflow.providers.common.compat.sdk import AirflowException

from sagemaker_fleet.triggers.endpoint import EndpointStateTrigger, endpoint_outcome
from tests.conftest import inject_fault
from tests.plugins.endpoint_helpers import config_request, deploy_direct, model_request, unique, upload_xgboost_model


def run_trigger(trigger: EndpointStateTrigger, timeout: float = 60) -> dict:
    async def first_event():
        async for event in trigger.run():
            return event.payload

    return asyncio.run(asyncio.wait_for(first_event(), timeout=timeout))


def trigger(endpoint: str = "ep", **kwargs) -> EndpointStateTrigger:
    kwargs.setdefault("poll_interval", 0.05)
    kwargs.setdefault("first_poll_delay", 0)
    return EndpointStateTrigger(endpoint, **kwargs)


def test_serialize_round_trips():
    original = EndpointStateTrigger(
        "ep", expected_config_name="cfg", poll_interval=2, timeout_seconds=30, aws_conn_id="aws_x",
        region_name="eu-west-1", verify=False, botocore_config={"retries": {"max_attempts": 3}},
    )  # fmt: skip
    path, kwargs = original.serialize()
    assert path == "sagemaker_fleet.triggers.endpoint.EndpointStateTrigger"
    assert kwargs["expected_config_name"] == "cfg" and kwargs["region_name"] == "eu-west-1"
    assert kwargs["first_poll_delay"] == 5.0
    assert EndpointStateTrigger(**kwargs).serialize() == (path, kwargs)


# -- against the emulator ------------------------------------------------------------------------------------
def test_update_completes_with_success_on_the_expected_config(emulator, sm, s3):
    endpoint = unique("ep-trig")
    _, models = deploy_direct(sm, s3, endpoint, {"AllTraffic": 5})
    new_config = unique("cfg-next")
    sm.create_endpoint_config(**config_request(new_config, models))
    sm.update_endpoint(EndpointName=endpoint, EndpointConfigName=new_config)

    event = run_trigger(trigger(endpoint, expected_config_name=new_config))
    assert event["status"] == "success" and event["endpoint_status"] == "InService"
    assert event["endpoint_config_name"] == new_config
    sm.delete_endpoint(EndpointName=endpoint)


def test_silent_rollback_is_a_failure_with_the_reason(emulator, sm, s3, clear_faults):
    endpoint = unique("ep-silent")
    old_config, _ = deploy_direct(sm, s3, endpoint, {"AllTraffic": 5})
    model = unique("m-broken")
    sm.create_model(**model_request(model, upload_xgboost_model(s3, f"models/{model}", 2)))
    new_config = unique("cfg-rolled")
    sm.create_endpoint_config(**config_request(new_config, {"AllTraffic": model}))
    inject_fault(emulator, {"type": "deployment_failure", "endpoint_name": endpoint, "count": 1})
    sm.update_endpoint(EndpointName=endpoint, EndpointConfigName=new_config)

    event = run_trigger(trigger(endpoint, expected_config_name=new_config))
    assert event["status"] == "failed"
    assert event["endpoint_status"] == "InService" and event["endpoint_config_name"] == old_config
    assert event["failure_reason"] and event["failure_reason"] in event["message"]
    assert f"not on the requested {new_config}" in event["message"]
    # botocore's waiter, like the provider, would have called this a success:
    sm.get_waiter("endpoint_in_service").wait(EndpointName=endpoint, WaiterConfig={"Delay": 1, "MaxAttempts": 5})
    sm.delete_endpoint(EndpointName=endpoint)


def test_missing_endpoint_is_an_error(emulator):
    event = run_trigger(trigger(unique("ep-none")))
    assert event["status"] == "error" and "does not exist" in event["message"]


# -- edge paths with mocks -----------------------------------------------------------------------------------
@pytest.mark.parametrize("status", ["Failed", "UpdateRollbackFailed", "OutOfService"])
def test_terminal_bad_states_are_failures(status):
    outcome = endpoint_outcome("ep", {"EndpointStatus": status, "EndpointConfigName": "c", "FailureReason": "boom"})
    assert outcome["status"] == "failed" and "boom" in outcome["message"] and status in outcome["message"]


@pytest.mark.parametrize("status", ["Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"])
def test_transitional_states_keep_waiting(status):
    assert endpoint_outcome("ep", {"EndpointStatus": status}) is None


def test_times_out_while_the_endpoint_stays_updating(emulator, sm, s3):
    endpoint = unique("ep-slow")
    config, _ = deploy_direct(sm, s3, endpoint, {"AllTraffic": 5})
    # The provider's wait loop ran out of attempts: the event still says where the endpoint stands.
    with mock.patch(
        "sagemaker_fleet.triggers.endpoint.async_wait", side_effect=WaiterMaxAttemptsError("max attempts reached")
    ):
        event = run_trigger(trigger(endpoint, expected_config_name="cfg-never", timeout_seconds=0.2))
    assert event["status"] == "timeout" and "InService" in event["message"]
    assert event["endpoint_config_name"] == config
    sm.delete_endpoint(EndpointName=endpoint)


def test_throttling_is_retried_and_other_errors_are_reported(emulator, sm, s3, clear_faults):
    endpoint = unique("ep-throttle")
    config, _ = deploy_direct(sm, s3, endpoint, {"AllTraffic": 5})
    inject_fault(emulator, {"type": "throttle", "count": 4, "operations": ["DescribeEndpoint"]})
    event = run_trigger(trigger(endpoint, expected_config_name=config))
    assert event["status"] == "success" and event["endpoint_config_name"] == config
    with mock.patch("sagemaker_fleet.triggers.endpoint.async_wait", side_effect=AirflowException("AccessDenied")):
        event = run_trigger(trigger(endpoint))
    assert event["status"] == "error" and "AccessDenied" in event["message"]
    sm.delete_endpoint(EndpointName=endpoint)


def test_the_waiter_is_the_packages_own_with_the_config_in_its_acceptors():
    from sagemaker_fleet.hooks.sagemaker import SageMakerFleetHook

    assert trigger(expected_config_name="cfg-2").waiter_name == "EndpointInServiceOnConfig"
    assert trigger().waiter_name == "EndpointSettled"
    waiter = SageMakerFleetHook(aws_conn_id=None, region_name="us-east-1").get_waiter(
        "EndpointInServiceOnConfig", parameters={"endpoint_config_name": "cfg-2"}
    )
    arguments = [a.argument for a in waiter.config.acceptors]
    assert "EndpointStatus == 'InService' && EndpointConfigName == 'cfg-2'" in arguments


def test_invalid_arguments():
    with pytest.raises(ValueError, match="poll_interval"):
        EndpointStateTrigger("ep", poll_interval=0)
    with pytest.raises(ValueError, match="timeout_seconds"):
        EndpointStateTrigger("ep", timeout_seconds=0)
    # The config name goes into a JMESPath expression: nothing but a SageMaker name may.
    with pytest.raises(ValueError, match="expected_config_name"):
        EndpointStateTrigger("ep", expected_config_name="x' || `true` || '")


def test_first_poll_waits_the_delay_before_any_describe():
    """apache/airflow#71580: a trigger firing before the scheduler recorded the deferral kills the task."""
    calls: list[str] = []

    async def sleep(seconds: float) -> None:
        calls.append(f"sleep {seconds}")

    def hook():
        calls.append("connect")
        raise RuntimeError("stop here")

    original = EndpointStateTrigger("ep", poll_interval=1, timeout_seconds=30, first_poll_delay=4)
    with (
        mock.patch("sagemaker_fleet.triggers.base.asyncio.sleep", sleep),
        mock.patch.object(original, "hook", hook),
        pytest.raises(RuntimeError, match="stop here"),
    ):
        run_trigger(original)
    assert calls == ["sleep 4.0", "connect"]
    # The delay counts against the timeout: 26 s left at one poll a second.
    assert original.attempts == 27
