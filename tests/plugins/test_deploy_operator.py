"""SageMakerDeployEndpointOperator: real endpoints in the emulator (create, in-place update, no-op retry,
a failed update that SageMaker rolls back), then edge paths with mocks."""

from __future__ import annotations

import asyncio
import json
from unittest import mock

import pytest
from airflow.exceptions import AirflowException
from airflow.sdk.exceptions import TaskDeferred

from sagemaker_fleet.operators.deploy import (
    SUPERSEDES_TAG,
    SageMakerDeployEndpointOperator,
    SageMakerProbedDeployEndpointOperator,
    cast_numbers,
    definition_differences,
)
from sagemaker_fleet.triggers.endpoint import EndpointStateTrigger
from tests.conftest import inject_fault
from tests.plugins.endpoint_helpers import config_request, deploy_direct, model_request, unique, upload_xgboost_model


def operator(endpoint: str, config: dict, models: list[dict] | None = None, **kwargs):
    kwargs.setdefault("check_interval", 0.1)
    kwargs.setdefault("deferrable", False)
    return SageMakerDeployEndpointOperator(
        task_id="deploy", endpoint_name=endpoint, endpoint_config=config, models=models, **kwargs
    )


def run_trigger(trigger: EndpointStateTrigger) -> dict:
    async def first_event():
        async for event in trigger.run():
            return event.payload

    return asyncio.run(asyncio.wait_for(first_event(), timeout=60))


@pytest.fixture(scope="module")
def artifacts(emulator, s3) -> dict[str, str]:
    return {
        "good": upload_xgboost_model(s3, "deploy/good", 25),
        "weak": upload_xgboost_model(s3, "deploy/weak", 1),
    }


def invoke(emulator, endpoint: str) -> tuple[float, str]:
    import boto3

    runtime = boto3.client("sagemaker-runtime", endpoint_url=emulator.url, region_name="us-east-1")
    answer = runtime.invoke_endpoint(EndpointName=endpoint, Body=b"0.5,0.5,0.5", ContentType="text/csv")
    return float(answer["Body"].read().decode().split(",")[0]), answer["InvokedProductionVariant"]


# -- against the emulator ------------------------------------------------------------------------------------
def test_create_update_in_place_and_noop_retry(emulator, sm, artifacts):
    endpoint = unique("ep-deploy")
    m1, m2 = unique("m-champ"), unique("m-chal")
    c1, c2 = unique("cfg-one"), unique("cfg-two")

    # Numbers as Jinja renders them: strings.
    config1 = config_request(c1, {"Champion": m1})
    config1["ProductionVariants"][0].update(InitialInstanceCount="1", InitialVariantWeight="1.0")
    created = operator(endpoint, config1, [model_request(m1, artifacts["good"])]).execute(context={})
    assert created == {
        "endpoint_name": endpoint,
        "endpoint_config_name": c1,
        "previous_endpoint_config_name": None,
        "operation": "create",
        "deleted_endpoint_configs": [],
    }
    assert sm.describe_endpoint_config(EndpointConfigName=c1)["ProductionVariants"][0]["InitialInstanceCount"] == 1
    assert invoke(emulator, endpoint)[1] == "Champion"

    # Second deploy: a two-variant config updates the same endpoint in place and cleans up the old config.
    config2 = config_request(c2, {"Champion": m1, "Challenger": m2}, {"Champion": 1, "Challenger": 1})
    models2 = [model_request(m1, artifacts["good"]), model_request(m2, artifacts["weak"])]
    update = operator(endpoint, config2, models2, delete_superseded_configs=True)
    updated = update.execute(context={})
    assert updated["operation"] == "update" and updated["previous_endpoint_config_name"] == c1
    assert updated["deleted_endpoint_configs"] == [c1]
    described = sm.describe_endpoint(EndpointName=endpoint)
    assert described["EndpointStatus"] == "InService" and described["EndpointConfigName"] == c2
    assert {v["VariantName"] for v in described["ProductionVariants"]} == {"Champion", "Challenger"}
    assert not sm.list_endpoint_configs(NameContains=c1)["EndpointConfigs"]

    # A retry of the successful task: reuses model and config, deploys nothing, still knows what it replaced.
    retried = operator(endpoint, config2, models2, delete_superseded_configs=True).execute(context={})
    assert retried["operation"] == "noop" and retried["previous_endpoint_config_name"] == c1
    assert sm.describe_endpoint(EndpointName=endpoint)["LastModifiedTime"] == described["LastModifiedTime"]
    assert json.loads(json.dumps(retried)) == retried
    sm.delete_endpoint(EndpointName=endpoint)


def test_probed_deploy_counts_no_failed_request_during_a_blue_green_update(emulator, sm, artifacts):
    endpoint = unique("ep-probed")
    m1, m2 = unique("m-a"), unique("m-b")
    c1, c2 = unique("cfg-a"), unique("cfg-b")
    operator(endpoint, config_request(c1, {"AllTraffic": m1}), [model_request(m1, artifacts["good"])]).execute(
        context={}
    )
    probed = SageMakerProbedDeployEndpointOperator(
        task_id="promote",
        endpoint_name=endpoint,
        endpoint_config=config_request(c2, {"AllTraffic": m2}),
        models=[model_request(m2, artifacts["weak"])],
        probe_body="0.5,0.5,0.5",
        check_interval=0.1,
    )
    result = probed.execute(context={})
    assert result["endpoint_config_name"] == c2 and result["operation"] == "update"
    probe = result["probe"]
    assert probe["failed"] == 0 and probe["requests"] >= 10, probe
    assert sm.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"] == c2
    with pytest.raises(ValueError, match="probe_body"):
        SageMakerProbedDeployEndpointOperator(task_id="p", endpoint_name="e", endpoint_config={}, probe_body="")
    sm.delete_endpoint(EndpointName=endpoint)


def test_injected_deployment_failure_fails_with_the_rollback_reason_and_old_config_keeps_serving(
    emulator, sm, artifacts, clear_faults
):
    endpoint = unique("ep-rollback")
    m1, m2 = unique("m-old"), unique("m-new")
    c1, c2 = unique("cfg-old"), unique("cfg-new")
    operator(endpoint, config_request(c1, {"AllTraffic": m1}), [model_request(m1, artifacts["good"])]).execute({})
    inject_fault(emulator, {"type": "deployment_failure", "endpoint_name": endpoint, "count": 1})

    failing = operator(endpoint, config_request(c2, {"AllTraffic": m2}), [model_request(m2, artifacts["weak"])])
    with pytest.raises(AirflowException, match="rolled back") as raised:
        failing.execute(context={})
    described = sm.describe_endpoint(EndpointName=endpoint)
    assert described["EndpointStatus"] == "InService" and described["EndpointConfigName"] == c1
    assert described["FailureReason"] and described["FailureReason"] in str(raised.value)
    assert invoke(emulator, endpoint)[1] == "AllTraffic"  # the old config still answers
    sm.delete_endpoint(EndpointName=endpoint)


def test_deferrable_deploy_defers_and_its_trigger_really_completes(emulator, sm, artifacts):
    endpoint = unique("ep-defer")
    m1, c1 = unique("m-defer"), unique("cfg-defer")
    op = operator(endpoint, config_request(c1, {"AllTraffic": m1}), [model_request(m1, artifacts["good"])],
                  deferrable=True)  # fmt: skip
    # The emulator may load the model before the first describe; make that describe see "still creating".
    with (
        mock.patch("sagemaker_fleet.operators.deploy.endpoint_outcome", return_value=None),
        pytest.raises(TaskDeferred) as deferred,
    ):
        op.execute(context={})
    trigger = deferred.value.trigger
    assert isinstance(trigger, EndpointStateTrigger)
    assert trigger.expected_config_name == c1 and trigger.endpoint_name == endpoint
    path, kwargs = trigger.serialize()
    assert path == "sagemaker_fleet.triggers.endpoint.EndpointStateTrigger"
    assert EndpointStateTrigger(**kwargs).serialize() == (path, kwargs)

    event = run_trigger(EndpointStateTrigger(**kwargs))
    assert event["status"] == "success" and event["endpoint_config_name"] == c1
    result = op.execute_complete({}, event, **deferred.value.kwargs)
    assert result["operation"] == "create" and result["endpoint_config_name"] == c1
    # dag.test() resumes with the event only (no defer kwargs): the result is rebuilt and still verified.
    rebuilt = op.execute_complete({}, event)
    assert rebuilt["endpoint_config_name"] == c1 and rebuilt["endpoint_name"] == endpoint
    sm.delete_endpoint(EndpointName=endpoint)


def test_existing_model_with_a_different_definition_is_an_error_not_reused(emulator, sm, artifacts):
    endpoint = unique("ep-clash")
    model, config = unique("m-clash"), unique("cfg-clash")
    sm.create_model(**model_request(model, artifacts["good"]))
    clash = operator(endpoint, config_request(config, {"AllTraffic": model}), [model_request(model, artifacts["weak"])])
    with pytest.raises(AirflowException, match="different definition.*ModelDataUrl"):
        clash.execute(context={})
    assert not sm.list_endpoint_configs(NameContains=config)["EndpointConfigs"]
    assert not sm.list_endpoints(NameContains=endpoint)["Endpoints"]


# -- edge paths with mocks -----------------------------------------------------------------------------------
def test_cast_numbers_casts_rendered_strings_and_rejects_garbage():
    config = {"ProductionVariants": [{"InitialInstanceCount": "2", "InitialVariantWeight": "0.25", "VariantName": "A"}]}
    assert cast_numbers(config) == {
        "ProductionVariants": [{"InitialInstanceCount": 2, "InitialVariantWeight": 0.25, "VariantName": "A"}]
    }
    with pytest.raises(ValueError, match="InitialInstanceCount"):
        cast_numbers({"InitialInstanceCount": "1.5"})
    with pytest.raises(ValueError, match="InitialVariantWeight"):
        cast_numbers({"InitialVariantWeight": "lots"})


def test_cast_numbers_leaves_tag_values_as_strings():
    request = {
        "EndpointConfigName": "c",
        "Tags": [{"Key": "version", "Value": "20261123"}],
        "DeploymentConfig": {
            "BlueGreenUpdatePolicy": {
                "TrafficRoutingConfiguration": {
                    "Type": "CANARY",
                    "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": "10"},
                }
            }
        },
    }
    cast = cast_numbers(request)
    assert cast["Tags"] == [{"Key": "version", "Value": "20261123"}]
    assert cast["DeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["CanarySize"]["Value"] == 10


def test_definition_differences_ignores_describe_extras_and_tags():
    requested = {"ModelName": "m", "PrimaryContainer": {"Image": "i", "ModelDataUrl": "s3://b/k"}, "Tags": [1]}
    existing = {"ModelName": "m", "ModelArn": "arn", "PrimaryContainer": {"Image": "i", "ModelDataUrl": "s3://b/k",
                                                                        "Mode": "SingleModel"}}  # fmt: skip
    assert definition_differences(requested, existing) == []
    existing["PrimaryContainer"]["ModelDataUrl"] = "s3://b/other"
    assert definition_differences(requested, existing) == [
        "PrimaryContainer.ModelDataUrl: 's3://b/other' != 's3://b/k'"
    ]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"EndpointConfigName": "bad_name", "ProductionVariants": [{"VariantName": "A", "ModelName": "m"}]},
         "not a valid SageMaker name"),
        ({"EndpointConfigName": "c", "ProductionVariants": []}, "non-empty ProductionVariants"),
        ({"EndpointConfigName": "c", "ProductionVariants": [
            {"VariantName": "A", "ModelName": "m", "InitialVariantWeight": 0},
            {"VariantName": "B", "ModelName": "m", "InitialVariantWeight": "0"}]}, "all weights are zero"),
    ],
)  # fmt: skip
def test_bad_requests_fail_before_anything_is_created(config, message):
    op = operator("ep", config)
    with (
        mock.patch.object(SageMakerDeployEndpointOperator, "hook", new_callable=mock.PropertyMock) as hook,
        pytest.raises(ValueError, match=message),
    ):
        op.execute(context={})
    hook.return_value.get_conn.return_value.create_model.assert_not_called()
    hook.return_value.get_conn.return_value.create_endpoint_config.assert_not_called()


def test_failed_endpoint_is_reported_not_updated():
    op = operator("ep", config_request("c2", {"A": "m"}))
    with mock.patch.object(SageMakerDeployEndpointOperator, "hook", new_callable=mock.PropertyMock) as hook:
        conn = hook.return_value.get_conn.return_value
        conn.describe_model.return_value = {"ModelName": "m"}
        hook.return_value.describe_endpoint_or_none.return_value = {
            "EndpointStatus": "Failed",
            "FailureReason": "image pull failed",
        }
        with pytest.raises(AirflowException, match="Failed \\(image pull failed\\).*Delete it"):
            op.execute(context={})
    conn.update_endpoint.assert_not_called()


def test_retry_while_its_own_update_is_in_progress_reattaches_instead_of_updating_again():
    op = operator("ep", config_request("c2", {"A": "m"}), deferrable=True)
    updating = {
        "EndpointStatus": "Updating",
        "EndpointConfigName": "c1",
        "PendingDeploymentSummary": {"EndpointConfigName": "c2"},
    }
    with mock.patch.object(SageMakerDeployEndpointOperator, "hook", new_callable=mock.PropertyMock) as hook:
        conn = hook.return_value.get_conn.return_value
        conn.describe_model.return_value = {"ModelName": "m"}
        hook.return_value.describe_endpoint_or_none.return_value = updating
        with pytest.raises(TaskDeferred) as deferred:
            op.execute(context={})
    conn.update_endpoint.assert_not_called()
    conn.create_endpoint_config.assert_not_called()
    assert deferred.value.kwargs["result"]["previous_endpoint_config_name"] == "c1"
    assert deferred.value.kwargs["result"]["operation"] == "update"


def test_execute_complete_fails_on_a_failed_event_and_on_an_unverified_endpoint():
    op = operator("ep", config_request("c2", {"A": "m"}))
    result = {"endpoint_config_name": "c2", "previous_endpoint_config_name": "c1", "operation": "update"}
    with pytest.raises(AirflowException, match="UpdateRollbackFailed"):
        op.execute_complete({}, {"status": "failed", "message": "Endpoint ep is UpdateRollbackFailed"}, result)
    with mock.patch.object(SageMakerDeployEndpointOperator, "hook", new_callable=mock.PropertyMock) as hook:
        hook.return_value.describe_endpoint_or_none.return_value = {
            "EndpointStatus": "InService",
            "EndpointConfigName": "c1",
        }
        with pytest.raises(AirflowException, match="not verified.*not on the requested c2"):
            op.execute_complete({}, {"status": "success"}, result)


def test_template_fields_and_supersedes_tag():
    assert {"endpoint_name", "endpoint_config", "models", "deployment_config"} <= set(
        SageMakerDeployEndpointOperator.template_fields
    )
    assert SageMakerDeployEndpointOperator.template_fields_renderers["endpoint_config"] == "json"
    assert SUPERSEDES_TAG.startswith("sagemaker-fleet")
    with pytest.raises(ValueError, match="max_wait_seconds"):
        operator("ep", {}, max_wait_seconds=0)


# -- deployment guardrails and tags ---------------------------------------------------------------------------
def _run_context(run_id: str = "manual__2026-11-23T10:00:00+00:00") -> dict:
    from types import SimpleNamespace

    return {"dag_run": SimpleNamespace(dag_id="housing_ab_rollout", run_id=run_id), "run_id": run_id}


def _tags(sm, arn: str) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=arn)["Tags"]}


def test_blue_green_update_creates_rollback_alarms_and_tags_what_it_creates(emulator, sm, s3):
    import boto3

    from sagemaker_fleet.utils.deployment import blue_green_deployment_config

    endpoint = unique("ep-bg")
    deploy_direct(sm, s3, endpoint, {"AllTraffic": 3})
    model = unique("m-bg")
    new = config_request(unique("cfg-bg"), {"AllTraffic": model})
    result = operator(
        endpoint, new, [model_request(model, upload_xgboost_model(s3, f"models/{model}", 6))],
        deployment_config=blue_green_deployment_config(traffic="LINEAR", step_percent=50, wait_seconds=30),
        rollback_on_5xx_errors=1, tags={"location": "Chicago_IL"},
    ).execute(context=_run_context())  # fmt: skip
    assert result["operation"] == "update"
    described = sm.describe_endpoint(EndpointName=endpoint)
    assert described["EndpointConfigName"] == new["EndpointConfigName"]
    deployment = described["LastDeploymentConfig"]
    assert deployment["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["Type"] == "LINEAR"
    alarm = f"sagemaker-fleet-{endpoint}-AllTraffic-5xx"
    assert deployment["AutoRollbackConfiguration"]["Alarms"] == [{"AlarmName": alarm}]
    cloudwatch = boto3.client("cloudwatch", endpoint_url=emulator.url, region_name="us-east-1")
    (described_alarm,) = cloudwatch.describe_alarms(AlarmNames=[alarm])["MetricAlarms"]
    assert described_alarm["MetricName"] == "Invocation5XXErrors" and described_alarm["Threshold"] == 1
    expected = {"airflow:dag_id": "housing_ab_rollout", "airflow:run_id": "manual__2026-11-23T10:00:00+00:00",
                "location": "Chicago_IL"}  # fmt: skip
    config_arn = sm.describe_endpoint_config(EndpointConfigName=new["EndpointConfigName"])["EndpointConfigArn"]
    assert expected.items() <= _tags(sm, config_arn).items()
    assert expected.items() <= _tags(sm, sm.describe_model(ModelName=model)["ModelArn"]).items()
    sm.delete_endpoint(EndpointName=endpoint)


def test_an_alarm_during_the_bake_rolls_back_and_the_task_fails(emulator, sm, s3):
    import boto3

    from sagemaker_fleet.utils.deployment import blue_green_deployment_config

    endpoint = unique("ep-bg-alarm")
    old_config, models = deploy_direct(sm, s3, endpoint, {"AllTraffic": 3})
    cloudwatch = boto3.client("cloudwatch", endpoint_url=emulator.url, region_name="us-east-1")
    alarm = unique("errors-already-firing")
    cloudwatch.put_metric_alarm(
        AlarmName=alarm, Namespace="AWS/SageMaker", MetricName="Invocation5XXErrors", Statistic="Sum", Period=60,
        EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanOrEqualToThreshold",
    )  # fmt: skip
    cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="test")
    new = config_request(unique("cfg-bg-rolled"), models)
    with pytest.raises(AirflowException, match="not on the requested .*rolled back"):
        operator(
            endpoint, new, deployment_config=blue_green_deployment_config(traffic="CANARY", step_percent=10,
                                                                          wait_seconds=30, alarms=[alarm]),
        ).execute(context=_run_context())  # fmt: skip
    assert sm.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"] == old_config
    sm.delete_endpoint(EndpointName=endpoint)


def test_a_shared_model_keeps_the_tags_of_the_run_that_created_it(emulator, sm, s3):
    endpoint = unique("ep-shared")
    model = unique("m-shared")
    models = [model_request(model, upload_xgboost_model(s3, f"models/{model}", 3))]
    operator(endpoint, config_request(unique("cfg-1"), {"AllTraffic": model}), models).execute(
        context=_run_context("scheduled__first")
    )
    operator(endpoint, config_request(unique("cfg-2"), {"AllTraffic": model}), models).execute(
        context=_run_context("scheduled__second")
    )
    model_arn = sm.describe_model(ModelName=model)["ModelArn"]
    assert _tags(sm, model_arn)["airflow:run_id"] == "scheduled__first"
    endpoint_arn = sm.describe_endpoint(EndpointName=endpoint)["EndpointArn"]
    assert _tags(sm, endpoint_arn)["airflow:run_id"] == "scheduled__first"
    sm.delete_endpoint(EndpointName=endpoint)


def test_rollback_alarms_need_a_blue_green_policy():
    op = operator("ep", config_request("c2", {"A": "m"}), rollback_on_5xx_errors=1, deployment_config={})
    with pytest.raises(ValueError, match="BlueGreenUpdatePolicy"):
        op._with_rollback_alarms({"RollingUpdatePolicy": {}}, config_request("c2", {"A": "m"}), [])
