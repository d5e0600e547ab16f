"""The XGBoost multiclass (MNIST) notebook (seed 003) replayed against the emulator with plain boto3, on
scikit-learn's digits in the notebook's layout: 5 libsvm parts per split with 1-based indices, channels and
output paths as path-style ``https://s3-<region>.amazonaws.com/<bucket>/...`` URIs, a single-instance job and
a 2-instance job with ShardedByS3Key on both channels, hosting from an https ``ModelDataUrl``, then batches
of 100 libsvm rows whose answers are parsed with ``result.split(',')``.

The notebook's image is what ``get_image_uri(region, 'xgboost')`` returned: the legacy ``xgboost:1`` (XGBoost
0.72) container, which answers comma-joined CSV and accepts ``silent``.
"""

from __future__ import annotations

import copy
import io

import boto3
import pytest

from include.digits import data as digits
from tests.emulator.helpers import ROLE_ARN, unique

REGION = "us-east-1"
BUCKET = "digits-notebook"
PREFIX = "sagemaker/DEMO-xgboost-multiclass-classification"
CONTAINER = "811284229777.dkr.ecr.us-east-1.amazonaws.com/xgboost:1"
FAST = {"Delay": 1, "MaxAttempts": 300}  # the notebook's waiters, polling every second
BUCKET_PATH = f"https://s3-{REGION}.amazonaws.com/{BUCKET}"  # the notebook's bucket_path


@pytest.fixture(scope="module")
def uploaded(emulator) -> dict[str, digits.Split]:
    """convert_data(): every split written as examples0..4 with the notebook's own upload call."""
    s3 = boto3.resource("s3", endpoint_url=emulator.url, region_name=REGION)
    s3.create_bucket(Bucket=BUCKET)
    splits = digits.load_splits(seed=0)
    for name, split in splits.items():
        for key, body in zip(digits.object_keys(PREFIX, name), digits.libsvm_parts(split), strict=True):
            s3.Bucket(BUCKET).Object(key).upload_fileobj(io.BytesIO(body))
    return splits


def common_training_params() -> dict:
    return {
        "AlgorithmSpecification": {"TrainingImage": CONTAINER, "TrainingInputMode": "File"},
        "RoleArn": ROLE_ARN,
        "OutputDataConfig": {"S3OutputPath": BUCKET_PATH + "/" + PREFIX + "/xgboost"},
        "ResourceConfig": {"InstanceCount": 1, "InstanceType": "ml.m4.10xlarge", "VolumeSizeInGB": 5},
        "HyperParameters": {"max_depth": "5", "eta": "0.2", "gamma": "4", "min_child_weight": "6", "silent": "0",
                            "objective": "multi:softmax", "num_class": "10", "num_round": "10"},
        "StoppingCondition": {"MaxRuntimeInSeconds": 86400},
        "InputDataConfig": [
            {"ChannelName": channel,
             "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": BUCKET_PATH + "/" + PREFIX + f"/{channel}/",
                                             "S3DataDistributionType": "FullyReplicated"}},
             "ContentType": "libsvm", "CompressionType": "None"}
            for channel in ("train", "validation")
        ],
    }  # fmt: skip


def single_machine_params(name: str) -> dict:
    params = copy.deepcopy(common_training_params())
    params["TrainingJobName"] = name
    params["OutputDataConfig"]["S3OutputPath"] = BUCKET_PATH + "/" + PREFIX + "/xgboost-single"
    return params


def distributed_params(name: str) -> dict:
    params = copy.deepcopy(common_training_params())
    params["TrainingJobName"] = name
    params["OutputDataConfig"]["S3OutputPath"] = BUCKET_PATH + "/" + PREFIX + "/xgboost-distributed"
    params["ResourceConfig"]["InstanceCount"] = 2
    params["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3DataDistributionType"] = "ShardedByS3Key"
    params["InputDataConfig"][1]["DataSource"]["S3DataSource"]["S3DataDistributionType"] = "ShardedByS3Key"
    return params


def wait_completed(sm, name: str) -> dict:
    sm.get_waiter("training_job_completed_or_stopped").wait(TrainingJobName=name, WaiterConfig=FAST)
    described = sm.describe_training_job(TrainingJobName=name)
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    return described


def host(sm, name: str, model_data: str) -> str:
    sm.create_model(
        ModelName=name + "-mod",
        ExecutionRoleArn=ROLE_ARN,
        PrimaryContainer={"Image": CONTAINER, "ModelDataUrl": model_data},
    )
    sm.create_endpoint_config(
        EndpointConfigName=name + "-cfg",
        ProductionVariants=[{"InstanceType": "ml.m4.xlarge", "InitialVariantWeight": 1, "InitialInstanceCount": 1,
                             "ModelName": name + "-mod", "VariantName": "AllTraffic"}],
    )  # fmt: skip
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name + "-cfg")
    sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig=FAST)
    return name


def batch_predict(runtime, data: list[str], batch_size: int, endpoint_name: str, content_type: str) -> list[float]:
    """The notebook's do_predict/batch_predict, verbatim in substance."""
    preds: list[float] = []
    for offset in range(0, len(data), batch_size):
        payload = "\n".join(data[offset : min(offset + batch_size, len(data))])
        response = runtime.invoke_endpoint(EndpointName=endpoint_name, ContentType=content_type, Body=payload)
        result = response["Body"].read().decode("ascii")
        preds.extend(float(num) for num in result.split(","))
    return preds


def test_single_instance_job_hosted_from_https_urls(emulator, uploaded, sm, s3, runtime) -> None:
    name = unique("DEMO-xgboost-classification")
    sm.create_training_job(**single_machine_params(name))
    described = wait_completed(sm, name)
    artifact = described["ModelArtifacts"]["S3ModelArtifacts"]
    # The https output path named this bucket: the artifact is there, not in a bucket called "s3-us-east-1...".
    assert artifact == f"s3://{BUCKET}/{PREFIX}/xgboost-single/{name}/output/model.tar.gz"
    s3.head_object(Bucket=BUCKET, Key=artifact[len(f"s3://{BUCKET}/") :])
    assert described["BillableTimeInSeconds"] >= 1

    # Host from the virtual-hosted https form of the artifact.
    endpoint = host(sm, name, f"https://{BUCKET}.s3.{REGION}.amazonaws.com/{artifact[len(f's3://{BUCKET}/') :]}")

    test_part = s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}/test/examples0")["Body"].read().decode()
    single = runtime.invoke_endpoint(EndpointName=endpoint, ContentType="text/x-libsvm", Body=test_part.split("\n")[0])
    label = single["Body"].read().decode("ascii")
    assert float(label) in range(10)

    test_data = [
        line
        for i in range(digits.PARTS)
        for line in s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}/test/examples{i}")["Body"].read().decode().split("\n")
    ]
    labels = [float(line.split(" ")[0]) for line in test_data]
    preds = batch_predict(runtime, test_data, 100, endpoint, "text/x-libsvm")
    assert len(preds) == len(labels) == 360
    error_rate = sum(1 for p, y in zip(preds, labels, strict=True) if p != y) / len(preds)
    assert error_rate < 0.15, error_rate


def _log_messages(logs, stream_prefix: str) -> dict[str, list[str]]:
    streams = logs.describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix=stream_prefix)
    return {
        s["logStreamName"]: [
            e["message"]
            for e in logs.get_log_events(
                logGroupName="/aws/sagemaker/TrainingJobs", logStreamName=s["logStreamName"], startFromHead=True
            )["events"]
        ]
        for s in streams["logStreams"]
    }


def test_two_instance_sharded_job_trains_as_one(emulator, uploaded, sm, s3, runtime) -> None:
    logs = boto3.client("logs", endpoint_url=emulator.url, region_name=REGION)
    name = unique("DEMO-xgboost-distrib-classification")
    sm.create_training_job(**distributed_params(name))
    described = wait_completed(sm, name)
    artifact = described["ModelArtifacts"]["S3ModelArtifacts"]
    assert artifact == f"s3://{BUCKET}/{PREFIX}/xgboost-distributed/{name}/output/model.tar.gz"
    assert described["BillableTimeInSeconds"] == 2 * described["TrainingTimeInSeconds"]

    # ShardedByS3Key: sorted keys round-robin over sorted hosts: examples0,2,4 -> algo-1, examples1,3 -> algo-2.
    parts = {name: [len(p.split(b"\n")) for p in digits.libsvm_parts(split)] for name, split in uploaded.items()}
    expected = {
        "algo-1": (sum(parts["train"][0::2]), sum(parts["validation"][0::2])),
        "algo-2": (sum(parts["train"][1::2]), sum(parts["validation"][1::2])),
    }
    messages = _log_messages(logs, name + "/")
    assert sorted(stream.split("/")[1].rsplit("-", 1)[0] for stream in messages) == ["algo-1", "algo-2"]
    for stream, lines in messages.items():
        host_name = stream.split("/")[1].rsplit("-", 1)[0]
        train_rows, validation_rows = expected[host_name]
        text = "\n".join(lines)
        assert (
            f"Host {host_name} read {train_rows} rows in channel train and {validation_rows} rows in channel validation"
            in text
        )
        assert "Distributed node training with 2 hosts: ['algo-1', 'algo-2']" in text
        assert "of 2" in text  # joined the collective: "rank r of 2"
        assert any("#011validation-merror:" in line for line in lines)
    # One collective job: both hosts log the same (all-reduced) evaluation lines.
    rounds = [[line for line in lines if "#011train-merror" in line] for lines in messages.values()]
    assert rounds[0] and [r.split("]", 1)[1] for r in rounds[0]] == [r.split("]", 1)[1] for r in rounds[1]]

    endpoint = host(sm, name, artifact)
    test_data = [
        line
        for i in range(digits.PARTS)
        for line in s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}/test/examples{i}")["Body"].read().decode().split("\n")
    ]
    labels = [float(line.split(" ")[0]) for line in test_data]
    preds = batch_predict(runtime, test_data, 100, endpoint, "text/x-libsvm")
    error_rate = sum(1 for p, y in zip(preds, labels, strict=True) if p != y) / len(preds)
    assert error_rate < 0.15, error_rate
