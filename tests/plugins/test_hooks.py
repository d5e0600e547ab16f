"""SageMakerFleetHook against the emulator: one connection for every client, deletes that report absence,
paginated listings, weights, runtime invocation with TargetVariant, MME listing and CloudWatch sums."""

from __future__ import annotations

import datetime as dt
import time
from unittest import mock

import pytest
from botocore.exceptions import ClientError

from sagemaker_fleet.hooks.sagemaker import SageMakerFleetHook, is_not_found, parse_s3_uri
from tests.emulator.serving_helpers import csv_row, housing_like, xgboost_archive
from tests.plugins.conftest import BUCKET, ROLE_ARN, training_config, unique, wait_for_job, xgboost_image


@pytest.fixture(scope="module")
def hook(emulator) -> SageMakerFleetHook:
    return SageMakerFleetHook(aws_conn_id="aws_default")


@pytest.fixture(scope="module")
def ab_endpoint(emulator, sm, s3):
    """An endpoint with two real XGBoost variants A and B (weights 1:1)."""
    name = unique("hook-ab")
    s3.put_object(Bucket=BUCKET, Key=f"{name}/model.tar.gz", Body=xgboost_archive(seed=1, rounds=5))
    sm.create_model(
        ModelName=name,
        PrimaryContainer={"Image": xgboost_image(), "ModelDataUrl": f"s3://{BUCKET}/{name}/model.tar.gz"},
        ExecutionRoleArn=ROLE_ARN,
    )
    sm.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {
                "VariantName": variant,
                "ModelName": name,
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
                "InitialVariantWeight": 1.0,
            }
            for variant in ("A", "B")
        ],
    )
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    deadline = time.monotonic() + 30
    while sm.describe_endpoint(EndpointName=name)["EndpointStatus"] != "InService":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return name


def test_every_client_uses_the_connections_endpoint_url(emulator, hook):
    assert hook.endpoint_url == emulator.url
    for client in (hook.get_conn(), hook.runtime_client, hook.s3_client, hook.logs_client, hook.cloudwatch_client):
        assert client.meta.endpoint_url == emulator.url and client.meta.region_name == "us-east-1"


def test_describe_or_none_and_stop_ignore_what_is_already_over(hook, sm, channels):
    assert hook.describe_training_job_or_none("no-such-job") is None
    name = unique("hook-stop")
    sm.create_training_job(**training_config(name, channels))
    wait_for_job(sm, name)
    hook.stop_training_job(name)  # Completed: nothing to stop, no error
    assert hook.describe_training_job_or_none(name)["TrainingJobStatus"] == "Completed"
    assert any("train-rmse" in line for line in hook.training_log_lines(name))
    with pytest.raises(ClientError):
        hook.stop_training_job("no-such-job")  # a wrong name is a bug, not "already over"


def test_deletes_report_whether_something_was_deleted(hook, sm, s3):
    name = unique("hook-del")
    s3.put_object(Bucket=BUCKET, Key=f"{name}/model.tar.gz", Body=xgboost_archive(rounds=2))
    sm.create_model(
        ModelName=name,
        PrimaryContainer={"Image": xgboost_image(), "ModelDataUrl": f"s3://{BUCKET}/{name}/model.tar.gz"},
        ExecutionRoleArn=ROLE_ARN,
    )
    sm.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}
        ],
    )
    assert hook.delete_endpoint_config(name) is True and hook.delete_endpoint_config(name) is False
    assert hook.delete_model(name) is True and hook.delete_model(name) is False
    assert hook.delete_endpoint(unique("never")) is False


def test_listings_are_paginated_and_filtered(hook, sm):
    prefix = unique("hook-list")
    for i in range(13):  # more than one page of the default page size
        sm.create_model(
            ModelName=f"{prefix}-{i:02d}",
            PrimaryContainer={"Image": xgboost_image(), "ModelDataUrl": f"s3://{BUCKET}/x/model.tar.gz"},
            ExecutionRoleArn=ROLE_ARN,
        )
    real = hook.get_conn().get_paginator
    calls = []

    def small_pages(operation):  # force 3 pages of 5 so the test proves every page is read
        paginator = real(operation)
        calls.append(operation)
        return mock.Mock(paginate=lambda **kw: paginator.paginate(**kw, PaginationConfig={"PageSize": 5}))

    with mock.patch.object(hook.get_conn(), "get_paginator", side_effect=small_pages):
        names = [m["ModelName"] for m in hook.list_models(name_contains=prefix)]
    assert sorted(names) == [f"{prefix}-{i:02d}" for i in range(13)] and calls == ["list_models"]
    assert hook.list_endpoint_configs(name_contains=unique("nothing")) == []
    assert isinstance(hook.list_endpoints(), list)


def test_weights_invoke_with_target_variant_and_metric_sums(hook, sm, ab_endpoint):
    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    hook.update_weights(ab_endpoint, {"A": "1", "B": 3})  # templated strings are cast
    weights = {
        v["VariantName"]: v["DesiredWeight"]
        for v in sm.describe_endpoint(EndpointName=ab_endpoint)["ProductionVariants"]
    }
    assert weights == {"A": 1.0, "B": 3.0}

    row = csv_row(housing_like(n=1, seed=3)[0][0])
    for _ in range(3):
        answer = hook.invoke_endpoint(ab_endpoint, row, target_variant="B")
        assert answer["invoked_variant"] == "B" and float(answer["body"].decode()) > 0
        assert answer["content_type"] and answer["latency_ms"] >= 0

    deadline = time.monotonic() + 10  # the emulator flushes metrics about once a second
    while True:
        total = hook.get_metric_sum(
            ab_endpoint, "B", "Invocations", start, dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)
        )
        if total >= 3 or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert total == 3
    assert hook.get_metric_sum(ab_endpoint, "A", "Invocations", start, dt.datetime.now(dt.UTC)) == 0.0


@pytest.mark.parametrize(
    ("weights", "message"),
    [({}, "at least one"), ({"A": -1, "B": 1}, ">= 0"), ({"A": 0, "B": 0}, "must be > 0")],
)
def test_bad_weights_are_refused_before_calling_aws(weights, message):
    hook = SageMakerFleetHook(aws_conn_id=None)
    with mock.patch.object(SageMakerFleetHook, "get_conn") as conn, pytest.raises(ValueError, match=message):
        hook.update_weights("ep", weights)
    conn.assert_not_called()


def test_list_mme_models_is_relative_to_the_prefix(hook, s3):
    root = unique("hook-mme")
    for key in ("Chicago_IL/Chicago_IL-20261123.tar.gz", "Boston_MA/Boston_MA-20261122.tar.gz", "README.txt"):
        s3.put_object(Bucket=BUCKET, Key=f"{root}/mme/{key}", Body=b"x")
    s3.put_object(Bucket=BUCKET, Key=f"{root}/mme-other/x.tar.gz", Body=b"x")
    expected = ["Boston_MA/Boston_MA-20261122.tar.gz", "Chicago_IL/Chicago_IL-20261123.tar.gz"]
    assert hook.list_mme_models(f"s3://{BUCKET}/{root}/mme") == expected
    assert hook.list_mme_models(f"s3://{BUCKET}/{root}/mme/") == expected
    with pytest.raises(ValueError, match="Not an S3 URI"):
        hook.list_mme_models("bucket/mme/")


def test_metric_statistics_other_than_sum_are_combined_correctly():
    hook = SageMakerFleetHook(aws_conn_id=None)
    points = [
        {"Average": 10.0, "Maximum": 30.0, "SampleCount": 1.0},
        {"Average": 20.0, "Maximum": 25.0, "SampleCount": 3.0},
    ]
    cloudwatch = mock.MagicMock()
    cloudwatch.get_metric_statistics.return_value = {"Datapoints": points}
    now = dt.datetime.now(dt.UTC)
    with mock.patch.object(SageMakerFleetHook, "cloudwatch_client", cloudwatch):
        assert hook.get_metric_sum("ep", "A", "ModelLatency", now - dt.timedelta(hours=1), now, "Average") == 17.5
        assert hook.get_metric_sum("ep", "A", "ModelLatency", now - dt.timedelta(hours=1), now, "Maximum") == 30.0
    kwargs = cloudwatch.get_metric_statistics.call_args.kwargs
    assert kwargs["Period"] % 60 == 0 and kwargs["Period"] >= 3600 and kwargs["Namespace"] == "AWS/SageMaker"


def test_not_found_recognition_and_uri_parsing():
    def error(code, message):
        return ClientError({"Error": {"Code": code, "Message": message}}, "Op")

    assert is_not_found(error("ValidationException", 'Could not find model "arn:..."'))
    assert is_not_found(error("ValidationException", "Requested resource not found."))
    assert not is_not_found(error("ValidationException", "Member must satisfy regular expression pattern"))
    assert not is_not_found(error("ThrottlingException", "Rate exceeded"))
    assert parse_s3_uri("s3://b/a/b.tar.gz") == ("b", "a/b.tar.gz")
