"""SageMakerShiftTrafficOperator: real weight shifts with live traffic in the emulator, the error guard
tripped by an injected variant_model_error (weights restored), and validation before any change."""

from __future__ import annotations

import json
import math
import os
import time
from unittest import mock

import pytest
from airflow.exceptions import AirflowException
from airflow.sdk.exceptions import TaskDeferred

from sagemaker_fleet.operators.traffic import SageMakerShiftTrafficOperator
from tests.conftest import inject_fault
from tests.plugins.endpoint_helpers import Traffic, deploy_direct, unique


def operator(endpoint: str, steps, **kwargs) -> SageMakerShiftTrafficOperator:
    kwargs.setdefault("check_interval", 0.1)
    return SageMakerShiftTrafficOperator(task_id="shift", endpoint_name=endpoint, steps=steps, **kwargs)


def weights(sm, endpoint: str) -> dict[str, tuple[float, float]]:
    described = sm.describe_endpoint(EndpointName=endpoint)
    return {v["VariantName"]: (v["CurrentWeight"], v["DesiredWeight"]) for v in described["ProductionVariants"]}


@pytest.fixture
def ab_endpoint(emulator, sm, s3):
    endpoint = unique("ep-shift")
    deploy_direct(sm, s3, endpoint, {"Champion": 10, "Challenger": 10}, {"Champion": 0.9, "Challenger": 0.1})
    yield endpoint
    sm.delete_endpoint(EndpointName=endpoint)


def test_steps_shift_traffic_and_report_the_observed_metrics(emulator, sm, ab_endpoint):
    steps = [{"Champion": "0.5", "Challenger": "0.5"}, {"Champion": 0, "Challenger": 1}]  # rendered strings too
    with Traffic(emulator.url, ab_endpoint) as traffic:
        applied = operator(ab_endpoint, steps, bake_seconds=1.0).execute(context={})
    assert traffic.failed == 0
    assert [a["weights"] for a in applied] == [
        {"Champion": 0.5, "Challenger": 0.5},
        {"Champion": 0.0, "Challenger": 1.0},
    ]
    assert weights(sm, ab_endpoint) == {"Champion": (0.0, 0.0), "Challenger": (1.0, 1.0)}
    first, last = applied[0]["metrics"], applied[1]["metrics"]
    assert first["Champion"]["invocations"] > 0 and first["Challenger"]["invocations"] > 0
    assert last["Challenger"]["invocations"] > 0 and last["Challenger"]["error_rate"] == 0
    assert json.loads(json.dumps(applied)) == applied


def test_error_guard_trips_on_a_failing_variant_and_restores_the_weights(emulator, sm, ab_endpoint, clear_faults):
    inject_fault(emulator, {"type": "variant_model_error", "endpoint_name": ab_endpoint, "variant_name": "Challenger"})
    with Traffic(emulator.url, ab_endpoint), pytest.raises(AirflowException) as raised:
        operator(ab_endpoint, [{"Champion": 0.5, "Challenger": 0.5}, {"Champion": 0, "Challenger": 1}],
                 bake_seconds=1.5, max_error_rate=0.05).execute(context={})  # fmt: skip
    message = str(raised.value)
    assert "stopped at step 1" in message and "Challenger:" in message and "(100.0%)" in message
    assert "Champion:" not in message.split("for ", 1)[1]
    restored = weights(sm, ab_endpoint)
    assert math.isclose(restored["Champion"][0], 0.9) and math.isclose(restored["Challenger"][0], 0.1)


def test_a_step_without_datapoints_fails_after_the_bound_and_restores_the_weights(emulator, sm, ab_endpoint):
    # No traffic at all: nothing to judge. The step must fail, never pass on "no datapoints".
    started = time.monotonic()
    with pytest.raises(AirflowException, match="stopped at step 1.*no Invocations for Champion, Challenger"):
        operator(ab_endpoint, [{"Champion": 0.5, "Challenger": 0.5}], max_metrics_wait_seconds=2).execute(context={})
    assert time.monotonic() - started >= 2  # it looked for the whole bound before giving up
    restored = weights(sm, ab_endpoint)
    assert math.isclose(restored["Champion"][0], 0.9) and math.isclose(restored["Challenger"][0], 0.1)


def test_the_probe_sends_enough_traffic_to_judge_each_step(emulator, sm, ab_endpoint):
    applied = operator(
        ab_endpoint, [{"Champion": 0.5, "Challenger": 0.5}, {"Champion": 0, "Challenger": 1}], probe_body="0.2,0.4,0.6"
    ).execute(context={})
    assert [a["step"] for a in applied] == [1, 2]
    assert applied[0]["metrics"]["Challenger"]["invocations"] >= 5 and applied[0]["metrics"]["Champion"]["invocations"]
    assert applied[1]["metrics"]["Challenger"]["error_rate"] == 0
    assert weights(sm, ab_endpoint) == {"Champion": (0.0, 0.0), "Challenger": (1.0, 1.0)}


def test_the_emulator_says_how_late_its_metrics_are_and_aws_gets_minutes(emulator):
    from sagemaker_fleet.hooks.sagemaker import AWS_METRICS_DELAY_SECONDS, SageMakerFleetHook

    delay = SageMakerFleetHook(aws_conn_id="aws_default").metrics_publish_delay_seconds()
    assert 0 < delay < 10
    with mock.patch.dict(os.environ, {"AIRFLOW_CONN_AWS_OTHER": json.dumps({"conn_type": "aws", "extra": {
            "region_name": "us-east-1", "endpoint_url": "http://127.0.0.1:9"}})}):  # fmt: skip
        assert SageMakerFleetHook(aws_conn_id="aws_other").metrics_publish_delay_seconds() == AWS_METRICS_DELAY_SECONDS
    assert AWS_METRICS_DELAY_SECONDS >= 60


def test_long_waits_are_deferred_and_the_shift_resumes_from_its_state(emulator, sm, ab_endpoint):
    from airflow.providers.standard.triggers.temporal import TimeDeltaTrigger

    shift = operator(
        ab_endpoint, [{"Champion": 0.5, "Challenger": 0.5}, {"Champion": 0, "Challenger": 1}],
        metrics_delay_seconds=120, deferrable=True,
    )  # fmt: skip
    with pytest.raises(TaskDeferred) as deferred:
        shift.execute(context={})
    assert isinstance(deferred.value.trigger, TimeDeltaTrigger) and deferred.value.method_name == "resume"
    state = deferred.value.kwargs["state"]
    assert json.loads(json.dumps(state)) == state and state["step"] == 0
    assert weights(sm, ab_endpoint)["Challenger"] == (0.5, 0.5)  # step 1 is applied before the wait
    resumed = operator(ab_endpoint, [], metrics_delay_seconds=120, deferrable=True)  # another worker
    # No datapoints yet: it looks again a minute later, in the triggerer, within the bound.
    with pytest.raises(TaskDeferred) as polling:
        resumed.resume({}, None, state)
    state = polling.value.kwargs["state"]
    assert state["step"] == 0 and state["metrics_deadline"] and not state["applied"]
    with Traffic(emulator.url, ab_endpoint), pytest.raises(TaskDeferred) as again:
        # Traffic flows long enough for the emulator to publish it (it says how long that takes).
        time.sleep(resumed.hook.metrics_publish_delay_seconds() + 1)
        # Step 1 is judged on its metrics, step 2 applied, and its wait deferred.
        resumed.resume({}, None, state)
    state = again.value.kwargs["state"]
    assert state["step"] == 1 and state["applied"][0]["metrics"]["Challenger"]["invocations"] > 0
    assert weights(sm, ab_endpoint)["Challenger"] == (1.0, 1.0)


# -- validation before any change, with mocks ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([{"Champion": 1, "Ghost": 1}], "unknown variant 'Ghost'"),
        ([{"Champion": 0.5}, {"Champion": -1}], "step 2: .*negative"),
        ([{"Champion": float("nan")}], "not finite"),
        ([{"Champion": 0, "Challenger": 0}], "all weights are zero"),
        ([{"Champion": 0}], "step 1: .*all weights are zero"),  # Challenger starts at 0
        ([{"Challenger": 1}, {"Challenger": 0, "Champion": 0}], "step 2: .*all weights are zero"),
        (["half"], "step 1 is not"),
        ([], "non-empty list"),
    ],
)
def test_invalid_steps_change_nothing(steps, message):
    with mock.patch.object(SageMakerShiftTrafficOperator, "hook", new_callable=mock.PropertyMock) as hook:
        hook.return_value.describe_endpoint_or_none.return_value = {
            "EndpointStatus": "InService",
            "EndpointConfigName": "c",
            "ProductionVariants": [
                {"VariantName": "Champion", "CurrentWeight": 1.0},
                {"VariantName": "Challenger", "CurrentWeight": 0.0},
            ],
        }
        with pytest.raises(ValueError, match=message):
            operator("ep", steps).execute(context={})
    hook.return_value.update_weights.assert_not_called()


def test_endpoint_not_in_service_is_refused():
    with mock.patch.object(SageMakerShiftTrafficOperator, "hook", new_callable=mock.PropertyMock) as hook:
        hook.return_value.describe_endpoint_or_none.return_value = {"EndpointStatus": "Updating"}
        with pytest.raises(AirflowException, match="Cannot shift traffic on ep: it is Updating"):
            operator("ep", [{"A": 1}]).execute(context={})


@pytest.mark.parametrize("kwargs", [{"max_error_rate": 2}, {"bake_seconds": -1}, {"bake_seconds": "soon"}])
def test_bad_numbers_are_rejected(kwargs):
    with pytest.raises(ValueError):
        operator("ep", [{"A": 1}], **kwargs)._numbers()
