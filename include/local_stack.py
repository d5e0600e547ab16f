"""An Airflow 3 stack as ``make run`` starts it, private to a test session or a bench.

The scheduler, UI and bench suites need what ``make run`` runs (api-server with the UI and the execution
API, scheduler, dag-processor, triggerer; LocalExecutor on SQLite) but in a temp ``AIRFLOW_HOME``, on free
loopback ports (never 8080 or 4566, which ``make run`` may be using), and without the nightly schedule: an
unpaused nightly DAG would otherwise start the latest night with the ten default locations alongside the
runs under test. Everything else is the launcher's: its environment (:func:`include.launcher.airflow_env`),
its process groups (:class:`include.launcher.Stack`) and its REST client (:class:`include.launcher.Api`).
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from include.launcher import ROOT, Api, Stack, airflow_env, api_server_url, ui_password, wait_until
from include.sagemaker_emulator.process import free_port

AIRFLOW = str(Path(sys.executable).with_name("airflow"))
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
# SQLite lets one writer in at a time; "database is locked" ends a CLI call that lost the race. The call's
# transaction was rolled back, so it is run again, as a person would.
LOCKED_ATTEMPTS = 5


def harness_settings(home: Path, *, parallelism: int = 6) -> dict[str, str]:
    """What a private stack sets on top of ``make run``'s environment."""
    return {
        # The driver's default 5 s wait for SQLite's lock ends in "database is locked" on a busy machine.
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db?timeout=60",
        # Two cores shared with other work: a few task processes at a time is what they can run.
        "AIRFLOW__CORE__PARALLELISM": str(parallelism),
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "120",
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "60",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        # The scheduler's and triggerer's log servers default to 8793 and 8794: free ports here as well.
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
    }


class LocalAirflow:
    """A private stack under ``root`` (``root/airflow`` is AIRFLOW_HOME, ``root/logs`` the components' logs).

    ``settings`` are added to the environment last (e.g. ``AIRFLOW_VAR_HOUSING_BUCKET``). Use as a context
    manager, or :meth:`start` then :meth:`stop`.
    """

    def __init__(self, root: Path, emulator_url: str, *, settings: dict[str, str] | None = None) -> None:
        self.home, self.logs = root / "airflow", root / "logs"
        self.home.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        self.emulator_url = emulator_url
        api_port = free_port()
        self.env = {
            **airflow_env(emulator_url, "127.0.0.1", api_port, airflow_home=self.home),
            **harness_settings(self.home),
            **(settings or {}),
        }
        self.password = ui_password(self.home)
        self.api_url = api_server_url("127.0.0.1", api_port)
        self.api = Api(self.api_url)
        self.processes = Stack(self.logs)

    # -- lifecycle ---------------------------------------------------------------------------------------
    def start(self, dag_ids: Iterable[str], pools: dict[str, int] | None = None, timeout: float = 240) -> None:
        """Migrate the database, create the pools, start the components and wait until ``dag_ids`` are parsed."""
        self.cli("db", "migrate", timeout=600)
        for pool, slots in (pools or {}).items():
            self.cli("pools", "set", pool, str(slots), "SageMaker training-job quota", "--include-deferred")
        for name in COMPONENTS:
            self.processes.start(name, [AIRFLOW, name], self.env)
        self.wait_until("the api-server", self._logged_in, timeout)
        for dag_id in dag_ids:
            self.wait_until(f"{dag_id} to be parsed", lambda d=dag_id: self.get(f"/api/v2/dags/{d}"), timeout)

    def stop(self) -> None:
        self.processes.stop()

    def _logged_in(self) -> bool:
        self.api.login(self.password)
        return True

    def __enter__(self) -> LocalAirflow:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def check_alive(self) -> None:
        """RuntimeError with the log's tail when a component has exited."""
        try:
            self.processes.check()
        except RuntimeError as error:
            name = str(error).split(" ", 1)[0]
            raise RuntimeError(f"{error}\n{self.log_tail(name)}") from None

    def pid(self, name: str) -> int:
        """The process id of a component (e.g. ``"scheduler"``)."""
        return next(process.pid for started, process in self.processes.processes if started == name)

    def log_tail(self, name: str, chars: int = 4000) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)"

    def wait_until(self, what: str, check: Callable[[], Any], timeout: float) -> Any:
        return wait_until(what, check, timeout, self.processes)

    # -- the airflow command -----------------------------------------------------------------------------
    def cli(self, *args: str, timeout: float = 180) -> str:
        """``airflow <args>`` against this stack: the combined output, AssertionError when it fails."""
        return run_retrying_lock([AIRFLOW, *args], env=self.env, what=f"airflow {shlex.join(args)}", timeout=timeout)

    # -- REST API ------------------------------------------------------------------------------------------
    def get(self, path: str) -> Any:
        return self.api.get(path)

    def post(self, path: str, body: Any) -> Any:
        return self.api.post(path, body)

    def patch(self, path: str, body: Any) -> Any:
        return self.api.patch(path, body)


def run_retrying_lock(argv: list[str], *, env: dict[str, str], what: str, timeout: float) -> str:
    """Run a command from the project root; the combined output, AssertionError when it fails.

    Only SQLite's "database is locked" is retried (the command's transaction was rolled back); any other
    failure is final.
    """
    for attempt in range(1, LOCKED_ATTEMPTS + 1):
        done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
        output = done.stdout + done.stderr
        if done.returncode == 0:
            return output
        if "database is locked" not in output or attempt == LOCKED_ATTEMPTS:
            break
        time.sleep(2 * attempt)
    raise AssertionError(f"{what} exited {done.returncode} (attempt {attempt}):\n{output[-4000:]}")
