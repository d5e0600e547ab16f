"""Fixtures of the DAG tests: an initialised Airflow home in a tmp dir and ``run_dag`` (``dag.test()``).

Each ``run_dag`` call runs ``dag.test()`` in a fresh Python process with this session's Airflow home and
the emulator's connection in its environment, so Airflow's configuration (read once per process, at
import) is always this session's, whatever else the test process imported before.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
POOLS = {"sagemaker_training": 4}

_RUNNER = r"""
import datetime as dt, json, os, sys
from airflow.dag_processing.dagbag import DagBag

dag_id, conf, logical_date = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
# Only this DAG's file (file name == dag_id): another DAG's import error is not this run's failure.
bag = DagBag(dag_folder=os.path.join(os.environ["AIRFLOW__CORE__DAGS_FOLDER"], dag_id + ".py"))
if bag.import_errors:
    raise SystemExit(f"DAG import errors: {bag.import_errors}")
dag = bag.get_dag(dag_id)
kwargs = {"run_conf": conf}
if logical_date != "none":
    kwargs["logical_date"] = dt.datetime.fromisoformat(logical_date)
else:
    kwargs["logical_date"] = None
dr = dag.test(**kwargs)
tasks = [
    {"task_id": ti.task_id, "map_index": ti.map_index, "label": ti.rendered_map_index, "state": ti.state}
    for ti in dr.get_task_instances()
]
print("@@RESULT@@" + json.dumps({"state": dr.state, "run_id": dr.run_id, "tasks": tasks}, default=str))
"""


@dataclass
class DagRunResult:
    """What a ``dag.test()`` run ended with; ``tasks`` maps ``task_id`` or ``task_id[label]`` to a state."""

    state: str
    run_id: str
    tasks: dict[str, str]
    task_instances: list[dict[str, Any]]
    seconds: float
    log: str = field(repr=False)

    def state_of(self, task_id: str, label: str | None = None) -> str | None:
        return self.tasks.get(f"{task_id}[{label}]" if label is not None else task_id)

    def states_for(self, label: str) -> dict[str, str]:
        """The states of one map label's tasks (e.g. a location's), keyed by task_id.

        Tasks that never ran (upstream_failed) have no rendered label: they are found by map index.
        """
        indexes = {ti["map_index"] for ti in self.task_instances if ti["label"] == label}
        return {ti["task_id"]: ti["state"] for ti in self.task_instances if ti["map_index"] in indexes}


def _airflow_env(home: Path) -> dict[str, str]:
    plugins = REPO / "plugins"
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(plugins),
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "120",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "PYTHONPATH": os.pathsep.join([str(REPO), str(plugins), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    }


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """An Airflow home with a migrated SQLite metadata DB and the project's pools; returns its environment."""
    home = tmp_path_factory.mktemp("airflow_home")
    env = {**os.environ, **_airflow_env(home)}
    airflow = str(Path(sys.executable).with_name("airflow"))
    subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True, timeout=300)
    for pool, slots in POOLS.items():
        subprocess.run(
            [airflow, "pools", "set", pool, str(slots), f"{pool} (DAG tests)", "--include-deferred"],
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )
    return _airflow_env(home)


@pytest.fixture(scope="session")
def run_dag(airflow_home: dict[str, str]) -> Callable[..., DagRunResult]:
    """``run_dag(dag_id, conf=None, logical_date=datetime|None, env=None)`` -> :class:`DagRunResult`.

    Runs ``dag.test()`` in a subprocess; the current environment (e.g. the emulator's
    ``AIRFLOW_CONN_AWS_DEFAULT``) is passed on, plus ``env`` (e.g. ``AIRFLOW_VAR_*`` settings).
    """
    return dag_runner(airflow_home)


def dag_runner(airflow_home: dict[str, str]) -> Callable[..., DagRunResult]:
    """The function behind the ``run_dag`` fixture, for scripts (e.g. benchmarks) outside pytest."""

    def run(
        dag_id: str,
        conf: dict[str, Any] | None = None,
        logical_date: dt.datetime | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 600,
    ) -> DagRunResult:
        started = time.monotonic()
        process = subprocess.run(
            [
                sys.executable,
                "-c",
                _RUNNER,
                dag_id,
                json.dumps(conf or {}),
                logical_date.isoformat() if logical_date else "none",
            ],
            env={**os.environ, **airflow_home, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=REPO,
        )
        seconds = time.monotonic() - started
        output = process.stdout + process.stderr
        marker = next((line for line in process.stdout.splitlines() if line.startswith("@@RESULT@@")), None)
        if marker is None:
            raise AssertionError(
                f"dag.test() of {dag_id} did not finish (exit {process.returncode}):\n{output[-8000:]}"
            )
        result = json.loads(marker.removeprefix("@@RESULT@@"))
        tasks: dict[str, str] = {}
        for ti in result["tasks"]:
            key = ti["task_id"] if ti["map_index"] < 0 else f"{ti['task_id']}[{ti['label'] or ti['map_index']}]"
            tasks[key] = ti["state"]
        return DagRunResult(result["state"], result["run_id"], tasks, result["tasks"], seconds, output)

    return run
