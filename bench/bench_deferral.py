"""Worker slots held while 20 SageMaker training jobs wait: deferrable operator vs the provider's poke sensor.

``python -m bench.bench_deferral`` starts an emulator whose jobs stay InProgress for minutes
(``--time-scale 3``: Starting alone takes 180 s; ``--max-training-jobs 40``) and a real Airflow (api-server,
scheduler with the LocalExecutor, dag-processor, triggerer; temp AIRFLOW_HOME, SQLite) with two throwaway
DAGs written to a temp dags folder:

1. ``bench_deferral_operator``: 20 mapped ``SageMakerRetrySafeTrainingOperator`` (deferrable) each starting a
   job and deferring; once all 20 are deferred, the task-instance states are sampled every second and the
   largest number in ``running`` is ``deferral.worker_slots_held`` (expected 0);
2. ``bench_deferral_poke``: 20 mapped provider ``SageMakerTrainingSensor`` (``mode="poke"``) waiting on 20 jobs
   the bench started; once all 20 run, the steady-state count in ``running`` is
   ``deferral.provider_poke_slots_held`` (expected 20).

Everything is bounded (about four minutes) and every process and temp dir is removed at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import client, emulator, print_table
from include import launcher

JOBS = 20
POOL = "sagemaker_training"
BUCKET = "bench-deferral"
STEADY_SAMPLE_S = 15
PHASE_TIMEOUT_S = 100
TOTAL_BUDGET_S = 300

_DAGS = '''
"""Throwaway DAGs of bench/bench_deferral.py (written to a temp folder, never into dags/)."""
import datetime as dt

from airflow.providers.amazon.aws.sensors.sagemaker import SageMakerTrainingSensor
from airflow.sdk import dag

from sagemaker_fleet.operators.training import SageMakerRetrySafeTrainingOperator

CONFIGS = {configs}
POKE_JOBS = {poke_jobs}
COMMON = dict(schedule=None, start_date=dt.datetime(2026, 1, 1), catchup=False, max_active_tasks=64)


@dag(dag_id="bench_deferral_operator", **COMMON)
def operator_dag():
    SageMakerRetrySafeTrainingOperator.partial(
        task_id="train", pool="{pool}", deferrable=True, check_interval=5, print_log=False
    ).expand(config=CONFIGS)


@dag(dag_id="bench_deferral_poke", **COMMON)
def poke_dag():
    SageMakerTrainingSensor.partial(
        task_id="wait", pool="{pool}", mode="poke", poke_interval=5, timeout=900, print_log=False
    ).expand(job_name=POKE_JOBS)


operator_dag()
poke_dag()
'''


def _states(db: Path, dag_id: str) -> dict[str, int]:
    for _ in range(5):
        try:
            with contextlib.closing(sqlite3.connect(db, timeout=5)) as conn:
                rows = conn.execute(
                    "SELECT COALESCE(state, 'none'), COUNT(*) FROM task_instance WHERE dag_id = ? GROUP BY 1", (dag_id,)
                ).fetchall()
            return dict(rows)
        except sqlite3.OperationalError:
            time.sleep(0.2)
    return {}


def _phase(api: launcher.Api, stack: launcher.Stack, db: Path, dag_id: str, ready_state: str, deadline: float) -> dict:
    """Trigger ``dag_id``, wait until all JOBS tasks are in ``ready_state``, then sample the steady state."""
    started = time.monotonic()
    api.post(f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None})
    timeline: list[tuple[float, dict[str, int]]] = []
    ready_at = None
    steady_max = 0
    transient_max = 0
    phase_deadline = min(deadline, started + PHASE_TIMEOUT_S + STEADY_SAMPLE_S)
    while time.monotonic() < phase_deadline:
        stack.check()
        states = _states(db, dag_id)
        now = time.monotonic() - started
        timeline.append((now, states))
        running = states.get("running", 0)
        if ready_at is None:
            transient_max = max(transient_max, running)
            if states.get(ready_state, 0) >= JOBS:
                ready_at = now
        else:
            steady_max = max(steady_max, running)
            if now - ready_at >= STEADY_SAMPLE_S:
                break
        time.sleep(1)
    last = timeline[-1][1] if timeline else {}
    return {
        "ready_after_s": round(ready_at, 1) if ready_at is not None else None,
        "steady_max_running": steady_max if ready_at is not None else None,
        "transient_max_running": transient_max,
        "samples": len(timeline),
        "last_states": last,
        "timeline": [(round(t, 1), s) for t, s in timeline[:: max(1, len(timeline) // 12)]],
    }


def run() -> dict[str, float]:
    from include.local_stack import LocalAirflow
    from tests.emulator.helpers import training_request, upload_housing_channels

    budget_end = time.monotonic() + TOTAL_BUDGET_S
    with (
        tempfile.TemporaryDirectory(prefix="bench-deferral-") as tmp,
        emulator("--max-training-jobs", str(2 * JOBS), "--log-level", "WARNING", time_scale=3.0) as emu,
    ):
        root = Path(tmp)
        dags = root / "dags"
        dags.mkdir()
        # make run's stack, private (temp home, free ports), with the bench's DAGs and room for 40 tasks.
        airflow = LocalAirflow(
            root,
            emu.url,
            settings={
                "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
                "AIRFLOW__CORE__PARALLELISM": "64",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            },
        )
        try:
            s3, sm = client(emu, "s3"), client(emu, "sagemaker")
            channels = upload_housing_channels(s3, BUCKET, "data", houses=300)
            channels = {k: channels[k] for k in ("train", "validation")}
            request = training_request("x", channels, f"s3://{BUCKET}/out", max_runtime=3600)
            configs = [{**request, "TrainingJobName": f"bench-defer-{i:02d}"} for i in range(JOBS)]
            poke_jobs = [f"bench-poke-{i:02d}" for i in range(JOBS)]
            (dags / "bench_deferral_dags.py").write_text(
                _DAGS.format(configs=repr(configs), poke_jobs=repr(poke_jobs), pool=POOL)
            )
            airflow.start(["bench_deferral_operator", "bench_deferral_poke"], pools={POOL: 4 * JOBS}, timeout=150)
            setup_s = TOTAL_BUDGET_S - (budget_end - time.monotonic())
            db = airflow.home / "airflow.db"
            deferrable = _phase(airflow.api, airflow.processes, db, "bench_deferral_operator", "deferred", budget_end)
            for name in poke_jobs:
                sm.create_training_job(**{**request, "TrainingJobName": name})
            poke = _phase(airflow.api, airflow.processes, db, "bench_deferral_poke", "running", budget_end)
            jobs_in_progress = sum(
                sm.describe_training_job(TrainingJobName=name)["TrainingJobStatus"] == "InProgress"
                for name in [c["TrainingJobName"] for c in configs] + poke_jobs
            )
        except Exception:
            for log in sorted(airflow.logs.glob("*.log")):
                print(f"--- {log.name} (tail)\n{log.read_text(errors='replace')[-1500:]}")
            raise
        finally:
            airflow.stop()
    held, poked = deferrable["steady_max_running"], poke["steady_max_running"]
    figures: dict[str, float] = {
        "deferral.worker_slots_held": held if held is not None else -1,
        "deferral.provider_poke_slots_held": poked if poked is not None else -1,
        "deferral.transient_max_running": deferrable["transient_max_running"],
        "deferral.all_deferred_after_s": round(deferrable["ready_after_s"] or -1, 1),
        "deferral.airflow_start_s": round(setup_s, 1),
    }
    rows = [
        ("deferrable: running after all deferred", f"{held}", "expected 0: " + ("met" if held == 0 else "NOT MET")),
        ("  (while they started)", f"{deferrable['transient_max_running']}", "max running before all were deferred"),
        ("  all 20 deferred after", f"{deferrable['ready_after_s']} s", f"final states {deferrable['last_states']}"),
        ("provider poke sensor: running", f"{poked}", f"expected {JOBS}: " + ("met" if poked == JOBS else "NOT MET")),
        ("  all 20 running after", f"{poke['ready_after_s']} s", f"final states {poke['last_states']}"),
        ("jobs still InProgress at the end", f"{jobs_in_progress}/{2 * JOBS}", "(the waits were real)"),
        ("Airflow start (not measured)", f"{setup_s:.0f} s", "db migrate, 4 processes, DAGs parsed"),
    ]
    print_table(
        f"Worker slots held while {JOBS} training jobs wait (steady state, {STEADY_SAMPLE_S} s of samples)", rows
    )
    print("  deferrable timeline:", json.dumps(deferrable["timeline"]))
    print("  poke timeline:      ", json.dumps(poke["timeline"]))
    return figures


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    run()
