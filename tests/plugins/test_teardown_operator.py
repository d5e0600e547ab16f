"""SageMakerTeardownOperator: restore an endpoint to its previous config and delete what a run created,
against the emulator; running it twice is fine; nothing in use is deleted."""

from __future__ import annotations

from unittest import mock

import pytest
from airflow.exceptions import AirflowException

from sagemaker_fleet.operators.teardown import SageMakerTeardownOperator
from tests.plugins.endpoint_helpers import (
    config_request,
    deploy_direct,
    model_request,
    unique,
    upload_xgboost_model,
    wait_in_service,
)


def operator(**kwargs) -> SageMakerTeardownOperator:
    kwargs.setdefault("check_interval", 0.1)
    return SageMakerTeardownOperator(task_id="teardown", **kwargs)


def exists(sm, kind: str, name: str) -> bool:
    listing = {
        "endpoint": lambda: sm.list_endpoints(NameContains=name)["Endpoints"],
        "config": lambda: sm.list_endpoint_configs(NameContains=name)["EndpointConfigs"],
        "model": lambda: sm.list_models(NameContains=name)["Models"],
    }[kind]()
    return bool(listing)


def test_restores_the_previous_config_deletes_the_run_s_resources_and_is_idempotent(emulator, sm, s3):
    endpoint = unique("ep-restore")
    old_config, old_models = deploy_direct(sm, s3, endpoint, {"AllTraffic": 5})
    # What the failed run created and switched the endpoint to.
    new_model, new_config = unique("m-run"), unique("cfg-run")
    sm.create_model(**model_request(new_model, upload_xgboost_model(s3, f"models/{new_model}", 2)))
    sm.create_endpoint_config(**config_request(new_config, {"AllTraffic": new_model}))
    sm.update_endpoint(EndpointName=endpoint, EndpointConfigName=new_config)
    wait_in_service(sm, endpoint)

    # The caller also (wrongly) lists the old config and model: they are in use after the restore, so kept.
    teardown = dict(
        restore_endpoint={"endpoint_name": endpoint, "endpoint_config_name": old_config},
        endpoint_configs=[new_config, old_config],
        models=[new_model, old_models["AllTraffic"]],
    )
    first = operator(**teardown).execute(context={})
    assert first["restored"]["action"] == "update" and first["restored"]["ok"]
    assert first["restored"]["previous_endpoint_config_name"] == new_config
    assert first["deleted"] == {"endpoints": [], "endpoint_configs": [new_config], "models": [new_model]}
    assert first["kept_in_use"] == {"endpoint_configs": [old_config], "models": [old_models["AllTraffic"]]}
    described = sm.describe_endpoint(EndpointName=endpoint)
    assert described["EndpointStatus"] == "InService" and described["EndpointConfigName"] == old_config
    assert not exists(sm, "config", new_config) and not exists(sm, "model", new_model)

    second = operator(**teardown).execute(context={})
    assert second["restored"]["action"] == "none"
    assert second["deleted"] == {"endpoints": [], "endpoint_configs": [], "models": []}
    assert second["missing"] == {"endpoints": [], "endpoint_configs": [new_config], "models": [new_model]}
    sm.delete_endpoint(EndpointName=endpoint)


def test_deletes_a_temporary_endpoint_with_its_config_and_models_twice_without_error(emulator, sm, s3):
    endpoint = unique("ep-temp")
    config, models = deploy_direct(sm, s3, endpoint, {"Champion": 2, "Challenger": 3})
    names = sorted(models.values())
    args = dict(endpoints=[endpoint], endpoint_configs=[config], models=names)
    first = operator(**args).execute(context={})
    assert first["deleted"] == {"endpoints": [endpoint], "endpoint_configs": [config], "models": names}
    # DeleteEndpoint is asynchronous (Deleting for a while, as on AWS): wait for it to go.
    sm.get_waiter("endpoint_deleted").wait(EndpointName=endpoint, WaiterConfig={"Delay": 0.1, "MaxAttempts": 300})
    assert not exists(sm, "endpoint", endpoint) and not exists(sm, "config", config)
    second = operator(**args).execute(context={})
    assert second["missing"] == {"endpoints": [endpoint], "endpoint_configs": [config], "models": names}
    assert second["restored"] is None


def test_nothing_to_do_is_fine(emulator):
    result = operator(endpoints=None, endpoint_configs="", models=[]).execute(context={})
    assert result["deleted"] == {"endpoints": [], "endpoint_configs": [], "models": []}


# -- edge paths with mocks -----------------------------------------------------------------------------------
def test_defaults_to_all_done():
    assert operator().trigger_rule == "all_done"
    assert {"endpoints", "endpoint_configs", "models", "restore_endpoint"} <= set(
        SageMakerTeardownOperator.template_fields
    )


def test_incomplete_restore_request_is_refused_and_no_previous_config_means_no_restore(emulator):
    with pytest.raises(ValueError, match="endpoint_name and endpoint_config_name"):
        operator(restore_endpoint={"endpoint_config_name": "c"}).execute(context={})
    # A first deployment had no previous config: the rendered template says None.
    result = operator(restore_endpoint={"endpoint_name": "ep", "endpoint_config_name": "None"}).execute(context={})
    assert result["restored"] is None


def test_failed_restore_fails_the_task_after_the_safe_deletions():
    with mock.patch.object(SageMakerTeardownOperator, "hook", new_callable=mock.PropertyMock) as hook:
        fleet = hook.return_value
        fleet.describe_endpoint_or_none.return_value = {
            "EndpointStatus": "InService",
            "EndpointConfigName": "c-new",
            "FailureReason": "could not load c-old",
        }
        fleet.list_endpoints.return_value = []
        fleet.delete_model.return_value = True
        with pytest.raises(AirflowException, match="Could not restore endpoint ep"):
            operator(restore_endpoint={"endpoint_name": "ep", "endpoint_config_name": "c-old"}, models=["m-new"],
                     max_wait_seconds=0.3).execute(context={})  # fmt: skip
    fleet.get_conn.return_value.update_endpoint.assert_called_once_with(EndpointName="ep", EndpointConfigName="c-old")
    fleet.delete_model.assert_called_once_with("m-new")
