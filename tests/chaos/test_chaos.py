"""Chaos: kill -9 (and now and then a graceful stop) at random points of a mixed workload, restart on the
same port, and hold the emulator to everything it acknowledged.

Rounds: ``CHAOS_ROUNDS`` (default 5). The seed is printed; ``CHAOS_SEED=<seed>`` replays the same kill
points and choices (thread interleavings differ). After each round: every acknowledged write is back, no
record points at something missing, no process outlives the killed server by more than a couple of
seconds, no job directory is left, every endpoint serves, and nothing was written next to the data dir.
Loopback only.
"""

from __future__ import annotations

import contextlib
import os
import random
import time
import uuid
from pathlib import Path

import psutil
import pytest

from include.sagemaker_emulator.process import EmulatorProcess, free_port
from tests.chaos.workload import (
    BUCKET,
    ENDPOINTS,
    LOG_GROUP,
    Deployable,
    Ledger,
    Workload,
    check,
    clients,
    private_copies,
)
from tests.emulator.serving_helpers import housing_like, xgboost_archive

ROUNDS = int(os.environ.get("CHAOS_ROUNDS", "5"))
# Nominal AWS waits x 0.005: provisioning 1.2 s, a job's start-up 0.3 s, so kills land mid-transition.
TIME_SCALE = 0.005
GRACE_SECONDS = 3.0  # how long a process may outlive the server it belonged to
GRACEFUL_SHARE = 0.3
MARKER = "EMULATOR_CHAOS_RUN"  # inherited by the server and everything it starts


def marked_processes(marker: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter():
        if proc.pid == os.getpid():
            continue
        try:
            # A process whose memory is already released (no command line) is past running any code: it is
            # only finishing its exit, which can take a moment on a loaded machine.
            if proc.environ().get(MARKER) == marker and proc.status() != psutil.STATUS_ZOMBIE and proc.cmdline():
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def describe(proc: psutil.Process) -> str:
    try:
        return f"pid {proc.pid} (parent {proc.ppid()}): {' '.join(proc.cmdline())[:160]}"
    except psutil.Error:
        return f"pid {proc.pid}"


def outlivers(marker: str) -> list[str]:
    """The processes of a stopped server still running after the grace period (then killed)."""
    deadline = time.monotonic() + GRACE_SECONDS
    while (left := marked_processes(marker)) and time.monotonic() < deadline:
        time.sleep(0.05)
    described = [describe(proc) for proc in left]
    for proc in left:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    return described


def files_outside(box: Path, data: Path) -> list[Path]:
    return [p for p in box.rglob("*") if p != data and data not in p.parents]


def training_channels(url: str, ledger: Ledger) -> dict[str, str]:
    s3 = clients(url)["s3"]
    uris = {}
    for channel, seed in (("train", 1), ("validation", 2)):
        x, y = housing_like(80, seed=seed)
        body = "\n".join(",".join(f"{v:g}" for v in (label, *row)) for label, row in zip(y, x, strict=True)).encode()
        key = f"channels/{channel}/{channel}.csv"
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        ledger.ack(lambda key=key, body=body: ledger.objects.__setitem__(key, body))
        uris[channel] = f"s3://{BUCKET}/channels/{channel}/"
    return uris


def deploy_endpoints(workload: Workload, ledger: Ledger) -> dict[str, Deployable]:
    sm, s3 = workload.c["sagemaker"], workload.c["s3"]
    serving = {}
    for endpoint in ENDPOINTS:
        deployable = workload._new_deployable(sm, s3)
        sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=deployable.config)
        ledger.ack(lambda e=endpoint, d=deployable: ledger.endpoint_configs.__setitem__(e, {d.config}))
        serving[endpoint] = deployable
    for endpoint in ENDPOINTS:
        sm.get_waiter("endpoint_in_service").wait(EndpointName=endpoint, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    return serving


def test_chaos(tmp_path, monkeypatch, capsys):
    seed = int(os.environ.get("CHAOS_SEED") or random.SystemRandom().randrange(2**32))
    with capsys.disabled():
        print(f"\nchaos: seed {seed} (replay with CHAOS_SEED={seed}), {ROUNDS} rounds", flush=True)
    rng = random.Random(seed)
    marker = uuid.uuid4().hex
    monkeypatch.setenv(MARKER, marker)
    box, logs = tmp_path / "box", tmp_path / "logs"
    data = box / "data"
    logs.mkdir()
    port = free_port()
    ledger = Ledger()
    deployables: dict[str, Deployable] = {}
    archives = [xgboost_archive(seed=i, rounds=5, scale=1.0 + i) for i in range(3)]

    def emulator() -> EmulatorProcess:
        # Always the same port: a restart right after a kill -9 must be able to bind it.
        return EmulatorProcess(data, port=port, time_scale=TIME_SCALE, log_path=logs / "emulator.log")

    lost: list[str] = []
    dangling: list[str] = []
    not_serving: list[str] = []
    workload_failures: list[str] = []
    orphans: list[str] = []
    outside: list[Path] = []
    caught_updates = caught_jobs = 0
    started = time.monotonic()
    emu = emulator().start()
    try:
        c = clients(emu.url)
        c["s3"].create_bucket(Bucket=BUCKET)
        c["logs"].create_log_group(logGroupName=LOG_GROUP)
        channels = training_channels(emu.url, ledger)
        setup = Workload(emu.url, ledger, rng, archives, channels, deployables)
        serving = deploy_endpoints(setup, ledger)

        for number in range(1, ROUNDS + 1):
            workload = Workload(emu.url, ledger, rng, archives, channels, deployables)
            workload.start(serving)
            run_for = rng.uniform(0.5, 3.0)
            graceful = rng.random() < GRACEFUL_SHARE
            time.sleep(run_for)
            workload.dying.set()
            caught = [f"update of {workload.updating}"] if workload.updating else []
            caught += [f"job {workload.training}"] if workload.training else []
            caught_updates += bool(workload.updating)
            caught_jobs += bool(workload.training)
            stopping = time.monotonic()
            if graceful:
                emu.stop()
            else:
                emu.kill()
            workload.finish()
            workload_failures += workload.failures
            orphans += [f"round {number}: {p} outlived the server" for p in outlivers(marker)]

            restarting = time.monotonic()
            emu = emulator().start()
            checking = time.monotonic()
            jobs_dir = data / "training"
            orphans += [f"round {number}: job dir {p.name}" for p in jobs_dir.iterdir()] if jobs_dir.exists() else []
            found = check(emu.url, ledger)
            unused, missing = private_copies(data)
            orphans += [f"round {number}: artifact copy {d} no endpoint uses" for d in unused]
            dangling += [f"round {number}: artifact copy {d} is recorded but missing" for d in missing]
            lost += found.lost
            dangling += found.dangling
            not_serving += found.not_serving
            outside += files_outside(box, data)
            # What each endpoint serves now, as the restart settled it.
            serving = {e: deployables[next(iter(ledger.endpoint_configs[e]))] for e in ENDPOINTS}
            with capsys.disabled():
                print(
                    f"chaos round {number}: {'graceful stop' if graceful else 'kill -9'} after {run_for:.2f} s "
                    f"(caught mid-way: {', '.join(caught) or 'nothing'}), "
                    f"{ledger.acknowledged} writes acknowledged so far, {workload.invocations} invocations, "
                    f"lost {len(found.lost)}, dangling {len(found.dangling)}, not serving {len(found.not_serving)} "
                    f"(stop {restarting - stopping:.1f} s, start {checking - restarting:.1f} s, "
                    f"check {time.monotonic() - checking:.1f} s)",
                    flush=True,
                )
    finally:
        emu.stop()
        orphans += [f"after the last stop: {p}" for p in outlivers(marker)]

    with capsys.disabled():
        print(
            f"chaos: rounds {ROUNDS}, writes acknowledged {ledger.acknowledged}, writes lost {len(lost)}, "
            f"orphans {len(orphans)}, files outside the data dir {len(outside)} "
            f"({time.monotonic() - started:.0f} s, seed {seed}; caught mid-update {caught_updates}, "
            f"mid-job {caught_jobs})",
            flush=True,
        )
    assert not workload_failures, workload_failures
    assert not lost, lost
    assert not dangling, dangling
    assert not not_serving, not_serving
    assert not orphans, "\n".join(orphans)
    assert not outside, outside


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    # Loopback only: no proxy may stand between the clients and the emulator.
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
