"""Script-mode serving with plain boto3: a scikit-learn image whose model names the user's inference script.

A RandomForest trained here (joblib in model.tar.gz) is served through the seed notebook's ``sklearn_rf.py``
(``model_fn`` only: the container's default input/predict/output functions do the rest) and through a script
with its own handlers. The user's code runs in serving worker processes, never in the server.
"""

from __future__ import annotations

import io
import json
import os
import re
import tarfile
import time
from pathlib import Path
from typing import Any

import boto3
import joblib
import numpy as np
import pytest
from botocore.exceptions import ClientError
from sklearn.ensemble import RandomForestClassifier

from include.sagemaker_emulator.process import EmulatorProcess
from tests.emulator.serving_helpers import ROLE, create_config, deploy, ensure_bucket, wait_status

SCRIPTS = Path(__file__).with_name("script_mode_scripts")
SKLEARN_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
BUCKET = "script-mode-serving"
REGION = "us-east-1"


def _tar(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _script(name: str) -> bytes:
    return (SCRIPTS / name).read_bytes()


@pytest.fixture(scope="module")
def forest() -> dict[str, Any]:
    """A RandomForest trained here on two separable classes, saved as the seed's training script saves it."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(200, 4)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.float64)
    model = RandomForestClassifier(n_estimators=20, random_state=0).fit(x, y)
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    return {"model": model, "x": x, "joblib": buffer.getvalue()}


def _upload(s3: Any, key: str, data: bytes) -> str:
    ensure_bucket(s3, BUCKET)
    s3.put_object(Bucket=BUCKET, Key=key, Body=data)
    return f"s3://{BUCKET}/{key}"


def _script_model(
    sm: Any, s3: Any, name: str, forest: dict[str, Any], program: str, *, code_in_model: bool = False
) -> None:
    """CreateModel as the SageMaker SDK does: sourcedir.tar.gz in S3, or the code repacked under code/."""
    model_files = {"model.joblib": forest["joblib"]}
    environment = {"SAGEMAKER_PROGRAM": program, "SAGEMAKER_REGION": REGION, "SAGEMAKER_CONTAINER_LOG_LEVEL": "20"}
    if code_in_model:
        model_files[f"code/{program}"] = _script(program)
        environment["SAGEMAKER_SUBMIT_DIRECTORY"] = "/opt/ml/model/code"
    else:
        environment["SAGEMAKER_SUBMIT_DIRECTORY"] = _upload(
            s3, f"{name}/sourcedir.tar.gz", _tar({program: _script(program)})
        )
    data_url = _upload(s3, f"{name}/model.tar.gz", _tar(model_files))
    sm.create_model(
        ModelName=name,
        PrimaryContainer={"Image": SKLEARN_IMAGE, "ModelDataUrl": data_url, "Environment": environment},
        ExecutionRoleArn=ROLE,
    )


def _endpoint(sm: Any, s3: Any, name: str, forest: dict[str, Any], program: str, **kwargs: Any) -> dict[str, Any]:
    _script_model(sm, s3, name, forest, program, **kwargs)
    create_config(sm, name, [("AllTraffic", name, 1.0)])
    return deploy(sm, name, name)


def _log_text(emulator: EmulatorProcess, endpoint: str, needle: str, timeout: float = 15.0) -> str:
    """The endpoint's CloudWatch log once it contains ``needle`` (logs ship in batches)."""
    logs = boto3.client("logs", endpoint_url=emulator.url, region_name=REGION)
    group = f"/aws/sagemaker/Endpoints/{endpoint}"
    deadline = time.monotonic() + timeout
    text = ""
    while needle not in text:
        assert time.monotonic() < deadline, f"{needle!r} never reached {group}:\n{text}"
        time.sleep(0.3)
        try:
            streams = logs.describe_log_streams(logGroupName=group)["logStreams"]
        except logs.exceptions.ResourceNotFoundException:
            continue
        text = "\n".join(
            event["message"]
            for stream in streams
            for event in logs.get_log_events(logGroupName=group, logStreamName=stream["logStreamName"])["events"]
        )
    return text


def _worker_pids(text: str) -> list[int]:
    return [int(p) for group in re.findall(r"\(workers ([\d, ]+)\)", text) for p in group.split(", ")]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def _wait_gone(pids: list[int], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while any(_alive(p) for p in pids):
        assert time.monotonic() < deadline, f"workers still running: {[p for p in pids if _alive(p)]}"
        time.sleep(0.1)


def _script_workers_under(data_dir: Path) -> list[int]:
    """Pids of serving workers whose command line names a directory below ``data_dir``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        ours = any(a.endswith(b"script_worker.py") for a in argv) and any(str(data_dir).encode() in a for a in argv)
        if ours and _alive(int(proc.name)):
            found.append(int(proc.name))
    return found


def _model_error(runtime: Any, endpoint: str, body: bytes | str, content_type: str) -> dict[str, Any]:
    with pytest.raises(ClientError) as caught:
        runtime.invoke_endpoint(EndpointName=endpoint, Body=body, ContentType=content_type)
    error = caught.value.response
    assert error["Error"]["Code"] == "ModelError", error
    return error


# ------------------------------------------------------------------------------------------------- tests
def test_seed_script_serves_csv_json_and_npy_with_the_default_handlers(emulator, sm, s3, runtime, forest):
    described = _endpoint(sm, s3, "sm-rf-seed", forest, "sklearn_rf.py")
    assert described["EndpointStatus"] == "InService", described
    rows, expected = forest["x"][:5], forest["model"].predict(forest["x"][:5])

    csv_body = "\n".join(",".join(f"{v:.9g}" for v in row) for row in rows)
    answer = runtime.invoke_endpoint(EndpointName="sm-rf-seed", Body=csv_body, ContentType="text/csv")
    # No Accept: SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT, application/json.
    assert answer["ContentType"] == "application/json"
    assert json.loads(answer["Body"].read()) == expected.tolist()

    answer = runtime.invoke_endpoint(
        EndpointName="sm-rf-seed", Body=json.dumps(rows.tolist()), ContentType="application/json", Accept="text/csv"
    )
    assert answer["ContentType"] == "text/csv"
    # array_to_csv: a 1-D prediction is one value per line, with a trailing newline.
    assert answer["Body"].read().decode() == "".join(f"{v}\n" for v in expected)

    npy = io.BytesIO()
    np.save(npy, rows)
    answer = runtime.invoke_endpoint(
        EndpointName="sm-rf-seed", Body=npy.getvalue(), ContentType="application/x-npy", Accept="application/x-npy"
    )
    assert np.array_equal(np.load(io.BytesIO(answer["Body"].read())), expected)


def test_default_handlers_refuse_what_the_container_refuses(emulator, sm, s3, runtime, forest):
    _endpoint(sm, s3, "sm-rf-refuse", forest, "sklearn_rf.py")
    error = _model_error(runtime, "sm-rf-refuse", "<rows/>", "application/xml")
    assert error["OriginalStatusCode"] == 415
    assert json.loads(error["OriginalMessage"])["error"] == "UnsupportedFormatError"

    with pytest.raises(ClientError) as caught:
        runtime.invoke_endpoint(
            EndpointName="sm-rf-refuse", Body="[[1,2,3,4]]", ContentType="application/json", Accept="text/html"
        )
    assert caught.value.response["OriginalStatusCode"] == 406

    # The container squeezes a single CSV row to 1-D, which scikit-learn's predict refuses: a 500 from the model.
    error = _model_error(runtime, "sm-rf-refuse", "1,2,3,4", "text/csv")
    assert error["OriginalStatusCode"] == 500
    assert "2D array" in error["OriginalMessage"]


def test_custom_handlers_from_the_code_packed_in_model_tar_gz(emulator, sm, s3, runtime, forest):
    _endpoint(sm, s3, "sm-rf-custom", forest, "custom_handlers.py", code_in_model=True)
    rows = forest["x"][:3]
    body = "\n".join("|".join(f"{v:.9g}" for v in row) for row in rows)
    answer = runtime.invoke_endpoint(EndpointName="sm-rf-custom", Body=body, ContentType="text/plain")
    assert answer["ContentType"] == "application/vnd.custom+json"
    result = json.loads(answer["Body"].read())
    assert result["predictions"]["labels"] == forest["model"].predict(rows).tolist()
    assert np.allclose(result["predictions"]["probabilities"], forest["model"].predict_proba(rows))
    assert result["pid"] != emulator.proc.pid  # the user's code ran in a worker, not in the server


def test_user_exception_is_a_model_error_with_the_traceback_in_cloudwatch(emulator, sm, s3, runtime, forest):
    _endpoint(sm, s3, "sm-rf-boom", forest, "custom_handlers.py", code_in_model=True)
    error = _model_error(runtime, "sm-rf-boom", "boom", "text/plain")
    assert error["OriginalStatusCode"] == 500
    original = json.loads(error["OriginalMessage"])
    assert original["error"] == "RuntimeError" and "boom: input_fn refused" in original["error-message"]
    assert "/aws/sagemaker/Endpoints/sm-rf-boom" in error["LogStreamArn"]
    text = _log_text(emulator, "sm-rf-boom", "RuntimeError: boom")
    assert "Traceback (most recent call last)" in text and 'custom_handlers.py", line' in text
    # The worker survived its user's exception and still serves.
    answer = runtime.invoke_endpoint(EndpointName="sm-rf-boom", Body="1|1|1|1", ContentType="text/plain")
    assert json.loads(answer["Body"].read())["predictions"]["labels"] == [1.0]


def test_a_crashed_worker_is_restarted(emulator, sm, s3, runtime, forest):
    _endpoint(sm, s3, "sm-rf-crash", forest, "custom_handlers.py", code_in_model=True)
    first = json.loads(
        runtime.invoke_endpoint(EndpointName="sm-rf-crash", Body="1|1|1|1", ContentType="text/plain")["Body"].read()
    )["pid"]
    error = _model_error(runtime, "sm-rf-crash", "crash", "text/plain")
    assert error["OriginalStatusCode"] == 500 and "exit code 3" in error["OriginalMessage"]
    _wait_gone([first])
    # The next request waits for the replacement worker, which loaded the model again with model_fn.
    answer = runtime.invoke_endpoint(EndpointName="sm-rf-crash", Body="1|1|1|1", ContentType="text/plain")
    second = json.loads(answer["Body"].read())
    assert second["predictions"]["labels"] == [1.0] and second["pid"] != first
    assert "starting a new worker" in _log_text(emulator, "sm-rf-crash", f"Worker {first} exited with exit code 3")


@pytest.mark.parametrize(
    ("program", "source", "cause"),
    [
        ("no_model_fn.py", "no_model_fn.py", "defines no model_fn(model_dir)"),
        # The seed notebook's script as written: sklearn.externals.joblib is gone from today's scikit-learn.
        ("sklearn_rf.py", "sklearn_rf_seed.py", "cannot import name 'joblib' from 'sklearn.externals'"),
    ],
)
def test_a_script_that_cannot_load_fails_the_endpoint_saying_why(emulator, sm, s3, forest, program, source, cause):
    name = f"sm-broken-{source.removesuffix('.py').replace('_', '-')}"
    code = _upload(s3, f"{name}/sourcedir.tar.gz", _tar({program: _script(source)}))
    data_url = _upload(s3, f"{name}/model.tar.gz", _tar({"model.joblib": forest["joblib"]}))
    sm.create_model(
        ModelName=name,
        PrimaryContainer={
            "Image": SKLEARN_IMAGE,
            "ModelDataUrl": data_url,
            "Environment": {"SAGEMAKER_PROGRAM": program, "SAGEMAKER_SUBMIT_DIRECTORY": code},
        },
        ExecutionRoleArn=ROLE,
    )
    create_config(sm, name, [("AllTraffic", name, 1.0)])
    described = deploy(sm, name, name)
    assert described["EndpointStatus"] == "Failed"
    assert "did not pass the ping health check" in described["FailureReason"]
    assert cause in described["FailureReason"]
    assert cause in _log_text(emulator, name, cause)


@pytest.mark.parametrize(
    ("environment", "mode", "message"),
    [
        ({}, "SingleModel", "Environment.SAGEMAKER_PROGRAM is required"),
        ({"SAGEMAKER_PROGRAM": "../escape.py"}, "SingleModel", "relative path of a .py file"),
        ({"SAGEMAKER_PROGRAM": "a.py", "SAGEMAKER_SUBMIT_DIRECTORY": "/tmp/code"}, "SingleModel", "S3 URI"),
        ({"SAGEMAKER_PROGRAM": "a.py"}, "MultiModel", "Mode MultiModel is not supported"),
    ],
)
def test_create_model_refuses_script_settings_it_cannot_serve(sm, environment, mode, message):
    with pytest.raises(ClientError) as caught:
        sm.create_model(
            ModelName="sm-bad-script",
            PrimaryContainer={
                "Image": SKLEARN_IMAGE,
                "Mode": mode,
                "ModelDataUrl": f"s3://{BUCKET}/m/",
                "Environment": environment,
            },
            ExecutionRoleArn=ROLE,
        )
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert message in caught.value.response["Error"]["Message"]
    with pytest.raises(ClientError):
        sm.describe_model(ModelName="sm-bad-script")


def test_update_and_delete_stop_the_old_workers(emulator, sm, s3, runtime, forest):
    _endpoint(sm, s3, "sm-rf-bluegreen", forest, "sklearn_rf.py")
    blue = _worker_pids(_log_text(emulator, "sm-rf-bluegreen", "(workers "))
    assert blue and all(_alive(p) for p in blue)

    _script_model(sm, s3, "sm-rf-green", forest, "custom_handlers.py", code_in_model=True)
    create_config(sm, "sm-rf-green", [("AllTraffic", "sm-rf-green", 1.0)])
    sm.update_endpoint(EndpointName="sm-rf-bluegreen", EndpointConfigName="sm-rf-green")
    described = wait_status(sm, "sm-rf-bluegreen", ("InService", "Failed"), timeout=60)
    assert described["EndpointConfigName"] == "sm-rf-green", described
    answer = runtime.invoke_endpoint(EndpointName="sm-rf-bluegreen", Body="1|1|1|1", ContentType="text/plain")
    green = json.loads(answer["Body"].read())["pid"]
    _wait_gone(blue)

    sm.delete_endpoint(EndpointName="sm-rf-bluegreen")
    _wait_gone([green])


def test_server_stop_and_kill_leave_no_worker_and_a_restart_serves_again(tmp_path, forest):
    data_dir = tmp_path / "data"
    with EmulatorProcess(data_dir=data_dir) as emu:
        clients = {s: boto3.client(s, endpoint_url=emu.url, region_name=REGION) for s in ("sagemaker", "s3")}
        _endpoint(clients["sagemaker"], clients["s3"], "sm-rf-lifeline", forest, "sklearn_rf.py")
        workers = _script_workers_under(data_dir)
        assert len(workers) == 1, workers
    _wait_gone(workers)  # a clean stop

    # The deployed endpoint serves from its private copies, as on AWS: the S3 objects may go.
    with EmulatorProcess(data_dir=data_dir) as emu:
        s3 = boto3.client("s3", endpoint_url=emu.url, region_name=REGION)
        for key in ("sm-rf-lifeline/model.tar.gz", "sm-rf-lifeline/sourcedir.tar.gz"):
            s3.delete_object(Bucket=BUCKET, Key=key)
    emu = EmulatorProcess(data_dir=data_dir).start()
    try:
        wait_status(boto3.client("sagemaker", endpoint_url=emu.url, region_name=REGION), "sm-rf-lifeline", "InService")
        runtime = boto3.client("sagemaker-runtime", endpoint_url=emu.url, region_name=REGION)
        rows = forest["x"][:2]
        answer = runtime.invoke_endpoint(
            EndpointName="sm-rf-lifeline", Body=json.dumps(rows.tolist()), ContentType="application/json"
        )
        assert json.loads(answer["Body"].read()) == forest["model"].predict(rows).tolist()
        restored = _script_workers_under(data_dir)
        assert len(restored) == 1 and restored != workers
    finally:
        emu.kill()  # kill -9: no shutdown code runs, the workers' lifeline ends them
    _wait_gone(restored)
    assert os.path.isdir(data_dir)


def test_predictor_for_model_serves_batch_transform_from_a_worker(tmp_path, forest):
    """The object batch transform predicts through: same handlers, SAGEMAKER_BATCH=true, code from model/code."""
    from include.sagemaker_emulator.serving import predictor_for_model

    model_dir = tmp_path / "model"
    (model_dir / "code").mkdir(parents=True)
    (model_dir / "model.joblib").write_bytes(forest["joblib"])
    (model_dir / "code" / "custom_handlers.py").write_bytes(_script("custom_handlers.py"))
    record = {
        "ModelName": "batch-model",
        "PrimaryContainer": {
            "Image": SKLEARN_IMAGE,
            "ModelDataUrl": f"s3://{BUCKET}/batch/model.tar.gz",
            "Environment": {"SAGEMAKER_PROGRAM": "custom_handlers.py"},
        },
    }
    lines: list[str] = []
    predictor = predictor_for_model(record, model_dir, batch=True, log_line=lines.append)
    try:
        rows = forest["x"][:4]
        body = "\n".join("|".join(f"{v:.9g}" for v in row) for row in rows).encode()
        out, content_type = predictor.invoke(body, "text/plain", None, False)
        answer = json.loads(out)
        assert content_type == "application/vnd.custom+json"
        assert answer["predictions"]["labels"] == forest["model"].predict(rows).tolist()
        assert answer["batch"] == "true" and answer["pid"] in predictor.pids and answer["pid"] != os.getpid()
    finally:
        predictor.close()
    _wait_gone([answer["pid"]])
    assert any("ready" in line for line in lines)


def test_a_model_trained_by_the_seed_script_is_served_by_the_same_script(emulator, sm, s3, runtime, tmp_path):
    """The notebook's path: a script-mode training job with sklearn_rf.py, then its model.tar.gz and the same
    sourcedir.tar.gz deployed, as SKLearn(...).fit() then .deploy() do."""
    from tests.emulator.test_script_mode_training import script_request

    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 5))
    rows = np.column_stack([(x[:, 0] - x[:, 2] > 0).astype(int), x])
    csv = "\n".join(",".join(f"{v:.6g}" for v in row) for row in rows).encode()
    train = _upload(s3, "e2e/train/train.csv", csv)
    code = _upload(s3, "e2e/source/sourcedir.tar.gz", _tar({"sklearn_rf.py": _script("sklearn_rf.py")}))
    request = script_request("sm-rf-e2e", "sklearn_rf.py", code, {"train": train.rsplit("/", 1)[0] + "/"}, {})
    request["HyperParameters"]["n_estimators"] = "15"
    request["OutputDataConfig"]["S3OutputPath"] = f"s3://{BUCKET}/e2e/output"
    sm.create_training_job(**request)
    sm.get_waiter("training_job_completed_or_stopped").wait(
        TrainingJobName="sm-rf-e2e", WaiterConfig={"Delay": 1, "MaxAttempts": 180}
    )
    job = sm.describe_training_job(TrainingJobName="sm-rf-e2e")
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    artifact = job["ModelArtifacts"]["S3ModelArtifacts"]

    sm.create_model(
        ModelName="sm-rf-e2e",
        PrimaryContainer={
            "Image": request["AlgorithmSpecification"]["TrainingImage"],
            "ModelDataUrl": artifact,
            "Environment": {"SAGEMAKER_PROGRAM": "sklearn_rf.py", "SAGEMAKER_SUBMIT_DIRECTORY": code},
        },
        ExecutionRoleArn=ROLE,
    )
    create_config(sm, "sm-rf-e2e", [("AllTraffic", "sm-rf-e2e", 1.0)])
    assert deploy(sm, "sm-rf-e2e", "sm-rf-e2e")["EndpointStatus"] == "InService"

    bucket, key = artifact[len("s3://") :].split("/", 1)
    with tarfile.open(fileobj=io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read())) as tar:
        trained = joblib.load(io.BytesIO(tar.extractfile("model.joblib").read()))
    assert trained.n_estimators == 15  # the hyperparameter reached the script
    features = x[:20]
    body = "\n".join(",".join(f"{v:.6g}" for v in row) for row in features)
    answer = runtime.invoke_endpoint(EndpointName="sm-rf-e2e", Body=body, ContentType="text/csv")
    expected = trained.predict(np.array([[float(f"{v:.6g}") for v in row] for row in features], dtype=np.float32))
    assert json.loads(answer["Body"].read()) == expected.tolist()
