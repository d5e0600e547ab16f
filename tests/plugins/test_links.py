"""Extra links: AWS console on AWS, the emulator's JSON description when the connection has an endpoint_url."""

from __future__ import annotations

import json
import urllib.request
from unittest import mock

from sagemaker_fleet.links.sagemaker import SageMakerEndpointLink, SageMakerTrainingJobLink, resource_url
from sagemaker_fleet.operators.training import SageMakerRetrySafeTrainingOperator
from tests.plugins.conftest import training_config, unique


def test_console_urls_on_aws():
    assert (
        SageMakerTrainingJobLink().format_link({"name": "hmn-chicago-il-20261123", "region_name": "eu-west-1"})
        == "https://console.aws.amazon.com/sagemaker/home?region=eu-west-1#/jobs/hmn-chicago-il-20261123"
    )
    assert (
        SageMakerEndpointLink().format_link({"name": "housing-mme", "region_name": "us-east-1", "endpoint_url": None})
        == "https://console.aws.amazon.com/sagemaker/home?region=us-east-1#/endpoints/housing-mme"
    )


def test_emulator_urls_and_empty_when_nothing_was_persisted():
    conf = {"name": "housing-mme", "region_name": "us-east-1", "endpoint_url": "http://127.0.0.1:4566/"}
    assert SageMakerEndpointLink().format_link(conf) == "http://127.0.0.1:4566/_emulator/resources/endpoint/housing-mme"
    assert SageMakerTrainingJobLink().format_link(None) == ""
    assert resource_url("training-job", "", region_name="us-east-1", endpoint_url=None) == ""


def test_get_link_reads_what_execute_persisted():
    conf = {"name": "job-1", "region_name": "us-east-1", "endpoint_url": None}
    with mock.patch("sagemaker_fleet.links.sagemaker.XCom.get_value", return_value=conf) as get_value:
        url = SageMakerTrainingJobLink().get_link(mock.MagicMock(), ti_key=mock.sentinel.ti_key)
    assert url.endswith("#/jobs/job-1")
    get_value.assert_called_once_with(key="sagemaker_fleet_training_job", ti_key=mock.sentinel.ti_key)
    with mock.patch("sagemaker_fleet.links.sagemaker.XCom.get_value", side_effect=RuntimeError("no api server")):
        assert SageMakerTrainingJobLink().get_link(mock.MagicMock(), ti_key=mock.sentinel.ti_key) == ""


def test_the_persisted_emulator_link_opens_the_jobs_description(emulator, channels):
    name = unique("linked")
    ti = mock.MagicMock()
    SageMakerRetrySafeTrainingOperator(
        task_id="train", config=training_config(name, channels), deferrable=False, print_log=False
    ).execute(context={"ti": ti})
    (call,) = [c for c in ti.xcom_push.call_args_list if c.kwargs["key"] == "sagemaker_fleet_training_job"]
    url = SageMakerTrainingJobLink().format_link(call.kwargs["value"])
    assert url == f"{emulator.url}/_emulator/resources/training-job/{name}"
    with urllib.request.urlopen(url, timeout=5) as response:
        assert json.loads(response.read())["TrainingJobName"] == name


def test_plugin_registers_both_links():
    from sagemaker_fleet_plugin import SageMakerFleetPlugin

    assert SageMakerFleetPlugin.name == "sagemaker_fleet"
    assert {type(link) for link in SageMakerFleetPlugin.operator_extra_links} == {
        SageMakerTrainingJobLink,
        SageMakerEndpointLink,
    }
    assert SageMakerRetrySafeTrainingOperator.operator_extra_links[0].name == "SageMaker Training Job"
