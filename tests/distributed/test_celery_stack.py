"""``make run-distributed`` end to end: the nightly DAG over 10 locations on CeleryExecutor, Postgres and
Redis with two Celery workers, one of which is SIGKILLed (its whole process tree) while it runs a task.

The launcher (``python -m include.distributed``, what ``make run-distributed`` runs) is started as it
would be by hand, on free ports, with its state in a fresh directory. The test shortens only what makes
recovery slow by default: the task-instance heartbeat timeout (300 s) and its detection interval, how
long a task may sit queued, and the DAG's retry delay. Scheduled runs are switched off so the run the
launcher triggers is the only one.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest

from include.distributed import kill_process_tree
from include.housing.locations import SEED_LOCATIONS
from include.launcher import USERNAME, Api

ROOT = Path(__file__).resolve().parents[2]
DAG_ID = "housing_mme_nightly"
BUCKET = "sagemaker-fleet-local"
ENDPOINT = "housing-mme"
HOUSES = 30
TERMINAL = {"success", "failed", "skipped", "upstream_failed", "removed"}
# Failure detection, not the budget: about 4 min on this 2-core machine at a load average of ~10.
RUN_DEADLINE_S = 600
HEARTBEAT_TIMEOUT_S = 30
# The whole stack comes up in the first test's setup: more than the default per-test timeout under load.
pytestmark = pytest.mark.timeout(1200)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Outcome:
    state_dir: Path
    ports: dict[str, int]
    run_id: str
    run_state: str
    instances: list[dict[str, Any]]
    tries: dict[tuple[str, int], list[dict[str, Any]]]
    victim: str
    survivor: str
    killed_task: tuple[str, int]
    killed_pids: list[int]
    stopped_cleanly: bool
    leftovers: list[str]
    seconds: dict[str, float] = field(default_factory=dict)
    output: str = ""


def _wait(what: str, check: Any, timeout: float, launcher: subprocess.Popen[bytes], output: Path) -> Any:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if launcher.poll() is not None:
            raise AssertionError(
                f"the launcher exited ({launcher.returncode}) waiting for {what}:\n{output.read_text()}"
            )
        try:
            result = check()
            if result:
                return result
        except Exception as exc:  # not up yet: keep polling, report the last error
            last = exc
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} ({last}):\n{output.read_text()[-4000:]}")


def _instances(api: Api, run_id: str) -> list[dict[str, Any]]:
    quoted = urllib.parse.quote(run_id)
    return api.get(f"/api/v2/dags/{DAG_ID}/dagRuns/{quoted}/taskInstances?limit=1000")["task_instances"]


@pytest.fixture(scope="module")
def outcome() -> Iterator[Outcome]:
    if not shutil.which("redis-server") or not list(Path("/usr/lib/postgresql").glob("*/bin/postgres")):
        pytest.fail("redis-server and PostgreSQL are needed: `make test-distributed` installs them")
    # Under /tmp itself: PostgreSQL runs as `postgres` and must traverse to its data (pytest's tmp is 0700).
    state_dir = Path(tempfile.mkdtemp(prefix="distributed-"))
    ports = {name: free_port() for name in ("AIRFLOW_PORT", "EMULATOR_PORT", "POSTGRES_PORT", "REDIS_PORT")}
    env = {
        **os.environ,
        **{name: str(port) for name, port in ports.items()},
        "DISTRIBUTED_STATE_DIR": str(state_dir),
        "RUN_CONF": json.dumps({"locations": list(SEED_LOCATIONS), "houses_per_location": HOUSES}),
        "RUN_TIMEOUT_S": str(RUN_DEADLINE_S),
        "WORKER_CONCURRENCY": "4",
        "HOUSING_RETRY_DELAY_SECONDS": "2",
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT_S),
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
        "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "2",
        # A task the dead worker had taken but not started is queued again after this.
        "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "90",
        "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL": "10",
    }
    output = state_dir / "launcher-output.log"
    started = time.monotonic()
    seconds: dict[str, float] = {}
    with open(output, "wb") as sink:
        launcher = subprocess.Popen(
            [sys.executable, "-m", "include.distributed"],
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        api = Api(f"http://127.0.0.1:{ports['AIRFLOW_PORT']}")
        passwords = state_dir / "airflow" / "passwords.json"
        _wait(
            "the API server",
            lambda: api.login(json.loads(passwords.read_text())[USERNAME]) or True,
            300,
            launcher,
            output,
        )

        def our_run() -> str | None:
            runs = api.get(f"/api/v2/dags/{DAG_ID}/dagRuns?limit=10")["dag_runs"]
            return next((run["dag_run_id"] for run in runs if run["run_type"] == "manual"), None)

        run_id = _wait("the launcher's run", our_run, 300, launcher, output)
        seconds["stack up and run triggered"] = time.monotonic() - started

        # Kill a worker while it runs a location's task, once both have run something to the end.
        def moment() -> tuple[str, tuple[str, int]] | None:
            instances = _instances(api, run_id)
            finished = {ti["hostname"] for ti in instances if ti["state"] == "success" and ti["hostname"]}
            if not (
                any(h.startswith("worker1@") for h in finished) and any(h.startswith("worker2@") for h in finished)
            ):
                return None
            # A location's task: the mapped work that both workers share.
            running = [
                ti
                for ti in instances
                if ti["state"] == "running"
                and ti["task_id"].startswith("location.")
                and (ti["hostname"] or "").startswith("worker")
            ]
            if not running:
                return None
            return running[0]["hostname"].split("@")[0], (running[0]["task_id"], running[0]["map_index"])

        victim, killed_task = _wait(
            "a location task running on a worker after both finished one", moment, 300, launcher, output
        )
        survivor = next(name for name in ("worker1", "worker2") if name != victim)
        worker_pid = int((state_dir / "pids" / f"{victim}.pid").read_text())
        killed_pids = kill_process_tree(worker_pid)
        seconds["killed a worker at"] = time.monotonic() - started

        def finished() -> str | None:
            state = api.get(f"/api/v2/dags/{DAG_ID}/dagRuns/{urllib.parse.quote(run_id)}")["state"]
            return state if state in ("success", "failed") else None

        run_state = _wait("the run to finish", finished, RUN_DEADLINE_S, launcher, output)
        seconds["run finished at"] = time.monotonic() - started
        # The launcher's report (which worker ran what, the summary) comes a moment after the run ends.
        _wait("the launcher's report", lambda: "press Ctrl-C" in output.read_text(), 180, launcher, output)
        instances = _instances(api, run_id)
        tries: dict[tuple[str, int], list[dict[str, Any]]] = {}
        for ti in instances:
            if ti["try_number"] > 1 or (ti["task_id"], ti["map_index"]) == killed_task:
                path = f"/api/v2/dags/{DAG_ID}/dagRuns/{urllib.parse.quote(run_id)}/taskInstances/{ti['task_id']}"
                path += f"/{ti['map_index']}/tries" if ti["map_index"] >= 0 else "/tries"
                tries[(ti["task_id"], ti["map_index"])] = api.get(path)["task_instances"]
    except BaseException:
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGINT)
        try:
            launcher.wait(120)
        except subprocess.TimeoutExpired:
            kill_process_tree(launcher.pid)
        raise

    # Ctrl-C, as a person would: everything it started must be gone.
    pids_before = {p.name: int(p.read_text()) for p in (state_dir / "pids").glob("*.pid")}
    descendants = []
    with contextlib.suppress(psutil.Error):
        descendants = psutil.Process(launcher.pid).children(recursive=True)
    os.killpg(launcher.pid, signal.SIGINT)
    try:
        launcher.wait(90)
        stopped_cleanly = launcher.returncode == 0
    except subprocess.TimeoutExpired:
        kill_process_tree(launcher.pid)
        stopped_cleanly = False
    time.sleep(1)
    leftovers = [f"{name} (pid {pid})" for name, pid in pids_before.items() if psutil.pid_exists(pid)]
    leftovers += [f"{p.pid} {p.name()}" for p in descendants if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    seconds["stopped at"] = time.monotonic() - started
    print(f"\ndistributed suite timings: {json.dumps({k: round(v) for k, v in seconds.items()})}")
    yield Outcome(
        state_dir=state_dir,
        ports=ports,
        run_id=run_id,
        run_state=run_state,
        instances=instances,
        tries=tries,
        victim=victim,
        survivor=survivor,
        killed_task=killed_task,
        killed_pids=killed_pids,
        stopped_cleanly=stopped_cleanly,
        leftovers=leftovers,
        seconds=seconds,
        output=output.read_text(),
    )
    shutil.rmtree(state_dir, ignore_errors=True)


def test_the_run_succeeds_after_a_worker_is_killed(outcome: Outcome) -> None:
    assert outcome.run_state == "success", outcome.output[-6000:]
    assert len(outcome.killed_pids) >= 2, f"the worker's process tree: {outcome.killed_pids}"


def test_task_instances_ran_on_both_workers(outcome: Outcome) -> None:
    workers = Counter((ti["hostname"] or "").split("@")[0] for ti in outcome.instances if ti["state"] == "success")
    assert workers["worker1"] > 0 and workers["worker2"] > 0, workers
    assert set(workers) <= {"worker1", "worker2"}, f"task instances ran outside the two workers: {workers}"
    # The launcher prints which worker ran each task.
    assert "which worker ran each task" in outcome.output and "worker1@" in outcome.output


def test_the_killed_task_was_retried_on_the_other_worker(outcome: Outcome) -> None:
    task_id, map_index = outcome.killed_task
    final = next(ti for ti in outcome.instances if (ti["task_id"], ti["map_index"]) == (task_id, map_index))
    assert final["state"] == "success", final
    assert final["try_number"] >= 2, f"{task_id}[{map_index}] was not retried: {final}"
    assert final["hostname"].startswith(f"{outcome.survivor}@"), final
    first_try = min(outcome.tries[(task_id, map_index)], key=lambda t: t["try_number"])
    assert first_try["hostname"].startswith(f"{outcome.victim}@"), first_try
    assert first_try["state"] == "failed", first_try


def test_no_task_left_non_terminal(outcome: Outcome) -> None:
    stuck = {
        f"{ti['task_id']}[{ti['map_index']}]": ti["state"] for ti in outcome.instances if ti["state"] not in TERMINAL
    }
    assert not stuck, stuck
    per_location = Counter(ti["map_index"] for ti in outcome.instances if ti["task_id"] == "location.promote")
    assert len(per_location) == len(SEED_LOCATIONS), per_location


def test_no_duplicate_sagemaker_resources(outcome: Outcome) -> None:
    import boto3

    from include.sagemaker_emulator.process import EmulatorProcess

    # The emulator stopped with the stack; its data directory survives: start it again to look.
    with EmulatorProcess(data_dir=outcome.state_dir / "emulator") as emulator:
        sm = boto3.client("sagemaker", endpoint_url=emulator.url, region_name="us-east-1")
        s3 = boto3.client("s3", endpoint_url=emulator.url, region_name="us-east-1")
        jobs = [
            job["TrainingJobName"]
            for page in sm.get_paginator("list_training_jobs").paginate()
            for job in page["TrainingJobSummaries"]
        ]
        assert len(jobs) == len(SEED_LOCATIONS) == len(set(jobs)), f"one training job per location: {sorted(jobs)}"
        prefix = f"mme/{ENDPOINT}/"
        artifacts = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])]
        by_location = Counter(key.removeprefix(prefix).split("/")[0] for key in artifacts)
        assert by_location == dict.fromkeys(SEED_LOCATIONS, 1), f"one MME artifact per location: {artifacts}"
        for location in SEED_LOCATIONS:
            body = s3.get_object(Bucket=BUCKET, Key=f"registry/{ENDPOINT}/{location}.json")["Body"].read()
            record = json.loads(body)
            assert len(record["versions"]) == 1 and record["live_version"] in record["versions"], record


def test_ctrl_c_stops_everything(outcome: Outcome) -> None:
    assert outcome.stopped_cleanly, outcome.output[-3000:]
    assert not outcome.leftovers, f"left running after Ctrl-C: {outcome.leftovers}"
    for port in outcome.ports.values():
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still answers after Ctrl-C"
