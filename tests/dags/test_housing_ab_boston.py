"""housing_ab_rollout's one-click preset for seed notebook 000 (Boston housing) end to end with ``dag.test()``
against the emulator: the notebook's XGBoost (sagemaker-xgboost:1.0-1, reg:linear) against its Linear Learner on
MASS/Boston, a batch transform of the test set with both models, variants XGB-Model and Linear-Model at 1:1 on
one endpoint, then the update to the winner alone.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from include.housing.ab_rollout import run_prefix
from tests.conftest import client

pytestmark = pytest.mark.usefixtures("emulator")

DAG_ID = "housing_ab_rollout"
ENDPOINT = "ab-boston-test"
BUCKET = "sagemaker-fleet-local"
ENV = {"HOUSING_RETRY_DELAY_SECONDS": "1"}
DAY = dt.datetime(2026, 11, 25, tzinfo=dt.UTC)


def test_boston_notebook_preset(emulator, run_dag) -> None:
    conf = {"preset": "boston-notebook", "endpoint_name": ENDPOINT}  # batch_transform on: the form's default
    result = run_dag(DAG_ID, conf, logical_date=DAY, env=ENV)
    print(f"boston preset run: {result.seconds:.1f} s")
    assert result.state == "success", result.log[-8000:]
    prefix = run_prefix(DAG_ID, result.run_id, DAY.date())
    key = f"ab-rollout/{ENDPOINT}/{prefix}/reports/rollout.json"
    report = json.loads(client(emulator, "s3").get_object(Bucket=BUCKET, Key=key)["Body"].read())
    assert report["preset"] == "boston-notebook" and report["dataset"] == "boston"
    assert report["variants"] == {"champion": "XGB-Model", "challenger": "Linear-Model"}
    # The notebook's split of the 506 rows, seeded: 2/3 then 2/3 again.
    data = report["data"]
    assert (data["rows_train"], data["rows_validation"], data["rows_test"]) == (227, 112, 167)

    # The notebook's two jobs, exactly, on the notebook's XGBoost image.
    sm = client(emulator, "sagemaker")
    xgb = sm.describe_training_job(TrainingJobName=report["training"]["champion"]["job_name"])
    linear = sm.describe_training_job(TrainingJobName=report["training"]["challenger"]["job_name"])
    assert xgb["AlgorithmSpecification"]["TrainingImage"].endswith("/sagemaker-xgboost:1.0-1-cpu-py3")
    assert xgb["HyperParameters"] == {
        "max_depth": "5", "eta": "0.2", "gamma": "4", "min_child_weight": "6", "subsample": "0.8",
        "objective": "reg:linear", "early_stopping_rounds": "10", "num_round": "200",
    }  # fmt: skip
    assert linear["HyperParameters"] == {"feature_dim": "13", "predictor_type": "regressor", "mini_batch_size": "200"}

    # Both variants at 1:1 behind one endpoint, measured on the 167 test rows; then the winner alone.
    decision = report["decision"]
    assert set(decision["traffic"]["counted_from_responses"]) == {"XGB-Model", "Linear-Model"}
    per_variant = decision["per_variant"]
    for role in ("champion", "challenger"):
        assert 1.0 < per_variant[role]["rmse"] < 10.0, per_variant  # MEDV is in $1000s, 5..50
    winner_variant = report["variants"][report["winner"]]
    endpoint = sm.describe_endpoint(EndpointName=ENDPOINT)
    assert [v["VariantName"] for v in endpoint["ProductionVariants"]] == [winner_variant]
    assert report["promotion"]["probe"]["failed"] == 0

    # The step the notebook skips: both models scored the test set by batch transform before the A/B.
    offline = report["batch_transform"]
    assert set(offline) == {"champion", "challenger"}
    for role, figures in offline.items():
        assert figures["rows"] == 167 and 0 < figures["mae"] <= figures["rmse"] < 10.0, (role, figures)
        # Offline and online scoring saw the same rows through the same model.
        assert abs(figures["rmse"] - per_variant[role]["rmse"]) < 1e-3 * per_variant[role]["rmse"], role
        job = sm.describe_transform_job(TransformJobName=figures["transform_job_name"])
        assert job["TransformJobStatus"] == "Completed" and job["ModelName"] == f"{prefix}-{role}"
    assert "Batch transform" in result.log
    png_key = f"ab-rollout/{ENDPOINT}/{prefix}/reports/rollout.png"
    png = client(emulator, "s3").get_object(Bucket=BUCKET, Key=png_key)["Body"].read()
    assert png.startswith(b"\x89PNG")
    # Leave nothing behind for the other A/B tests of the session (they count the har-* configs and models).
    serving = sm.describe_endpoint_config(
        EndpointConfigName=sm.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"]
    )
    sm.delete_endpoint(EndpointName=ENDPOINT)
    sm.delete_endpoint_config(EndpointConfigName=serving["EndpointConfigName"])
    for variant in serving["ProductionVariants"]:
        sm.delete_model(ModelName=variant["ModelName"])
