"""Helpers shared by the benchmarks."""

from __future__ import annotations

import os
import statistics
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from include.sagemaker_emulator.process import EmulatorProcess

os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


@contextmanager
def emulator(*extra_args: str, time_scale: float = 0.0) -> Iterator[EmulatorProcess]:
    with (
        tempfile.TemporaryDirectory(prefix="bench-emulator-") as tmp,
        EmulatorProcess(
            Path(tmp) / "data", time_scale=time_scale, extra_args=list(extra_args), log_path=Path(tmp) / "emulator.log"
        ) as emu,
    ):
        yield emu


def client(emu: EmulatorProcess, service: str):
    import boto3

    return boto3.client(service, endpoint_url=emu.url, region_name="us-east-1")


def rss_mb(pid: int, children: bool = False) -> float:
    import psutil

    process = psutil.Process(pid)
    total = process.memory_info().rss
    if children:
        total += sum(child.memory_info().rss for child in process.children(recursive=True))
    return total / 2**20


def median(values: list[float]) -> float:
    return statistics.median(values)


def print_table(title: str, rows: list[tuple[str, str, str]]) -> None:
    print(f"\n{title}")
    width = max(len(r[0]) for r in rows)
    for name, value, target in rows:
        print(f"  {name:<{width}}  {value:>14}  {target}")
