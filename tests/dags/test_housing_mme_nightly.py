"""housing_mme_nightly end to end with ``dag.test()`` against the emulator: 3 locations x 300 houses.

The tests run in order and build on each other (one bucket, one endpoint): a first night, its rerun,
then a later night where one location's data is mostly bad and another's training fails.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from include.housing.nightly import parse_predictions
from tests.conftest import client, inject_fault
from tests.dags.conftest import DagRunResult

DAG_ID = "housing_mme_nightly"
BUCKET = "nightly-dag-tests"
ENDPOINT = "housing-mme-dagtest"
LOCATIONS = ["Chicago_IL", "Houston_TX", "Dallas_TX"]
FIRST_NIGHT = dt.datetime(2026, 11, 23, 2, tzinfo=dt.UTC)
LATER_NIGHT = dt.datetime(2026, 11, 24, 2, tzinfo=dt.UTC)
CONF = {"locations": LOCATIONS, "houses_per_location": 300, "endpoint_name": ENDPOINT}
ENV = {"AIRFLOW_VAR_HOUSING_BUCKET": BUCKET, "HOUSING_RETRY_DELAY_SECONDS": "1"}
MME_PREFIX = f"mme/{ENDPOINT}/"
LOCATION_TASKS = ("prepare", "train", "evaluate", "register", "smoke_test", "promote")

pytestmark = pytest.mark.usefixtures("emulator")


def _mme_objects(s3) -> dict[str, str]:
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=MME_PREFIX).get("Contents", [])
    return {o["Key"].removeprefix(MME_PREFIX): o["ETag"] for o in listed}


def _record(s3, location: str) -> dict:
    body = s3.get_object(Bucket=BUCKET, Key=f"registry/{ENDPOINT}/{location}.json")["Body"].read()
    return json.loads(body)


def _report(s3, night: dt.datetime) -> dict:
    """The night's only report (one per date and config: reports/<dag>/date=<d>/config=<hash>/summary.json)."""
    prefix = f"reports/{DAG_ID}/date={night.date().isoformat()}/"
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])]
    (key,) = [key for key in listed if key.endswith(".json")]
    assert key.removesuffix("summary.json") + "summary.png" in listed  # the chart beside it
    return json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())


def _training_jobs(sm) -> list[str]:
    names = []
    for page in sm.get_paginator("list_training_jobs").paginate(NameContains="hmn-"):
        names.extend(job["TrainingJobName"] for job in page["TrainingJobSummaries"])
    return sorted(names)


def _assert_location_succeeded(result: DagRunResult, location: str) -> None:
    states = result.states_for(location)
    assert {task: states.get(f"location.{task}") for task in LOCATION_TASKS} == dict.fromkeys(
        LOCATION_TASKS, "success"
    ), f"{location}: {states}\n{result.log[-6000:]}"


@pytest.fixture(scope="module")
def first_night(run_dag, emulator) -> DagRunResult:
    return run_dag(DAG_ID, CONF, FIRST_NIGHT, env=ENV)


def test_first_night_serves_every_location_from_the_mme(first_night: DagRunResult, emulator, airflow_home) -> None:
    s3, runtime = client(emulator, "s3"), client(emulator, "sagemaker-runtime")
    assert first_night.state == "success", first_night.log[-6000:]
    for location in LOCATIONS:
        _assert_location_succeeded(first_night, location)

    # One versioned artifact per location in the MME prefix, each live in its registry record.
    assert set(_mme_objects(s3)) == {f"{loc}/{loc}-20261123.tar.gz" for loc in LOCATIONS}
    for location in LOCATIONS:
        assert _record(s3, location)["live_version"] == "20261123"

    # The endpoint serves each location's own model by TargetModel: price levels differ by city.
    row = "2005,3000,4,2.5,1.0,2\n"
    predictions = {}
    for location in LOCATIONS:
        response = runtime.invoke_endpoint(
            EndpointName=ENDPOINT,
            ContentType="text/csv",
            Body=row,
            TargetModel=f"{location}/{location}-20261123.tar.gz",
        )
        (predictions[location],) = parse_predictions(response["Body"].read())
    assert all(100_000 < p < 2_000_000 for p in predictions.values()), predictions
    assert len(set(predictions.values())) == len(LOCATIONS)

    report = _report(s3, FIRST_NIGHT)
    assert report["failed"] == [] and report["promoted"] == len(LOCATIONS)
    rows = {row["location"]: row for row in report["rows"]}
    assert set(rows) == set(LOCATIONS)
    for row in rows.values():
        assert row["status"] == "live" and row["version"] == "20261123" and row["test_rmse"] > 0
    assert "location" in first_night.log and "test_rmse" in first_night.log  # the table is in the log

    # Each promotion emitted an Asset event for its location's registry record through the alias.
    import sqlite3

    with sqlite3.connect(Path(airflow_home["AIRFLOW_HOME"]) / "airflow.db") as db:
        uris = {
            uri
            for (uri,) in db.execute("SELECT asset.uri FROM asset_event JOIN asset ON asset.id = asset_event.asset_id")
        }
    assert {uri.rsplit("/", 1)[1] for uri in uris} >= {f"{loc}.json" for loc in LOCATIONS}, uris


def test_rerun_of_the_same_night_adds_nothing(first_night: DagRunResult, run_dag, emulator) -> None:
    s3, sm = client(emulator, "s3"), client(emulator, "sagemaker")
    jobs, objects = _training_jobs(sm), _mme_objects(s3)
    rerun = run_dag(DAG_ID, CONF, FIRST_NIGHT, env=ENV)
    print(f"rerun: {rerun.seconds:.1f} s")
    assert rerun.state == "success", rerun.log[-6000:]
    assert _training_jobs(sm) == jobs, "a rerun must re-attach to the night's training jobs, not start new ones"
    assert _mme_objects(s3) == objects, "a rerun must not add or rewrite an artifact"
    for location in LOCATIONS:
        assert _record(s3, location)["live_version"] == "20261123"


def test_later_night_bad_data_and_training_failure_fail_only_their_location(
    first_night: DagRunResult, run_dag, emulator, clear_faults
) -> None:
    s3 = client(emulator, "s3")
    inject_fault(emulator, {"type": "training_failure", "count": 3, "name_contains": "houston-tx-20261124"})
    conf = {
        **CONF,
        "bad_fraction_by_location": {"Chicago_IL": 0.6},
        "promotion_tolerance": 1.0,  # the test is about isolation, not about which model is better
    }
    later = run_dag(DAG_ID, conf, LATER_NIGHT, env=ENV)
    print(f"later night: {later.seconds:.1f} s")

    assert later.state == "failed", "the summary fails the run when a location failed"
    chicago, houston = later.states_for("Chicago_IL"), later.states_for("Houston_TX")
    assert chicago["location.prepare"] == "failed"
    assert chicago["location.train"] == "upstream_failed"
    assert houston["location.prepare"] == "success" and houston["location.train"] == "failed"
    assert houston["location.register"] == "upstream_failed"
    _assert_location_succeeded(later, "Dallas_TX")
    assert later.state_of("summary") == "failed"

    # Dallas has a new version next to the old; nothing of the failed locations changed.
    objects = _mme_objects(s3)
    assert {"Dallas_TX/Dallas_TX-20261123.tar.gz", "Dallas_TX/Dallas_TX-20261124.tar.gz"} <= set(objects)
    assert not any(key.endswith("-20261124.tar.gz") for key in objects if not key.startswith("Dallas_TX/"))
    assert _record(s3, "Dallas_TX")["live_version"] == "20261124"
    assert _record(s3, "Chicago_IL")["live_version"] == "20261123"
    assert _record(s3, "Houston_TX")["live_version"] == "20261123"

    report = _report(s3, LATER_NIGHT)
    assert sorted(report["failed"]) == ["Chicago_IL", "Houston_TX"]
    rows = {row["location"]: row for row in report["rows"]}
    assert rows["Chicago_IL"]["reason"].startswith("failed at prepare")
    assert rows["Houston_TX"]["reason"].startswith("failed at train")
    assert rows["Dallas_TX"]["status"] == "live" and rows["Dallas_TX"]["previous_version"] == "20261123"
    assert "more than the allowed" in later.log  # the clear message of the bad-data failure


def _objects_of(s3, night: dt.datetime) -> dict[str, tuple[str, str]]:
    """Every object the night's build wrote (raw, prepared, training output, MME artifacts): key -> (ETag,
    sha256). The live records (registry/) and reports are left out: a record is the location's, not a run's."""
    import hashlib

    day = night.date().isoformat()
    found = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for item in page.get("Contents", []):
            key = item["Key"]
            if f"date={day}/" in key or night.strftime("%Y%m%d") in key:
                body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
                found[key] = (item["ETag"], hashlib.sha256(body).hexdigest())
    return found


def test_rerun_with_other_params_overwrites_nothing(first_night: DagRunResult, run_dag, emulator) -> None:
    """Issue 14: 200 houses instead of 300 for the same date is refused, naming what changed; with revision 1
    it builds beside the first night, whose objects stay byte-identical."""
    s3, sm = client(emulator, "s3"), client(emulator, "sagemaker")
    before = _objects_of(s3, FIRST_NIGHT)
    assert any(key.startswith("raw/date=2026-11-23/location=Chicago_IL/") for key in before)
    jobs = _training_jobs(sm)
    changed = {**CONF, "locations": ["Chicago_IL"], "houses_per_location": 200, "hyperparameters": {"num_round": 30}}

    refused = run_dag(DAG_ID, changed, FIRST_NIGHT, env=ENV)
    assert refused.state == "failed" and refused.state_of("validate_params") == "failed"
    assert "houses_per_location: 300 -> 200" in refused.log and "hyperparameters.num_round: 25 -> 30" in refused.log
    assert "trigger with revision 1" in refused.log, refused.log[-4000:]
    assert _objects_of(s3, FIRST_NIGHT) == before and _training_jobs(sm) == jobs

    revised = run_dag(DAG_ID, {**changed, "revision": 1}, FIRST_NIGHT, env=ENV)
    assert revised.state == "success", revised.log[-6000:]
    after = _objects_of(s3, FIRST_NIGHT)
    assert {key: after[key] for key in before} == before, "an earlier object was rewritten"
    assert "prepared/date=2026-11-23/location=Chicago_IL/revision=01/train/train.csv" in after
    assert set(_training_jobs(sm)) - set(jobs) == {"hmn-chicago-il-20261123-v01"}
    record = _record(s3, "Chicago_IL")
    assert "20261123" in record["versions"]
    if "20261123-r01" in record["versions"]:  # registered only when the gate accepted it
        assert "Chicago_IL/Chicago_IL-20261123-r01.tar.gz" in _mme_objects(s3)
