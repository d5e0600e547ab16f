"""``make bench-scale``: the nightly DAG with hundreds of locations under the real scheduler.

``python -m bench.bench_scale [--locations 200] [--baseline 10] [--houses 1000] [--pool-slots 4]`` starts,
in a temp directory on free loopback ports, what ``make run`` starts: the emulator (its own data dir,
MME LRU of ``--mme-cache-size`` models) and Airflow 3 with LocalExecutor on SQLite (api-server,
scheduler, dag-processor, triggerer). Scheduled runs are off (``use_job_schedule = False``); the bench
triggers two ``housing_mme_nightly`` runs through the REST API, one after the other, on fresh dates:

1. ``--baseline`` locations, then 2. ``--locations`` locations (the first ones are the same names).

The slope between the two wall times is the marginal cost of a location under the scheduler. Then every
location's live model is invoked through the MME endpoint (``TargetModel``), ``--invoke-rounds`` passes in
the same order: with more models than the LRU holds, each pass evicts what the next needs, the worst case.

Figures: ``scale.locations_<N>_s`` (wall of the big run), ``scale.per_location_scheduler_s``,
``scale.failed_tasks`` (task instances of both runs ending failed or upstream_failed),
``scale.task_retries``, ``scale.scheduler_cpu_share`` (the scheduler process's CPU seconds over the big
run's wall time; its task processes are counted apart, under ``scale.task_processes_cpu_share``),
``scale.emulator_rss_mb`` (the emulator and its workers once every model is registered and the invoke
passes are done), ``scale.mme_p50_ms`` / ``scale.mme_p99_ms``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import signal
import sqlite3
import statistics
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import print_table, rss_mb
from include.housing.locations import SEED_LOCATIONS, US_STATE_CODES
from include.local_stack import LocalAirflow
from include.sagemaker_emulator.process import EmulatorProcess

ROOT = Path(__file__).resolve().parents[1]
DAG_ID = "housing_mme_nightly"
ENDPOINT = "housing-mme"  # the DAG's default endpoint_name
BUCKET = "bench-scale"
# Common US town names; with the 51 state codes, 510 valid CamelCaseCity_ST names after the seed's ten.
_TOWNS = ("Springfield", "Riverside", "Franklin", "Greenville", "Bristol", "Clinton", "Fairview", "Salem",
          "Madison", "Georgetown")  # fmt: skip
FIRST_DATE = dt.date(2026, 5, 1)
# How often a run's task-instance states are printed while the bench waits for it.
PROGRESS_EVERY_S = 120


def location_names(count: int) -> list[str]:
    """``count`` distinct valid location names: the seed's ten first, then town/state pairs."""
    extra = [f"{town}_{state}" for state in sorted(US_STATE_CODES) for town in _TOWNS]
    names = list(dict.fromkeys([*SEED_LOCATIONS, *extra]))
    if count > len(names):
        raise SystemExit(f"--locations {count}: at most {len(names)} names are available")
    return names[:count]


def bench_settings(parallelism: int) -> dict[str, str]:
    """What the bench sets on top of the private stack's environment (:mod:`include.local_stack`)."""
    return {
        "AIRFLOW__CORE__PARALLELISM": str(parallelism),
        # A mapped task expands to one instance per location: let a whole run's mapped tasks be scheduled.
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "1024",
        "AIRFLOW__CORE__MAX_MAP_LENGTH": "4096",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "60",
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "120",
        "AIRFLOW_VAR_HOUSING_BUCKET": BUCKET,
        "HOUSING_RETRY_DELAY_SECONDS": "5",
    }


def cpu_seconds(pid: int) -> float:
    import psutil

    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def tree_cpu_seconds(pid: int) -> float:
    """CPU of a process's descendants: each living one's own, plus what every process in the tree has reaped
    (``children_user``/``children_system``: LocalExecutor's workers reap the task processes they fork)."""
    import psutil

    process = psutil.Process(pid)
    times = process.cpu_times()
    total = times.children_user + times.children_system
    for child in process.children(recursive=True):
        try:
            child_times = child.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += child_times.user + child_times.system + child_times.children_user + child_times.children_system
    return total


def run_nightly(stack: LocalAirflow, locations: list[str], day: dt.date, houses: int, timeout: float) -> dict[str, Any]:
    """Trigger one nightly run for ``day`` and wait for it; wall seconds and the scheduler's CPU over it."""
    logical = dt.datetime.combine(day, dt.time(2), tzinfo=dt.UTC).isoformat()
    scheduler = stack.pid("scheduler")
    cpu_before, tasks_before = cpu_seconds(scheduler), tree_cpu_seconds(scheduler)
    started = time.perf_counter()
    run = stack.post(
        f"/api/v2/dags/{DAG_ID}/dagRuns",
        {"logical_date": logical, "conf": {"locations": locations, "houses_per_location": houses}},
    )
    run_id = run["dag_run_id"]
    quoted = urllib.parse.quote(run_id, safe="")
    progress = {"next": time.perf_counter() + PROGRESS_EVERY_S}

    def finished() -> str | None:
        state = stack.get(f"/api/v2/dags/{DAG_ID}/dagRuns/{quoted}")["state"]
        if time.perf_counter() >= progress["next"]:
            progress["next"] += PROGRESS_EVERY_S
            with contextlib.suppress(sqlite3.Error):  # a progress line is not worth failing the run for
                states = task_outcomes(stack.home / "airflow.db", run_id)["states"]
                print(f"    {time.perf_counter() - started:.0f} s: task instances {states}", flush=True)
        return state if state in ("success", "failed") else None

    try:
        state = stack.wait_until(f"run {run_id} ({len(locations)} locations)", finished, timeout)
    except RuntimeError:
        print(f"    gave up after {timeout:.0f} s: {task_outcomes(stack.home / 'airflow.db', run_id)['states']}")
        raise
    wall = time.perf_counter() - started
    return {
        "run_id": run_id,
        "state": state,
        "wall_s": wall,
        "scheduler_cpu_s": cpu_seconds(scheduler) - cpu_before,
        "task_processes_cpu_s": tree_cpu_seconds(scheduler) - tasks_before,
    }


def task_outcomes(db: Path, run_id: str) -> dict[str, Any]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=60) as conn:
        states = dict(
            conn.execute(
                "SELECT COALESCE(state, 'none'), COUNT(*) FROM task_instance WHERE dag_id = ? AND run_id = ? "
                "GROUP BY state",
                (DAG_ID, run_id),
            ).fetchall()
        )
        retried = dict(
            conn.execute(
                "SELECT task_id, COUNT(*) FROM task_instance WHERE dag_id = ? AND run_id = ? AND try_number > 1 "
                "GROUP BY task_id",
                (DAG_ID, run_id),
            ).fetchall()
        )
    return {
        "states": states,
        "failed": states.get("failed", 0) + states.get("upstream_failed", 0),
        "retries": sum(retried.values()),
        "retried": retried,
    }


def invoke_all(emulator_url: str, bucket: str, locations: list[str], rounds: int) -> list[float]:
    """Invoke every location's live model through the MME endpoint, ``rounds`` passes; latencies in ms."""
    import boto3

    from include.launcher import sample_house

    s3 = boto3.client("s3", endpoint_url=emulator_url, region_name="us-east-1")
    runtime = boto3.client("sagemaker-runtime", endpoint_url=emulator_url, region_name="us-east-1")
    from include.housing.nightly import parse_predictions

    targets, bodies = {}, {}
    for location in locations:
        try:
            key = f"registry/{ENDPOINT}/{location}.json"
            record = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        except s3.exceptions.NoSuchKey:
            continue  # the location failed before promotion: counted in failed_tasks
        targets[location] = record["live_target_model"]
        bodies[location] = ",".join(sample_house(location, FIRST_DATE.isoformat()))
    latencies = []
    for _ in range(rounds):
        for location, target in targets.items():
            started = time.perf_counter()
            answer = runtime.invoke_endpoint(
                EndpointName=ENDPOINT, TargetModel=target, ContentType="text/csv", Body=bodies[location]
            )
            (prediction,) = parse_predictions(answer["Body"].read())  # one real prediction per request
            latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def measure(args: argparse.Namespace) -> dict[str, float]:
    locations = location_names(args.locations)
    baseline = locations[: args.baseline]
    loads = ["/".join(f"{x:.1f}" for x in os.getloadavg())]
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        root = Path(tmp)
        emulator_args = ["--log-level", "WARNING", "--mme-cache-size", str(args.mme_cache_size),
                         "--max-training-jobs", str(max(args.pool_slots, 8))]  # fmt: skip
        with (
            EmulatorProcess(root / "emulator", extra_args=emulator_args, log_path=root / "emulator.log") as emu,
            LocalAirflow(root, emu.url, settings=bench_settings(args.parallelism)) as stack,
        ):
            started = time.perf_counter()
            stack.start([DAG_ID], pools={"sagemaker_training": args.pool_slots}, timeout=300)
            setup_s = time.perf_counter() - started
            print(f"stack up in {setup_s:.0f} s (logs in {stack.logs}); baseline run: {len(baseline)} locations")
            small = run_nightly(stack, baseline, FIRST_DATE - dt.timedelta(days=1), args.houses, args.timeout)
            print(f"  {small['state']} in {small['wall_s']:.0f} s; big run: {len(locations)} locations")
            big = run_nightly(stack, locations, FIRST_DATE, args.houses, args.timeout)
            print(f"  {big['state']} in {big['wall_s']:.0f} s")
            loads.append("/".join(f"{x:.1f}" for x in os.getloadavg()))
            outcomes = [task_outcomes(stack.home / "airflow.db", run["run_id"]) for run in (small, big)]
            latencies = invoke_all(emu.url, BUCKET, locations, args.invoke_rounds)
            emulator_rss = rss_mb(emu.proc.pid, children=True)
    n, b = len(locations), len(baseline)
    figures = {
        f"scale.locations_{n}_s": round(big["wall_s"], 1),
        f"scale.baseline_{b}_locations_s": round(small["wall_s"], 1),
        "scale.per_location_scheduler_s": round((big["wall_s"] - small["wall_s"]) / (n - b), 3),
        "scale.failed_tasks": sum(outcome["failed"] for outcome in outcomes),
        "scale.task_retries": sum(outcome["retries"] for outcome in outcomes),
        "scale.scheduler_cpu_share": round(big["scheduler_cpu_s"] / big["wall_s"], 3),
        "scale.task_processes_cpu_share": round(big["task_processes_cpu_s"] / big["wall_s"], 3),
        "scale.emulator_rss_mb": round(emulator_rss, 1),
        "scale.mme_p50_ms": round(statistics.median(latencies), 2),
        "scale.mme_p99_ms": round(percentile(latencies, 0.99), 2),
    }
    rows = [
        (f"{n} locations, under the scheduler", f"{big['wall_s']:.0f} s", f"run {big['state']}"),
        (f"{b} locations (baseline)", f"{small['wall_s']:.0f} s", f"run {small['state']}"),
        ("per location (slope)", f"{figures['scale.per_location_scheduler_s']:.2f} s", ""),
        ("failed tasks / retried tasks", f"{figures['scale.failed_tasks']} / {figures['scale.task_retries']}",
         f"states of the big run: {outcomes[1]['states']}; retried: {outcomes[1]['retried']}"),
        ("scheduler CPU share", f"{figures['scale.scheduler_cpu_share']:.0%}",
         f"{big['scheduler_cpu_s']:.0f} CPU s over {big['wall_s']:.0f} s; task processes "
         f"{figures['scale.task_processes_cpu_share']:.0%}"),
        ("emulator RSS (with workers)", f"{emulator_rss:.0f} MB", f"{n} models registered, LRU {args.mme_cache_size}"),
        ("MME invoke p50 / p99", f"{figures['scale.mme_p50_ms']:.1f} / {figures['scale.mme_p99_ms']:.1f} ms",
         f"{len(latencies)} invokes, {args.invoke_rounds} passes over {n} models"),
        ("stack set-up (not timed)", f"{setup_s:.0f} s", f"pool {args.pool_slots}, parallelism {args.parallelism}"),
        ("load average before / after", " | ".join(loads), f"{os.cpu_count()} cores"),
    ]  # fmt: skip
    print_table(f"Scale: housing_mme_nightly under the scheduler (LocalExecutor), {args.houses} houses each", rows)
    return figures


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--locations", type=int, default=int(os.environ.get("SCALE_LOCATIONS", "200")))
    parser.add_argument("--baseline", type=int, default=10, help="locations of the first, smaller run")
    parser.add_argument("--houses", type=int, default=1000, help="houses per location")
    parser.add_argument("--pool-slots", type=int, default=4, help="the sagemaker_training pool")
    parser.add_argument("--parallelism", type=int, default=8, help="[core] parallelism (task processes)")
    parser.add_argument("--mme-cache-size", type=int, default=100, help="the emulator's MME LRU size")
    parser.add_argument("--invoke-rounds", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=1800, help="seconds each run may take")
    args = parser.parse_args(argv)
    if not 1 <= args.baseline < args.locations:
        parser.error(f"--baseline must be at least 1 and below --locations ({args.locations}), got {args.baseline}")
    return args


def run(argv: list[str] | None = None) -> dict[str, float]:
    return measure(parse_args(argv if argv is not None else []))


def main(argv: list[str] | None = None) -> int:
    """Measure, print, and merge the figures into bench/results.json (the other benchmarks' keys stay)."""
    figures = measure(parse_args(argv))
    results_path = ROOT / "bench" / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    results.update(figures)
    results_path.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print(f"\nFigures merged into {results_path}:")
    for key in sorted(figures):
        print(f"  {key:<40} {figures[key]}")
    return 0


def _exit_on_sigterm(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds the with-blocks: the stack and the emulator are stopped


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    sys.exit(main())
