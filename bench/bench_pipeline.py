"""The nightly pipeline under ``airflow dags test`` vs the same work in one process.

``python -m bench.bench_pipeline`` starts its own emulator and a fresh Airflow home (temp dir, SQLite DB
migrated, pool ``sagemaker_training`` created), then runs ``airflow dags test housing_mme_nightly <date>``
(the CLI, in a subprocess) for the ten seed locations x 1,000 houses (target <= 60 s) and for 40 locations
(the slope between the two is the marginal cost of a location, target <= 1.5 s, issue 21). Every measurement uses a
fresh run date, so no data, training job or model is reused (each later night does evaluate against the
previous night's live model, as a real nightly run does). The floor is the same data generation,
preparation and xgboost training (25 rounds, the DAG's hyperparameters) for ten locations in this process.

After each run the task instances' durations are read from the run's metadata DB and summed per task, so
the table shows where the wall time goes: inside tasks (and which), or between them (``dags test`` itself).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import emulator, median, print_table
from include.housing.locations import SEED_LOCATIONS
from include.launcher import ROOT, airflow_env

DAG_ID = "housing_mme_nightly"
HOUSES = 1000
# Thirty more valid CamelCaseCity_ST names (not in the seed), for the 40-location run.
EXTRA_LOCATIONS = (
    "Jacksonville_FL", "Austin_TX", "FortWorth_TX", "Columbus_OH", "Charlotte_NC", "Indianapolis_IN",
    "Seattle_WA", "Denver_CO", "Washington_DC", "Boston_MA", "ElPaso_TX", "Nashville_TN", "Detroit_MI",
    "OklahomaCity_OK", "Portland_OR", "LasVegas_NV", "Memphis_TN", "Louisville_KY", "Baltimore_MD",
    "Milwaukee_WI", "Albuquerque_NM", "Tucson_AZ", "Fresno_CA", "Sacramento_CA", "KansasCity_MO",
    "Mesa_AZ", "Atlanta_GA", "Omaha_NE", "Raleigh_NC", "Miami_FL",
)  # fmt: skip
TARGET_NIGHTLY_S = 60.0
TARGET_PER_LOCATION_S = 1.5
TARGET_VALIDATE_S = 1.0
RUN_TIMEOUT_S = 600  # one dags test (40 locations take ~7 minutes on a loaded 2-core machine)
FIRST_DATE = dt.date(2026, 3, 1)


def _airflow(env: dict[str, str], *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    airflow = str(Path(sys.executable).with_name("airflow"))
    return subprocess.run(
        [airflow, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=True
    )


def bench_env(home: Path, emulator_url: str) -> dict[str, str]:
    """The launcher's Airflow environment, pointed at a temp home and the bench's emulator."""
    env = airflow_env(emulator_url, "127.0.0.1", 8080, airflow_home=home)
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}",
        AIRFLOW__LOGGING__BASE_LOG_FOLDER=str(home / "logs"),
        AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT="120",
        HOUSING_BUCKET="bench-pipeline",
    )
    return env


def init_home(env: dict[str, str], pool_slots: int = 4) -> None:
    _airflow(env, "db", "migrate", timeout=300)
    _airflow(env, "pools", "set", "sagemaker_training", str(pool_slots), "bench", "--include-deferred")


def task_profile(db: Path, run_id: str) -> dict[str, tuple[int, float]]:
    """task_id -> (instances, summed duration in s) for one run, from the metadata DB."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT task_id, COUNT(*), SUM(COALESCE(duration, 0)) FROM task_instance WHERE run_id = ? GROUP BY task_id",
            (run_id,),
        ).fetchall()
        states = conn.execute(
            "SELECT state, COUNT(*) FROM task_instance WHERE run_id = ? GROUP BY state", (run_id,)
        ).fetchall()
    profile = {task_id: (count, float(total)) for task_id, count, total in rows}
    profile["_states"] = dict(states)  # type: ignore[assignment]
    return profile


def dags_test(env: dict[str, str], locations: list[str], day: dt.date) -> tuple[float, str, dict]:
    """One ``airflow dags test`` of the nightly DAG; returns (wall seconds, run_id, per-task profile)."""
    conf = json.dumps({"locations": locations, "houses_per_location": HOUSES})
    logical_date = dt.datetime.combine(day, dt.time(2), tzinfo=dt.UTC).isoformat()
    airflow = str(Path(sys.executable).with_name("airflow"))
    log_path = Path(env["AIRFLOW_HOME"]) / f"dags-test-{day.isoformat()}-{len(locations)}.log"
    launched = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    started = time.perf_counter()
    with open(log_path, "w") as log:
        process = subprocess.run(
            [airflow, "dags", "test", DAG_ID, logical_date, "-c", conf],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=RUN_TIMEOUT_S,
        )
    seconds = time.perf_counter() - started
    db = Path(env["AIRFLOW_HOME"]) / "airflow.db"
    with sqlite3.connect(db) as conn:
        row = conn.execute(
            "SELECT run_id, state FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1", (DAG_ID,)
        ).fetchone()
    if process.returncode != 0 or row is None or row[1] != "success":
        tail = log_path.read_text()[-4000:]
        raise RuntimeError(
            f"dags test with {len(locations)} locations ended {row} (exit {process.returncode}):\n{tail}"
        )
    profile = task_profile(db, row[0])
    text = log_path.read_text()
    profile["_startup_s"] = _startup_seconds(text, launched)  # type: ignore[assignment]
    profile["_validate_params_s"] = _own_task_seconds(text, "validate_params")  # type: ignore[assignment]
    return seconds, row[0], profile


def _own_task_seconds(log: str, task_id: str) -> float | None:
    """A task's own run in a ``dags test`` log: from "Task started" to "[DAG TEST] end task".

    The first task's duration in the metadata DB also holds ``dags test`` starting its in-process execution
    API (3-4 s, once per run); that is start-up, not the task's work.
    """
    start = re.search(rf"\[DAG TEST\] starting task_id={task_id} ", log)
    if start is None:
        return None
    started = re.compile(r"^(\S+)Z .*Task started", re.MULTILINE).search(log, start.end())
    ended = re.compile(rf"^(\S+)Z .*\[DAG TEST\] end task task_id={task_id} ", re.MULTILINE).search(log, start.end())
    if started is None or ended is None:
        return None
    return (dt.datetime.fromisoformat(ended.group(1)) - dt.datetime.fromisoformat(started.group(1))).total_seconds()


def _startup_seconds(log: str, launched: dt.datetime) -> float | None:
    """From launching ``airflow dags test`` to its log saying the DAG run exists (CLI import, DAG parse, DB)."""
    match = re.search(r"^(\S+)Z .*Created dag run\.", log, re.MULTILINE)
    return (dt.datetime.fromisoformat(match.group(1)) - launched).total_seconds() if match else None


def direct_seconds(locations: list[str], day: dt.date) -> float:
    """The floor: generate, prepare and train (train + validation channels, early stopping) in one process."""
    import numpy as np
    import xgboost as xgb

    from include.housing.feed import generate_listings, stable_seed
    from include.housing.params import NIGHTLY_DEFAULTS
    from include.housing.prepare import prepare_listings

    hp = dict(NIGHTLY_DEFAULTS["hyperparameters"])
    rounds, early = int(hp.pop("num_round")), int(hp.pop("early_stopping_rounds"))
    params = {**hp, "nthread": 1}
    started = time.perf_counter()
    for location in locations:
        raw = generate_listings(location, day, HOUSES)
        prepared = prepare_listings(
            raw, location=location, max_bad_fraction=0.2, seed=stable_seed("split", location, day.isoformat()),
            run_date=day,
        )  # fmt: skip
        train = np.loadtxt(io.StringIO(prepared.train_csv), delimiter=",")
        valid = np.loadtxt(io.StringIO(prepared.validation_csv), delimiter=",")
        dtrain = xgb.DMatrix(train[:, 1:], label=train[:, 0])
        dvalid = xgb.DMatrix(valid[:, 1:], label=valid[:, 0])
        xgb.train(
            params, dtrain, rounds, evals=[(dvalid, "validation")], early_stopping_rounds=early, verbose_eval=False
        )
    return time.perf_counter() - started


def _profile_rows(profile: dict, wall: float) -> list[tuple[str, str, str]]:
    tasks = {k: v for k, v in profile.items() if not k.startswith("_")}
    inside = sum(total for _, total in tasks.values())
    rows = [
        (f"  {task_id} (x{count})", f"{total:.1f} s", f"{total / count:.2f} s each")
        for task_id, (count, total) in sorted(tasks.items(), key=lambda item: -item[1][1])
    ]
    if profile.get("_startup_s") is not None:
        rows.insert(0, ("  start-up (CLI, parse, DB) to run created", f"{profile['_startup_s']:.1f} s", ""))
        inside += profile["_startup_s"]
    rows.append(("  sum inside tasks (+ start-up)", f"{inside:.1f} s", f"{inside / wall:.0%} of wall"))
    rows.append(
        ("  between tasks (dags test itself)", f"{wall - inside:.1f} s", f"{(wall - inside) / wall:.0%} of wall")
    )
    return rows


def _load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def measure(home: Path, locations: list[str], day: dt.date) -> tuple[float, dict]:
    """One dags test on a fresh emulator (so it is a first night: nothing in S3 or SageMaker to reuse)."""
    with emulator("--log-level", "WARNING") as emu:
        seconds, _, profile = dags_test(bench_env(home, emu.url), locations, day)
    return seconds, profile


def run() -> dict[str, float]:
    import xgboost  # noqa: F401  (import cost is not part of the floor)

    ten = list(SEED_LOCATIONS)
    forty = ten + list(EXTRA_LOCATIONS)
    assert len(set(forty)) == 40
    loads = [_load()]
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        home = Path(tmp) / "airflow"
        home.mkdir()
        started = time.perf_counter()
        init_home(bench_env(home, "http://127.0.0.1:9"))
        setup_s = time.perf_counter() - started
        # A fresh emulator and a fresh run date per measurement: nothing is reused between them.
        ten_s, ten_profile = measure(home, ten, FIRST_DATE)
        loads.append(_load())
        forty_s, forty_profile = measure(home, forty, FIRST_DATE + dt.timedelta(days=1))
        loads.append(_load())
    directs = [direct_seconds(ten, FIRST_DATE + dt.timedelta(days=i)) for i in range(3)]
    direct = median(directs)
    slope = (forty_s - ten_s) / 30
    direct_slope = direct / 10
    figures = {
        "pipeline.nightly_10_locations_s": round(ten_s, 2),
        "pipeline.nightly_40_locations_s": round(forty_s, 2),
        "pipeline.per_location_s": round(slope, 3),
        "pipeline.direct_10_locations_s": round(direct, 3),
        "pipeline.ratio_to_direct": round(ten_s / direct, 1),
        "pipeline.per_location_ratio_to_direct": round(slope / direct_slope, 1),
        "pipeline.dags_test_startup_s": round(ten_profile.get("_startup_s") or 0.0, 2),
        # The first task (Params, settings, image URI, the rerun check) from its "Task started" to its end; its
        # duration in the metadata DB (below, "where the time goes") also holds dags test's API start-up.
        "pipeline.validate_params_s": round(ten_profile.get("_validate_params_s") or float("nan"), 2),
        "pipeline.airflow_setup_s": round(setup_s, 1),
    }
    validate_s = figures["pipeline.validate_params_s"]
    met = lambda ok: "met" if ok else "NOT MET"  # noqa: E731
    rows = [
        ("10 locations, dags test", f"{ten_s:.1f} s", f"target <= {TARGET_NIGHTLY_S:.0f} s: {met(ten_s <= TARGET_NIGHTLY_S)}"),
        ("40 locations, dags test", f"{forty_s:.1f} s", ""),
        ("per location (10 -> 40)", f"{slope:.2f} s", f"target <= {TARGET_PER_LOCATION_S:g} s: {met(slope <= TARGET_PER_LOCATION_S)}"),
        ("validate_params (10 locations)", f"{validate_s:.2f} s", f"target <= {TARGET_VALIDATE_S:g} s: {met(validate_s <= TARGET_VALIDATE_S)}"),
        ("floor: same work in-process", f"{direct:.2f} s", "runs " + ", ".join(f"{s:.2f}" for s in directs)),
        ("dags test / floor", f"{ten_s / direct:.0f}x", f"per location {slope / direct_slope:.0f}x"),
        ("Airflow home setup (not timed)", f"{setup_s:.1f} s", "db migrate + pool"),
        ("load average before/after runs", " | ".join(loads), f"{os.cpu_count()} cores: one run each, noisy"),
    ]  # fmt: skip
    print_table("Pipeline (housing_mme_nightly, 1,000 houses per location, first night on a fresh emulator)", rows)
    for n, wall, profile in ((10, ten_s, ten_profile), (40, forty_s, forty_profile)):
        print_table(
            f"Where the time goes, {n} locations (wall {wall:.1f} s; task durations summed from the metadata DB)",
            _profile_rows(profile, wall),
        )
    return figures


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    run()
