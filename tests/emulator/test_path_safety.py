"""Issue 12, item 1 end to end: over HTTP, with boto3, no input makes the emulator write outside its data dir.

The issue's reproduction (a channel key ``p/train/../../../../../../tmp/x.csv``, plain and in the encoded
forms moto decodes into real ``..``) fails the job with ``ClientError:`` naming the key, before training;
then a few hundred generated path-like channel keys, TargetModel values and resource names / ARNs go
through the live server, and the data dir's parent never gains a file.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import boto3
import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError, HTTPClientError, ParamValidationError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from include.sagemaker_emulator.process import EmulatorProcess
from tests.emulator.helpers import training_request, unique, wait_for_job
from tests.emulator.serving_helpers import (
    XGB_IMAGE,
    create_config,
    create_model,
    csv_row,
    deploy,
    ensure_bucket,
    housing_like,
    upload_xgboost,
)
from tests.path_like import climbs_out, path_like, tree

REGION = "us-east-1"
BUCKET = "path-safety-e2e"
LIVE = settings(
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
TRAIN_CSV = b"1,2,3\n2,3,4\n3,4,5\n4,5,6\n5,6,7\n6,7,8\n"
HYPERPARAMETERS = {"num_round": "2", "objective": "reg:squarederror"}


def _client(emulator: EmulatorProcess, service: str):
    return boto3.client(service, endpoint_url=emulator.url, region_name=REGION)


@pytest.fixture(scope="module")
def outside(emulator: EmulatorProcess) -> tuple[Path, set[str]]:
    """The data dir's parent and what it holds besides the data dir, before these tests."""
    parent = emulator.data_dir.resolve().parent
    return parent, tree(parent, skip=emulator.data_dir.resolve())


def assert_nothing_outside(emulator: EmulatorProcess, outside: tuple[Path, set[str]]) -> None:
    parent, before = outside
    now = tree(parent, skip=emulator.data_dir.resolve())
    assert now == before, f"new outside the data dir: {sorted(now - before)}"


def raw_put(emulator: EmulatorProcess, raw_path: str, body: bytes) -> int:
    """PUT an object with the URL path exactly as given (no client-side quoting), signed, like curl would."""
    request = AWSRequest(
        method="PUT", url=emulator.url + raw_path, data=body, headers={"x-amz-content-sha256": "UNSIGNED-PAYLOAD"}
    )
    S3SigV4Auth(Credentials("testing", "testing"), "s3", REGION).add_auth(request)
    connection = http.client.HTTPConnection("127.0.0.1", emulator.port, timeout=10)
    try:
        connection.putrequest("PUT", raw_path, skip_accept_encoding=True)
        for name, value in request.headers.items():
            connection.putheader(name, value)
        connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        return connection.getresponse().status
    finally:
        connection.close()


def _job(sm, name: str, prefix: str) -> dict:
    request = training_request(
        name,
        {"train": f"s3://{BUCKET}/{prefix}"},
        f"s3://{BUCKET}/output/",
        hyperparameters=HYPERPARAMETERS,
        image=XGB_IMAGE,  # a literal: importing the sagemaker SDK to look it up costs seconds
    )
    sm.create_training_job(**request)
    return wait_for_job(sm, name, timeout=120)


# -- the reproduction ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "form",
    ["plain", "encoded dots (boto3)", "encoded slashes (boto3)", "encoded dots (raw HTTP)", "down to /"],
)
def test_channel_key_escaping_the_channel_fails_the_job_before_training(
    emulator: EmulatorProcess, outside: tuple[Path, set[str]], form: str
) -> None:
    s3, sm = _client(emulator, "s3"), _client(emulator, "sagemaker")
    ensure_bucket(s3, BUCKET)
    marker = f"x-{uuid.uuid4().hex[:8]}.csv"
    prefix = f"{unique('p')}/train/"
    s3.put_object(Bucket=BUCKET, Key=prefix + "train.csv", Body=TRAIN_CSV)
    climb = {
        "plain": "../../../../../../tmp/",
        "encoded dots (boto3)": "%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/tmp/",
        "encoded slashes (boto3)": "..%2f..%2f..%2f..%2f..%2f..%2ftmp/",
        "encoded dots (raw HTTP)": "%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/tmp/",
        "down to /": "../" * 40 + "tmp/",
    }[form]
    if form.endswith("(raw HTTP)"):
        assert raw_put(emulator, f"/{BUCKET}/{prefix}{climb}{marker}", b"9,9,9\n") == 200
    else:
        s3.put_object(Bucket=BUCKET, Key=prefix + climb + marker, Body=b"9,9,9\n")
    # moto decodes the encoded forms: the stored key really climbs with '..'.
    stored = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)["Contents"]]
    hostile = next(k for k in stored if k.endswith(marker))
    assert "/../" in hostile

    job = _job(sm, unique("escape"), prefix)

    assert job["TrainingJobStatus"] == "Failed"
    reason = job["FailureReason"]
    assert reason.startswith("ClientError: ") and hostile in reason, reason
    assert "Training" not in [t["Status"] for t in job["SecondaryStatusTransitions"]]  # failed before training
    assert not (outside[0] / "tmp" / marker).exists()
    assert not (Path("/tmp") / marker).exists()
    assert_nothing_outside(emulator, outside)


def test_channel_names_that_name_other_directories_are_refused(emulator: EmulatorProcess) -> None:
    s3, sm = _client(emulator, "s3"), _client(emulator, "sagemaker")
    ensure_bucket(s3, BUCKET)
    prefix = f"{unique('p')}/train/"
    s3.put_object(Bucket=BUCKET, Key=prefix + "train.csv", Body=TRAIN_CSV)
    for channel in (".", ".."):
        request = training_request(
            unique("dots"), {"train": f"s3://{BUCKET}/{prefix}"}, f"s3://{BUCKET}/output/", image=XGB_IMAGE
        )
        request["InputDataConfig"][0]["ChannelName"] = channel
        with pytest.raises(ClientError) as refused:
            sm.create_training_job(**request)
        assert refused.value.response["Error"]["Code"] == "ValidationException"
        assert f"Channel name {channel!r}" in refused.value.response["Error"]["Message"]


# -- generated inputs through the live server ------------------------------------------------------------------------
@settings(LIVE, max_examples=30)
@given(rests=st.lists(path_like, min_size=1, max_size=6))
def test_generated_channel_keys_over_http(emulator: EmulatorProcess, outside: tuple[Path, set[str]], rests) -> None:
    s3, sm = _client(emulator, "s3"), _client(emulator, "sagemaker")
    ensure_bucket(s3, BUCKET)
    prefix = f"{unique('gen')}/train/"
    # moto cannot store a key with a line break (it answers 404 and then fails every listing of the prefix).
    keys = [prefix + r for r in rests if len((prefix + r).encode()) <= 1024 and "\n" not in r and "\r" not in r]
    for key in keys:
        s3.put_object(Bucket=BUCKET, Key=key, Body=TRAIN_CSV)
    # The keys as stored: moto decodes '%2e%2e' and '..%2f' into real '..' (the encoded forms).
    listing = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix, EncodingType="url").get("Contents", [])
    files = [k for k in (urllib.parse.unquote(o["Key"]) for o in listing) if not k.endswith("/")]
    if not files:
        return  # CreateTrainingJob would refuse an empty channel; nothing reaches the disk
    escaping = [k for k in files if climbs_out(k[len(prefix) :])]

    job = _job(sm, unique("gen"), prefix)

    reason = job.get("FailureReason", "")
    if escaping:
        assert job["TrainingJobStatus"] == "Failed" and reason.startswith("ClientError: "), reason
        assert any(repr(k) in reason for k in escaping), reason
    else:
        assert "names a path outside" not in reason, reason
    assert_nothing_outside(emulator, outside)


@pytest.fixture(scope="module")
def mme_endpoint(emulator: EmulatorProcess) -> str:
    s3, sm = _client(emulator, "s3"), _client(emulator, "sagemaker")
    prefix = unique("mme-paths")
    upload_xgboost(s3, BUCKET, f"{prefix}/Chicago_IL.tar.gz", seed=1)
    model, config, endpoint = unique("paths-model"), unique("paths-config"), unique("paths-mme")
    create_model(sm, model, f"s3://{BUCKET}/{prefix}/", multi_model=True)
    create_config(sm, config, [("AllTraffic", model, 1.0)])
    assert deploy(sm, endpoint, config)["EndpointStatus"] == "InService"
    return endpoint


@settings(LIVE, max_examples=150)
@given(target=path_like.filter(bool))
def test_generated_target_models_over_http(
    emulator: EmulatorProcess, outside: tuple[Path, set[str]], mme_endpoint: str, target: str
) -> None:
    runtime = _client(emulator, "sagemaker-runtime")
    row = csv_row(housing_like(1)[0][0])
    try:
        runtime.invoke_endpoint(EndpointName=mme_endpoint, ContentType="text/csv", Body=row, TargetModel=target)
    except ClientError as refused:
        error = refused.response["Error"]
        # uvicorn itself refuses a header with a NUL (400 "Invalid HTTP request received.").
        http_layer = error["Code"] == "400" and error["Message"] == "Invalid HTTP request received."
        assert error["Code"] in ("ValidationError", "ModelError") or http_layer, refused.response
    except (ValueError, UnicodeError, ParamValidationError, HTTPClientError):
        pass  # the HTTP client cannot put this value in a header, so no request carries it
    else:
        pytest.fail(f"TargetModel {target!r} was served")
    # The server keeps serving its real model.
    answer = runtime.invoke_endpoint(
        EndpointName=mme_endpoint, ContentType="text/csv", Body=row, TargetModel="Chicago_IL.tar.gz"
    )
    assert len(json.loads(answer["Body"].read())) == 1
    assert_nothing_outside(emulator, outside)


names = st.one_of(path_like, st.text(max_size=300)).filter(bool)


@settings(LIVE, max_examples=150)
@given(name=names)
def test_generated_names_and_arns_over_http(emulator: EmulatorProcess, outside: tuple[Path, set[str]], name) -> None:
    sm = _client(emulator, "sagemaker")
    arn = f"arn:aws:sagemaker:{REGION}:123456789012:endpoint/{name}"
    calls = [
        lambda: sm.describe_endpoint(EndpointName=name),
        lambda: sm.delete_model(ModelName=name),
        lambda: sm.create_endpoint_config(
            EndpointConfigName=name,
            ProductionVariants=[{"VariantName": "v", "ModelName": name, "InitialInstanceCount": 1}],
        ),
        lambda: sm.add_tags(ResourceArn=arn, Tags=[{"Key": "k", "Value": "v"}]),
        lambda: sm.delete_tags(ResourceArn=arn, TagKeys=["k"]),
        lambda: sm.delete_tags(ResourceArn=name, TagKeys=["k"]),
    ]
    for call in calls:
        try:
            call()
        except ClientError as refused:
            assert refused.response["Error"]["Code"] == "ValidationException", refused.response
        except (ValueError, UnicodeError, ParamValidationError):
            pass  # refused by botocore before any request
    for kind in ("endpoint", "model", "tags"):
        quoted = urllib.parse.quote(name, safe="")
        try:
            urllib.request.urlopen(f"{emulator.url}/_emulator/resources/{kind}/{quoted}", timeout=10).close()
        except urllib.error.HTTPError as missing:
            assert missing.code == 404
    tags_dir = emulator.data_dir / "sagemaker" / "tags"
    assert all(p.is_file() for p in tags_dir.iterdir()), "a tag record made a directory"
    assert_nothing_outside(emulator, outside)


# -- moto's other doors ------------------------------------------------------------------------------------------------
def test_moto_admin_api_and_unserved_services_are_refused(
    emulator: EmulatorProcess, outside: tuple[Path, set[str]]
) -> None:
    """moto's dispatcher would serve /moto-api (whose recorder writes an upload to a file in the server's
    working directory, and whose reset wipes every bucket) and every AWS service it knows."""
    from include.sagemaker_emulator.process import PROJECT_ROOT

    recording = PROJECT_ROOT / "moto_recording"
    assert not recording.exists()
    s3 = _client(emulator, "s3")
    ensure_bucket(s3, BUCKET)
    s3.put_object(Bucket=BUCKET, Key="survives-reset", Body=b"1")
    for path in ("/moto-api/recorder/upload-recording", "/moto-api/reset", "/moto-api/recorder/start-recording"):
        request = urllib.request.Request(emulator.url + path, data=b"recorded", method="POST")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 400
        assert b"does not serve moto's admin API" in refused.value.read()
    assert not recording.exists(), "a client's upload became a file in the server's working directory"
    assert s3.get_object(Bucket=BUCKET, Key="survives-reset")["Body"].read() == b"1"

    with pytest.raises(ClientError) as cloudformation:
        _client(emulator, "cloudformation").validate_template(TemplateBody="{}")
    assert cloudformation.value.response["Error"]["Code"] == "UnsupportedService"
    with pytest.raises(ClientError) as lambda_:
        _client(emulator, "lambda").list_functions()
    assert b"does not serve the AWS service" in lambda_.value.response["Error"]["Message"].encode()
    assert_nothing_outside(emulator, outside)
