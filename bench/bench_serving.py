"""Serving benchmark: warm/cold multi-model-endpoint invocations against a local emulator.

``python -m bench.bench_serving`` (or ``python bench/bench_serving.py``) starts its own emulator, builds a
25-round 6-feature XGBoost model, registers 1,000 copies under one MME prefix and measures:
boto3 p50/p99 for a warm single-row CSV, invocations/s from a raw HTTP/1.1 keep-alive load generator with
8 connections, the cold first invocation, emulator RSS after 1,000 models with an LRU of 100, and the
in-process ``Booster.inplace_predict`` floor. Prints a table and returns the figures as a dict.
"""

from __future__ import annotations

import asyncio
import io
import os
import statistics
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from include.sagemaker_emulator.process import EmulatorProcess

XGB_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
ROLE = "arn:aws:iam::123456789012:role/SageMakerExecution"
BUCKET = "bench-models"
PREFIX = "mme/"
ENDPOINT = "bench-mme"
MODELS = 1000
LRU = 100
TARGETS = {"p50_ms": 3.0, "p99_ms": 10.0, "rps": 1500.0, "cold_ms": 50.0, "rss_mb": 600.0}


def train_model() -> tuple[Any, bytes, str]:
    import xgboost as xgb

    rng = np.random.default_rng(7)
    x = rng.uniform(0, 10, size=(500, 6)).astype(np.float32)
    y = 100 + 10 * x[:, 0] - 4 * x[:, 3] + rng.normal(0, 2, len(x))
    booster = xgb.train({"objective": "reg:squarederror", "max_depth": 4}, xgb.DMatrix(x, label=y), 25)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "xgboost-model"
        booster.save_model(str(path))
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            tar.add(path, arcname="xgboost-model")
    row = ",".join(f"{v:.3f}" for v in x[0])
    booster.set_param("nthread", 1)
    return booster, buffer.getvalue(), row


def floor_us(booster: Any, row: str, n: int = 3000) -> float:
    """Median in-process time to parse the same CSV row and predict it with the Booster."""
    times = []
    for _ in range(n):
        started = time.perf_counter()
        x = np.array([float(c) for c in row.split(",")], dtype=np.float32)[None, :]
        booster.inplace_predict(x, validate_features=False)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e6


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def raw_request(port: int, target: str, body: bytes) -> bytes:
    # The emulator reads only the credential scope of the Authorization header; it does not verify signatures.
    return (
        f"POST /endpoints/{ENDPOINT}/invocations HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{port}\r\n"
        "Authorization: AWS4-HMAC-SHA256 Credential=bench/20250101/us-east-1/sagemaker/aws4_request, "
        "SignedHeaders=host, Signature=0\r\n"
        "Content-Type: text/csv\r\n"
        f"X-Amzn-SageMaker-Target-Model: {target}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return status


async def load(port: int, request: bytes, connections: int, seconds: float) -> tuple[int, int]:
    """Closed-loop load: each connection sends the next request when the answer arrives."""
    deadline = time.perf_counter() + seconds
    ok = failed = 0

    async def worker() -> None:
        nonlocal ok, failed
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while time.perf_counter() < deadline:
            writer.write(request)
            if await _read_response(reader) == 200:
                ok += 1
            else:
                failed += 1
        writer.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    return ok, failed


async def invoke_each(port: int, targets: list[str], body: bytes, connections: int = 4) -> int:
    queue = list(reversed(targets))
    failed = 0

    async def worker() -> None:
        nonlocal failed
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while queue:
            writer.write(raw_request(port, queue.pop(), body))
            if await _read_response(reader) != 200:
                failed += 1
        writer.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    return failed


def run(seconds: float = 5.0, warm_calls: int = 2000) -> dict[str, float]:
    import boto3
    import psutil

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    # Other processes on this machine change every figure here: report the load the run saw.
    results_load = os.getloadavg()[0]
    booster, archive, row = train_model()
    floor = floor_us(booster, row)
    body = row.encode()
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        emu = EmulatorProcess(Path(tmp) / "data", extra_args=["--mme-cache-size", str(LRU), "--log-level", "WARNING"])
        with emu:
            kwargs = {"endpoint_url": emu.url, "region_name": "us-east-1"}
            s3 = boto3.client("s3", **kwargs)
            sm = boto3.client("sagemaker", **kwargs)
            runtime = boto3.client("sagemaker-runtime", **kwargs)
            s3.create_bucket(Bucket=BUCKET)
            targets = [f"model-{i:04d}.tar.gz" for i in range(MODELS)]
            for target in targets:
                s3.put_object(Bucket=BUCKET, Key=PREFIX + target, Body=archive)
            sm.create_model(
                ModelName="bench-mme",
                PrimaryContainer={"Image": XGB_IMAGE, "ModelDataUrl": f"s3://{BUCKET}/{PREFIX}", "Mode": "MultiModel"},
                ExecutionRoleArn=ROLE,
            )
            sm.create_endpoint_config(
                EndpointConfigName="bench-mme",
                ProductionVariants=[
                    {"VariantName": "AllTraffic", "ModelName": "bench-mme", "InitialInstanceCount": 1,
                     "InstanceType": "ml.m5.large"}
                ],
            )  # fmt: skip
            sm.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="bench-mme")
            while sm.describe_endpoint(EndpointName=ENDPOINT)["EndpointStatus"] != "InService":
                time.sleep(0.02)

            def call(target: str) -> bytes:
                answer = runtime.invoke_endpoint(
                    EndpointName=ENDPOINT, ContentType="text/csv", Body=body, TargetModel=target
                )
                return answer["Body"].read()

            call("model-0999.tar.gz")  # warms the emulator's import of xgboost and the boto3 client
            cold = []
            for target in targets[1:6]:
                started = time.perf_counter()
                call(target)
                cold.append((time.perf_counter() - started) * 1000)
            results["cold_ms"] = max(cold)
            expected = float(
                booster.inplace_predict(np.array([[float(c) for c in row.split(",")]], dtype=np.float32))[0]
            )
            got = float(call(targets[0]).decode().strip("[]"))
            assert abs(got - expected) < 1e-3, (got, expected)

            for _ in range(200):
                call(targets[0])
            times = []
            for _ in range(warm_calls):
                started = time.perf_counter()
                call(targets[0])
                times.append((time.perf_counter() - started) * 1000)
            results["p50_ms"] = statistics.median(times)
            results["p99_ms"] = percentile(times, 99)

            ok, failed = asyncio.run(load(emu.port, raw_request(emu.port, targets[0], body), 8, seconds))
            results["rps"] = ok / seconds
            results["load_failed"] = failed

            failed = asyncio.run(invoke_each(emu.port, targets, body))
            time.sleep(1.5)  # let the metrics flush settle
            assert emu.proc is not None
            results["rss_mb"] = psutil.Process(emu.proc.pid).memory_info().rss / 2**20
            results["each_failed"] = failed
    results["floor_us"] = floor
    results["load_avg_before"] = results_load
    results["load_avg_after"] = os.getloadavg()[0]
    results["p50_ratio"] = results["p50_ms"] * 1000 / floor
    results["rps_ratio_vs_floor"] = (1e6 / floor) / results["rps"]
    print_table(results)
    return {f"serving.{key}": round(value, 3) for key, value in results.items()} | {
        # The names make bench reports (issue #8) with: see bench/results.json.
        "serving.warm_p50_ms": round(results["p50_ms"], 3),
        "serving.warm_p99_ms": round(results["p99_ms"], 3),
        "serving.floor_predict_us": round(results["floor_us"], 1),
        "memory.emulator_1000_models_mb": round(results["rss_mb"], 1),
    }


def print_table(r: dict[str, float]) -> None:
    rows = [
        ("warm boto3 p50", f"{r['p50_ms']:.2f} ms", f"<= {TARGETS['p50_ms']} ms", r["p50_ms"] <= TARGETS["p50_ms"]),
        ("warm boto3 p99", f"{r['p99_ms']:.2f} ms", f"<= {TARGETS['p99_ms']} ms", r["p99_ms"] <= TARGETS["p99_ms"]),
        ("8-connection load", f"{r['rps']:.0f} inv/s", f">= {TARGETS['rps']:.0f} inv/s", r["rps"] >= TARGETS["rps"]),
        ("cold first invocation", f"{r['cold_ms']:.1f} ms", f"<= {TARGETS['cold_ms']} ms", r["cold_ms"] <= TARGETS["cold_ms"]),
        ("RSS after 1,000 models, LRU 100", f"{r['rss_mb']:.0f} MB", f"<= {TARGETS['rss_mb']:.0f} MB", r["rss_mb"] <= TARGETS["rss_mb"]),
        ("floor: in-process parse+predict", f"{r['floor_us']:.1f} us", "", True),
        ("p50 / floor", f"{r['p50_ratio']:.0f}x", "", True),
        ("floor rate / load rate", f"{r['rps_ratio_vs_floor']:.1f}x", "", True),
    ]  # fmt: skip
    width = max(len(name) for name, *_ in rows)
    print(f"{'measure':<{width}}  {'value':>14}  {'target':>16}  ok")
    for name, value, target, ok in rows:
        print(f"{name:<{width}}  {value:>14}  {target:>16}  {'yes' if ok else 'NO'}")
    print(
        f"machine load average (1 min) before/after: {r['load_avg_before']:.1f}/{r['load_avg_after']:.1f} on {os.cpu_count()} CPUs"
    )
    print(f"failed requests: load {r['load_failed']:.0f}, 1,000-model sweep {r['each_failed']:.0f}")


if __name__ == "__main__":
    run()
