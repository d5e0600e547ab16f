"""``make bench``: run every benchmark, print one table, write bench/results.json."""

from __future__ import annotations

import importlib
import json
import sys
import time
import traceback
from pathlib import Path

# Each module has run() -> dict of figures; a missing or failing one is reported, not fatal.
BENCHMARKS = [
    "bench.bench_training",
    "bench.bench_serving",
    "bench.bench_pipeline",
    "bench.bench_parse",
    "bench.bench_deferral",
    "bench.bench_linear_learner",
    "bench.bench_libsvm",
    "bench.bench_distributed",
    "bench.bench_durability",
    "bench.bench_processing",
    "bench.bench_script_mode",
    "bench.bench_script_serving",
    "bench.bench_transform",
]
RESULTS = Path(__file__).resolve().parent / "results.json"


def main(names: list[str]) -> int:
    results: dict[str, object] = {}
    failures = []
    for name in names or BENCHMARKS:
        started = time.monotonic()
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            print(f"\n{name}: not available ({exc})")
            failures.append(name)
            continue
        try:
            results.update(module.run())
        except Exception:
            traceback.print_exc()
            failures.append(name)
        print(f"  ({name} took {time.monotonic() - started:.0f} s)")
    RESULTS.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print(f"\nAll figures ({RESULTS}):")
    for key in sorted(results):
        print(f"  {key:<45} {results[key]}")
    if failures:
        print(f"\nbenchmarks that did not run: {', '.join(failures)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
