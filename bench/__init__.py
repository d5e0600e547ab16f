"""Benchmarks: each module runs alone (``python -m bench.bench_training``) and returns its figures;
``python -m bench`` (``make bench``) runs them all, prints one table and writes bench/results.json."""

import sys
from pathlib import Path

# The plugins folder is on the path of every Airflow process (and `make` exports it); a benchmark run
# alone with `python -m` from the repository root needs it too, for the sagemaker_fleet package.
_PLUGINS = str(Path(__file__).resolve().parents[1] / "plugins")
if _PLUGINS not in sys.path:
    sys.path.append(_PLUGINS)
