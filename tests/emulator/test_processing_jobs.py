"""Processing jobs with plain boto3 and botocore's waiter: users' scripts run unchanged, hard-coded
/opt/ml/processing paths included, and two jobs at once never see each other's files."""

from __future__ import annotations

import io
import json
import os
import textwrap
import time
from pathlib import Path

import boto3
import pandas as pd
import pytest
from botocore.exceptions import ClientError, WaiterError

from include.sagemaker_emulator.process import EmulatorProcess
from tests.conftest import inject_fault
from tests.emulator.helpers import unique
from tests.emulator.processing_helpers import (
    CHURN_SCRIPT,
    SKLEARN_IMAGE,
    churn_csv,
    ensure_bucket,
    processing_request,
    s3_input,
    s3_output,
    wait_processing,
)

BUCKET = "processing-tests"
LOG_GROUP = "/aws/sagemaker/ProcessingJobs"

# Hard-codes every path, as processing scripts do; reports what it saw so the test can check isolation.
SUM_SCRIPT = textwrap.dedent(
    """
    import json, os, sys, time
    started = time.time()
    seen = sorted(os.listdir("/opt/ml/processing/input/data"))
    total = sum(int(line) for name in seen for line in open(os.path.join("/opt/ml/processing/input/data", name)))
    rendezvous = os.environ.get("RENDEZVOUS")
    if rendezvous:  # two jobs wait for each other, proving that they run at the same time
        open(os.path.join(rendezvous, os.environ["JOB_LABEL"]), "w").close()
        deadline = time.time() + 120
        while len(os.listdir(rendezvous)) < 2 and time.time() < deadline:
            time.sleep(0.05)
        assert len(os.listdir(rendezvous)) == 2, "the other job never ran at the same time"
        seen = sorted(os.listdir("/opt/ml/processing/input/data"))  # still only ours while both run
    config = json.load(open("/opt/ml/config/processingjobconfig.json"))
    resources = json.load(open("/opt/ml/config/resourceconfig.json"))
    result = {
        "seen": seen,
        "total": total,
        "job": config["ProcessingJobName"],
        "hosts": resources["hosts"],
        "label": os.environ.get("JOB_LABEL"),
        "python": sys.executable,
        "argv": sys.argv[1:],
        "started": started,
        "ended": time.time(),
    }
    with open("/opt/ml/processing/output/result.json", "w") as out:
        json.dump(result, out)
    os.makedirs("/opt/ml/processing/output/nested/deeper")
    open("/opt/ml/processing/output/nested/deeper/part.txt", "w").write(str(total))
    print("processed", seen, total)
    """
)
FAILING_SCRIPT = textwrap.dedent(
    """
    import sys
    print("reading the input")
    with open("/opt/ml/output/message", "w") as message:
        message.write("bad input: column 'price' is missing")
    print("giving up", file=sys.stderr)
    sys.exit(3)
    """
)
SLEEPING_SCRIPT = "import time\nprint('started', flush=True)\ntime.sleep(600)\n"


@pytest.fixture
def logs(emulator: EmulatorProcess):
    return boto3.client("logs", endpoint_url=emulator.url, region_name="us-east-1")


def put_script(s3, name: str, text: str) -> str:
    ensure_bucket(s3, BUCKET)
    key = f"code/{unique(name)}/{name}"
    s3.put_object(Bucket=BUCKET, Key=key, Body=text.encode())
    return f"s3://{BUCKET}/{key}"


def put_numbers(s3, prefix: str, files: dict[str, list[int]]) -> str:
    ensure_bucket(s3, BUCKET)
    for name, numbers in files.items():
        s3.put_object(Bucket=BUCKET, Key=f"{prefix}/{name}", Body="\n".join(map(str, numbers)).encode())
    return f"s3://{BUCKET}/{prefix}/"


def s3_json(s3, uri: str) -> dict:
    bucket, key = uri[len("s3://") :].split("/", 1)
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def sum_job(s3, name: str, numbers: dict[str, list[int]], **kwargs) -> dict:
    data = put_numbers(s3, f"in/{name}", numbers)
    return processing_request(
        name,
        code_uri=put_script(s3, "sum.py", SUM_SCRIPT),
        script="sum.py",
        inputs=[s3_input("data", data, "/opt/ml/processing/input/data")],
        outputs=[s3_output("result", f"s3://{BUCKET}/out/{name}", "/opt/ml/processing/output")],
        **kwargs,
    )


def log_messages(logs, name: str) -> list[str]:
    streams = logs.describe_log_streams(logGroupName=LOG_GROUP, logStreamNamePrefix=f"{name}/")["logStreams"]
    assert len(streams) == 1 and streams[0]["logStreamName"].startswith(f"{name}/algo-1-")
    events = logs.get_log_events(logGroupName=LOG_GROUP, logStreamName=streams[0]["logStreamName"])["events"]
    return [e["message"] for e in events]


def test_a_script_with_hard_coded_paths_runs_unchanged(emulator, sm, s3, logs) -> None:
    name = unique("proc-sum")
    request = sum_job(s3, name, {"a.txt": [1, 2, 3], "b.txt": [10]}, arguments=["--flag", "x y"])
    request["Environment"] = {"JOB_LABEL": "alone"}
    arn = sm.create_processing_job(**request)["ProcessingJobArn"]
    assert arn == f"arn:aws:sagemaker:us-east-1:123456789012:processing-job/{name}"

    job = wait_processing(sm, name)
    assert job["ProcessingJobStatus"] == "Completed", job.get("FailureReason")
    assert job["ProcessingStartTime"] <= job["ProcessingEndTime"]
    assert "FailureReason" not in job and "ExitMessage" not in job
    # The echo has AWS's defaults filled in.
    data_input = next(i for i in job["ProcessingInputs"] if i["InputName"] == "data")["S3Input"]
    assert data_input["S3DataDistributionType"] == "FullyReplicated" and data_input["S3InputMode"] == "File"

    result = s3_json(s3, f"s3://{BUCKET}/out/{name}/result.json")
    assert result["seen"] == ["a.txt", "b.txt"] and result["total"] == 16
    assert result["job"] == name and result["hosts"] == ["algo-1"] and result["label"] == "alone"
    assert result["argv"] == ["--flag", "x y"]
    assert Path(result["python"]).name.startswith("python")  # python3 ran the emulator's interpreter
    nested = s3.get_object(Bucket=BUCKET, Key=f"out/{name}/nested/deeper/part.txt")["Body"].read()
    assert nested == b"16"
    assert any("processed ['a.txt', 'b.txt'] 16" in line for line in log_messages(logs, name))

    summaries = sm.list_processing_jobs(NameContains=name)["ProcessingJobSummaries"]
    assert [(s["ProcessingJobName"], s["ProcessingJobStatus"]) for s in summaries] == [(name, "Completed")]


def test_two_jobs_at_once_never_see_each_others_files(emulator, sm, s3, tmp_path) -> None:
    health = emulator.health()
    if health["processing_isolation"] != "namespace":
        pytest.skip("private mount namespaces are not available here (the lock fallback is tested separately)")
    rendezvous = tmp_path / "rendezvous"
    rendezvous.mkdir()
    names = [unique("proc-left"), unique("proc-right")]
    numbers = [{"left-1.txt": [1, 1], "left-2.txt": [2]}, {"right.txt": [100, 200]}]
    for label, name, files in zip(("left", "right"), names, numbers, strict=True):
        request = sum_job(s3, name, files)
        request["Environment"] = {"JOB_LABEL": label, "RENDEZVOUS": str(rendezvous)}
        sm.create_processing_job(**request)
    jobs = [wait_processing(sm, name) for name in names]
    assert [j["ProcessingJobStatus"] for j in jobs] == ["Completed", "Completed"], [
        j.get("FailureReason") for j in jobs
    ]
    left, right = (s3_json(s3, f"s3://{BUCKET}/out/{name}/result.json") for name in names)
    assert left["seen"] == ["left-1.txt", "left-2.txt"] and left["total"] == 4 and left["job"] == names[0]
    assert right["seen"] == ["right.txt"] and right["total"] == 300 and right["job"] == names[1]
    assert sorted(os.listdir(rendezvous)) == ["left", "right"]
    # Nothing leaked onto the machine's own /opt/ml.
    assert not Path("/opt/ml/processing").exists()


def test_a_failing_script_ends_failed_with_its_exit_message(emulator, sm, s3, logs) -> None:
    name = unique("proc-fail")
    request = processing_request(
        name,
        code_uri=put_script(s3, "fail.py", FAILING_SCRIPT),
        script="fail.py",
        outputs=[s3_output("out", f"s3://{BUCKET}/out/{name}", "/opt/ml/processing/output")],
    )
    sm.create_processing_job(**request)
    with pytest.raises(WaiterError) as failed:
        sm.get_waiter("processing_job_completed_or_stopped").wait(
            ProcessingJobName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 600}
        )
    assert failed.value.last_response["ProcessingJobStatus"] == "Failed"
    job = sm.describe_processing_job(ProcessingJobName=name)
    assert job["ExitMessage"] == "bad input: column 'price' is missing"
    assert job["FailureReason"].startswith("AlgorithmError: See job logs for more information")
    assert "exited with code 3" in job["FailureReason"] and "giving up" in job["FailureReason"]
    assert "ProcessingEndTime" in job
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix=f"out/{name}").get("KeyCount") == 0  # no upload on failure
    messages = log_messages(logs, name)
    assert "reading the input" in messages and "giving up" in messages
    summary = sm.list_processing_jobs(NameContains=name)["ProcessingJobSummaries"][0]
    assert summary["ExitMessage"] == job["ExitMessage"] and summary["FailureReason"] == job["FailureReason"]


def test_the_seed_preprocessing_script_splits_the_churn_data(emulator, sm, s3) -> None:
    name = unique("churn-preprocessing")
    ensure_bucket(s3, BUCKET)
    s3.put_object(Bucket=BUCKET, Key=f"{name}/raw/raw_churn.csv", Body=churn_csv(1000))
    request = processing_request(
        name,
        code_uri=put_script(s3, "preprocessing.py", CHURN_SCRIPT.read_text()),
        script="preprocessing.py",
        image=SKLEARN_IMAGE.format(version="1.2-1"),
        inputs=[s3_input("input-1", f"s3://{BUCKET}/{name}/raw/raw_churn.csv", "/opt/ml/processing/input")],
        # As in the notebook: both outputs go to the same S3 prefix.
        outputs=[
            s3_output("train.csv", f"s3://{BUCKET}/{name}/processing", "/opt/ml/processing/train"),
            s3_output("test.csv", f"s3://{BUCKET}/{name}/processing", "/opt/ml/processing/test"),
        ],
        arguments=["--train-test-split-ratio", "0.2"],
    )
    sm.create_processing_job(**request)
    job = wait_processing(sm, name)
    assert job["ProcessingJobStatus"] == "Completed", job.get("FailureReason")
    frames = {}
    for part in ("train", "test"):
        body = s3.get_object(Bucket=BUCKET, Key=f"{name}/processing/{part}.csv")["Body"].read()
        frames[part] = pd.read_csv(io.BytesIO(body))
    assert len(frames["train"]) == 800 and len(frames["test"]) == 200
    assert list(frames["train"].columns) == list(frames["test"].columns)
    assert frames["train"].columns[0] == "churn" and set(frames["train"]["churn"]) == {0, 1}
    assert "Int'l Plan_yes" in frames["train"].columns and not frames["train"].isna().any().any()


def test_the_unmodified_notebook_script_fails_on_its_own_old_scikit_learn_calls(emulator, sm, s3) -> None:
    # The 0.20-era spelling the notebook uses; this stack has a newer scikit-learn, as the issue says it may.
    old = CHURN_SCRIPT.read_text().replace(
        "make_column_transformer((num_proc, numerical_cols), (cat_proc, categorical_cols))",
        "make_column_transformer((numerical_cols, num_proc), (categorical_cols, cat_proc))",
    )
    name = unique("churn-old-api")
    ensure_bucket(s3, BUCKET)
    s3.put_object(Bucket=BUCKET, Key=f"{name}/raw_churn.csv", Body=churn_csv(200))
    request = processing_request(
        name,
        code_uri=put_script(s3, "preprocessing.py", old),
        script="preprocessing.py",
        image=SKLEARN_IMAGE.format(version="0.20.0"),
        inputs=[s3_input("input-1", f"s3://{BUCKET}/{name}/", "/opt/ml/processing/input")],
        arguments=["--train-test-split-ratio", "0.2"],
    )
    sm.create_processing_job(**request)
    job = wait_processing(sm, name)
    assert job["ProcessingJobStatus"] == "Failed"
    assert "exited with code 1" in job["FailureReason"]
    assert "Error" in job["FailureReason"].split("last output:", 1)[1]  # the script's own traceback line


def test_stop_and_max_runtime(emulator, sm, s3, logs) -> None:
    stopped = unique("proc-stop")
    timed_out = unique("proc-timeout")
    code = put_script(s3, "sleep.py", SLEEPING_SCRIPT)
    sm.create_processing_job(**processing_request(stopped, code_uri=code, script="sleep.py"))
    sm.create_processing_job(**processing_request(timed_out, code_uri=code, script="sleep.py", max_runtime=2))
    deadline = time.monotonic() + 120
    while "started" not in _messages_or_empty(logs, stopped):
        assert time.monotonic() < deadline, "the sleeping script never started"
        time.sleep(0.1)
    sm.stop_processing_job(ProcessingJobName=stopped)
    assert sm.describe_processing_job(ProcessingJobName=stopped)["ProcessingJobStatus"] in ("Stopping", "Stopped")
    job = wait_processing(sm, stopped)
    assert job["ProcessingJobStatus"] == "Stopped" and "FailureReason" not in job
    job = wait_processing(sm, timed_out)
    assert job["ProcessingJobStatus"] == "Stopped"
    assert job["FailureReason"] == "Job exceeded MaxRuntimeInSeconds provided"
    with pytest.raises(ClientError) as again:
        sm.stop_processing_job(ProcessingJobName=stopped)
    assert again.value.response["Error"]["Code"] == "ValidationException"


def _messages_or_empty(logs, name: str) -> list[str]:
    try:
        return log_messages(logs, name)
    except (ClientError, AssertionError):
        return []


def test_a_missing_job_is_a_validation_exception_the_waiter_stops_on(sm) -> None:
    with pytest.raises(ClientError) as missing:
        sm.describe_processing_job(ProcessingJobName="no-such-processing-job")
    assert missing.value.response["Error"]["Code"] == "ValidationException"
    assert "no-such-processing-job" in missing.value.response["Error"]["Message"]
    with pytest.raises(WaiterError) as waited:
        sm.get_waiter("processing_job_completed_or_stopped").wait(
            ProcessingJobName="no-such-processing-job", WaiterConfig={"Delay": 0.1, "MaxAttempts": 3}
        )
    assert "ValidationException" in str(waited.value)
    with pytest.raises(ClientError) as stop_missing:
        sm.stop_processing_job(ProcessingJobName="no-such-processing-job")
    assert stop_missing.value.response["Error"]["Code"] == "ValidationException"


@pytest.mark.parametrize(
    ("change", "code", "words"),
    [
        (lambda r: r.update(ProcessingJobName="bad_name"), "ValidationException", "processingJobName"),
        (
            lambda r: r["ProcessingInputs"][0]["S3Input"].update(LocalPath="/tmp/elsewhere"),
            "ValidationException",
            "/opt/ml/processing/",
        ),
        (
            lambda r: r["ProcessingInputs"][0]["S3Input"].update(LocalPath="/opt/ml/processing/../../../etc"),
            "ValidationException",
            "/opt/ml/processing/",
        ),
        (lambda r: r["AppSpecification"].update(ImageUri="nginx:latest"), "ValidationException", "nginx:latest"),
        (lambda r: r["AppSpecification"].pop("ContainerEntrypoint"), "ValidationException", "ContainerEntrypoint"),
        (
            lambda r: r["ProcessingResources"]["ClusterConfig"].update(InstanceCount=2),
            "ValidationException",
            "InstanceCount 2",
        ),
        (lambda r: r["ProcessingInputs"][0]["S3Input"].update(S3DataType="Bogus"), "ValidationException", "Bogus"),
        (lambda r: r.pop("RoleArn"), "ParamValidationError", "RoleArn"),
    ],
    ids=["name", "local-path", "climbing-local-path", "image", "no-command", "instances", "enum", "role"],
)
def test_bad_requests_are_refused_before_anything_is_created(sm, s3, change, code, words) -> None:
    name = unique("proc-bad")
    request = processing_request(name, code_uri=f"s3://{BUCKET}/code/x.py", script="x.py")
    change(request)
    with pytest.raises(Exception) as refused:
        sm.create_processing_job(**request)
    error = refused.value
    if isinstance(error, ClientError):
        assert error.response["Error"]["Code"] == code
        assert words in error.response["Error"]["Message"], error.response["Error"]["Message"]
    else:
        assert type(error).__name__ == code and words in str(error)
    assert not sm.list_processing_jobs(NameContains=name)["ProcessingJobSummaries"]


def test_duplicate_names_and_every_sklearn_image(sm, s3) -> None:
    code = put_script(s3, "ok.py", "print('ok')\n")
    for version in ("0.20.0", "0.23-1", "1.0-1", "1.2-1", "1.4-2", "1.4-2-py312", "1.9-0"):
        name = unique("proc-image")
        image = SKLEARN_IMAGE.format(version=version)
        sm.create_processing_job(**processing_request(name, code_uri=code, script="ok.py", image=image))
        assert wait_processing(sm, name)["ProcessingJobStatus"] == "Completed", version
    name = unique("proc-python")
    sm.create_processing_job(**processing_request(name, code_uri=code, script="ok.py", image="python:3.11-slim"))
    with pytest.raises(ClientError) as duplicate:
        sm.create_processing_job(**processing_request(name, code_uri=code, script="ok.py", image="python:3.11"))
    assert duplicate.value.response["Error"]["Code"] == "ResourceInUse"
    assert wait_processing(sm, name)["ProcessingJobStatus"] == "Completed"


def test_processing_failure_fault(emulator, sm, s3, clear_faults) -> None:
    inject_fault(emulator, {"type": "processing_failure", "name_contains": "proc-faulted", "count": 1})
    code = put_script(s3, "ok.py", "print('ok')\n")
    name = unique("proc-faulted")
    sm.create_processing_job(**processing_request(name, code_uri=code, script="ok.py"))
    job = wait_processing(sm, name)
    assert job["ProcessingJobStatus"] == "Failed"
    assert job["FailureReason"] == "AlgorithmError: injected processing failure (emulator fault)"
    again = unique("proc-faulted")  # the count is spent
    sm.create_processing_job(**processing_request(again, code_uri=code, script="ok.py"))
    assert wait_processing(sm, again)["ProcessingJobStatus"] == "Completed"
