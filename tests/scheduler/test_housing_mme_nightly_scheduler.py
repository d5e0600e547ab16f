"""housing_mme_nightly under the real scheduler (LocalExecutor, triggerer, execution API), not dag.test().

In order, on one emulator and one Airflow stack:

1. the README's backfill command (previewed with ``--dry-run``): two dates of one location, each with its
   own version, the second judged against the first;
2. ``airflow dags trigger --logical-date`` for the next date with two locations and hyperparameters that
   make a far worse model: the run builds the date it names; Chicago's model is worse than the version
   live for that date, so it is not registered, not smoke-tested, not promoted and announces nothing,
   while Houston (no earlier version) goes live with an Asset event.
"""

from __future__ import annotations

import json
import re
import shlex

import pytest

from include.launcher import ROOT as REPO
from sagemaker_fleet.operators.mme import live_version_on
from tests.scheduler.conftest import BUCKET, AirflowStack

# The A/B rollout run starts first and runs alongside these (another DAG); its test checks it at the end.
pytestmark = pytest.mark.usefixtures("ab_rollout_run")

DAG_ID = "housing_mme_nightly"
ENDPOINT = "housing-mme"  # the default Param: the README's command passes only the locations
LOCATION_TASKS = ("prepare", "train", "evaluate", "register", "smoke_test", "promote")
TRIGGERED_DATE = "2026-11-03"
# The reproduction: far fewer and shallower trees than the seed's, so a much higher RMSE.
WEAK_CONF = {
    "locations": ["Chicago_IL", "Houston_TX"],
    "houses_per_location": 400,
    "hyperparameters": {"num_round": 1, "max_depth": 1},
}
RUN_TIMEOUT_S = 420


def readme_backfill_command() -> list[str]:
    """The backfill command exactly as the README's "Backfilling a location" shows it (argv, no shell)."""
    text = (REPO / "README.md").read_text()
    section = text[text.index("**Backfilling a location**") :]
    lines = section.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("airflow backfill create"))
    command = []
    for line in lines[start:]:
        command.append(line.strip().removesuffix("\\"))
        if not line.rstrip().endswith("\\"):
            break
    argv = shlex.split(" ".join(command))
    assert argv[:3] == ["airflow", "backfill", "create"], argv
    return argv[1:]


def _record(s3, location: str) -> dict:
    body = s3.get_object(Bucket=BUCKET, Key=f"registry/{ENDPOINT}/{location}.json")["Body"].read()
    return json.loads(body)


def _keys(s3, prefix: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def _reports(s3, run_date: str) -> list[dict]:
    keys = [key for key in _keys(s3, f"reports/{DAG_ID}/date={run_date}/") if key.endswith(".json")]
    return [json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()) for key in keys]


def _location_states(stack: AirflowStack, run_id: str, location: str) -> dict[str, str | None]:
    states = stack.states_for(DAG_ID, run_id, location)
    return {task: states.get(f"location.{task}") for task in LOCATION_TASKS}


ACCEPTED = dict.fromkeys(LOCATION_TASKS, "success")
REJECTED = {
    **dict.fromkeys(("prepare", "train", "evaluate"), "success"),
    **dict.fromkeys(("register", "smoke_test", "promote"), "skipped"),
}


@pytest.fixture(scope="module")
def backfill(airflow_stack: AirflowStack) -> list[dict]:
    """The README's backfill, previewed first; the finished runs (oldest first)."""
    argv = readme_backfill_command()
    # Previewed through `make airflow`, as the README shows for make run's stack.
    preview = airflow_stack.make_airflow(*argv, "--dry-run")
    planned = re.findall(r"^\| (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\+00:00) +\|", preview, flags=re.MULTILINE)
    assert planned == ["2026-11-01 02:00:00+00:00", "2026-11-02 02:00:00+00:00"], preview

    known = {run["dag_run_id"] for run in airflow_stack.runs(DAG_ID)}
    airflow_stack.cli(*argv)
    runs = airflow_stack.wait_for_new_runs(DAG_ID, known, 2)
    states = airflow_stack.wait_for_runs(DAG_ID, [run["dag_run_id"] for run in runs], RUN_TIMEOUT_S)
    runs = [airflow_stack.run(DAG_ID, run["dag_run_id"]) for run in runs]
    for run in runs:
        assert states[run["dag_run_id"]] == "success", airflow_stack.task_states(DAG_ID, run["dag_run_id"])
    return sorted(runs, key=lambda run: run["logical_date"])


@pytest.fixture(scope="module")
def triggered(airflow_stack: AirflowStack, backfill: list[dict]) -> dict:
    """``airflow dags trigger --logical-date`` of the next date with the weak hyperparameters."""
    known = {run["dag_run_id"] for run in airflow_stack.runs(DAG_ID)}
    airflow_stack.cli(
        "dags", "trigger", DAG_ID, "--logical-date", f"{TRIGGERED_DATE}T02:00:00+00:00", "--conf", json.dumps(WEAK_CONF)
    )
    (run,) = airflow_stack.wait_for_new_runs(DAG_ID, known, 1)
    airflow_stack.wait_for_runs(DAG_ID, [run["dag_run_id"]], RUN_TIMEOUT_S)
    return airflow_stack.run(DAG_ID, run["dag_run_id"])


def test_readme_backfill_builds_each_date_and_gates_against_the_previous(
    backfill: list[dict], airflow_stack: AirflowStack, s3
) -> None:
    assert [run["logical_date"][:19] for run in backfill] == ["2026-11-01T02:00:00", "2026-11-02T02:00:00"]
    assert {run["run_type"] for run in backfill} == {"backfill"}
    reports = {}
    for run, day in zip(backfill, ("2026-11-01", "2026-11-02"), strict=True):
        (reports[day],) = _reports(s3, day)
        assert reports[day]["run_id"] == run["dag_run_id"] and reports[day]["run_date"] == day

    # The first date has no earlier version: accepted, registered, live.
    first_run, second_run = (run["dag_run_id"] for run in backfill)
    assert _location_states(airflow_stack, first_run, "Chicago_IL") == ACCEPTED
    record = _record(s3, "Chicago_IL")
    assert record["versions"]["20261101"]["decision"]["live_version"] is None
    assert record["live_history"][0]["version"] == "20261101"

    # The second is judged against the version live for its date (20261101), and the gate holds whichever
    # way the real models compare: registered and live only when accepted, otherwise nothing of it exists.
    (row,) = reports["2026-11-02"]["rows"]
    assert row["previous_version"] == "20261101" and row["previous_rmse"] > 0
    mme_keys = _keys(s3, f"mme/{ENDPOINT}/Chicago_IL/")
    if row["status"] == "live":
        assert _location_states(airflow_stack, second_run, "Chicago_IL") == ACCEPTED
        assert record["live_version"] == "20261102"
        assert record["versions"]["20261102"]["decision"]["live_version"] == "20261101"
        assert [move["version"] for move in record["live_history"]] == ["20261101", "20261102"]
        assert len(mme_keys) == 2
    else:
        assert row["status"] == "kept live" and row["test_rmse"] > row["previous_rmse"], row
        assert _location_states(airflow_stack, second_run, "Chicago_IL") == REJECTED
        assert record["live_version"] == "20261101" and "20261102" not in record["versions"]
        assert mme_keys == [f"mme/{ENDPOINT}/Chicago_IL/Chicago_IL-20261101.tar.gz"]


def test_trigger_with_logical_date_builds_that_date(triggered: dict, s3) -> None:
    assert triggered["logical_date"].startswith(f"{TRIGGERED_DATE}T02:00:00"), triggered
    assert triggered["run_type"] == "manual"
    (report,) = _reports(s3, TRIGGERED_DATE)
    assert report["run_id"] == triggered["dag_run_id"] and report["run_date"] == TRIGGERED_DATE
    # Its data and jobs carry the date it names, not the day it was triggered on.
    for location in WEAK_CONF["locations"]:
        assert _keys(s3, f"prepared/date={TRIGGERED_DATE}/location={location}/test/")
    assert set(_keys(s3, "prepared/")) == {
        key for key in _keys(s3, "prepared/") if re.search(r"date=2026-11-0[123]/", key)
    }


def test_rejected_model_is_not_registered_promoted_or_announced(
    triggered: dict, airflow_stack: AirflowStack, s3
) -> None:
    run_id = triggered["dag_run_id"]
    assert triggered["state"] == "success", airflow_stack.task_states(DAG_ID, run_id)
    assert _location_states(airflow_stack, run_id, "Chicago_IL") == REJECTED
    assert _location_states(airflow_stack, run_id, "Houston_TX") == ACCEPTED

    # register ran, checked the decision and skipped with its reason (smoke_test and promote then never
    # start: the scheduler skips them by trigger rule; their own checks are covered in tests/unit).
    chicago = airflow_stack.map_index_of(DAG_ID, run_id, "Chicago_IL")
    log = airflow_stack.task_log(DAG_ID, run_id, "location.register", chicago)
    assert "Chicago_IL 20261103 not accepted by the evaluation: Keep the live model" in log, log[-3000:]

    # Chicago: the live version stays, the rejected one is nowhere in the registry or the MME prefix.
    record = _record(s3, "Chicago_IL")
    live_before = live_version_on(record, "2026-11-02")
    assert live_before in ("20261101", "20261102")
    assert record["live_version"] == live_before and "20261103" not in record["versions"]
    assert not any(key.endswith("Chicago_IL-20261103.tar.gz") for key in _keys(s3, f"mme/{ENDPOINT}/"))
    # Houston had no earlier version: accepted and live.
    assert _record(s3, "Houston_TX")["live_version"] == "20261103"

    (report,) = _reports(s3, TRIGGERED_DATE)
    rows = {row["location"]: row for row in report["rows"]}
    assert rows["Chicago_IL"]["status"] == "kept live" and rows["Chicago_IL"]["previous_version"] == live_before
    assert rows["Chicago_IL"]["test_rmse"] > rows["Chicago_IL"]["previous_rmse"]
    assert rows["Houston_TX"]["status"] == "live"

    # One Asset event, Houston's; none for Chicago.
    events = airflow_stack.asset_events(DAG_ID, run_id)
    assert sorted(event["uri"].rsplit("/", 1)[1] for event in events) == ["Houston_TX.json"], events


def test_healthy_runs_have_no_failed_try(backfill: list[dict], triggered: dict, airflow_stack: AirflowStack) -> None:
    """Emulator jobs end in about a second: the deferral race (apache/airflow#71580) would show as a second try."""
    for run_id in [run["dag_run_id"] for run in backfill] + [triggered["dag_run_id"]]:
        instances = airflow_stack.task_instances(DAG_ID, run_id)
        assert {ti["task_id"] for ti in instances} >= {"location.train", "deploy_endpoint"}
        retried = {
            f"{ti['task_id']}[{ti.get('rendered_map_index') or ti['map_index']}]": ti["try_number"]
            for ti in instances
            if ti["try_number"] > 1
        }
        assert not retried, f"{run_id}: tasks with more than one try: {retried}"
