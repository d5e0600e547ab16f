"""asteroid_linear_learner end to end with ``dag.test()`` against the emulator (real Linear Learner training on
recordIO channels, real hosting and CSV scoring).

Two runs: the defaults (the notebook's regressor), whose report must show the notebook's finding (MAE at the
median baseline, accuracy at the majority baseline) and whose endpoint must be gone afterwards; and a run whose
training fails on every try (injected), which must fail with the job's reason and leave no serving resource.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from include.asteroids.pipeline import run_prefix
from tests.conftest import client, inject_fault

pytestmark = pytest.mark.usefixtures("emulator")

DAG_ID = "asteroid_linear_learner"
BUCKET = "sagemaker-fleet-local"
ENV = {"ASTEROID_RETRY_DELAY_SECONDS": "1"}
DAY = dt.datetime(2026, 11, 23, tzinfo=dt.UTC)
FAILED_DAY = dt.datetime(2026, 11, 24, tzinfo=dt.UTC)
INJECTED_REASON = "AlgorithmError: injected asteroid training failure"


def s3_json(emulator, uri: str) -> dict:
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    return json.loads(client(emulator, "s3").get_object(Bucket=bucket, Key=key)["Body"].read())


def serving_resources(emulator, prefix: str) -> dict[str, set[str]]:
    sm = client(emulator, "sagemaker")
    return {
        "endpoints": {e["EndpointName"] for e in sm.list_endpoints(NameContains=prefix)["Endpoints"]},
        "configs": {c["EndpointConfigName"] for c in sm.list_endpoint_configs(NameContains=prefix)["EndpointConfigs"]},
        "models": {m["ModelName"] for m in sm.list_models(NameContains=prefix)["Models"]},
    }


@pytest.fixture(scope="module")
def default_run(emulator, run_dag):
    result = run_dag(DAG_ID, {}, logical_date=DAY, env=ENV)
    print(f"default run: {result.seconds:.1f} s")
    return result


def test_defaults_reproduce_the_notebook_and_tear_down(emulator, default_run) -> None:
    result = default_run
    assert result.state == "success", result.log[-8000:]
    assert result.tasks["teardown"] == "success"
    prefix = run_prefix(result.run_id, DAY.date())
    report_uri = f"s3://{BUCKET}/asteroid-linear-learner/{prefix}/reports/report.json"
    report = s3_json(emulator, report_uri)

    # The notebook's data steps and its exact job.
    assert report["data"]["raw_shape"] == [4687, 40] and report["data"]["clean_shape"] == [4687, 35]
    assert report["data"]["features"] == 32
    rows = report["data"]["rows"]
    assert sum(rows.values()) == 4687 and 0.75 < rows["train"] / 4687 < 0.85
    job = client(emulator, "sagemaker").describe_training_job(TrainingJobName=report["training"]["job_name"])
    assert job["TrainingJobStatus"] == "Completed"
    assert job["HyperParameters"] == {
        "feature_dim": "32", "mini_batch_size": "100", "predictor_type": "regressor", "epochs": "10",
        "num_models": "32", "loss": "absolute_loss",
    }  # fmt: skip
    distributions = {
        c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3DataDistributionType"] for c in job["InputDataConfig"]
    }
    assert distributions == {"train": "ShardedByS3Key", "validation": "FullyReplicated"}
    assert all("ContentType" not in c for c in job["InputDataConfig"]), "recordIO is Linear Learner's default"
    assert report["training"]["final_metrics"]["validation:absolute_loss"] > 0

    # Every test row scored as CSV on the AllTraffic variant; the notebook's finding holds.
    assert report["endpoint"]["variant_name"] == "AllTraffic"
    assert report["scoring"]["rows_scored"] == rows["test"] and report["scoring"]["content_type"] == "text/csv"
    metrics = report["metrics"]
    print("\n".join(report["notebook_lines"]))
    assert 0.1 < metrics["test_mae_baseline"] < 0.3, metrics
    assert abs(metrics["test_mae_linear"] - metrics["test_mae_baseline"]) < 0.03, metrics
    assert abs(metrics["prediction_accuracy"] - metrics["baseline_accuracy"]) < 5.0, metrics
    assert report["notebook_lines"][0] == "(4687, 35)"
    assert report["notebook_lines"][1] == f"Test MAE Baseline : {round(metrics['test_mae_baseline'], 3)}"
    assert any(line.startswith("Test MAE Linear:") for line in report["notebook_lines"])

    # The PNG and the predictions are there; the summary reached the task log.
    s3 = client(emulator, "s3")
    png = s3.get_object(Bucket=BUCKET, Key=report["report_uris"]["png"].split("/", 3)[3])["Body"].read()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    assert "Test MAE Linear:" in result.log and "median baseline" in result.log

    # Nothing of the run is left serving.
    assert serving_resources(emulator, prefix) == {"endpoints": set(), "configs": set(), "models": set()}


def test_failed_training_leaves_no_endpoint_and_says_why(emulator, run_dag) -> None:
    # Every try fails: the first attempt and the two retries (each a new -rN attempt of the job).
    inject_fault(emulator, {"type": "training_failure", "name_contains": "asteroid-ll-20261124", "count": 3,
                            "reason": INJECTED_REASON})  # fmt: skip
    result = run_dag(DAG_ID, {"predictor_type": "binary_classifier", "rows": 1000}, logical_date=FAILED_DAY, env=ENV)
    print(f"failed run: {result.seconds:.1f} s")
    assert result.state == "failed", (result.tasks, result.log[-6000:])
    assert result.tasks["train"] == "failed"
    assert result.tasks["deploy"] == "upstream_failed" and result.tasks["report"] == "upstream_failed"
    assert result.tasks["teardown"] == "success"
    assert INJECTED_REASON in result.log
    prefix = run_prefix(result.run_id, FAILED_DAY.date())
    assert serving_resources(emulator, prefix) == {"endpoints": set(), "configs": set(), "models": set()}
    jobs = client(emulator, "sagemaker").list_training_jobs(NameContains=prefix)["TrainingJobSummaries"]
    assert {j["TrainingJobStatus"] for j in jobs} == {"Failed"} and len(jobs) == 3
