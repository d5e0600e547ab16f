"""Restarts are boring: after a graceful stop or a kill -9 the emulator binds the same port at once, no
worker outlives it, jobs caught mid-run come back Failed, and endpoints come back serving what they
served, even when their config, model and S3 artifact are gone."""

from __future__ import annotations

import errno
import http.client
import socket
import time

import boto3
import psutil
import pytest

from include.sagemaker_emulator.process import EmulatorProcess
from tests.emulator.helpers import training_request, unique, upload_housing_channels, wait_for_job

BUCKET = "restart-tests"
# Long enough to be caught mid-training on any machine (it is killed long before it would finish).
SLOW_TRAINING = {"max_depth": "8", "eta": "0.01", "objective": "reg:squarederror", "num_round": "100000"}


def clients(emu: EmulatorProcess):
    kw = {"endpoint_url": emu.url, "region_name": "us-east-1"}
    return boto3.client("sagemaker", **kw), boto3.client("s3", **kw)


def wait_secondary(sm, name: str, secondary: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = sm.describe_training_job(TrainingJobName=name)
        if job["SecondaryStatus"] == secondary:
            return job
        time.sleep(0.05)
    raise AssertionError(f"{name} never reached {secondary}")


def survivors(processes: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """The processes still alive (not zombies) after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        alive = []
        for proc in processes:
            try:
                if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                    alive.append(proc)
            except psutil.NoSuchProcess:
                continue
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.05)


def test_restart_right_after_a_kill_binds_the_same_port(tmp_path):
    data = tmp_path / "data"
    emu = EmulatorProcess(data).start()
    port = emu.port
    try:
        # A keep-alive connection open when the server dies: the kernel closes the server's end first,
        # which leaves the listening port's connection in TIME_WAIT for about a minute.
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        connection.request("GET", "/_emulator/health")
        assert connection.getresponse().read()
    finally:
        emu.kill()
    with pytest.raises((ConnectionError, http.client.HTTPException)):
        connection.request("GET", "/_emulator/health")
        connection.getresponse().read()
    connection.close()
    # The reproduction: a bind without SO_REUSEADDR is refused now (what the old port check did).
    with socket.socket() as probe, pytest.raises(OSError) as refused:
        probe.bind(("127.0.0.1", port))
    assert refused.value.errno == errno.EADDRINUSE
    with EmulatorProcess(data, port=port) as again:
        assert again.health()["status"] == "ok"


def test_a_kill_leaves_no_worker_and_the_job_comes_back_failed(tmp_path):
    data = tmp_path / "data"
    name = unique("killed")
    emu = EmulatorProcess(data).start()
    try:
        sm, s3 = clients(emu)
        channels = upload_housing_channels(s3, BUCKET, "killed", houses=1000)
        sm.create_training_job(
            **training_request(name, channels, f"s3://{BUCKET}/out", hyperparameters=SLOW_TRAINING, max_runtime=3600)
        )
        wait_secondary(sm, name, "Training")
        server = psutil.Process(emu.proc.pid)
        deadline = time.monotonic() + 30
        # The forkserver, the resource tracker and the job's worker (a child of the forkserver).
        while len(children := server.children(recursive=True)) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(children) >= 3, children
        assert (data / "training" / name).is_dir()
    finally:
        emu.kill()
    left = survivors(children, timeout=3.0)
    assert not left, [(p.pid, p.cmdline()) for p in left]

    with EmulatorProcess(data) as emu:
        sm, _ = clients(emu)
        job = sm.describe_training_job(TrainingJobName=name)
        assert job["TrainingJobStatus"] == "Failed"
        assert "stopped while this training job was running" in job["FailureReason"]
        assert job["TrainingEndTime"] >= job["TrainingStartTime"]
        # Recovery removed the job directory the killed run left behind.
        assert not (data / "training" / name).exists()
        assert list((data / "training").iterdir()) == []


def test_a_graceful_stop_leaves_no_worker_and_the_job_comes_back_failed(tmp_path):
    data = tmp_path / "data"
    name = unique("stopped")
    with EmulatorProcess(data) as emu:
        sm, s3 = clients(emu)
        channels = upload_housing_channels(s3, BUCKET, "stopped", houses=1000)
        sm.create_training_job(
            **training_request(name, channels, f"s3://{BUCKET}/out", hyperparameters=SLOW_TRAINING, max_runtime=3600)
        )
        wait_secondary(sm, name, "Training")
        children = psutil.Process(emu.proc.pid).children(recursive=True)
    assert not survivors(children, timeout=3.0)
    with EmulatorProcess(data) as emu:
        sm, _ = clients(emu)
        job = wait_for_job(sm, name)
        assert job["TrainingJobStatus"] == "Failed"
        assert "stopped while this training job was running" in job["FailureReason"]
        assert not (data / "training" / name).exists()
