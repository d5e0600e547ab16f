"""Durability bench: what journaling every acknowledged S3 write costs.

``python -m bench bench.bench_durability`` starts an emulator per mode and drives 1 KB PutObject over 8
keep-alive connections (raw HTTP/1.1, a new key per request) for a bounded time, counting answers 200:

- ``write`` (the default): each write is in the OS before its answer (survives kill -9);
- ``off``: journaling disabled (``--durability off``), the volatile baseline;
- ``fsync``: each write also flushed to the disk before its answer (group commit; survives power loss).

After the ``write`` run the emulator is killed with SIGKILL and restarted on the same data dir; the bench
counts the objects that came back (``durability.lost_after_kill9`` must be 0).
Target: ``durability.s3_put_per_s`` >= 500.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import client, print_table
from include.sagemaker_emulator.process import EmulatorProcess

BUCKET = "bench-durability"
CONNECTIONS = 8
OBJECT_BYTES = 1024
TARGET_PUTS_PER_S = 500.0


def _put_request(port: int, key: str, body: bytes) -> bytes:
    # The emulator reads only the credential scope of the Authorization header; it does not verify signatures.
    return (
        f"PUT /{BUCKET}/{key} HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{port}\r\n"
        "Authorization: AWS4-HMAC-SHA256 Credential=bench/20250101/us-east-1/s3/aws4_request, "
        "SignedHeaders=host, Signature=0\r\n"
        "x-amz-content-sha256: UNSIGNED-PAYLOAD\r\n"
        "Content-Type: application/octet-stream\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def _read_status(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return int(head[9:12])


async def _put_load(port: int, seconds: float, prefix: str) -> tuple[list[str], int]:
    """Closed loop: each connection sends its next PutObject when the previous answer arrived."""
    deadline = time.perf_counter() + seconds
    acknowledged: list[str] = []
    failed = 0
    body = os.urandom(OBJECT_BYTES)

    async def connection(n: int) -> None:
        nonlocal failed
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        i = 0
        while time.perf_counter() < deadline:
            key = f"{prefix}/{n}/{i}"
            writer.write(_put_request(port, key, body))
            if await _read_status(reader) == 200:
                acknowledged.append(key)
            else:
                failed += 1
            i += 1
        writer.close()

    await asyncio.gather(*(connection(n) for n in range(CONNECTIONS)))
    return acknowledged, failed


def _rate(emu: EmulatorProcess, seconds: float, prefix: str) -> tuple[float, list[str]]:
    started = time.perf_counter()
    acknowledged, failed = asyncio.run(_put_load(emu.port, seconds, prefix))
    elapsed = time.perf_counter() - started
    if failed:
        raise RuntimeError(f"{failed} PutObject requests were not answered 200")
    return len(acknowledged) / elapsed, acknowledged


def _count_back(emu: EmulatorProcess, prefix: str) -> int:
    paginator = client(emu, "s3").get_paginator("list_objects_v2")
    return sum(len(page.get("Contents", [])) for page in paginator.paginate(Bucket=BUCKET, Prefix=prefix))


def run(seconds: float = 3.0, rounds: int = 3) -> dict[str, float]:
    """The three modes run side by side, measured in turns (median of ``rounds``), so a change in the
    machine's load hits them alike."""
    modes = ("off", "write", "fsync")
    samples: dict[str, list[float]] = {mode: [] for mode in modes}
    acknowledged: list[str] = []
    lost = -1
    with tempfile.TemporaryDirectory(prefix="bench-durability-") as tmp:
        servers = {
            mode: EmulatorProcess(
                Path(tmp) / mode, extra_args=["--durability", mode], log_path=Path(tmp) / f"{mode}.log"
            )
            for mode in modes
        }
        try:
            for emu in servers.values():
                emu.start()
                client(emu, "s3").create_bucket(Bucket=BUCKET)
                _rate(emu, 1.0, "warmup")
            for round_no in range(rounds):
                order = modes[round_no % 3 :] + modes[: round_no % 3]  # no mode always goes first
                for mode in order:
                    emu = servers[mode]
                    rate, keys = _rate(emu, seconds, f"bench/{round_no}")
                    samples[mode].append(rate)
                    if mode == "write":
                        acknowledged += keys
            emu = servers["write"]
            emu.proc.kill()  # type: ignore[union-attr]
            emu.proc.wait()  # type: ignore[union-attr]
            emu.stop()
            # A new port: the killed server's may still be in TIME_WAIT.
            servers["write"] = emu = EmulatorProcess(Path(tmp) / "write", log_path=Path(tmp) / "restart.log").start()
            lost = len(acknowledged) - _count_back(emu, "bench/")
        finally:
            for emu in servers.values():
                emu.stop()
    rates = {mode: statistics.median(values) for mode, values in samples.items()}
    figures = {
        "durability.s3_put_per_s": round(rates["write"], 1),
        "durability.volatile_put_per_s": round(rates["off"], 1),
        "durability.ratio_to_volatile": round(rates["write"] / rates["off"], 3),
        "durability.fsync_put_per_s": round(rates["fsync"], 1),
        "durability.fsync_ratio_to_volatile": round(rates["fsync"] / rates["off"], 3),
        "durability.lost_after_kill9": lost,
    }
    print_table(
        f"Durability: 1 KB PutObject over {CONNECTIONS} connections, median of {rounds} x {seconds:.0f} s per mode",
        [
            ("journaled (write, default)", f"{rates['write']:.0f} puts/s", f"target >= {TARGET_PUTS_PER_S:.0f}/s"),
            ("volatile (journal off)", f"{rates['off']:.0f} puts/s", f"ratio {rates['write'] / rates['off']:.2f}"),
            ("journaled + fsync", f"{rates['fsync']:.0f} puts/s", f"ratio {rates['fsync'] / rates['off']:.2f}"),
            ("lost after kill -9 (write)", str(lost), "must be 0"),
            *((f"  samples {mode}", " ".join(f"{v:.0f}" for v in samples[mode]), "puts/s per turn") for mode in modes),
        ],
    )
    return figures


if __name__ == "__main__":
    run()
