"""Endpoint control plane: AWS's state machine, shapes and messages; restart; the Amazon provider's operator
and sensor pointed at the emulator through ``aws_default``."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError

from include.sagemaker_emulator.process import EmulatorProcess
from tests.emulator.helpers import unique
from tests.emulator.serving_helpers import (
    ROLE,
    XGB_IMAGE,
    create_config,
    create_model,
    csv_row,
    deploy,
    ensure_bucket,
    housing_like,
    upload_xgboost,
    wait_status,
)

BUCKET = "serving-endpoints"
ARN = "arn:aws:sagemaker:us-east-1:123456789012:endpoint/"
ROW = csv_row(housing_like(1, seed=4)[0][0])


def _config(sm, s3, missing: bool = False) -> str:
    model, config = unique("model"), unique("config")
    url = f"s3://{BUCKET}/absent/model.tar.gz" if missing else upload_xgboost(s3, BUCKET, f"{model}/model.tar.gz")
    if missing:
        ensure_bucket(s3, BUCKET)
    create_model(sm, model, url)
    create_config(sm, config, [("AllTraffic", model, 1.0)])
    return config


def test_lifecycle_shapes_and_messages(sm, s3, runtime):
    config = _config(sm, s3)
    name = unique("Lifecycle")
    arn = sm.create_endpoint(EndpointName=name, EndpointConfigName=config)["EndpointArn"]
    assert arn == ARN + name.lower()
    described = wait_status(sm, name, "InService")
    assert described["EndpointName"] == name and described["EndpointConfigName"] == config
    assert {"CreationTime", "LastModifiedTime", "EndpointArn"} <= set(described)
    (variant,) = described["ProductionVariants"]
    assert variant["VariantName"] == "AllTraffic"
    assert variant["CurrentWeight"] == variant["DesiredWeight"] == 1.0
    assert variant["CurrentInstanceCount"] == variant["DesiredInstanceCount"] == 1
    (image,) = variant["DeployedImages"]
    assert image["SpecifiedImage"] == XGB_IMAGE and "@sha256:" in image["ResolvedImage"]
    assert "ResolutionTime" in image

    with pytest.raises(ClientError) as duplicate:
        sm.create_endpoint(EndpointName=name, EndpointConfigName=config)
    assert duplicate.value.response["Error"]["Message"] == f'Cannot create already existing endpoint "{arn}".'
    listed = sm.list_endpoints(NameContains=name[-8:])["Endpoints"]
    assert [e["EndpointName"] for e in listed] == [name] and listed[0]["EndpointStatus"] == "InService"
    # botocore's own waiter works (one describe, already InService).
    sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 2})

    sm.delete_endpoint(EndpointName=name)
    # As on AWS the endpoint shows Deleting for a while; botocore's waiter sees it go.
    assert sm.describe_endpoint(EndpointName=name)["EndpointStatus"] == "Deleting"
    sm.get_waiter("endpoint_deleted").wait(EndpointName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 300})
    with pytest.raises(ClientError) as missing:
        sm.describe_endpoint(EndpointName=name)
    assert missing.value.response["Error"] == {
        "Code": "ValidationException",
        "Message": f'Could not find endpoint "{arn}".',
    }
    with pytest.raises(ClientError):
        runtime.invoke_endpoint(EndpointName=name, ContentType="text/csv", Body=ROW)
    for call in (
        lambda: sm.delete_endpoint(EndpointName=name),
        lambda: sm.update_endpoint(EndpointName=name, EndpointConfigName=config),
    ):
        with pytest.raises(ClientError) as again:
            call()
        assert again.value.response["Error"]["Message"] == f'Could not find endpoint "{arn}".'


def test_bad_requests(sm, s3):
    with pytest.raises(ClientError) as bad_name:
        sm.create_endpoint(EndpointName="bad_name", EndpointConfigName="x")
    assert "Member must satisfy regular expression pattern" in bad_name.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as no_config:
        sm.create_endpoint(EndpointName=unique("e"), EndpointConfigName="no-such-config")
    assert no_config.value.response["Error"]["Message"].startswith("Could not find endpoint configuration")


def test_missing_model_data_fails_creation_with_aws_reason(sm, s3):
    config = _config(sm, s3, missing=True)
    failed = deploy(sm, unique("failing"), config)
    assert failed["EndpointStatus"] == "Failed"
    assert failed["FailureReason"] == (
        f'Failed to download model data for container "container_1" from URL: "s3://{BUCKET}/absent/model.tar.gz". '
        "Please ensure that there is an object located at the URL and that the role passed to CreateModel has "
        "permissions to download the object."
    )
    with pytest.raises(ClientError) as update:
        sm.update_endpoint(EndpointName=failed["EndpointName"], EndpointConfigName=config)
    assert update.value.response["Error"]["Code"] == "ValidationException"
    sm.delete_endpoint(EndpointName=failed["EndpointName"])


def test_restart_restores_endpoints(tmp_path):
    data = tmp_path / "data"
    with EmulatorProcess(data, time_scale=0.005) as emu:
        kwargs = {"endpoint_url": emu.url, "region_name": "us-east-1"}
        sm, s3 = boto3.client("sagemaker", **kwargs), boto3.client("s3", **kwargs)
        config = _config(sm, s3)
        missing = _config(sm, s3, missing=True)
        second = _config(sm, s3)
        sm.create_endpoint(EndpointName="served", EndpointConfigName=config)
        sm.create_endpoint(EndpointName="updating", EndpointConfigName=config)
        wait_status(sm, "served", "InService")
        wait_status(sm, "updating", "InService")
        sm.update_endpoint(EndpointName="updating", EndpointConfigName=second)
        sm.create_endpoint(EndpointName="interrupted", EndpointConfigName=config)
        sm.create_endpoint(EndpointName="interrupted-bad", EndpointConfigName=missing)
        assert sm.describe_endpoint(EndpointName="interrupted")["EndpointStatus"] == "Creating"
    with EmulatorProcess(data, time_scale=0.0) as emu:
        kwargs = {"endpoint_url": emu.url, "region_name": "us-east-1"}
        sm, runtime = boto3.client("sagemaker", **kwargs), boto3.client("sagemaker-runtime", **kwargs)
        assert sm.describe_endpoint(EndpointName="served")["EndpointStatus"] == "InService"
        answer = runtime.invoke_endpoint(EndpointName="served", ContentType="text/csv", Body=ROW)
        assert float(answer["Body"].read()) > 0
        assert wait_status(sm, "interrupted", ("InService", "Failed"))["EndpointStatus"] == "InService"
        runtime.invoke_endpoint(EndpointName="interrupted", ContentType="text/csv", Body=ROW)
        bad = wait_status(sm, "interrupted-bad", ("InService", "Failed"))
        # The interrupted update starts over while the old configuration serves, then completes.
        runtime.invoke_endpoint(EndpointName="updating", ContentType="text/csv", Body=ROW)
        assert wait_status(sm, "updating", "InService")["EndpointConfigName"] == second
        assert bad["EndpointStatus"] == "Failed" and "Failed to download model data" in bad["FailureReason"]


@pytest.fixture
def airflow_home(tmp_path, monkeypatch, emulator):
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow"))
    monkeypatch.setenv("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    return tmp_path


def test_provider_endpoint_operator_and_sensor(airflow_home, sm, s3, runtime):
    from airflow.providers.amazon.aws.operators.sagemaker import SageMakerEndpointOperator
    from airflow.providers.amazon.aws.sensors.sagemaker import SageMakerEndpointSensor

    name = unique("provider")
    model = unique("provider-model")
    url = upload_xgboost(s3, BUCKET, f"{model}/model.tar.gz")
    config = {
        "Model": {
            "ModelName": model,
            "PrimaryContainer": {"Image": XGB_IMAGE, "ModelDataUrl": url},
            "ExecutionRoleArn": ROLE,
        },
        "EndpointConfig": {
            "EndpointConfigName": f"{name}-1",
            "ProductionVariants": [
                {
                    "VariantName": "AllTraffic",
                    "ModelName": model,
                    "InitialInstanceCount": 1,
                    "InstanceType": "ml.m5.large",
                }
            ],
        },
        "Endpoint": {"EndpointName": name, "EndpointConfigName": f"{name}-1"},
    }
    created = SageMakerEndpointOperator(task_id="deploy", config=config, check_interval=1).execute(context={})
    assert created["Endpoint"]["EndpointStatus"] == "InService"
    # The same operator again with a new config: "Cannot create already existing endpoint" -> update.
    config2 = {
        "EndpointConfig": {**config["EndpointConfig"], "EndpointConfigName": f"{name}-2"},
        "Endpoint": {"EndpointName": name, "EndpointConfigName": f"{name}-2"},
    }
    updated = SageMakerEndpointOperator(task_id="redeploy", config=config2, check_interval=1).execute(context={})
    assert updated["Endpoint"]["EndpointConfigName"] == f"{name}-2"
    assert updated["Endpoint"]["EndpointStatus"] == "InService"
    sensor = SageMakerEndpointSensor(task_id="wait", endpoint_name=name, poke_interval=1)
    assert sensor.poke(context={}) is True
    runtime.invoke_endpoint(EndpointName=name, ContentType="text/csv", Body=ROW)
