"""MMEModelAvailableSensor against a real multi-model endpoint: a trained model registered into the MME
prefix answers; a TargetModel that is not there yet keeps the sensor waiting."""

from __future__ import annotations

import json
import time
from unittest import mock

import pytest
from botocore.exceptions import ClientError

from sagemaker_fleet.operators.mme import MMERegisterModelOperator
from sagemaker_fleet.operators.training import SageMakerRetrySafeTrainingOperator
from sagemaker_fleet.sensors.mme import MMEModelAvailableSensor
from tests.plugins.conftest import BUCKET, ROLE_ARN, training_config, unique, xgboost_image


@pytest.fixture(scope="module")
def mme_endpoint(emulator, sm, channels):
    """Train Chicago_IL for real, register it into an MME prefix, serve the prefix from one endpoint."""
    root = unique("sensor")
    trained = SageMakerRetrySafeTrainingOperator(
        task_id="train", config=training_config(unique("sensor-train"), channels), deferrable=False, check_interval=0.1
    ).execute(context={})
    registered = MMERegisterModelOperator(
        task_id="register",
        model_artifact=trained["model_artifact"],
        mme_prefix=f"s3://{BUCKET}/{root}/mme/",
        registry_prefix=f"s3://{BUCKET}/{root}/registry/",
        location="Chicago_IL",
        version="20261123",
    ).execute(context={})
    name = unique("mme")
    sm.create_model(
        ModelName=name,
        PrimaryContainer={"Image": xgboost_image(), "Mode": "MultiModel", "ModelDataUrl": f"s3://{BUCKET}/{root}/mme/"},
        ExecutionRoleArn=ROLE_ARN,
    )
    sm.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}
        ],
    )
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    deadline = time.monotonic() + 30
    while sm.describe_endpoint(EndpointName=name)["EndpointStatus"] != "InService":
        assert time.monotonic() < deadline, "endpoint never came InService"
        time.sleep(0.05)
    return name, registered["target_model"], channels["test_csv"].splitlines()[0].split(",", 1)[1]


def sensor(endpoint: str, target_model: str, payload: str, **kwargs) -> MMEModelAvailableSensor:
    kwargs.setdefault("poke_interval", 0.1)
    kwargs.setdefault("timeout", 10)
    return MMEModelAvailableSensor(
        task_id="smoke", endpoint_name=endpoint, target_model=target_model, payload=payload, mode="poke", **kwargs
    )


def test_registered_model_answers_with_a_real_prediction(mme_endpoint):
    endpoint, target_model, row = mme_endpoint
    result = sensor(endpoint, target_model, row).execute(context={})
    assert result["target_model"] == "Chicago_IL/Chicago_IL-20261123.tar.gz"
    # XGBoost in MME mode answers a JSON list (as on AWS); single-model mode answers a bare CSV number.
    assert json.loads(result["prediction"])[0] > 0  # a house price from the trained booster
    assert result["invoked_variant"] == "AllTraffic" and result["latency_ms"] >= 0


def test_missing_target_model_is_not_available_and_times_out(mme_endpoint):
    from airflow.sdk.exceptions import AirflowSensorTimeout

    endpoint, _, row = mme_endpoint
    missing = sensor(endpoint, "Chicago_IL/Chicago_IL-20990101.tar.gz", row, timeout=0.5)
    assert missing.poke(context={}) is False
    with pytest.raises(AirflowSensorTimeout):
        missing.execute(context={})


def test_unknown_endpoint_is_not_available_yet(emulator, mme_endpoint):
    _, target_model, row = mme_endpoint
    assert sensor("not-created-yet", target_model, row).poke(context={}) is False


def test_throttling_counts_as_not_yet_and_link_is_persisted():
    op = sensor("ep", "Chicago_IL/Chicago_IL-20261123.tar.gz", "1,2,3")
    hook = mock.MagicMock()
    hook.conn_region_name, hook.conn_partition = "us-east-1", "aws"
    hook.conn_config.get_service_endpoint_url.return_value = None  # on AWS: the console link
    hook.invoke_endpoint.side_effect = ClientError(
        {"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "InvokeEndpoint"
    )
    ti = mock.MagicMock()
    with mock.patch.object(MMEModelAvailableSensor, "hook", hook):
        assert op.poke(context={"ti": ti}) is False
    ti.xcom_push.assert_called_once_with(
        key="sagemaker_fleet_endpoint",
        value={"region_name": "us-east-1", "aws_domain": "aws.amazon.com", "emulator_url": None, "name": "ep"},
    )


def test_empty_payload_is_refused():
    with pytest.raises(ValueError, match="non-empty"):
        sensor("ep", "m.tar.gz", "").poke(context={})
