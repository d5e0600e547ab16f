"""A real Airflow 3 stack for the scheduler tests, as ``make run`` starts it, but private to the session.

The ``airflow_stack`` session fixture starts the emulator, then the stack of :mod:`include.local_stack`
(api-server, scheduler, dag-processor and triggerer; LocalExecutor on SQLite in a tmp ``AIRFLOW_HOME``,
free loopback ports), and stops all of them at the end. Scheduled runs are off (``use_job_schedule =
False``); backfills, ``dags trigger`` and REST-triggered runs are scheduled and executed exactly as under
``make run``.
"""

from __future__ import annotations

import os
import shlex
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from include.launcher import ROOT
from include.local_stack import LocalAirflow, run_retrying_lock
from include.sagemaker_emulator.process import EmulatorProcess

BUCKET = "scheduler-tests"
DAG_IDS = ("housing_mme_nightly", "housing_ab_rollout")
SETTINGS = {"AIRFLOW_VAR_HOUSING_BUCKET": BUCKET, "HOUSING_RETRY_DELAY_SECONDS": "2"}
FINISHED = {"success", "failed"}
AB_ENDPOINT = "ab-scheduler-test"
# A weak champion against a strong challenger: the challenger must win and serve alone.
AB_CONF = {
    "location": "Chicago_IL",
    "houses_per_location": 400,
    "evaluation_rows": 100,
    "champion": {"algorithm": "xgboost", "hyperparameters": {"num_round": 1, "max_depth": 1, "eta": 0.1}},
    "challenger": {"algorithm": "xgboost", "hyperparameters": {"num_round": 25, "max_depth": 5}},
    "endpoint_name": AB_ENDPOINT,
    "shift_steps": [0.5, 1.0],
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The A/B rollout test last: its run is started early (``ab_rollout_run``) and overlaps the nightly
    runs, so the suite waits for it only once the nightly tests are done."""
    items.sort(key=lambda item: Path(item.fspath).name == "test_housing_ab_rollout_scheduler.py")


class AirflowStack(LocalAirflow):
    """The private stack (:class:`include.local_stack.LocalAirflow`) with what the tests ask of it."""

    def __init__(self, root: Path, emulator: EmulatorProcess) -> None:
        super().__init__(root, emulator.url, settings=SETTINGS)
        self.emulator = emulator

    # -- the airflow command -----------------------------------------------------------------------------
    def make_airflow(self, *args: str, timeout: float = 180) -> str:
        """``make airflow ARGS="<args>"`` (the README's way to reach ``make run``'s stack) pointed at this
        stack's home, from an environment without any AIRFLOW_* or AWS_* variable: the target sets them."""
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "AWS_"))}
        argv = ["make", "-s", "-C", str(ROOT), "airflow", f"ARGS={shlex.join(args)}"]
        argv.append(f"RUN_AIRFLOW_HOME={self.env['AIRFLOW_HOME']}")
        return run_retrying_lock(argv, env=clean, what=shlex.join(argv), timeout=timeout)

    # -- REST API ------------------------------------------------------------------------------------------
    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        return self.get(f"/api/v2/dags/{dag_id}/dagRuns?limit=100&order_by=id")["dag_runs"]

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return self.get(f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        quoted = urllib.parse.quote(run_id, safe="")
        return self.get(f"/api/v2/dags/{dag_id}/dagRuns/{quoted}/taskInstances?limit=1000")["task_instances"]

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        """``task_id`` (unmapped) or ``task_id[label]`` (mapped, by its rendered map index) -> state."""
        states = {}
        for ti in self.task_instances(dag_id, run_id):
            label = ti.get("rendered_map_index") or (str(ti["map_index"]) if ti["map_index"] >= 0 else None)
            states[f"{ti['task_id']}[{label}]" if label is not None else ti["task_id"]] = ti["state"]
        return states

    def states_for(self, dag_id: str, run_id: str, label: str) -> dict[str, str | None]:
        """The states of one map label's tasks (e.g. a location's) by ``task_id``. Tasks that never ran
        (skipped or upstream_failed before rendering their label) are found by the label's map index."""
        instances = self.task_instances(dag_id, run_id)
        indexes = {ti["map_index"] for ti in instances if ti.get("rendered_map_index") == label}
        assert len(indexes) == 1, f"no single map index for {label!r}: {indexes}"
        return {ti["task_id"]: ti["state"] for ti in instances if ti["map_index"] in indexes}

    def task_log(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> str:
        """Every attempt's log of a task instance, as the executor wrote it under ``AIRFLOW_HOME/logs``."""
        folder = (
            Path(self.env["AIRFLOW_HOME"]) / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        )
        if map_index >= 0:
            folder /= f"map_index={map_index}"
        return "\n".join(path.read_text(errors="replace") for path in sorted(folder.glob("attempt=*.log")))

    def map_index_of(self, dag_id: str, run_id: str, label: str) -> int:
        instances = self.task_instances(dag_id, run_id)
        (index,) = {ti["map_index"] for ti in instances if ti.get("rendered_map_index") == label}
        return index

    def asset_events(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        query = urllib.parse.urlencode({"source_dag_id": dag_id, "source_run_id": run_id, "limit": 100})
        return self.get(f"/api/v2/assets/events?{query}")["asset_events"]

    def wait_for_runs(self, dag_id: str, run_ids: list[str], timeout: float) -> dict[str, str]:
        """Wait until every run ended; their final states. On timeout, the states so far and the logs."""
        deadline = time.monotonic() + timeout
        states: dict[str, str] = {}
        while time.monotonic() < deadline:
            self.check_alive()
            states = {run_id: self.run(dag_id, run_id)["state"] for run_id in run_ids}
            if all(state in FINISHED for state in states.values()):
                return states
            time.sleep(3)
        details = {run_id: self.task_states(dag_id, run_id) for run_id in run_ids}
        raise AssertionError(
            f"{dag_id} runs not finished after {timeout} s: {states}\n{details}\n"
            f"scheduler log:\n{self.log_tail('scheduler')}"
        )

    def wait_for_new_runs(self, dag_id: str, known: set[str], count: int, timeout: float = 60) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            new = [run for run in self.runs(dag_id) if run["dag_run_id"] not in known]
            if len(new) >= count:
                return new
            time.sleep(1)
        raise AssertionError(f"expected {count} new {dag_id} run(s) within {timeout} s")


@pytest.fixture(scope="session")
def airflow_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowStack]:
    root = tmp_path_factory.mktemp("scheduler_stack")
    with (
        EmulatorProcess(data_dir=root / "emulator", log_path=root / "emulator.log") as emulator,
        AirflowStack(root, emulator) as stack,
    ):
        stack.start(DAG_IDS, pools={"sagemaker_training": 4})
        yield stack


@pytest.fixture(scope="session")
def s3(airflow_stack: AirflowStack):
    import boto3

    return boto3.client("s3", endpoint_url=airflow_stack.emulator.url, region_name="us-east-1")


@pytest.fixture(scope="session")
def ab_rollout_run(airflow_stack: AirflowStack) -> str:
    """One housing_ab_rollout run, triggered through the REST API as the UI does (no logical date); its id.

    Not waited for here: the run goes on alongside whatever the suite does next."""
    run = airflow_stack.post(
        "/api/v2/dags/housing_ab_rollout/dagRuns", {"logical_date": None, "conf": AB_CONF, "note": "scheduler test"}
    )
    return run["dag_run_id"]
