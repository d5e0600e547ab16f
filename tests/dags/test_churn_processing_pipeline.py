"""churn_processing_pipeline end to end with ``dag.test()`` against the emulator: a real processing job runs the
notebook's preprocessing.py, real XGBoost 0.90-2 and script-mode RandomForest training, real batch transforms,
a real endpoint for the winner.

Two runs: the defaults (the notebook's 3,333 customers, 50 trees), whose report must hold both models' accuracy,
AUC and confusion matrix and whose endpoint must be gone afterwards; and a run with other Params whose
RandomForest training fails on every try (injected), which must fail with the job's reason and delete the
XGBoost model the run had already created.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from include.churn.pipeline import run_prefix
from tests.conftest import client, inject_fault

pytestmark = pytest.mark.usefixtures("emulator")

DAG_ID = "churn_processing_pipeline"
BUCKET = "sagemaker-fleet-local"
ENV = {"CHURN_RETRY_DELAY_SECONDS": "1"}
DAY = dt.datetime(2026, 11, 23, tzinfo=dt.UTC)
FAILED_DAY = dt.datetime(2026, 11, 24, tzinfo=dt.UTC)
INJECTED_REASON = "AlgorithmError: injected churn RandomForest failure"
NOTEBOOK_XGBOOST = {"max_depth": "5", "subsample": "0.8", "num_round": "600", "eta": "0.2", "gamma": "4",
                    "min_child_weight": "6", "silent": "0", "objective": "binary:logistic"}  # fmt: skip


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


NOTHING = {"endpoints": set(), "configs": set(), "models": set()}


@pytest.fixture(scope="module")
def default_run(emulator, run_dag):
    result = run_dag(DAG_ID, {}, logical_date=DAY, env=ENV)
    print(f"default run: {result.seconds:.1f} s")
    return result


def test_defaults_train_both_models_score_report_deploy_and_tear_down(emulator, default_run) -> None:
    result = default_run
    assert result.state == "success", (result.tasks, result.log[-8000:])
    assert result.tasks["smoke_test"] == "success" and result.tasks["teardown"] == "success"
    prefix = run_prefix(result.run_id, DAY.date())
    report = json.loads(s3_object(emulator, f"s3://{BUCKET}/churn-processing-pipeline/{prefix}/reports/report.json"))
    sm = client(emulator, "sagemaker")

    # The notebook's data and preprocessing job.
    assert report["data"]["raw_shape"] == [3333, 21] and report["data"]["columns"][-1] == "Churn?"
    processing = sm.describe_processing_job(ProcessingJobName=report["processing"]["job_name"])
    assert processing["ProcessingJobStatus"] == "Completed"
    assert processing["AppSpecification"]["ContainerArguments"] == ["--train-test-split-ratio", "0.2", "--no-header"]
    assert report["test_rows"] == 667  # ceil(3333 * 0.2), scikit-learn's train_test_split

    # Both training jobs as the notebook (and the SDK) start them.
    models = report["models"]
    xgb = sm.describe_training_job(TrainingJobName=models["xgboost"]["training_job"])
    assert xgb["TrainingJobStatus"] == "Completed" and xgb["HyperParameters"] == NOTEBOOK_XGBOOST
    assert xgb["AlgorithmSpecification"]["TrainingImage"].endswith("sagemaker-xgboost:0.90-2-cpu-py3")
    rf = sm.describe_training_job(TrainingJobName=models["random_forest"]["training_job"])
    assert rf["TrainingJobStatus"] == "Completed"
    assert (
        rf["HyperParameters"]["n_estimators"] == "50"
        and rf["HyperParameters"]["sagemaker_program"] == '"sklearn_rf.py"'
    )

    # Every test row scored by both transform jobs; the figures are real and agree with the training job.
    for key in ("xgboost", "random_forest"):
        model = models[key]
        transform = sm.describe_transform_job(TransformJobName=model["transform_job"])
        assert transform["TransformJobStatus"] == "Completed"
        assert model["test_rows"] == 667
        assert sum(sum(row) for row in model["confusion_matrix"]["rows_true_columns_predicted"]) == 667
        assert 0.75 < model["auc"] <= 1.0, (key, model["auc"])
        assert model["accuracy"] >= model["majority_baseline_accuracy"] - 0.02, (key, model["accuracy"])
    # XGBoost's validation channel is the test set: its validation:error is 1 - the transform's accuracy.
    validation_error = models["xgboost"]["final_metrics"]["validation:error"]
    assert abs((1 - models["xgboost"]["accuracy"]) - validation_error) < 0.002, (validation_error, models["xgboost"])
    assert report["winner"] in ("xgboost", "random_forest")

    # The PNG, the summary in the log, the smoke test against the batch scores; nothing left serving.
    png = s3_object(emulator, report["report_uris"]["png"])
    assert png.startswith(b"\x89PNG") and len(png) > 20_000
    assert (
        "Winner by AUC, then accuracy" in result.log and "scored 5 test rows as the batch transform did" in result.log
    )
    assert serving_resources(emulator, prefix) == NOTHING


def test_failed_random_forest_fails_the_run_with_its_reason_and_tears_down_what_was_created(emulator, run_dag) -> None:
    # Non-default Params, and the RandomForest's training fails on every try (the first attempt and two retries,
    # each a new -rN attempt); the XGBoost branch goes on to create its model and run its transform.
    inject_fault(emulator, {"type": "training_failure", "name_contains": "-rf", "count": 3,
                            "reason": INJECTED_REASON})  # fmt: skip
    conf = {"rows": 800, "n_estimators": 10, "train_test_split_ratio": 0.3, "deploy_best": False, "seed": 5}
    result = run_dag(DAG_ID, conf, logical_date=FAILED_DAY, env=ENV)
    print(f"failed run: {result.seconds:.1f} s")
    assert result.state == "failed", (result.tasks, result.log[-6000:])
    assert result.tasks["preprocess"] == "success" and result.tasks["train_random_forest"] == "failed"
    assert result.tasks["transform_xgboost"] == "success"
    assert result.tasks["report"] == "upstream_failed" and result.tasks["deploy_best"] == "upstream_failed"
    assert result.tasks["teardown"] == "success"
    assert INJECTED_REASON in result.log
    prefix = run_prefix(result.run_id, FAILED_DAY.date())
    sm = client(emulator, "sagemaker")
    processing = sm.describe_processing_job(ProcessingJobName=f"{prefix}-preprocessing")
    assert processing["AppSpecification"]["ContainerArguments"] == ["--train-test-split-ratio", "0.3", "--no-header"]
    jobs = sm.list_training_jobs(NameContains=f"{prefix}-rf")["TrainingJobSummaries"]
    assert {j["TrainingJobStatus"] for j in jobs} == {"Failed"} and len(jobs) == 3
    # The XGBoost model the run created for its transform is gone too; no endpoint was ever made.
    assert serving_resources(emulator, prefix) == NOTHING
