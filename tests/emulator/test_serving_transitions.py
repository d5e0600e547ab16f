"""Endpoint transitions are asynchronous as on AWS: CreateEndpoint, UpdateEndpoint, UpdateEndpointWeightsAndCapacities
and DeleteEndpoint answer with the transitional status, a Describe right after the call shows it every time (an
update keeps showing the old EndpointConfigName), a change during an update is refused with AWS's message, and
botocore's waiters see the end of it. ``--time-scale`` stretches the window beyond its floor."""

from __future__ import annotations

import time

import boto3
import pytest
from botocore.exceptions import ClientError, WaiterError

from include.sagemaker_emulator.process import EmulatorProcess
from tests.emulator.helpers import unique
from tests.emulator.serving_helpers import create_config, create_model, upload_xgboost

BUCKET = "serving-transitions"
ARN = "arn:aws:sagemaker:us-east-1:123456789012:endpoint/"
ROUNDS = 3
FAST_WAIT = {"Delay": 0.05, "MaxAttempts": 600}


def _config(sm, s3, variant: str = "AllTraffic", seed: int = 0) -> str:
    model, config = unique("model"), unique("config")
    create_model(sm, model, upload_xgboost(s3, BUCKET, f"{model}/model.tar.gz", seed=seed))
    create_config(sm, config, [(variant, model, 1.0)])
    return config


def _refused_in_progress(sm, operation: str, endpoint: str, **kwargs) -> None:
    with pytest.raises(ClientError) as refused:
        getattr(sm, operation)(EndpointName=endpoint, **kwargs)
    assert refused.value.response["Error"] == {
        "Code": "ValidationException",
        "Message": f'Cannot update in-progress endpoint "{ARN}{endpoint.lower()}".',
    }


def test_describe_right_after_each_call_shows_the_transition(sm, s3):
    old, new = _config(sm, s3, seed=1), _config(sm, s3, seed=2)
    for _ in range(ROUNDS):  # it must hold every time, not only when loading happens to be slow
        endpoint = unique("transitions")
        sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=old)
        creating = sm.describe_endpoint(EndpointName=endpoint)
        assert creating["EndpointStatus"] == "Creating"
        assert creating["EndpointConfigName"] == old
        _refused_in_progress(sm, "update_endpoint", endpoint, EndpointConfigName=new)
        sm.get_waiter("endpoint_in_service").wait(EndpointName=endpoint, WaiterConfig=FAST_WAIT)
        assert sm.describe_endpoint(EndpointName=endpoint)["EndpointStatus"] == "InService"

        sm.update_endpoint(EndpointName=endpoint, EndpointConfigName=new)
        updating = sm.describe_endpoint(EndpointName=endpoint)
        assert updating["EndpointStatus"] == "Updating"
        # As on AWS: the old configuration until the update completes, the new one only as pending.
        assert updating["EndpointConfigName"] == old
        assert updating["PendingDeploymentSummary"]["EndpointConfigName"] == new
        _refused_in_progress(sm, "update_endpoint", endpoint, EndpointConfigName=new)
        sm.get_waiter("endpoint_in_service").wait(EndpointName=endpoint, WaiterConfig=FAST_WAIT)
        updated = sm.describe_endpoint(EndpointName=endpoint)
        assert updated["EndpointStatus"] == "InService" and updated["EndpointConfigName"] == new
        assert "PendingDeploymentSummary" not in updated

        sm.update_endpoint_weights_and_capacities(
            EndpointName=endpoint, DesiredWeightsAndCapacities=[{"VariantName": "AllTraffic", "DesiredWeight": 2}]
        )
        reweighting = sm.describe_endpoint(EndpointName=endpoint)
        assert reweighting["EndpointStatus"] == "Updating"
        assert reweighting["ProductionVariants"][0]["DesiredWeight"] == 2.0
        assert reweighting["ProductionVariants"][0]["CurrentWeight"] == 1.0
        sm.get_waiter("endpoint_in_service").wait(EndpointName=endpoint, WaiterConfig=FAST_WAIT)
        assert sm.describe_endpoint(EndpointName=endpoint)["ProductionVariants"][0]["CurrentWeight"] == 2.0

        sm.delete_endpoint(EndpointName=endpoint)
        assert sm.describe_endpoint(EndpointName=endpoint)["EndpointStatus"] == "Deleting"
        sm.get_waiter("endpoint_deleted").wait(EndpointName=endpoint, WaiterConfig=FAST_WAIT)
        with pytest.raises(ClientError) as gone:
            sm.describe_endpoint(EndpointName=endpoint)
        assert gone.value.response["Error"]["Message"] == f'Could not find endpoint "{ARN}{endpoint.lower()}".'


def test_failed_creation_and_rollback_are_transitions_too(sm, s3):
    good = _config(sm, s3, variant="AllTraffic")
    broken_model, broken = unique("broken"), unique("broken-config")
    create_model(sm, broken_model, f"s3://{BUCKET}/absent/model.tar.gz")
    create_config(sm, broken, [("AllTraffic", broken_model, 1.0)])

    failing = unique("failing")
    sm.create_endpoint(EndpointName=failing, EndpointConfigName=broken)
    assert sm.describe_endpoint(EndpointName=failing)["EndpointStatus"] == "Creating"
    # botocore's waiter stops on Failed with its own error, as against AWS.
    with pytest.raises(WaiterError, match="terminal failure state"):
        sm.get_waiter("endpoint_in_service").wait(EndpointName=failing, WaiterConfig=FAST_WAIT)
    sm.delete_endpoint(EndpointName=failing)

    endpoint = unique("rolling")
    sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=good)
    sm.get_waiter("endpoint_in_service").wait(EndpointName=endpoint, WaiterConfig=FAST_WAIT)
    sm.update_endpoint(EndpointName=endpoint, EndpointConfigName=broken)
    assert sm.describe_endpoint(EndpointName=endpoint)["EndpointStatus"] == "Updating"
    sm.get_waiter("endpoint_in_service").wait(EndpointName=endpoint, WaiterConfig=FAST_WAIT)
    back = sm.describe_endpoint(EndpointName=endpoint)
    assert back["EndpointConfigName"] == good and "Failed to download model data" in back["FailureReason"]
    sm.delete_endpoint(EndpointName=endpoint)


def _seconds_until_in_service(sm, endpoint: str, call) -> float:
    """From just before ``call`` to the first Describe that shows InService: a lower bound of the window
    that load on the machine can only lengthen, never shorten."""
    started = time.monotonic()
    call()
    while sm.describe_endpoint(EndpointName=endpoint)["EndpointStatus"] != "InService":
        time.sleep(0.02)
    return time.monotonic() - started


def test_time_scale_stretches_the_window(emulator, sm, s3, tmp_path):
    floor = emulator.health()["min_transition_seconds"]
    assert 0.1 <= floor <= 0.3
    config = _config(sm, s3)
    endpoint = unique("floor")
    assert (
        _seconds_until_in_service(
            sm, endpoint, lambda: sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=config)
        )
        >= floor
    )
    sm.delete_endpoint(EndpointName=endpoint)

    time_scale = 0.005  # CreateEndpoint's nominal 240 s -> 1.2 s, UpdateEndpoint's likewise
    with EmulatorProcess(tmp_path / "data", time_scale=time_scale) as slow:
        kwargs = {"endpoint_url": slow.url, "region_name": "us-east-1"}
        slow_sm, slow_s3 = boto3.client("sagemaker", **kwargs), boto3.client("s3", **kwargs)
        old, new = _config(slow_sm, slow_s3, seed=1), _config(slow_sm, slow_s3, seed=2)
        endpoint = unique("stretched")
        nominal = 240 * time_scale
        created = _seconds_until_in_service(
            slow_sm, endpoint, lambda: slow_sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=old)
        )
        assert created >= nominal > floor
        updated = _seconds_until_in_service(
            slow_sm, endpoint, lambda: slow_sm.update_endpoint(EndpointName=endpoint, EndpointConfigName=new)
        )
        assert updated >= nominal
        assert slow_sm.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"] == new

        # The refusals that need a second call inside the window, checked where the window is wide.
        slow_sm.update_endpoint(EndpointName=endpoint, EndpointConfigName=old)
        _refused_in_progress(
            slow_sm,
            "update_endpoint_weights_and_capacities",
            endpoint,
            DesiredWeightsAndCapacities=[{"VariantName": "AllTraffic", "DesiredWeight": 2}],
        )
        _refused_in_progress(slow_sm, "delete_endpoint", endpoint)
        slow_sm.get_waiter("endpoint_in_service").wait(EndpointName=endpoint, WaiterConfig=FAST_WAIT)
        slow_sm.delete_endpoint(EndpointName=endpoint)
        listed = slow_sm.list_endpoints(NameContains=endpoint)["Endpoints"]
        assert [(e["EndpointName"], e["EndpointStatus"]) for e in listed] == [(endpoint, "Deleting")]
        _refused_in_progress(slow_sm, "delete_endpoint", endpoint)
        with pytest.raises(ClientError) as recreate:
            slow_sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=old)
        assert recreate.value.response["Error"]["Message"] == (
            f'Cannot create already existing endpoint "{ARN}{endpoint.lower()}".'
        )
        slow_sm.get_waiter("endpoint_deleted").wait(EndpointName=endpoint, WaiterConfig=FAST_WAIT)
        slow_sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=old)  # the name is free again
