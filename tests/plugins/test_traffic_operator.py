"""SageMakerShiftTrafficOperator: real weight shifts with live traffic in the emulator, the error guard
tripped by an injected variant_model_error (weights restored), and validation before any change."""

from __future__ import annotations

import json
import math
from unittest import mock

import pytest
from airflow.exceptions import AirflowException

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
        hook.return_value.get_conn.return_value.describe_endpoint.return_value = {
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
        hook.return_value.get_conn.return_value.describe_endpoint.return_value = {"EndpointStatus": "Updating"}
        with pytest.raises(AirflowException, match="Cannot shift traffic on ep: it is Updating"):
            operator("ep", [{"A": 1}]).execute(context={})


@pytest.mark.parametrize("kwargs", [{"max_error_rate": 2}, {"bake_seconds": -1}, {"bake_seconds": "soon"}])
def test_bad_numbers_are_rejected(kwargs):
    with pytest.raises(ValueError):
        operator("ep", [{"A": 1}], **kwargs)._numbers()
