"""digits_xgboost_multiclass end to end with ``dag.test()`` against the emulator (real XGBoost training on
libsvm parts, one job on two instances with ShardedByS3Key, real hosting and libsvm scoring).

Two runs: the defaults, whose report must hold both jobs side by side, the endpoint's error rate and the
10x10 confusion matrix (and whose endpoint must be gone afterwards); and a run whose distributed training
fails on every try (injected), which must fail with the job's reason and leave no serving resource.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from include.digits.pipeline import run_prefix
from tests.conftest import client, inject_fault

pytestmark = pytest.mark.usefixtures("emulator")

DAG_ID = "digits_xgboost_multiclass"
BUCKET = "sagemaker-fleet-local"
ENV = {"DIGITS_RETRY_DELAY_SECONDS": "1"}
DAY = dt.datetime(2026, 11, 23, tzinfo=dt.UTC)
FAILED_DAY = dt.datetime(2026, 11, 24, tzinfo=dt.UTC)
INJECTED_REASON = "AlgorithmError: injected digits training failure"


def s3_object(emulator, uri: str) -> bytes:
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    return client(emulator, "s3").get_object(Bucket=bucket, Key=key)["Body"].read()


def serving_resources(emulator, prefix: str) -> dict[str, set[str]]:
    sm = client(emulator, "sagemaker")
    return {
        "endpoints": {e["EndpointName"] for e in sm.list_endpoints(NameContains=prefix)["Endpoints"]},
        "configs": {c["EndpointConfigName"] for c in sm.list_endpoint_configs(NameContains=prefix)["EndpointConfigs"]},
        "models": {m["ModelName"] for m in sm.list_models(NameContains=prefix)["Models"]},
    }


def test_defaults_follow_the_notebook_and_tear_down(emulator, run_dag) -> None:
    result = run_dag(DAG_ID, {}, logical_date=DAY, env=ENV)
    print(f"default run: {result.seconds:.1f} s")
    assert result.state == "success", result.log[-8000:]
    assert result.tasks["teardown"] == "success"
    prefix = run_prefix(result.run_id, DAY.date())
    report = json.loads(s3_object(emulator, f"s3://{BUCKET}/digits-xgboost/{prefix}/reports/report.json"))

    # The notebook's layout: five libsvm parts per split, every digit kept.
    assert report["data"]["rows"] == {"train": 1078, "validation": 359, "test": 360}
    assert all(len(uris) == 5 for uris in report["data"]["objects"].values())
    first = s3_object(emulator, report["data"]["objects"]["train"][0]).decode().split("\n")[0].split(" ")
    assert len(first) == 65 and first[1].startswith("1:") and first[-1].startswith("64:")

    # Two jobs, the notebook's hyperparameters; the distributed one on two instances, both channels sharded.
    sm = client(emulator, "sagemaker")
    jobs = {job: sm.describe_training_job(TrainingJobName=report["jobs"][job]["job_name"]) for job in report["jobs"]}
    for job, described in jobs.items():
        assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
        assert described["HyperParameters"] == {
            "max_depth": "5", "eta": "0.2", "gamma": "4", "min_child_weight": "6", "silent": "0",
            "objective": "multi:softmax", "num_class": "10", "num_round": "10",
        }, job  # fmt: skip
    # The notebook's get_image_uri(region, 'xgboost'): the legacy xgboost:1 image, for both jobs and the model.
    assert {j["AlgorithmSpecification"]["TrainingImage"].rsplit("/", 1)[1] for j in jobs.values()} == {"xgboost:1"}
    assert jobs["distributed"]["ResourceConfig"]["InstanceCount"] == 2
    assert {
        c["DataSource"]["S3DataSource"]["S3DataDistributionType"] for c in jobs["distributed"]["InputDataConfig"]
    } == {"ShardedByS3Key"}
    assert jobs["single"]["ResourceConfig"]["InstanceCount"] == 1

    # Both jobs side by side: billable seconds and validation accuracy.
    for job in ("single", "distributed"):
        summary = report["jobs"][job]
        assert summary["billable_seconds"] == jobs[job]["BillableTimeInSeconds"] >= 1
        assert 0.8 < summary["validation_accuracy"] <= 1.0, summary
    assert report["jobs"]["distributed"]["instance_count"] == 2

    # The hosted distributed model: one prediction, then 4 batches of 100, error rate and confusion matrix.
    endpoint = report["endpoint"]
    assert endpoint["hosted_job"] == report["jobs"]["distributed"]["job_name"]
    assert endpoint["test_rows"] == 360 and endpoint["requests"] == 4 and endpoint["batch_size"] == 100
    assert endpoint["single_prediction"]["predicted"] in [float(d) for d in range(10)]
    assert 0.0 <= endpoint["error_rate_percent"] < 15.0, endpoint
    counts = report["confusion_matrix"]["counts"]
    assert len(counts) == 10 and all(len(row) == 10 for row in counts)
    assert sum(map(sum, counts)) == 360
    correct = sum(counts[i][i] for i in range(10))
    assert abs(100 - 100 * correct / 360 - endpoint["error_rate_percent"]) < 1e-9
    # Columns are the actual digits: each column sums to that digit's test rows.
    labels = [
        int(line.split(",")[0])
        for line in s3_object(emulator, report["report_uris"]["predictions"]).decode().split("\n")[1:]
        if line
    ]
    assert [sum(row[d] for row in counts) for d in range(10)] == [labels.count(d) for d in range(10)]

    # The batch transform of the same rows through the same model: the same error rate, row for row.
    transform = report["transform"]
    assert transform["test_rows"] == 360 and transform["matches_endpoint"], transform
    assert transform["error_rate_percent"] == endpoint["error_rate_percent"]
    assert [state for task, state in result.tasks.items() if task.startswith("batch_transform")] == ["success"]
    described = client(emulator, "sagemaker").describe_transform_job(TransformJobName=transform["job_name"])
    assert described["TransformJobStatus"] == "Completed" and described["ModelName"] == f"{prefix}-distrib-mod"
    assert "Batch transform" in result.log

    png = s3_object(emulator, report["report_uris"]["png"])
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    assert "error rate=" in result.log and "validation accuracy" in result.log
    assert serving_resources(emulator, prefix) == {"endpoints": set(), "configs": set(), "models": set()}


def test_failed_training_leaves_no_endpoint_and_says_why(emulator, run_dag) -> None:
    # The distributed job fails on every try: the first attempt and the two retries (-r1, -r2).
    # (Names are <prefix>-distrib, -distrib-r1, -r2; this module's other run finished before.)
    inject_fault(emulator, {"type": "training_failure", "name_contains": "-distrib", "count": 3,
                            "reason": INJECTED_REASON})  # fmt: skip
    result = run_dag(DAG_ID, {"num_round": 3, "seed": 7}, logical_date=FAILED_DAY, env=ENV)
    print(f"failed run: {result.seconds:.1f} s")
    assert result.state == "failed", (result.tasks, result.log[-6000:])
    assert result.tasks["train_distributed"] == "failed"
    assert result.tasks["deploy"] == "upstream_failed" and result.tasks["report"] == "upstream_failed"
    assert result.tasks["teardown"] == "success"
    assert INJECTED_REASON in result.log
    prefix = run_prefix(result.run_id, FAILED_DAY.date())
    assert serving_resources(emulator, prefix) == {"endpoints": set(), "configs": set(), "models": set()}
    jobs = client(emulator, "sagemaker").list_training_jobs(NameContains=f"{prefix}-distrib")["TrainingJobSummaries"]
    assert {j["TrainingJobStatus"] for j in jobs} == {"Failed"} and len(jobs) == 3
