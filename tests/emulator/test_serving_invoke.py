"""InvokeEndpoint against real trained models: the seed notebook's single and A/B endpoints, output formats,
errors as SageMaker Runtime gives them, metrics and logs, per-variant faults."""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import ClientError

from tests.conftest import inject_fault
from tests.emulator.helpers import training_request, unique, upload_housing_channels, wait_for_job
from tests.emulator.serving_helpers import LL_IMAGE, create_config, create_model, deploy, wait_status

BUCKET = "serving-invoke"


@pytest.fixture(scope="module")
def trained(emulator):
    """Two real training jobs (XGBoost and Linear Learner) on the same location's data, as in the notebook."""
    import boto3

    kwargs = {"endpoint_url": emulator.url, "region_name": "us-east-1"}
    s3, sm = boto3.client("s3", **kwargs), boto3.client("sagemaker", **kwargs)
    channels = upload_housing_channels(s3, BUCKET, "chicago", houses=600)
    xgb_job, ll_job = unique("xgb"), unique("ll")
    sm.create_training_job(**training_request(xgb_job, channels, f"s3://{BUCKET}/output"))
    sm.create_training_job(
        **training_request(
            ll_job,
            channels,
            f"s3://{BUCKET}/output",
            image=LL_IMAGE,
            hyperparameters={"predictor_type": "regressor", "epochs": "5", "mini_batch_size": "100"},
        )
    )
    artifacts = {}
    for kind, job in (("xgb", xgb_job), ("ll", ll_job)):
        described = wait_for_job(sm, job, timeout=120)
        assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
        artifacts[kind] = described["ModelArtifacts"]["S3ModelArtifacts"]
    rows = [line.split(",") for line in channels["test_csv"].strip().splitlines()]
    image = training_request("x", channels, "s3://x")["AlgorithmSpecification"]["TrainingImage"]
    xgb_model, ll_model = unique("xgb-model"), unique("ll-model")
    create_model(sm, xgb_model, artifacts["xgb"], image=image)
    create_model(sm, ll_model, artifacts["ll"], image=LL_IMAGE)
    return {
        "xgb_model": xgb_model,
        "ll_model": ll_model,
        "labels": [float(r[0]) for r in rows],
        "features": [",".join(r[1:]) for r in rows],
    }


@pytest.fixture(scope="module")
def endpoints(emulator, trained):
    import boto3

    sm = boto3.client("sagemaker", endpoint_url=emulator.url, region_name="us-east-1")
    names = {}
    for kind, variants in (
        ("xgb", [("xgboost-model", trained["xgb_model"], 1.0)]),
        ("ll", [("linear-model", trained["ll_model"], 1.0)]),
        ("ab", [("xgboost-model", trained["xgb_model"], 1.0), ("linear-model", trained["ll_model"], 1.0)]),
    ):
        config = unique(f"{kind}-config")
        create_config(sm, config, variants)
        names[kind] = unique(f"{kind}-endpoint")
        assert deploy(sm, names[kind], config)["EndpointStatus"] == "InService"
    return names


def test_xgboost_endpoint_predicts_like_the_container(runtime, trained, endpoints):
    rows = trained["features"][:20]
    answer = runtime.invoke_endpoint(EndpointName=endpoints["xgb"], ContentType="text/csv", Body="\n".join(rows))
    assert answer["InvokedProductionVariant"] == "xgboost-model"
    assert answer["ContentType"].startswith("text/csv")
    predictions = [float(p) for p in answer["Body"].read().decode().splitlines()]
    assert len(predictions) == 20
    labels = trained["labels"][:20]
    # A real model: predictions track the labels far better than their mean does.
    mean = sum(labels) / len(labels)
    model_error = sum(abs(p - y) for p, y in zip(predictions, labels, strict=True))
    baseline_error = sum(abs(mean - y) for y in labels)
    assert model_error < baseline_error

    as_json = runtime.invoke_endpoint(
        EndpointName=endpoints["xgb"], ContentType="text/csv", Accept="application/json", Body=rows[0]
    )
    assert json.loads(as_json["Body"].read()) == {"predictions": [{"score": pytest.approx(predictions[0], rel=1e-5)}]}
    libsvm = " ".join(f"{i}:{v}" for i, v in enumerate(rows[0].split(",")))
    as_libsvm = runtime.invoke_endpoint(EndpointName=endpoints["xgb"], ContentType="text/libsvm", Body=libsvm)
    assert float(as_libsvm["Body"].read()) == pytest.approx(predictions[0], rel=1e-5)


def test_linear_learner_endpoint_answers_its_json(runtime, trained, endpoints):
    answer = runtime.invoke_endpoint(
        EndpointName=endpoints["ll"], ContentType="text/csv", Body="\n".join(trained["features"][:3])
    )
    assert answer["InvokedProductionVariant"] == "linear-model"
    document = json.loads(answer["Body"].read())
    assert len(document["predictions"]) == 3
    assert all(isinstance(p["score"], float) for p in document["predictions"])


def test_ab_endpoint_routes_both_variants_and_honours_target_variant(runtime, trained, endpoints):
    seen = Counter(
        runtime.invoke_endpoint(EndpointName=endpoints["ab"], ContentType="text/csv", Body=trained["features"][0])[
            "InvokedProductionVariant"
        ]
        for _ in range(200)
    )
    assert set(seen) == {"xgboost-model", "linear-model"}
    assert 60 <= seen["xgboost-model"] <= 140  # 1:1 weights
    for variant in ("xgboost-model", "linear-model"):
        answer = runtime.invoke_endpoint(
            EndpointName=endpoints["ab"], ContentType="text/csv", Body=trained["features"][0], TargetVariant=variant
        )
        assert answer["InvokedProductionVariant"] == variant


def _error(call) -> ClientError:
    with pytest.raises(ClientError) as caught:
        call()
    return caught.value


def test_errors_are_sagemaker_runtime_errors(runtime, trained, endpoints):
    row = trained["features"][0]
    missing = _error(lambda: runtime.invoke_endpoint(EndpointName="no-such-endpoint", ContentType="text/csv", Body=row))
    assert missing.response["Error"] == {
        "Code": "ValidationError",
        "Message": "Endpoint no-such-endpoint of account 123456789012 not found.",
    }
    assert missing.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    variant = _error(
        lambda: runtime.invoke_endpoint(
            EndpointName=endpoints["ab"], ContentType="text/csv", Body=row, TargetVariant="nope"
        )
    )
    assert variant.response["Error"]["Code"] == "ValidationError"
    target_model = _error(
        lambda: runtime.invoke_endpoint(
            EndpointName=endpoints["xgb"], ContentType="text/csv", Body=row, TargetModel="Chicago_IL.tar.gz"
        )
    )
    assert target_model.response["Error"]["Message"] == (
        f"Endpoint {endpoints['xgb']} is not a multi-model endpoint and does not support target model header."
    )
    too_big = _error(
        lambda: runtime.invoke_endpoint(EndpointName=endpoints["xgb"], ContentType="text/csv", Body=b"1" * 6291457)
    )
    assert too_big.response["Error"]["Code"] == "ValidationError"

    with pytest.raises(runtime.exceptions.ModelError) as caught:
        runtime.invoke_endpoint(EndpointName=endpoints["xgb"], ContentType="text/csv", Body="1,2,abc")
    error = caught.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert error["OriginalStatusCode"] == 400
    assert "Unable to evaluate payload provided" in error["OriginalMessage"]
    assert error["Error"]["Message"].startswith('Received client error (400) from primary with message "Unable')
    assert f"/aws/sagemaker/Endpoints/{endpoints['xgb']}" in error["LogStreamArn"]
    # ...and the endpoint keeps serving.
    ok = runtime.invoke_endpoint(EndpointName=endpoints["xgb"], ContentType="text/csv", Body=row)
    assert ok["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_metrics_and_logs_reach_cloudwatch(emulator, runtime, trained, endpoints):
    import boto3

    endpoint = endpoints["xgb"]
    for _ in range(5):
        runtime.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=trained["features"][0])
    with pytest.raises(runtime.exceptions.ModelError):
        runtime.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body="1,2")
    cloudwatch = boto3.client("cloudwatch", endpoint_url=emulator.url, region_name="us-east-1")
    logs = boto3.client("logs", endpoint_url=emulator.url, region_name="us-east-1")
    dimensions = [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": "xgboost-model"}]
    deadline = time.monotonic() + 10
    while True:
        listed = cloudwatch.list_metrics(Namespace="AWS/SageMaker", Dimensions=dimensions)["Metrics"]
        names = {m["MetricName"] for m in listed}
        if {"Invocations", "Invocation4XXErrors", "ModelLatency", "OverheadLatency"} <= names:
            stats = cloudwatch.get_metric_statistics(
                Namespace="AWS/SageMaker",
                MetricName="Invocations",
                Dimensions=dimensions,
                StartTime=datetime.now(UTC) - timedelta(hours=1),
                EndTime=datetime.now(UTC) + timedelta(minutes=5),
                Period=3600,
                Statistics=["Sum"],
            )
            if sum(p["Sum"] for p in stats["Datapoints"]) >= 6:
                break
        assert time.monotonic() < deadline, names
        time.sleep(0.3)
    errors = cloudwatch.get_metric_statistics(
        Namespace="AWS/SageMaker",
        MetricName="Invocation4XXErrors",
        Dimensions=dimensions,
        StartTime=datetime.now(UTC) - timedelta(hours=1),
        EndTime=datetime.now(UTC) + timedelta(minutes=5),
        Period=3600,
        Statistics=["Sum"],
    )
    assert sum(p["Sum"] for p in errors["Datapoints"]) >= 1
    group = f"/aws/sagemaker/Endpoints/{endpoint}"
    events: list[dict] = []
    while not any("Feature size" in e["message"] for e in events):  # logs ship in batches, like metrics
        assert time.monotonic() < deadline + 10, events
        time.sleep(0.3)
        try:
            streams = logs.describe_log_streams(logGroupName=group)["logStreams"]
        except logs.exceptions.ResourceNotFoundException:
            continue
        assert streams and streams[0]["logStreamName"].startswith("xgboost-model/i-")
        events = logs.get_log_events(logGroupName=group, logStreamName=streams[0]["logStreamName"])["events"]


def test_variant_faults(emulator, runtime, trained, endpoints, clear_faults):
    endpoint, row = endpoints["ab"], trained["features"][0]
    inject_fault(
        emulator,
        {
            "type": "variant_model_error",
            "endpoint_name": endpoint,
            "variant_name": "linear-model",
            "status_code": 500,
            "message": "out of memory",
            "count": 1,
        },
    )
    with pytest.raises(runtime.exceptions.ModelError) as caught:
        runtime.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=row, TargetVariant="linear-model")
    assert caught.value.response["OriginalStatusCode"] == 500
    assert caught.value.response["Error"]["Message"].startswith(
        'Received server error (500) from primary with message "out of memory"'
    )
    runtime.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=row, TargetVariant="linear-model")

    inject_fault(
        emulator,
        {
            "type": "variant_latency",
            "endpoint_name": endpoint,
            "variant_name": "xgboost-model",
            "latency_ms": 300,
            "count": 1,
        },
    )
    started = time.perf_counter()
    runtime.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=row, TargetVariant="xgboost-model")
    assert time.perf_counter() - started >= 0.3
    started = time.perf_counter()
    runtime.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=row, TargetVariant="xgboost-model")
    assert time.perf_counter() - started < 0.3


def test_notebook_update_to_the_linear_config_without_a_failed_request(emulator, sm, runtime, trained, endpoints):
    """The notebook's last step: update_endpoint from the A/B configuration to the linear one, under traffic."""
    import threading

    endpoint, row = endpoints["ab"], trained["features"][0]
    linear = unique("linear-config")
    create_config(sm, linear, [("linear-model", trained["ll_model"], 1.0)])
    seen: list[str] = []
    failures: list[str] = []
    stop = threading.Event()

    def invoke_forever() -> None:
        import boto3

        client = boto3.client("sagemaker-runtime", endpoint_url=emulator.url, region_name="us-east-1")
        while not stop.is_set():
            try:
                answer = client.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=row)
                seen.append(answer["InvokedProductionVariant"])
            except Exception as exc:  # any failure fails the test below
                failures.append(repr(exc))

    thread = threading.Thread(target=invoke_forever, daemon=True)
    thread.start()
    while len(seen) < 20:
        time.sleep(0.01)
    sm.update_endpoint(EndpointName=endpoint, EndpointConfigName=linear)
    done = wait_status(sm, endpoint, "InService")
    count = len(seen)
    while len(seen) < count + 20:
        time.sleep(0.01)
    stop.set()
    thread.join(10)
    assert failures == []
    assert done["EndpointConfigName"] == linear
    assert seen[-10:] == ["linear-model"] * 10
    assert "xgboost-model" in seen
