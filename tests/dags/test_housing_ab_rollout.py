"""housing_ab_rollout end to end with ``dag.test()`` against the emulator (real training and serving).

One endpoint goes through three runs, in order: a first run that creates it and promotes a better
Linear Learner challenger over a weak XGBoost champion, a second run that updates it in place and keeps
the better XGBoost champion, and a run whose endpoint update fails (injected), which must leave the
second run's config serving and nothing of its own.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from include.housing.ab_rollout import run_prefix
from tests.conftest import client, inject_fault

pytestmark = pytest.mark.usefixtures("emulator")

DAG_ID = "housing_ab_rollout"
ENDPOINT = "ab-rollout-test"
BUCKET = "sagemaker-fleet-local"
WEAK = {"algorithm": "xgboost", "hyperparameters": {"num_round": 1, "max_depth": 1, "eta": 0.1}}
STRONG = {"algorithm": "xgboost", "hyperparameters": {"num_round": 25, "max_depth": 5}}
# The seed notebook's pair: XGBoost against Linear Learner (the house price is linear in its features).
LINEAR = {"algorithm": "linear-learner", "hyperparameters": {"predictor_type": "regressor", "epochs": 15}}
ENV = {"HOUSING_RETRY_DELAY_SECONDS": "1"}
DAYS = [dt.datetime(2026, 11, day, tzinfo=dt.UTC) for day in (20, 21, 22)]


def conf(champion: dict, challenger: dict) -> dict:
    return {
        "location": "Chicago_IL",
        "houses_per_location": 400,
        "evaluation_rows": 100,
        "champion": champion,
        "challenger": challenger,
        "endpoint_name": ENDPOINT,
        "shift_steps": [0.25, 0.75, 1.0],
        "initial_weights": {"champion": 1, "challenger": 1},
        # The batch transform step is covered by test_housing_ab_boston.py; these runs are about the endpoint.
        "batch_transform": False,
    }


def report_of(emulator, run_id: str, day: dt.datetime) -> dict:
    prefix = run_prefix(DAG_ID, run_id, day.date())
    key = f"ab-rollout/{ENDPOINT}/{prefix}/reports/rollout.json"
    return json.loads(client(emulator, "s3").get_object(Bucket=BUCKET, Key=key)["Body"].read())


def names(emulator, kind: str) -> set[str]:
    sm = client(emulator, "sagemaker")
    if kind == "config":
        pages = sm.get_paginator("list_endpoint_configs").paginate(NameContains="har-")
        return {c["EndpointConfigName"] for page in pages for c in page["EndpointConfigs"]}
    pages = sm.get_paginator("list_models").paginate(NameContains="har-")
    return {m["ModelName"] for page in pages for m in page["Models"]}


@pytest.fixture(scope="module")
def runs(emulator, run_dag) -> dict:
    """The three runs, in order; each later test reads what it needs."""
    results: dict = {}
    results["first"] = run_dag(DAG_ID, conf(WEAK, LINEAR), logical_date=DAYS[0], env=ENV)
    results["first_configs"], results["first_models"] = names(emulator, "config"), names(emulator, "model")
    results["first_endpoint"] = client(emulator, "sagemaker").describe_endpoint(EndpointName=ENDPOINT)
    results["second"] = run_dag(DAG_ID, conf(STRONG, WEAK), logical_date=DAYS[1], env=ENV)
    results["second_configs"], results["second_models"] = names(emulator, "config"), names(emulator, "model")
    results["second_endpoint"] = client(emulator, "sagemaker").describe_endpoint(EndpointName=ENDPOINT)
    # Every try of the A/B deployment fails to load (the task has two retries).
    inject_fault(emulator, {"type": "deployment_failure", "endpoint_name": ENDPOINT, "count": 3})
    results["failed"] = run_dag(DAG_ID, conf(STRONG, WEAK), logical_date=DAYS[2], env=ENV)
    results["failed_configs"], results["failed_models"] = names(emulator, "config"), names(emulator, "model")
    return results


def test_first_run_creates_the_endpoint_and_promotes_the_better_challenger(emulator, runs) -> None:
    result = runs["first"]
    assert result.state == "success", result.log[-6000:]
    assert result.tasks["rollback"] in ("success", "skipped")
    report = report_of(emulator, result.run_id, DAYS[0])
    prefix = run_prefix(DAG_ID, result.run_id, DAYS[0].date())
    assert report["winner"] == "challenger", report["decision"]["reason"]
    # Both variants received weighted traffic, and CloudWatch agreed with the weights.
    traffic = report["decision"]["traffic"]
    assert traffic["ok"] and all(count > 0 for count in traffic["counted_from_responses"].values())
    assert set(traffic["counted_from_responses"]) == {"champion", "challenger"}
    # The update to the winner alone ran under continuous traffic without a single failed request.
    probe = report["promotion"]["probe"]
    assert probe["failed"] == 0 and probe["requests"] >= 10 and probe["requests_during_update"] >= 1
    assert set(probe["variants_after_update"]) == {"challenger"}
    endpoint = runs["first_endpoint"]
    assert endpoint["EndpointStatus"] == "InService"
    assert endpoint["EndpointConfigName"] == f"{prefix}-challenger-only"
    assert [v["VariantName"] for v in endpoint["ProductionVariants"]] == ["challenger"]
    # Superseded configs and the loser's model are gone; only what serves is left.
    assert runs["first_configs"] == {f"{prefix}-challenger-only"}
    assert runs["first_models"] == {f"{prefix}-challenger"}
    assert report["endpoint"]["EndpointConfigName"] == f"{prefix}-challenger-only"


def test_second_run_updates_in_place_and_keeps_a_better_champion(emulator, runs) -> None:
    result = runs["second"]
    assert result.state == "success", result.log[-6000:]
    report = report_of(emulator, result.run_id, DAYS[1])
    prefix = run_prefix(DAG_ID, result.run_id, DAYS[1].date())
    assert report["winner"] == "champion", report["decision"]["reason"]
    assert (
        report["decision"]["per_variant"]["champion"]["rmse"] < report["decision"]["per_variant"]["challenger"]["rmse"]
    )
    assert report["promotion"]["probe"]["failed"] == 0
    assert report["promotion"]["previous_endpoint_config_name"] == f"{prefix}-ab"
    endpoint = runs["second_endpoint"]
    assert endpoint["EndpointConfigName"] == f"{prefix}-champion-only"
    # The first run's config and model were superseded and removed; the endpoint name never changed.
    assert runs["second_configs"] == {f"{prefix}-champion-only"}
    assert runs["second_models"] == {f"{prefix}-champion"}


def test_failed_update_keeps_the_old_config_serving_and_removes_the_runs_resources(emulator, runs) -> None:
    result = runs["failed"]
    assert result.state == "failed"
    assert result.tasks["deploy_ab"] == "failed"
    assert result.tasks["rollback_plan"] == "success" and result.tasks["rollback"] == "success"
    assert result.tasks["report"] == "upstream_failed"
    assert "rolled back" in result.log or "Failed to update endpoint" in result.log
    endpoint = client(emulator, "sagemaker").describe_endpoint(EndpointName=ENDPOINT)
    previous = f"{run_prefix(DAG_ID, runs['second'].run_id, DAYS[1].date())}-champion-only"
    assert endpoint["EndpointStatus"] == "InService" and endpoint["EndpointConfigName"] == previous
    answer = client(emulator, "sagemaker-runtime").invoke_endpoint(
        EndpointName=ENDPOINT, Body=b"2005,2600,3,2.5,1.0,2", ContentType="text/csv"
    )
    assert float(answer["Body"].read().decode().split(",")[0]) > 0
    # Nothing this run created is left; the second run's serving config and model are untouched.
    assert runs["failed_configs"] == runs["second_configs"]
    assert runs["failed_models"] == runs["second_models"]
