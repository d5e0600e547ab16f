"""Batch transform with plain boto3 and botocore's waiter: real models (XGBoost of a current and an old image,
Linear Learner trained by a real job), real objects in S3, outputs checked against the models' own predictions."""

from __future__ import annotations

import contextlib
import io
import json
import tarfile
import tempfile
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from botocore.exceptions import ClientError, WaiterError

from include.sagemaker_emulator.process import EmulatorProcess
from tests.conftest import client, inject_fault
from tests.emulator.helpers import training_request, unique, upload_housing_channels, wait_for_job
from tests.emulator.serving_helpers import (
    LL_IMAGE,
    ROLE,
    XGB_IMAGE,
    create_model,
    ensure_bucket,
    housing_like,
    upload_xgboost,
)

BUCKET = "transform-jobs"
OLD_XGB_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.0-1-cpu-py3"
WAITER = {"Delay": 0.1, "MaxAttempts": 600}


@pytest.fixture(scope="module")
def xgb_model(emulator) -> dict:
    """A real XGBoost artifact in S3, a model for the 1.7-1 and the 1.0-1 image, and the booster to compare."""
    import xgboost as xgb

    s3, sm = client(emulator, "s3"), client(emulator, "sagemaker")
    url = upload_xgboost(s3, BUCKET, "models/xgb/model.tar.gz")
    raw = s3.get_object(Bucket=BUCKET, Key="models/xgb/model.tar.gz")["Body"].read()
    with tempfile.TemporaryDirectory() as tmp, tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        tar.extractall(tmp, filter="data")
        booster = xgb.Booster()
        native = Path(tmp) / "xgboost-model"
        booster.load_model(str(native.rename(native.with_suffix(".ubj"))))  # the extension names the format
    current, old = unique("xgb-current"), unique("xgb-old")
    create_model(sm, current, url, image=XGB_IMAGE)
    create_model(sm, old, url, image=OLD_XGB_IMAGE)
    return {"current": current, "old": old, "booster": booster}


def _rows(n: int, seed: int) -> np.ndarray:
    return housing_like(n, seed=seed)[0]


def _csv(rows: np.ndarray) -> bytes:
    return "".join(",".join(f"{v:g}" for v in row) + "\n" for row in rows).encode()


def _expected(booster, rows: np.ndarray) -> list[float]:
    parsed = np.array([[float(f"{v:g}") for v in row] for row in rows], dtype=np.float32)
    return booster.inplace_predict(parsed).tolist()


def _request(name: str, model: str, input_uri: str, output_uri: str, **extra) -> dict:
    request = {
        "TransformJobName": name,
        "ModelName": model,
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": input_uri}},
            "ContentType": "text/csv",
            "SplitType": "Line",
        },
        "TransformOutput": {"S3OutputPath": output_uri, "AssembleWith": "Line"},
        "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
    }
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(request.get(key), dict):
            request[key] = {**request[key], **value}
        else:
            request[key] = value
    return request


def _run(sm, request: dict) -> dict:
    sm.create_transform_job(**request)
    name = request["TransformJobName"]
    with contextlib.suppress(WaiterError):  # Failed: the caller looks at the description
        sm.get_waiter("transform_job_completed_or_stopped").wait(TransformJobName=name, WaiterConfig=WAITER)
    return sm.describe_transform_job(TransformJobName=name)


def _read(s3, key: str) -> str:
    return s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()


def _keys(s3, prefix: str) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", []))


def test_xgboost_multi_record_writes_one_out_per_object(emulator, sm, s3, xgb_model) -> None:
    name = unique("tr-xgb-multi")
    first, second = _rows(300, 1), _rows(40, 2)
    s3.put_object(Bucket=BUCKET, Key=f"in/{name}/part-1.csv", Body=_csv(first))
    s3.put_object(Bucket=BUCKET, Key=f"in/{name}/nested/part-2.csv", Body=_csv(second))
    # A 1 MB payload limit on 300 rows still makes one request; the rows are ~30 bytes each.
    job = _run(
        sm,
        _request(
            name,
            xgb_model["current"],
            f"s3://{BUCKET}/in/{name}/",
            f"s3://{BUCKET}/out/{name}",
            BatchStrategy="MultiRecord",
            MaxPayloadInMB=1,
            MaxConcurrentTransforms=2,
            TransformResources={"InstanceCount": 2},
            Tags=[{"Key": "team", "Value": "ml"}],
        ),
    )
    assert job["TransformJobStatus"] == "Completed", job.get("FailureReason")
    assert job["TransformJobArn"] == f"arn:aws:sagemaker:us-east-1:123456789012:transform-job/{name}"
    assert job["TransformInput"]["SplitType"] == "Line" and job["BatchStrategy"] == "MultiRecord"
    assert job["TransformStartTime"] <= job["TransformEndTime"]
    assert _keys(s3, f"out/{name}/") == [f"out/{name}/nested/part-2.csv.out", f"out/{name}/part-1.csv.out"]
    for rows, key in ((first, "part-1.csv.out"), (second, "nested/part-2.csv.out")):
        text = _read(s3, f"out/{name}/{key}")
        # The container under SAGEMAKER_BATCH: one str(prediction) per line, trailing newline.
        assert text == "".join(f"{p}\n" for p in _expected(xgb_model["booster"], rows))
    assert sm.list_tags(ResourceArn=job["TransformJobArn"])["Tags"] == [{"Key": "team", "Value": "ml"}]
    listed = sm.list_transform_jobs(NameContains=name)["TransformJobSummaries"]
    assert [(j["TransformJobName"], j["TransformJobStatus"]) for j in listed] == [(name, "Completed")]
    streams = client(emulator, "logs").describe_log_streams(
        logGroupName="/aws/sagemaker/TransformJobs", logStreamNamePrefix=f"{name}/"
    )["logStreams"]
    # One stream per instance (each transformed one of the two objects), named <job>/<instance-id>-<epoch>.
    instances = [s["logStreamName"] for s in streams if not s["logStreamName"].endswith("/data-log")]
    assert len(instances) == 2 and all(s.startswith(f"{name}/i-") for s in instances)
    # The emulator's read-only page shows the job as DescribeTransformJob does.
    page = f"{emulator.url}/_emulator/resources/transform-job/{name}?format=json"
    with urllib.request.urlopen(page, timeout=10) as answer:
        shown = json.loads(answer.read())
    assert shown["TransformJobStatus"] == "Completed" and shown["TransformJobArn"] == job["TransformJobArn"]


def test_old_image_single_record_answers_newline_separated(sm, s3, xgb_model) -> None:
    name = unique("tr-xgb-old")
    rows = _rows(25, 3)
    s3.put_object(Bucket=BUCKET, Key=f"in/{name}/rows.csv", Body=_csv(rows))
    job = _run(
        sm,
        _request(
            name,
            xgb_model["old"],
            f"s3://{BUCKET}/in/{name}/rows.csv",
            f"s3://{BUCKET}/out/{name}/",
            BatchStrategy="SingleRecord",
        ),
    )
    assert job["TransformJobStatus"] == "Completed", job.get("FailureReason")
    # 1.0-1 answers real-time CSV comma-joined on one line; under batch transform it is one per line.
    text = _read(s3, f"out/{name}/rows.csv.out")
    assert text == "".join(f"{p}\n" for p in _expected(xgb_model["booster"], rows))


def test_join_source_with_input_and_output_filters(sm, s3, xgb_model) -> None:
    name = unique("tr-join")
    rows = _rows(30, 4)
    lines = [f"id-{i}," + ",".join(f"{v:g}" for v in row) for i, row in enumerate(rows)]
    s3.put_object(Bucket=BUCKET, Key=f"in/{name}/ids.csv", Body=("\n".join(lines) + "\n").encode())
    job = _run(
        sm,
        _request(
            name,
            xgb_model["current"],
            f"s3://{BUCKET}/in/{name}/",
            f"s3://{BUCKET}/out/{name}/",
            TransformOutput={"Accept": "text/csv"},
            BatchStrategy="MultiRecord",
            DataProcessing={"InputFilter": "$[1:]", "JoinSource": "Input", "OutputFilter": "$[0,-1]"},
        ),
    )
    assert job["TransformJobStatus"] == "Completed", job.get("FailureReason")
    assert job["DataProcessing"] == {"InputFilter": "$[1:]", "JoinSource": "Input", "OutputFilter": "$[0,-1]"}
    expected = _expected(xgb_model["booster"], rows)
    assert _read(s3, f"out/{name}/ids.csv.out") == "".join(f"id-{i},{p}\n" for i, p in enumerate(expected))


def test_a_bad_record_fails_its_object_only_and_names_it(emulator, sm, s3, xgb_model) -> None:
    name = unique("tr-bad")
    good, bad_rows = _rows(10, 5), _rows(10, 6)
    bad = _csv(bad_rows).decode().splitlines()
    bad[6] = "1,2,oops,4,5,6"
    s3.put_object(Bucket=BUCKET, Key=f"in/{name}/a-good.csv", Body=_csv(good))
    s3.put_object(Bucket=BUCKET, Key=f"in/{name}/b-bad.csv", Body=("\n".join(bad) + "\n").encode())
    job = _run(
        sm,
        _request(
            name,
            xgb_model["current"],
            f"s3://{BUCKET}/in/{name}/",
            f"s3://{BUCKET}/out/{name}/",
            BatchStrategy="SingleRecord",
        ),
    )
    assert job["TransformJobStatus"] == "Failed"
    reason = job["FailureReason"]
    assert reason.startswith("ClientError: See job logs for more information.")
    assert f"s3://{BUCKET}/in/{name}/b-bad.csv" in reason and "record 7" in reason and "oops" in reason
    # The good object's output is stored; the failed one's is not.
    assert _keys(s3, f"out/{name}/") == [f"out/{name}/a-good.csv.out"]
    logs = client(emulator, "logs")
    streams = logs.describe_log_streams(logGroupName="/aws/sagemaker/TransformJobs", logStreamNamePrefix=f"{name}/")
    data_log = next(s["logStreamName"] for s in streams["logStreams"] if s["logStreamName"].endswith("/data-log"))
    events = logs.get_log_events(logGroupName="/aws/sagemaker/TransformJobs", logStreamName=data_log)["events"]
    assert any("b-bad.csv" in e["message"] and "oops" in e["message"] for e in events)


def test_linear_learner_answers_its_json_lines(emulator, sm, s3) -> None:
    channels = upload_housing_channels(s3, BUCKET, "ll-train", houses=400)
    job_name = unique("ll-train")
    sm.create_training_job(
        **training_request(
            job_name,
            channels,
            f"s3://{BUCKET}/ll-output",
            image=LL_IMAGE,
            hyperparameters={"predictor_type": "regressor", "epochs": "5", "mini_batch_size": "100"},
        )
    )
    trained = wait_for_job(sm, job_name, timeout=120)
    assert trained["TrainingJobStatus"] == "Completed", trained.get("FailureReason")
    model = unique("ll-model")
    create_model(sm, model, trained["ModelArtifacts"]["S3ModelArtifacts"], image=LL_IMAGE)
    features = [",".join(line.split(",")[1:]) for line in channels["test_csv"].strip().splitlines()]
    name = unique("tr-ll")
    s3.put_object(Bucket=BUCKET, Key=f"in/{name}/test.csv", Body=("\n".join(features) + "\n").encode())
    job = _run(
        sm,
        _request(
            name,
            model,
            f"s3://{BUCKET}/in/{name}/",
            f"s3://{BUCKET}/out/{name}/",
            TransformOutput={"Accept": "application/jsonlines"},
            BatchStrategy="MultiRecord",
        ),
    )
    assert job["TransformJobStatus"] == "Completed", job.get("FailureReason")
    answers = [json.loads(line) for line in _read(s3, f"out/{name}/test.csv.out").splitlines()]
    assert len(answers) == len(features)
    labels = [float(line.split(",")[0]) for line in channels["test_csv"].strip().splitlines()]
    scores = np.array([a["score"] for a in answers])
    # A real regressor: its scores follow the prices.
    assert np.corrcoef(scores, labels)[0, 1] > 0.5


def test_transform_failure_fault(emulator, sm, s3, xgb_model, clear_faults) -> None:
    name = unique("tr-fault")
    s3.put_object(Bucket=BUCKET, Key=f"in/{name}/rows.csv", Body=_csv(_rows(5, 7)))
    inject_fault(emulator, {"type": "transform_failure", "name_contains": name, "count": 1})
    job = _run(sm, _request(name, xgb_model["current"], f"s3://{BUCKET}/in/{name}/", f"s3://{BUCKET}/out/{name}/"))
    assert job["TransformJobStatus"] == "Failed"
    assert job["FailureReason"] == "AlgorithmError: injected transform failure (emulator fault)"
    assert _keys(s3, f"out/{name}/") == []


def test_missing_model_and_bad_limits_are_refused_before_anything_is_created(sm, s3, xgb_model) -> None:
    uri_in, uri_out = f"s3://{BUCKET}/in/none/", f"s3://{BUCKET}/out/none/"
    cases = [
        ({"ModelName": "no-such-model"}, 'Could not find model "arn:aws:sagemaker:us-east-1:123456789012:model/'),
        ({"MaxPayloadInMB": 101}, "larger than the maximum payload size of 100 MB"),
        ({"MaxPayloadInMB": 10, "MaxConcurrentTransforms": 11}, "must not exceed 100 MB"),
        ({"MaxConcurrentTransforms": 20}, "MaxConcurrentTransforms (20) x MaxPayloadInMB (6)"),
        ({"DataProcessing": {"InputFilter": "$[1:", "JoinSource": "None"}}, "DataProcessing.InputFilter"),
        ({"TransformInput": {"SplitType": "TFRecord"}}, "SplitType TFRecord is not emulated"),
        ({"DataProcessing": {"JoinSource": "Input"}, "TransformOutput": {"AssembleWith": "None"}}, "AssembleWith"),
    ]
    for change, message in cases:
        name = unique("tr-refused")
        request = _request(name, xgb_model["current"], uri_in, uri_out)
        for key, value in change.items():
            request[key] = {**request[key], **value} if isinstance(request.get(key), dict) else value
        with pytest.raises(ClientError) as refused:
            sm.create_transform_job(**request)
        assert refused.value.response["Error"]["Code"] == "ValidationException"
        assert message in refused.value.response["Error"]["Message"], change
        with pytest.raises(ClientError) as missing:
            sm.describe_transform_job(TransformJobName=name)
        assert missing.value.response["Error"]["Message"] == f"Could not find requested job with name {name}"
    with pytest.raises(WaiterError):  # the waiter stops on the ValidationException, as on AWS
        sm.get_waiter("transform_job_completed_or_stopped").wait(TransformJobName="no-such-job", WaiterConfig=WAITER)


def test_duplicate_name_and_missing_input(sm, s3, xgb_model) -> None:
    name = unique("tr-dup")
    request = _request(name, xgb_model["current"], f"s3://{BUCKET}/in/{name}-nothing/", f"s3://{BUCKET}/out/{name}/")
    job = _run(sm, request)
    assert job["TransformJobStatus"] == "Failed" and "No S3 objects found under S3 URL" in job["FailureReason"]
    with pytest.raises(ClientError) as duplicate:
        sm.create_transform_job(**request)
    assert duplicate.value.response["Error"]["Code"] == "ResourceInUse"


def test_stop_stores_no_output_and_a_restart_fails_what_was_running(tmp_path) -> None:
    """A time-scaled emulator holds jobs in their start-up (120 s x 0.5), so Stop and a kill -9 come first."""
    data_dir = tmp_path / "data"
    emu = EmulatorProcess(data_dir=data_dir, time_scale=0.5, extra_args=["--max-transform-instances", "3"]).start()
    try:
        sm, s3 = client(emu, "sagemaker"), client(emu, "s3")
        ensure_bucket(s3, BUCKET)
        url = upload_xgboost(s3, BUCKET, "models/m.tar.gz")
        sm.create_model(
            ModelName="m", PrimaryContainer={"Image": XGB_IMAGE, "ModelDataUrl": url}, ExecutionRoleArn=ROLE
        )
        s3.put_object(Bucket=BUCKET, Key="in/rows.csv", Body=_csv(_rows(5, 8)))
        for name in ("stopped", "interrupted"):
            sm.create_transform_job(**_request(name, "m", f"s3://{BUCKET}/in/", f"s3://{BUCKET}/out/{name}/"))
        two = _request("two-instances", "m", f"s3://{BUCKET}/in/", f"s3://{BUCKET}/out/two/")
        two["TransformResources"]["InstanceCount"] = 2
        with pytest.raises(ClientError) as quota:  # 2 running + 2 asked > 3 instances
            sm.create_transform_job(**two)
        assert quota.value.response["Error"]["Code"] == "ResourceLimitExceeded"
        assert "current utilization of 2 Instances and a request delta of 2" in quota.value.response["Error"]["Message"]
        sm.stop_transform_job(TransformJobName="stopped")
        assert sm.describe_transform_job(TransformJobName="stopped")["TransformJobStatus"] in ("Stopping", "Stopped")
        sm.get_waiter("transform_job_completed_or_stopped").wait(TransformJobName="stopped", WaiterConfig=WAITER)
        sm.create_transform_job(**two)  # the stopped job's instance is free again
        assert sm.describe_transform_job(TransformJobName="stopped")["TransformJobStatus"] == "Stopped"
        with pytest.raises(ClientError) as again:
            sm.stop_transform_job(TransformJobName="stopped")
        assert again.value.response["Error"]["Code"] == "ValidationException"
        assert _keys(s3, "out/") == []
        emu.kill()
        emu.start()
        sm = client(emu, "sagemaker")
        job = sm.describe_transform_job(TransformJobName="interrupted")
        assert job["TransformJobStatus"] == "Failed"
        assert "emulator stopped while this transform job was running" in job["FailureReason"]
        assert sm.describe_transform_job(TransformJobName="two-instances")["TransformJobStatus"] == "Failed"
        assert sm.describe_transform_job(TransformJobName="stopped")["TransformJobStatus"] == "Stopped"
    finally:
        emu.stop()


def test_a_manifest_file_names_the_objects(sm, s3, xgb_model) -> None:
    name = unique("tr-manifest")
    rows = _rows(12, 9)
    s3.put_object(Bucket=BUCKET, Key=f"in/{name}/data/x.csv", Body=_csv(rows))
    s3.put_object(Bucket=BUCKET, Key=f"in/{name}/data/ignored.csv", Body=b"not,listed\n")
    manifest = [{"prefix": f"s3://{BUCKET}/in/{name}/data/"}, "x.csv"]
    s3.put_object(Bucket=BUCKET, Key=f"in/{name}/input.manifest", Body=json.dumps(manifest).encode())
    request = _request(
        name, xgb_model["current"], f"s3://{BUCKET}/in/{name}/input.manifest", f"s3://{BUCKET}/out/{name}"
    )
    request["TransformInput"]["DataSource"]["S3DataSource"]["S3DataType"] = "ManifestFile"
    job = _run(sm, request)
    assert job["TransformJobStatus"] == "Completed", job.get("FailureReason")
    assert _keys(s3, f"out/{name}/") == [f"out/{name}/x.csv.out"]
    assert _read(s3, f"out/{name}/x.csv.out") == "".join(f"{p}\n" for p in _expected(xgb_model["booster"], rows))


def test_gzip_whole_objects_and_recordio_records(sm, s3, xgb_model) -> None:
    import gzip

    from include.formats import recordio

    rows = _rows(20, 10)
    expected = "".join(f"{p}\n" for p in _expected(xgb_model["booster"], rows))
    name = unique("tr-gzip")
    s3.put_object(Bucket=BUCKET, Key=f"in/{name}/rows.csv.gz", Body=gzip.compress(_csv(rows)))
    job = _run(
        sm,
        _request(
            name,
            xgb_model["current"],
            f"s3://{BUCKET}/in/{name}/",
            f"s3://{BUCKET}/out/{name}/",
            TransformInput={"SplitType": "None", "CompressionType": "Gzip"},
            TransformOutput={"AssembleWith": "None", "Accept": "application/json"},  # batch: Accept is ignored
        ),
    )
    assert job["TransformJobStatus"] == "Completed", job.get("FailureReason")
    assert _read(s3, f"out/{name}/rows.csv.gz.out") == expected

    name = unique("tr-recordio")
    parsed = np.array([[float(f"{v:g}") for v in row] for row in rows], dtype=np.float32)
    s3.put_object(Bucket=BUCKET, Key=f"in/{name}/rows.rec", Body=recordio.dense_tensor_bytes(parsed))
    job = _run(
        sm,
        _request(
            name,
            xgb_model["current"],
            f"s3://{BUCKET}/in/{name}/",
            f"s3://{BUCKET}/out/{name}/",
            TransformInput={"SplitType": "RecordIO", "ContentType": "application/x-recordio-protobuf"},
            BatchStrategy="MultiRecord",
        ),
    )
    assert job["TransformJobStatus"] == "Completed", job.get("FailureReason")
    assert _read(s3, f"out/{name}/rows.rec.out") == expected


def test_a_model_that_cannot_load_or_download_fails_the_job(sm, s3) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        junk = b"this is not a model"
        info = tarfile.TarInfo("xgboost-model")
        info.size = len(junk)
        tar.addfile(info, io.BytesIO(junk))
    s3.put_object(Bucket=BUCKET, Key="models/junk/model.tar.gz", Body=buffer.getvalue())
    junk_model, gone_model = unique("junk"), unique("gone")
    create_model(sm, junk_model, f"s3://{BUCKET}/models/junk/model.tar.gz", image=XGB_IMAGE)
    create_model(sm, gone_model, f"s3://{BUCKET}/models/gone/model.tar.gz", image=XGB_IMAGE)
    name = unique("tr-load")
    s3.put_object(Bucket=BUCKET, Key=f"in/{name}/rows.csv", Body=_csv(_rows(3, 11)))
    for model, reason in (
        (junk_model, "AlgorithmError: Model container failed to respond to ping (the model did not load"),
        (gone_model, f'ClientError: Failed to download model data from URL: "s3://{BUCKET}/models/gone/'),
    ):
        job = _run(sm, _request(unique("tr-load"), model, f"s3://{BUCKET}/in/{name}/", f"s3://{BUCKET}/out/{name}/"))
        assert job["TransformJobStatus"] == "Failed" and job["FailureReason"].startswith(reason), job
    assert _keys(s3, f"out/{name}/") == []


def test_the_providers_transform_operator_and_sensor_run_unchanged(emulator, s3) -> None:
    """The Amazon provider's SageMakerTransformOperator, model-creation path included, and its sensor."""
    from airflow.providers.amazon.aws.operators.sagemaker import SageMakerTransformOperator
    from airflow.providers.amazon.aws.sensors.sagemaker import SageMakerTransformSensor

    url = upload_xgboost(s3, BUCKET, "models/provider/model.tar.gz")
    name, model = unique("tr-provider"), unique("provider-model")
    rows = _rows(8, 12)
    s3.put_object(Bucket=BUCKET, Key=f"in/{name}/rows.csv", Body=_csv(rows))
    request = _request(name, model, f"s3://{BUCKET}/in/{name}/", f"s3://{BUCKET}/out/{name}/")
    transform = SageMakerTransformOperator(
        task_id="transform",
        config={
            "Model": {
                "ModelName": model,
                "PrimaryContainer": {"Image": XGB_IMAGE, "ModelDataUrl": url},
                "ExecutionRoleArn": ROLE,
            },
            "Transform": request,
        },
        wait_for_completion=True,
        check_interval=1,
        deferrable=False,
    )
    result = transform.execute(context={})
    assert result["Transform"]["TransformJobStatus"] == "Completed"
    assert result["Model"]["ModelName"] == model
    assert _keys(s3, f"out/{name}/") == [f"out/{name}/rows.csv.out"]
    sensor = SageMakerTransformSensor(task_id="sense", job_name=name, poke_interval=1)
    assert sensor.poke(context={}) is True


def test_the_providers_deferrable_transform_waits_in_its_trigger(emulator, s3, xgb_model) -> None:
    import asyncio

    from airflow.providers.amazon.aws.operators.sagemaker import SageMakerTransformOperator
    from airflow.sdk.exceptions import TaskDeferred

    name = unique("tr-deferred")
    s3.put_object(Bucket=BUCKET, Key=f"in/{name}/rows.csv", Body=_csv(_rows(6, 13)))
    request = _request(name, xgb_model["current"], f"s3://{BUCKET}/in/{name}/", f"s3://{BUCKET}/out/{name}/")
    transform = SageMakerTransformOperator(
        task_id="transform", config=request, deferrable=True, check_interval=1, max_attempts=120
    )
    with pytest.raises(TaskDeferred) as deferred:
        transform.execute(context={})

    async def first_event():
        return await anext(deferred.value.trigger.run())

    event = asyncio.run(first_event())
    assert event.payload["status"] == "success", event.payload
    result = transform.execute_complete(context={}, event=event.payload)
    assert result["Transform"]["TransformJobStatus"] == "Completed"
    assert _keys(s3, f"out/{name}/") == [f"out/{name}/rows.csv.out"]


def test_a_script_mode_model_transforms_through_its_own_handlers(emulator, sm, s3) -> None:
    """The seed's sklearn_rf.py (model_fn only, the container's default handlers), code in S3 as the SDK puts it."""
    import joblib
    from sklearn.ensemble import RandomForestClassifier

    from tests.emulator.test_script_mode_serving import SCRIPTS, SKLEARN_IMAGE, _tar

    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 4))
    forest = RandomForestClassifier(n_estimators=10, random_state=0).fit(x, (x[:, 0] + x[:, 1] > 0).astype(float))
    buffer = io.BytesIO()
    joblib.dump(forest, buffer)
    name = unique("tr-script")
    ensure_bucket(s3, BUCKET)
    s3.put_object(Bucket=BUCKET, Key=f"{name}/model.tar.gz", Body=_tar({"model.joblib": buffer.getvalue()}))
    code = _tar({"sklearn_rf.py": (SCRIPTS / "sklearn_rf.py").read_bytes()})
    s3.put_object(Bucket=BUCKET, Key=f"{name}/sourcedir.tar.gz", Body=code)
    sm.create_model(
        ModelName=name,
        PrimaryContainer={
            "Image": SKLEARN_IMAGE,
            "ModelDataUrl": f"s3://{BUCKET}/{name}/model.tar.gz",
            "Environment": {
                "SAGEMAKER_PROGRAM": "sklearn_rf.py",
                "SAGEMAKER_SUBMIT_DIRECTORY": f"s3://{BUCKET}/{name}/sourcedir.tar.gz",
            },
        },
        ExecutionRoleArn=ROLE,
    )
    rows = rng.normal(size=(30, 4))
    text = "".join(",".join(repr(float(v)) for v in row) + "\n" for row in rows)
    s3.put_object(Bucket=BUCKET, Key=f"in/{name}/rows.csv", Body=text.encode())
    job = _run(
        sm,
        _request(
            name,
            name,
            f"s3://{BUCKET}/in/{name}/",
            f"s3://{BUCKET}/out/{name}/",
            TransformOutput={"Accept": "text/csv"},
            BatchStrategy="MultiRecord",
        ),
    )
    assert job["TransformJobStatus"] == "Completed", job.get("FailureReason")
    # The default output_fn writes one prediction per line (sagemaker-containers' array_to_csv).
    assert _read(s3, f"out/{name}/rows.csv.out") == "".join(f"{p}\n" for p in forest.predict(rows))
