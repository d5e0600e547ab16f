"""A real Airflow 3 stack for the scheduler tests, as ``make run`` starts it, but private to the session.

The ``airflow_stack`` session fixture starts the emulator, then an api-server (the UI, the REST API and
the execution API that LocalExecutor's task processes talk to), a scheduler, a dag-processor and a
triggerer: LocalExecutor on SQLite in a tmp ``AIRFLOW_HOME``, every port a free loopback port (never
8080 or 4566, which ``make run`` may be using), and stops all of them at the end.

Unlike ``make run``, the scheduler does not create scheduled runs (``use_job_schedule = False``): an
unpaused nightly DAG would otherwise start the latest night with the ten default locations. Backfills,
``dags trigger`` and REST-triggered runs are scheduled and executed exactly as under ``make run``.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from include.sagemaker_emulator.process import EmulatorProcess, free_port

REPO = Path(__file__).resolve().parents[2]
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
USERNAME = "admin"
BUCKET = "scheduler-tests"
DAG_IDS = ("housing_mme_nightly", "housing_ab_rollout")
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
FINISHED = {"success", "failed"}
LOCKED_ATTEMPTS = 5
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


def _airflow_env(home: Path, api_port: int, emulator_url: str, password_file: Path) -> dict[str, str]:
    api = f"http://127.0.0.1:{api_port}"
    return {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "plugins")]),
        "AIRFLOW_HOME": str(home),
        # SQLite lets one writer in at a time; the scheduler, dag-processor, api-server, task processes
        # and the CLI all write. The driver's default 5 s wait for the lock ends in "database is locked"
        # on a busy machine: wait up to 60 s instead.
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db?timeout=60",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        # Two cores shared with other work: a few task processes at a time is what they can run.
        "AIRFLOW__CORE__PARALLELISM": "6",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "120",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api}/execution/",
        "AIRFLOW__API__BASE_URL": api,
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USERNAME}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(password_file),
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "60",
        "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE": "True",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        # The scheduler's and triggerer's log servers default to 8793 and 8794: free ports here as well.
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(
            {"conn_type": "aws", "extra": {"endpoint_url": emulator_url, "region_name": "us-east-1"}}
        ),
        "AWS_ENDPOINT_URL": emulator_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AIRFLOW_VAR_HOUSING_BUCKET": BUCKET,
        "HOUSING_RETRY_DELAY_SECONDS": "2",
    }


@dataclass
class AirflowStack:
    """The running stack: the ``airflow`` CLI and the REST API with this stack's environment."""

    env: dict[str, str]
    api_url: str
    emulator: EmulatorProcess
    logs: Path
    password: str
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _token: str | None = None

    # -- processes ---------------------------------------------------------------------------------------
    def start(self, name: str, argv: list[str]) -> None:
        with open(self.logs / f"{name}.log", "ab") as log:
            # Own process group: stopping it reaches the component's children (task processes, workers).
            self.processes[name] = subprocess.Popen(
                argv, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}:\n{self.log_tail(name)}")

    def log_tail(self, name: str, chars: int = 4000) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)"

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for process in self.processes.values():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    # -- the airflow command -----------------------------------------------------------------------------
    def cli(self, *args: str, timeout: float = 180) -> str:
        """Run ``airflow <args>`` against this stack; the combined output, AssertionError on failure."""
        return _run_retrying_lock(
            [AIRFLOW, *args], cwd=REPO, env=self.env, what=f"airflow {shlex.join(args)}", timeout=timeout
        )

    def make_airflow(self, *args: str, timeout: float = 180) -> str:
        """``make airflow ARGS="<args>"`` (the README's way to reach ``make run``'s stack) pointed at this
        stack's home, from an environment without any AIRFLOW_* or AWS_* variable: the target sets them."""
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "AWS_"))}
        argv = ["make", "-s", "-C", str(REPO), "airflow", f"ARGS={shlex.join(args)}"]
        argv.append(f"RUN_AIRFLOW_HOME={self.env['AIRFLOW_HOME']}")
        return _run_retrying_lock(argv, cwd=REPO, env=clean, what=shlex.join(argv), timeout=timeout)

    # -- REST API ------------------------------------------------------------------------------------------
    def _call(self, method: str, path: str, body: Any = None, auth: bool = True) -> Any:
        headers = {"Content-Type": "application/json"}
        if auth:
            if self._token is None:
                self._token = self._call(
                    "POST", "/auth/token", {"username": USERNAME, "password": self.password}, auth=False
                )["access_token"]
            headers["Authorization"] = f"Bearer {self._token}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.api_url + path, data=data, method=method, headers=headers)
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")

    def get(self, path: str) -> Any:
        return self._call("GET", path)

    def post(self, path: str, body: Any) -> Any:
        return self._call("POST", path, body)

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


def _run_retrying_lock(argv: list[str], *, cwd: Path, env: dict[str, str], what: str, timeout: float) -> str:
    """Run a command; the combined output, AssertionError when it fails.

    SQLite gives up at once ("database is locked") when a transaction that read must write while another
    connection writes; the command's transaction was rolled back, so it is run again, as a person
    would. Any other failure is final.
    """
    for attempt in range(1, LOCKED_ATTEMPTS + 1):
        done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
        output = done.stdout + done.stderr
        if done.returncode == 0:
            return output
        if "database is locked" not in output or attempt == LOCKED_ATTEMPTS:
            break
        time.sleep(2 * attempt)
    raise AssertionError(f"{what} exited {done.returncode} (attempt {attempt}):\n{output[-4000:]}")


def _wait(what: str, check: Any, timeout: float, stack: AirflowStack) -> Any:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        stack.check_alive()
        try:
            result = check()
            if result:
                return result
        except (OSError, urllib.error.URLError, KeyError, ValueError) as error:
            last = error
        time.sleep(1)
    raise RuntimeError(f"timed out waiting for {what} ({last})")


@pytest.fixture(scope="session")
def airflow_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowStack]:
    root = tmp_path_factory.mktemp("scheduler_stack")
    home, logs = root / "airflow", root / "logs"
    home.mkdir()
    logs.mkdir()
    password = secrets.token_urlsafe(12)
    password_file = home / "passwords.json"
    password_file.write_text(json.dumps({USERNAME: password}))
    with EmulatorProcess(data_dir=root / "emulator", log_path=logs / "emulator.log") as emulator:
        api_port = free_port()
        env = _airflow_env(home, api_port, emulator.url, password_file)
        stack = AirflowStack(env=env, api_url=f"http://127.0.0.1:{api_port}", emulator=emulator, logs=logs,
                             password=password)  # fmt: skip
        try:
            stack.cli("db", "migrate", timeout=600)
            stack.cli("pools", "set", "sagemaker_training", "4", "SageMaker training-job quota", "--include-deferred")
            for name in COMPONENTS:
                stack.start(name, [AIRFLOW, name])
            _wait("the api-server", lambda: stack.get("/api/v2/version"), 240, stack)
            for dag_id in DAG_IDS:
                _wait(f"{dag_id} to be parsed", lambda d=dag_id: stack.get(f"/api/v2/dags/{d}"), 240, stack)
            yield stack
        finally:
            stack.stop()


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
