"""libsvm channel loading against xgboost's native loader: the same generated file (MNIST-shaped rows,
784 features, 1-based like the notebook writes them) read by the emulator's channel reader and turned into
a DMatrix, as training does, versus ``xgboost.DMatrix("<file>?format=libsvm")``.
Target: ``libsvm.ratio_to_native`` (native seconds / ours) >= 0.5.

``python -m bench bench.bench_libsvm``
"""

from __future__ import annotations

import os
import pathlib
import tempfile
import time

from bench.common import median, print_table

ROWS = 20_000
FEATURES = 784
REPEATS = 7
TARGET = 0.5


def generate(path: pathlib.Path, rows: int = ROWS, features: int = FEATURES, seed: int = 0) -> None:
    """MNIST-like sparse rows: about a fifth of the pixels set, as in the notebook's data."""
    import numpy as np

    rng = np.random.default_rng(seed)
    with path.open("wb") as f:
        for start in range(0, rows, 1000):
            block = rng.random((min(1000, rows - start), features)) < 0.2
            lines = []
            for row in block:
                (cols,) = np.nonzero(row)
                lines.append(f"{int(cols.sum()) % 10} " + " ".join(f"{c + 1}:{(c % 255) / 255:.6g}" for c in cols))
            f.write(("\n".join(lines) + "\n").encode())


def _interleaved_seconds(first, second) -> tuple[float, float, float, float]:
    """Median wall and CPU seconds of each (wall A, wall B, CPU A, CPU B), run A B A B ... so a shared
    machine's load falls on both alike. CPU counts every thread of this process: xgboost's text parser
    runs helper threads even with ``nthread=1``, so its CPU seconds exceed its wall seconds."""
    walls: tuple[list[float], list[float]] = ([], [])
    cpus: tuple[list[float], list[float]] = ([], [])
    for _ in range(REPEATS):
        for fn, wall, cpu in ((first, walls[0], cpus[0]), (second, walls[1], cpus[1])):
            started, cpu_started = time.perf_counter(), time.process_time()
            fn()
            wall.append(time.perf_counter() - started)
            cpu.append(time.process_time() - cpu_started)
    return median(walls[0]), median(walls[1]), median(cpus[0]), median(cpus[1])


def run() -> dict[str, float]:
    import xgboost as xgb

    from include.sagemaker_emulator.algorithms import _data

    with tempfile.TemporaryDirectory(prefix="bench-libsvm-") as tmp:
        path = pathlib.Path(tmp) / "train.libsvm"
        generate(path)
        size_mb = path.stat().st_size / 2**20

        def ours() -> None:
            dataset = _data.load_libsvm([path], "train", path.parent)
            matrix = xgb.DMatrix(dataset.features, label=dataset.labels, nthread=1)
            assert matrix.num_row() == ROWS

        def native() -> None:
            matrix = xgb.DMatrix(f"{path}?format=libsvm", nthread=1)
            assert matrix.num_row() == ROWS

        load_before = os.getloadavg()[0]
        ours_s, native_s, ours_cpu, native_cpu = _interleaved_seconds(ours, native)
        load = max(load_before, os.getloadavg()[0])
    ratio = native_s / ours_s
    print_table(
        f"libsvm loading, {ROWS:,} x {FEATURES} rows ({size_mb:.0f} MB; median of {REPEATS} interleaved runs, "
        f"nthread=1 each, load average {load:.1f})",
        [
            ("emulator channel reader + DMatrix", f"{ROWS / ours_s:,.0f} rows/s", f"CPU {ours_cpu:.3f} s in {ours_s:.3f} s"),
            ("xgboost native ?format=libsvm", f"{ROWS / native_s:,.0f} rows/s", f"CPU {native_cpu:.3f} s in {native_s:.3f} s"),
            ("throughput ratio to native", f"{ratio:.2f}", f"target >= {TARGET}: {'met' if ratio >= TARGET else 'NOT MET'}"),
            ("CPU-time ratio to native", f"{native_cpu / ours_cpu:.2f}", "(the parser's helper threads counted)"),
        ],
    )  # fmt: skip
    return {
        "libsvm.ratio_to_native": round(ratio, 3),
        "libsvm.cpu_ratio_to_native": round(native_cpu / ours_cpu, 3),
        "libsvm.rows_per_s": round(ROWS / ours_s),
        "libsvm.load_average": round(load, 1),
    }
