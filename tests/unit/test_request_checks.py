"""The emulator's request checks without a server: the service-model checker, pagination tokens, fault specs."""

from __future__ import annotations

import math

import pytest

from include.sagemaker_emulator.control_plane import _listing_digest, _make_token, _token_offset
from include.sagemaker_emulator.errors import AwsError
from include.sagemaker_emulator.faults import FaultRegistry, FaultSpecError
from include.sagemaker_emulator.shapes import check_request, parse_json

VARIANT = {"VariantName": "v1", "ModelName": "m", "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1e999", "-1e400"])
def test_parse_json_refuses_what_json_has_no_word_for(token):
    with pytest.raises(AwsError) as raised:
        parse_json(f'{{"DesiredWeight": {token}}}'.encode())
    assert raised.value.code == "SerializationException"


def test_parse_json_keeps_ordinary_numbers():
    assert parse_json(b'{"a": 1e3, "b": -0.5, "c": 7}') == {"a": 1000.0, "b": -0.5, "c": 7}


def test_check_request_normalises_what_it_passes_on():
    checked = check_request(
        "CreateEndpointConfig",
        {
            "EndpointConfigName": "cfg",
            "ProductionVariants": [{**VARIANT, "InitialInstanceCount": 2.0, "InitialVariantWeight": 3}],
            "KmsKeyId": None,
            "NotAMember": {"anything": "at all"},
        },
    )
    variant = checked["ProductionVariants"][0]
    assert variant["InitialInstanceCount"] == 2 and isinstance(variant["InitialInstanceCount"], int)
    assert variant["InitialVariantWeight"] == 3.0 and isinstance(variant["InitialVariantWeight"], float)
    assert "KmsKeyId" not in checked and "NotAMember" not in checked


def test_check_request_lists_every_violation_as_aws_does():
    with pytest.raises(AwsError) as raised:
        check_request(
            "CreateEndpointConfig",
            {"EndpointConfigName": "bad_name", "ProductionVariants": [{**VARIANT, "InitialInstanceCount": 0}]},
        )
    assert raised.value.code == "ValidationException"
    assert raised.value.message.startswith("2 validation errors detected: Value 'bad_name' at 'endpointConfigName'")
    assert "Value '0' at 'productionVariants.1.member.initialInstanceCount'" in raised.value.message


def test_a_wrong_type_is_a_serialization_error_naming_the_member():
    with pytest.raises(AwsError) as raised:
        check_request("CreateEndpointConfig", {"EndpointConfigName": "c", "ProductionVariants": {"v1": VARIANT}})
    assert raised.value.code == "SerializationException"
    assert "at 'productionVariants': expected a JSON array for a list member, got a JSON object" in raised.value.message


def test_unknown_operations_pass_through_for_the_dispatcher_to_refuse():
    assert check_request("NoSuchOperation", {"x": 1}) == {"x": 1}


def test_next_tokens_round_trip_and_refuse_tampering():
    listing = _listing_digest("ModelName", {"NameContains": "a", "MaxResults": 5})
    token = _make_token(5, listing)
    assert _token_offset(token, listing) == 5
    assert listing == _listing_digest("ModelName", {"NameContains": "a", "NextToken": token, "MaxResults": 1})
    for bad in (token[:-1] + ("0" if token[-1] != "0" else "1"), "x" + token, token.replace(".", ""), ""):
        with pytest.raises(AwsError, match="Invalid pagination token"):
            _token_offset(bad, listing)
    with pytest.raises(AwsError, match="different listing"):
        _token_offset(token, _listing_digest("EndpointName", {}))


def test_fault_specs_are_stored_all_or_none():
    registry = FaultRegistry()
    with pytest.raises(FaultSpecError, match="status_code"):
        registry.add(
            {
                "faults": [
                    {"type": "throttle"},
                    {"type": "variant_model_error", "endpoint_name": "e", "status_code": "abc"},
                ]
            }
        )
    assert registry.active() == []
    stored = registry.add({"type": "variant_latency", "endpoint_name": "e", "latency_ms": 250, "count": None})
    assert stored == [{"type": "variant_latency", "endpoint_name": "e", "latency_ms": 250}]


@pytest.mark.parametrize("latency", [math.nan, math.inf, -math.inf, -1, 60_001, "5", True])
def test_latency_faults_that_could_hang_or_break_a_request_are_refused(latency):
    with pytest.raises(FaultSpecError, match="latency_ms"):
        FaultRegistry().add({"type": "variant_latency", "endpoint_name": "e", "latency_ms": latency})
