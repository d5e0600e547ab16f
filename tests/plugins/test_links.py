"""Extra links: the provider's BaseAwsLink underneath (partition-aware console hosts), the emulator's JSON
description when the connection has an endpoint_url, at the public emulator URL when one is set."""

from __future__ import annotations

import json
import urllib.request
from unittest import mock

import pytest
from airflow.providers.amazon.aws.links.base_aws import BaseAwsLink

from sagemaker_fleet.links.sagemaker import (
    ALL_LINKS,
    MMEArtifactLink,
    MMERegistryRecordLink,
    SageMakerEndpointLink,
    SageMakerTrainingJobLink,
)
from sagemaker_fleet.operators.mme import MMEPromoteModelOperator, MMERegisterModelOperator
from sagemaker_fleet.operators.training import SageMakerRetrySafeTrainingOperator
from tests.plugins.conftest import BUCKET, training_config, unique


def aws(partition: str, region: str, **fields) -> dict:
    return {"region_name": region, "aws_domain": BaseAwsLink.get_aws_domain(partition), **fields}


@pytest.mark.parametrize(
    ("partition", "region", "host"),
    [
        ("aws", "eu-west-1", "console.aws.amazon.com"),
        ("aws-cn", "cn-north-1", "console.amazonaws.cn"),
        ("aws-us-gov", "us-gov-west-1", "console.amazonaws-us-gov.com"),
    ],
)
def test_console_links_follow_the_partition(partition: str, region: str, host: str) -> None:
    job = SageMakerTrainingJobLink().format_link(**aws(partition, region, name="hmn-chicago-il-20261123"))
    assert job == f"https://{host}/sagemaker/home?region={region}#/jobs/hmn-chicago-il-20261123"
    endpoint = SageMakerEndpointLink().format_link(**aws(partition, region, name="housing-mme"))
    assert endpoint == f"https://{host}/sagemaker/home?region={region}#/endpoints/housing-mme"
    artifact = MMEArtifactLink().format_link(**aws(partition, region, bucket="b", key="mme/Chicago_IL/x 1.tar.gz"))
    assert artifact == f"https://{host}/s3/object/b?region={region}&prefix=mme/Chicago_IL/x%201.tar.gz"


def test_emulator_links_and_empty_links() -> None:
    emulator = {"emulator_url": "http://localhost:4566", "region_name": "us-east-1", "aws_domain": "aws.amazon.com"}
    assert (
        SageMakerEndpointLink().format_link(**emulator, name="housing-mme")
        == "http://localhost:4566/_emulator/resources/endpoint/housing-mme"
    )
    presigned = "http://localhost:4566/b/registry/Chicago_IL.json?X-Amz-Signature=abc"
    assert MMERegistryRecordLink().format_link(**emulator, bucket="b", key="registry/Chicago_IL.json") == ""
    assert (
        MMERegistryRecordLink().format_link(
            **emulator, bucket="b", key="registry/Chicago_IL.json", object_url=presigned
        )
        == presigned
    )
    assert SageMakerTrainingJobLink().format_link(**emulator) == ""
    # A partition BaseAwsLink does not know gets no guessed console host.
    assert SageMakerTrainingJobLink().format_link(region_name="x", aws_domain=None, name="job") == ""


def test_get_link_reads_what_execute_persisted() -> None:
    conf = aws("aws", "us-east-1", name="job-1")
    with mock.patch("airflow.providers.amazon.aws.links.base_aws.XCom.get_value", return_value=conf) as get_value:
        url = SageMakerTrainingJobLink().get_link(mock.MagicMock(), ti_key=mock.sentinel.ti_key)
    assert url.endswith("#/jobs/job-1")
    get_value.assert_called_once_with(key="sagemaker_fleet_training_job", ti_key=mock.sentinel.ti_key)
    with mock.patch(
        "airflow.providers.amazon.aws.links.base_aws.XCom.get_value", side_effect=RuntimeError("no api server")
    ):
        assert SageMakerTrainingJobLink().get_link(mock.MagicMock(), ti_key=mock.sentinel.ti_key) == ""


def pushed(ti: mock.MagicMock, key: str) -> dict:
    (call,) = [c for c in ti.xcom_push.call_args_list if c.kwargs["key"] == key]
    return call.kwargs["value"]


def test_the_persisted_emulator_link_opens_the_jobs_description(emulator, channels) -> None:
    name = unique("linked")
    ti = mock.MagicMock()
    SageMakerRetrySafeTrainingOperator(
        task_id="train", config=training_config(name, channels), deferrable=False, print_log=False
    ).execute(context={"ti": ti})
    url = SageMakerTrainingJobLink().format_link(**pushed(ti, "sagemaker_fleet_training_job"))
    assert url == f"{emulator.url}/_emulator/resources/training-job/{name}"
    with urllib.request.urlopen(url, timeout=5) as response:
        assert json.loads(response.read())["TrainingJobName"] == name


def test_the_public_emulator_url_is_used_for_links_only(emulator, channels, monkeypatch) -> None:
    monkeypatch.setenv("AIRFLOW__SAGEMAKER_FLEET__PUBLIC_EMULATOR_URL", "http://localhost:4566/")
    name = unique("linked-public")
    ti = mock.MagicMock()
    # The job itself still runs through the connection's endpoint_url (the emulator on its free port).
    result = SageMakerRetrySafeTrainingOperator(
        task_id="train", config=training_config(name, channels), deferrable=False, print_log=False
    ).execute(context={"ti": ti})
    assert result["status"] == "Completed"
    url = SageMakerTrainingJobLink().format_link(**pushed(ti, "sagemaker_fleet_training_job"))
    assert url == f"http://localhost:4566/_emulator/resources/training-job/{name}"


def test_mme_links_open_the_artifact_and_the_record(emulator, s3, channels) -> None:  # channels: the bucket
    location, version = "Chicago_IL", "20261123"
    source = f"links/{unique('artifact')}/model.tar.gz"
    s3.put_object(Bucket=BUCKET, Key=source, Body=b"artifact bytes")
    prefix = unique("links")
    ti = mock.MagicMock()
    MMERegisterModelOperator(
        task_id="register", model_artifact=f"s3://{BUCKET}/{source}", mme_prefix=f"s3://{BUCKET}/{prefix}/mme/",
        registry_prefix=f"s3://{BUCKET}/{prefix}/registry/", location=location, version=version,
    ).execute(context={"ti": ti})  # fmt: skip
    artifact = MMEArtifactLink().format_link(**pushed(ti, "sagemaker_fleet_mme_artifact"))
    assert artifact.startswith(f"{emulator.url}/{BUCKET}/{prefix}/mme/{location}/{location}-{version}.tar.gz?")
    with urllib.request.urlopen(artifact, timeout=5) as response:
        assert response.read() == b"artifact bytes"

    ti = mock.MagicMock()
    MMEPromoteModelOperator(
        task_id="promote", mme_prefix=f"s3://{BUCKET}/{prefix}/mme/", registry_prefix=f"s3://{BUCKET}/{prefix}/registry/",
        location=location, version=version,
    ).execute(context={"ti": ti})  # fmt: skip
    record = MMERegistryRecordLink().format_link(**pushed(ti, "sagemaker_fleet_mme_registry_record"))
    with urllib.request.urlopen(record, timeout=5) as response:
        assert json.loads(response.read())["live_version"] == version


def test_plugin_registers_every_link_once() -> None:
    from sagemaker_fleet_plugin import SageMakerFleetPlugin

    assert SageMakerFleetPlugin.name == "sagemaker_fleet"
    assert [type(link) for link in SageMakerFleetPlugin.operator_extra_links] == list(ALL_LINKS)
    assert all(issubclass(link, BaseAwsLink) for link in ALL_LINKS)
    assert SageMakerRetrySafeTrainingOperator.operator_extra_links[0].name == "SageMaker Training Job"
    assert {type(link) for link in MMERegisterModelOperator.operator_extra_links} == {
        MMEArtifactLink,
        MMERegistryRecordLink,
    }


def test_report_link_opens_the_s3_console_or_the_emulators_page() -> None:
    from sagemaker_fleet.links.sagemaker import S3ReportLink

    prefix = "reports/housing_mme_nightly/date=2026-11-23/config=abc/"
    console = S3ReportLink().format_link(**aws("aws", "eu-west-1", bucket="b", prefix=prefix))
    assert console == (
        "https://console.aws.amazon.com/s3/buckets/b?region=eu-west-1"
        "&prefix=reports%2Fhousing_mme_nightly%2Fdate%3D2026-11-23%2Fconfig%3Dabc%2F&showversions=false"
    )
    local = {"emulator_url": "http://localhost:4566", "region_name": "us-east-1", "aws_domain": "aws.amazon.com"}
    assert S3ReportLink().format_link(**local, bucket="b", prefix=prefix) == (
        "http://localhost:4566/_emulator/s3/b/reports/housing_mme_nightly/date%3D2026-11-23/config%3Dabc/"
    )
    assert S3ReportLink().format_link(**local) == ""


def test_report_link_persists_from_a_taskflow_task(emulator) -> None:
    from sagemaker_fleet.hooks.sagemaker import SageMakerFleetHook
    from sagemaker_fleet.links.sagemaker import S3ReportLink

    ti, task = mock.MagicMock(), mock.MagicMock()
    S3ReportLink.persist_report(
        {"ti": ti, "task": task}, SageMakerFleetHook(aws_conn_id="aws_default"), bucket="b", prefix="reports/x/"
    )
    url = S3ReportLink().format_link(**pushed(ti, "sagemaker_fleet_report"))
    assert url == f"{emulator.url}/_emulator/s3/b/reports/x/"
