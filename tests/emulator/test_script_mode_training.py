"""Script-mode training with plain boto3 and botocore's ``training_job_completed_or_stopped`` waiter: the seed
overview notebook's ``sklearn_rf.py`` RandomForest in the scikit-learn image, the training toolkit's contract
(hyperparameters as ``--key value``, ``SM_*`` variables, ``/opt/ml/input/config/*.json``, one process per host),
a failing script, requirements that are not installed, and the notebook's built-in XGBoost 0.90-2 job."""

from __future__ import annotations

import contextlib
import io
import json
import sys
import tarfile
import time
from pathlib import Path

import joblib
import numpy as np
import pytest
from botocore.exceptions import ClientError, WaiterError

from include.sagemaker_images import image_uri
from tests.emulator.helpers import ROLE_ARN, read_model_tar, unique

BUCKET = "script-mode-tests"
SCRIPTS = Path(__file__).parent / "script_mode_scripts"
SKLEARN_IMAGE = image_uri("sklearn", "us-east-1", "0.20.0", py_version="py3")  # the notebook's default image
WAIT = {"Delay": 1, "MaxAttempts": 120}


def _rows(n: int, features: int, seed: int) -> np.ndarray:
    """Label-first rows of a learnable binary problem (the churn data's shape: 0/1 label, numeric features)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features))
    label = (x[:, 0] + x[:, 1] - 0.5 * x[:, 2] + 0.3 * rng.normal(size=n) > 0).astype(int)
    return np.column_stack([label, x])


def _csv(rows: np.ndarray) -> bytes:
    buffer = io.StringIO()
    np.savetxt(buffer, rows, delimiter=",", fmt="%.6g")
    return buffer.getvalue().encode()


def _sourcedir(files: dict[str, str | bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, text in files.items():
            data = text.encode() if isinstance(text, str) else text
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture(scope="module")
def data(emulator) -> dict[str, str]:
    import boto3

    s3 = boto3.client("s3", endpoint_url=emulator.url, region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    rows = _rows(600, 8, seed=1)
    s3.put_object(Bucket=BUCKET, Key="data/train/part-0.csv", Body=_csv(rows[:300]))
    s3.put_object(Bucket=BUCKET, Key="data/train/part-1.csv", Body=_csv(rows[300:]))
    s3.put_object(Bucket=BUCKET, Key="data/validation/validation.csv", Body=_csv(_rows(200, 8, seed=2)))
    return {"train": f"s3://{BUCKET}/data/train/", "validation": f"s3://{BUCKET}/data/validation/"}


def _upload_source(s3, name: str, files: dict[str, str | bytes]) -> str:
    key = f"code/{name}/source/sourcedir.tar.gz"  # where the SDK puts it: <code_location>/<job>/source/
    s3.put_object(Bucket=BUCKET, Key=key, Body=_sourcedir(files))
    return f"s3://{BUCKET}/{key}"


def script_request(
    name: str,
    program: str,
    submit_directory: str,
    channels: dict[str, str],
    hyperparameters: dict,
    *,
    image: str = SKLEARN_IMAGE,
    instances: int = 1,
    distribution: str = "FullyReplicated",
) -> dict:
    """The request the SageMaker Python SDK's SKLearn estimator sends: every value JSON-encoded, plus its
    sagemaker_* keys."""
    encoded = {key: json.dumps(value) for key, value in hyperparameters.items()}
    encoded.update(
        {
            "sagemaker_program": json.dumps(program),
            "sagemaker_submit_directory": json.dumps(submit_directory),
            "sagemaker_container_log_level": "20",
            "sagemaker_job_name": json.dumps(name),
            "sagemaker_region": json.dumps("us-east-1"),
        }
    )
    return {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": image, "TrainingInputMode": "File"},
        "RoleArn": ROLE_ARN,
        "HyperParameters": encoded,
        "InputDataConfig": [
            {
                "ChannelName": channel,
                "DataSource": {
                    "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri, "S3DataDistributionType": distribution}
                },
            }
            for channel, uri in channels.items()
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/output"},
        "ResourceConfig": {"InstanceType": "ml.c4.xlarge", "InstanceCount": instances, "VolumeSizeInGB": 5},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
    }


def _run(sm, request: dict) -> dict:
    sm.create_training_job(**request)
    with contextlib.suppress(WaiterError):  # the waiter raises on Failed; the test reads the job itself
        sm.get_waiter("training_job_completed_or_stopped").wait(
            TrainingJobName=request["TrainingJobName"], WaiterConfig=WAIT
        )
    return sm.describe_training_job(TrainingJobName=request["TrainingJobName"])


def _log_messages(logs, name: str, host: str = "algo-1") -> list[str]:
    group = "/aws/sagemaker/TrainingJobs"
    streams = logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=f"{name}/{host}-")["logStreams"]
    assert len(streams) == 1
    events = logs.get_log_events(logGroupName=group, logStreamName=streams[0]["logStreamName"])["events"]
    return [event["message"] for event in events]


@pytest.fixture
def logs(emulator):
    import boto3

    return boto3.client("logs", endpoint_url=emulator.url, region_name="us-east-1")


def test_the_seed_random_forest_trains_and_its_model_tar_holds_the_joblib_model(sm, s3, data, tmp_path) -> None:
    name = unique("custom-code-sklearn")
    source = _upload_source(s3, name, {"sklearn_rf.py": (SCRIPTS / "sklearn_rf.py").read_text()})
    job = _run(sm, script_request(name, "sklearn_rf.py", source, {"train": data["train"]}, {"n_estimators": 50}))
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    artifact = job["ModelArtifacts"]["S3ModelArtifacts"]
    assert artifact == f"s3://{BUCKET}/output/{name}/output/model.tar.gz"
    files = read_model_tar(s3, artifact)
    assert list(files) == ["model.joblib"]
    (tmp_path / "model.joblib").write_bytes(files["model.joblib"])
    forest = joblib.load(tmp_path / "model.joblib")  # our own test's artifact, so loading it is safe
    assert forest.n_estimators == 50  # --n_estimators 50 reached the script
    held_out = _rows(200, 8, seed=2)
    assert forest.score(held_out[:, 1:], held_out[:, 0]) > 0.8
    assert job["HyperParameters"]["sagemaker_program"] == '"sklearn_rf.py"'  # described as it was sent


def test_the_toolkit_contract_on_two_hosts(sm, s3, data, logs) -> None:
    name = unique("toolkit-env")
    source = _upload_source(s3, name, {"show_environment.py": (SCRIPTS / "show_environment.py").read_text()})
    hyperparameters = {"learning_rate": 0.1, "epochs": 3, "layers": [64, 32], "early_stop": True}
    request = script_request(
        name, "show_environment.py", source, {"train": data["train"]}, hyperparameters, instances=2,
        distribution="ShardedByS3Key",
    )  # fmt: skip
    request["HyperParameters"]["optimizer"] = "adam"  # not JSON: passed on as the string itself
    request["HyperParameters"]["sagemaker_distribution_hint"] = '"none"'  # an unknown sagemaker_* key
    job = _run(sm, request)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    seen = json.loads(read_model_tar(s3, job["ModelArtifacts"]["S3ModelArtifacts"])["seen.json"])
    assert seen["argv"] == ["--early_stop", "True", "--epochs", "3", "--layers", "[64, 32]",
                            "--learning_rate", "0.1", "--optimizer", "adam"]  # fmt: skip
    env = seen["env"]
    assert json.loads(env["SM_HPS"]) == {"early_stop": True, "epochs": 3, "layers": [64, 32], "learning_rate": 0.1,
                                         "optimizer": "adam"}  # fmt: skip
    assert env["SM_HP_LEARNING_RATE"] == "0.1" and env["SM_HP_LAYERS"] == "[64,32]" and env["SM_HP_OPTIMIZER"] == "adam"
    assert json.loads(env["SM_USER_ARGS"]) == seen["argv"]
    assert json.loads(env["SM_FRAMEWORK_PARAMS"]) == {"sagemaker_distribution_hint": "none"}
    assert env["SM_CHANNELS"] == '["train"]' and env["SM_CURRENT_HOST"] == "algo-1"
    assert json.loads(env["SM_HOSTS"]) == ["algo-1", "algo-2"]
    assert env["SM_NUM_GPUS"] == "0" and int(env["SM_NUM_CPUS"]) >= 1
    assert env["SM_USER_ENTRY_POINT"] == "show_environment.py" and env["SM_MODULE_NAME"] == "show_environment"
    assert env["SM_MODULE_DIR"] == source and env["SM_FRAMEWORK_MODULE"] == "sagemaker_sklearn_container.training:main"
    assert env["TRAINING_JOB_NAME"] == name
    base = env["SAGEMAKER_BASE_DIR"]
    for key, below in (("SM_MODEL_DIR", "model"), ("SM_OUTPUT_DATA_DIR", "output/data"), ("SM_INPUT_DIR", "input"),
                       ("SM_OUTPUT_DIR", "output"), ("SM_CHANNEL_TRAIN", "input/data/train")):  # fmt: skip
        assert env[key] == f"{base}/{below}"
    assert seen["cwd"] == f"{base}/code"
    training_env = json.loads(env["SM_TRAINING_ENV"])
    assert training_env["job_name"] == name and training_env["is_master"] is True
    assert training_env["hyperparameters"]["epochs"] == 3
    assert training_env["channel_input_dirs"] == {"train": f"{base}/input/data/train"}
    # The config files: hyperparameters exactly as sent (strings), this host's resourceconfig, the channels.
    assert seen["config"]["hyperparameters.json"] == request["HyperParameters"]
    assert seen["config"]["resourceconfig.json"]["current_host"] == "algo-1"
    assert seen["config"]["resourceconfig.json"]["hosts"] == ["algo-1", "algo-2"]
    assert seen["config"]["inputdataconfig.json"]["train"]["S3DistributionType"] == "ShardedByS3Key"
    assert seen["train_files"] == ["part-0.csv"]  # ShardedByS3Key: the other file went to algo-2
    if base == "/opt/ml":  # a private mount namespace: hard-coded /opt/ml paths are the job's own
        assert seen["opt_ml_hyperparameters"] == request["HyperParameters"]
    # Each host ran the script in its own process, logging to its own stream.
    assert "learning_rate from SM_HP_LEARNING_RATE: 0.1" in _log_messages(logs, name, "algo-2")
    assert "Invoking user script" in _log_messages(logs, name, "algo-1")
    output = read_model_tar(s3, job["ModelArtifacts"]["S3ModelArtifacts"].replace("model.tar.gz", "output.tar.gz"))
    assert output == {"report.txt": b"written by algo-1"}


def test_xgboost_image_in_framework_mode_runs_the_script(sm, s3, data) -> None:
    name = unique("xgb-framework")
    source = _upload_source(s3, name, {"show_environment.py": (SCRIPTS / "show_environment.py").read_text()})
    image = image_uri("xgboost", "us-east-1", "1.7-1")
    job = _run(sm, script_request(name, "show_environment.py", source, {"train": data["train"]},
                                  {"learning_rate": 0.3}, image=image))  # fmt: skip
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    seen = json.loads(read_model_tar(s3, job["ModelArtifacts"]["S3ModelArtifacts"])["seen.json"])
    assert seen["env"]["SM_FRAMEWORK_MODULE"] == "sagemaker_xgboost_container.training:main"
    assert seen["argv"] == ["--learning_rate", "0.3"]
    assert seen["train_files"] == ["part-0.csv", "part-1.csv"]


def test_a_failing_script_ends_failed_with_the_toolkit_error_and_its_traceback_in_cloudwatch(
    sm, s3, data, logs
) -> None:
    name = unique("failing-script")
    source = _upload_source(s3, name, {"failing.py": (SCRIPTS / "failing.py").read_text()})
    job = _run(sm, script_request(name, "failing.py", source, {"train": data["train"]}, {"epochs": 2}))
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"] == (
        "AlgorithmError: ExecuteUserScriptError:\nExitCode 1\n"
        'ErrorMessage "ValueError: no usable rows in /opt/ml/input/data/train"\n'
        'Command "python failing.py --epochs 2"'
    )
    assert "ModelArtifacts" not in job or not job["ModelArtifacts"].get("S3ModelArtifacts")
    messages = _log_messages(logs, name)
    assert "starting training" in messages
    assert "Traceback (most recent call last):" in messages
    assert any('raise ValueError(f"no usable rows in {path}")' in m for m in messages)


@pytest.mark.parametrize(
    ("requirements", "named"),
    [
        ("numpy\nscikit-learn>=0.20  # the image's own\nsurely-not-installed-package==1.0\n",
         "'surely-not-installed-package', which is not installed"),
        ("pandas\nnumpy<1.0\n", "needs numpy<1.0, but numpy"),
    ],
)  # fmt: skip
def test_requirements_are_checked_never_installed(sm, s3, data, requirements: str, named: str) -> None:
    name = unique("requirements")
    source = _upload_source(
        s3, name, {"sklearn_rf.py": (SCRIPTS / "sklearn_rf.py").read_text(), "requirements.txt": requirements}
    )
    job = _run(sm, script_request(name, "sklearn_rf.py", source, {"train": data["train"]}, {"n_estimators": 5}))
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"].startswith("ClientError: requirements.txt line ")
    assert named in job["FailureReason"]


def test_an_archive_with_a_link_fails_the_job_before_the_script_runs(sm, s3, data) -> None:
    name = unique("unsafe-source")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        script = (SCRIPTS / "failing.py").read_bytes()
        info = tarfile.TarInfo("train.py")
        info.size = len(script)
        tar.addfile(info, io.BytesIO(script))
        link = tarfile.TarInfo("passwd")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        tar.addfile(link)
    key = f"code/{name}/sourcedir.tar.gz"
    s3.put_object(Bucket=BUCKET, Key=key, Body=buffer.getvalue())
    job = _run(sm, script_request(name, "train.py", f"s3://{BUCKET}/{key}", {"train": data["train"]}, {}))
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"].startswith("ClientError: The source archive s3://")
    assert "is a link" in job["FailureReason"]


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda r: r["HyperParameters"].pop("sagemaker_program"), "must name it in sagemaker_program"),
        (lambda r: r["HyperParameters"].update(sagemaker_program='"../../etc/x.py"'), "inside the source directory"),
        (lambda r: r["HyperParameters"].update(sagemaker_submit_directory='"s3://script-mode-tests/nope.tar.gz"'),
         "no such S3 object"),
        (lambda r: r["HyperParameters"].update(sagemaker_submit_directory='"/opt/ml/code"'),
         "must be the S3 URI of your sourcedir.tar.gz"),
        (lambda r: r["AlgorithmSpecification"].update(TrainingImage="x/sagemaker-scikit-learn:0.19-1-cpu-py3"),
         "Requested image"),
    ],
)  # fmt: skip
def test_bad_script_settings_are_refused_before_anything_is_created(sm, s3, data, change, words) -> None:
    name = unique("bad-script")
    source = _upload_source(s3, name, {"train.py": "print('hi')\n"})
    request = script_request(name, "train.py", source, {"train": data["train"]}, {})
    change(request)
    with pytest.raises(ClientError) as raised:
        sm.create_training_job(**request)
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert words in raised.value.response["Error"]["Message"]
    with pytest.raises(ClientError, match="Requested resource not found"):
        sm.describe_training_job(TrainingJobName=name)


def test_the_notebook_builtin_xgboost_0_90_2_binary_logistic_job(sm, s3, logs) -> None:
    """Seed 004 section 3.1: get_image_uri(region, 'xgboost', repo_version='0.90-2') and its hyperparameters,
    on data of the churn set's shape (2,333 train and 666 validation rows of 69 features)."""
    s3.put_object(Bucket=BUCKET, Key="churn/train/train.csv", Body=_csv(_rows(2333, 69, seed=3)))
    s3.put_object(Bucket=BUCKET, Key="churn/validation/validation.csv", Body=_csv(_rows(666, 69, seed=4)))
    name = unique("builtin-xgboost")
    channels = {"train": f"s3://{BUCKET}/churn/train/", "validation": f"s3://{BUCKET}/churn/validation/"}
    request = script_request(name, "unused.py", "s3://unused", channels, {},
                             image=image_uri("xgboost", "us-east-1", "0.90-2", py_version="py3"))  # fmt: skip
    request["HyperParameters"] = {"max_depth": "5", "subsample": "0.8", "num_round": "600", "eta": "0.2",
                                  "gamma": "4", "min_child_weight": "6", "silent": "0",
                                  "objective": "binary:logistic"}  # fmt: skip
    for channel in request["InputDataConfig"]:
        channel["ContentType"] = "text/csv"
    assert request["AlgorithmSpecification"]["TrainingImage"].endswith("/sagemaker-xgboost:0.90-2-cpu-py3")
    job = _run(sm, request)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    metrics = {m["MetricName"]: m["Value"] for m in job["FinalMetricDataList"]}
    assert set(metrics) == {"train:error", "validation:error"}
    assert metrics["train:error"] < metrics["validation:error"] < 0.2
    messages = _log_messages(logs, name)
    assert any(m.startswith("[599]#011train-error:") for m in messages)
    assert read_model_tar(s3, job["ModelArtifacts"]["S3ModelArtifacts"]).keys() == {"xgboost-model"}


def test_without_a_private_opt_ml_the_paths_point_at_the_job_directory(tmp_path) -> None:
    """Where no mount namespace may be used (isolation "lock", as under Docker without CAP_SYS_ADMIN), the
    SM_* paths and SAGEMAKER_BASE_DIR name the job's own directory, and scripts that read them still work."""
    import boto3

    from include.sagemaker_emulator.process import EmulatorProcess

    with EmulatorProcess(tmp_path / "data", extra_args=["--processing-isolation", "lock"]) as emu:
        sm = boto3.client("sagemaker", endpoint_url=emu.url, region_name="us-east-1")
        s3 = boto3.client("s3", endpoint_url=emu.url, region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key="data/train/part-0.csv", Body=_csv(_rows(50, 3, seed=5)))
        name = unique("env-paths")
        source = _upload_source(s3, name, {"show_environment.py": (SCRIPTS / "show_environment.py").read_text()})
        request = script_request(
            name, "show_environment.py", source, {"train": f"s3://{BUCKET}/data/train/"}, {"learning_rate": 1}
        )
        job = _run(sm, request)
        assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
        seen = json.loads(read_model_tar(s3, job["ModelArtifacts"]["S3ModelArtifacts"])["seen.json"])
    base = seen["env"]["SAGEMAKER_BASE_DIR"]
    assert base == str(tmp_path / "data" / "training" / name)
    assert seen["env"]["SM_MODEL_DIR"] == f"{base}/model" and seen["cwd"] == f"{base}/code"
    assert seen["config"]["hyperparameters.json"] == request["HyperParameters"]
    assert seen["train_files"] == ["part-0.csv"]


def test_stop_ends_the_script_and_the_job_is_stopped(sm, s3, data, logs) -> None:
    name = unique("stopped-script")
    sleeper = "import time\nprint('sleeping', flush=True)\ntime.sleep(600)\n"
    source = _upload_source(s3, name, {"sleep.py": sleeper})
    sm.create_training_job(**script_request(name, "sleep.py", source, {"train": data["train"]}, {}))
    deadline = time.monotonic() + 60
    while "sleeping" not in _messages_or_empty(logs, name):
        assert time.monotonic() < deadline, "the script never started"
        time.sleep(0.2)
    sm.stop_training_job(TrainingJobName=name)
    sm.get_waiter("training_job_completed_or_stopped").wait(TrainingJobName=name, WaiterConfig=WAIT)
    job = sm.describe_training_job(TrainingJobName=name)
    assert job["TrainingJobStatus"] == "Stopped" and job["SecondaryStatus"] == "Stopped"


def _messages_or_empty(logs, name: str) -> list[str]:
    try:
        return _log_messages(logs, name)
    except (AssertionError, ClientError):
        return []


def test_a_shell_entry_point_gets_its_arguments_and_python3_is_the_emulators(sm, s3, data) -> None:
    name = unique("shell-entry")
    shell = (
        '#!/bin/sh\nset -e\necho "$@" > "$SM_MODEL_DIR/args.txt"\n'
        "python3 -c 'import sys, sklearn; print(sys.executable)' > \"$SM_MODEL_DIR/python.txt\"\n"
    )
    source = _upload_source(s3, name, {"train.sh": shell})
    job = _run(sm, script_request(name, "train.sh", source, {"train": data["train"]}, {"depth": 4, "mode": "fast"}))
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    files = read_model_tar(s3, job["ModelArtifacts"]["S3ModelArtifacts"])
    assert files["args.txt"] == b"--depth 4 --mode fast\n"
    assert Path(files["python.txt"].decode().strip()).resolve() == Path(sys.executable).resolve()


def test_the_providers_training_operator_runs_a_script_mode_job(emulator, s3, data) -> None:
    """The Amazon provider's SageMakerTrainingOperator, unchanged, with the config the SDK's SKLearn estimator
    builds for the seed's script; the task returns the described job, its model in S3."""
    from airflow.providers.amazon.aws.operators.sagemaker import SageMakerTrainingOperator

    name = unique("provider-sklearn")
    source = _upload_source(s3, name, {"sklearn_rf.py": (SCRIPTS / "sklearn_rf.py").read_text()})
    train = SageMakerTrainingOperator(
        task_id="train",
        config=script_request(name, "sklearn_rf.py", source, {"train": data["train"]}, {"n_estimators": 10}),
        wait_for_completion=True,
        print_log=False,
        check_interval=1,
    )
    result = train.execute(context={})
    assert result["Training"]["TrainingJobStatus"] == "Completed"
    assert "model.joblib" in read_model_tar(s3, result["Training"]["ModelArtifacts"]["S3ModelArtifacts"])
