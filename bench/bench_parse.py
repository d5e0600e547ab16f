"""DAG parse time, as the dag-processor sees it: each file in dags/ parsed alone in a fresh process.

``python -m bench.bench_parse``: for every DAG file, a fresh Python process imports Airflow (not timed:
the dag-processor has it loaded already), then times ``DagBag(dag_folder=<file>)`` (examples off by config),
which imports the file the way the dag-processor does. Repeated, median per file; the slowest file's
median is ``parse.max_dag_parse_s``. It also lists which heavy modules (pandas, numpy, xgboost, sklearn,
sagemaker, boto3) the parse itself pulled in (loaded after the file's import but not before it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import median, print_table

ROOT = Path(__file__).resolve().parents[1]
DAGS = ROOT / "dags"
HEAVY = ("pandas", "numpy", "xgboost", "sklearn", "sagemaker", "boto3", "botocore", "scipy")
REPEATS = 3
# No issue sets a parse target; Airflow's own limit is core.dagbag_import_timeout (30 s). Shown for reference.
IMPORT_TIMEOUT_S = 30.0
TIMEOUT_S = 120

_PARSER = r"""
import json, sys, time
from airflow.dag_processing.dagbag import DagBag
heavy = sys.argv[2].split(",")
before = {m for m in heavy if m in sys.modules}
started = time.perf_counter()
bag = DagBag(dag_folder=sys.argv[1])
seconds = time.perf_counter() - started
after = {m for m in heavy if m in sys.modules}
print("@@PARSE@@" + json.dumps({
    "seconds": seconds,
    "dags": sorted(bag.dag_ids),
    "errors": {k: str(v)[-300:] for k, v in bag.import_errors.items()},
    "heavy_at_parse": sorted(after - before),
    "heavy_with_airflow": sorted(before),
}))
"""


def parse_once(path: Path, env: dict[str, str]) -> dict:
    process = subprocess.run(
        [sys.executable, "-c", _PARSER, str(path), ",".join(HEAVY)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    line = next((x for x in process.stdout.splitlines() if x.startswith("@@PARSE@@")), None)
    if line is None:
        raise RuntimeError(f"parsing {path.name} failed (exit {process.returncode}):\n{process.stderr[-3000:]}")
    return json.loads(line.removeprefix("@@PARSE@@"))


def run() -> dict[str, float]:
    files = sorted(p for p in DAGS.glob("*.py") if not p.name.startswith("_"))
    with tempfile.TemporaryDirectory(prefix="bench-parse-") as home:
        env = {
            **os.environ,
            "AIRFLOW_HOME": home,
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "plugins")]),
        }
        results = {}
        for path in files:
            runs = [parse_once(path, env) for _ in range(REPEATS)]
            results[path.name] = (median([r["seconds"] for r in runs]), [r["seconds"] for r in runs], runs[-1])
    slowest = max(results, key=lambda name: results[name][0])
    max_s = results[slowest][0]
    rows = []
    for name, (seconds, all_runs, info) in sorted(results.items()):
        heavy = ", ".join(info["heavy_at_parse"]) or "none"
        errors = f"; IMPORT ERRORS {info['errors']}" if info["errors"] else ""
        rows.append(
            (name, f"{seconds:.3f} s", f"runs {', '.join(f'{s:.2f}' for s in all_runs)}; heavy: {heavy}{errors}")
        )
    rows.append(
        ("slowest", f"{max_s:.3f} s", f"{slowest}; no target set (Airflow's import timeout: {IMPORT_TIMEOUT_S:.0f} s)")
    )
    print_table(f"DAG parse (DagBag of one file in a fresh process, median of {REPEATS})", rows)
    figures: dict[str, float] = {"parse.max_dag_parse_s": round(max_s, 3)}
    for name, (seconds, _, info) in results.items():
        stem = name.removesuffix(".py")
        figures[f"parse.{stem}_s"] = round(seconds, 3)
        figures[f"parse.{stem}_heavy_modules"] = len(info["heavy_at_parse"])
        if info["errors"]:
            figures[f"parse.{stem}_import_errors"] = len(info["errors"])
    return figures


if __name__ == "__main__":
    run()
