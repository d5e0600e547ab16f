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
from tests.emulator.serving_helpers import (
    create_config,
    create_model,
    csv_row,
    deploy,
    ensure_bucket,
    housing_like,
    upload_xgboost,
    wait_status,
)

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
    # The client reads the end of the stream (the server's end closed at the kill), then closes its own
    # end without sending anything: the server's side then passes through TIME_WAIT. A request sent now
    # would be answered with a reset instead, which leaves no TIME_WAIT (and made this test flaky).
    assert connection.sock.recv(1) == b""
    connection.close()
    # The reproduction: a bind without SO_REUSEADDR is refused now (what the old port check did).
    with socket.socket() as probe, pytest.raises(OSError) as refused:
        probe.bind(("127.0.0.1", port))
    assert refused.value.errno == errno.EADDRINUSE
    with EmulatorProcess(data, port=port) as again:
        assert again.health()["status"] == "ok"


def test_a_kill_leaves_no_worker_and_the_job_comes_back_failed(tmp_path):
    data = tmp_path / "d"  # short: the scratch dir under it holds the forkserver's Unix socket
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
    # multiprocessing's temporary files (the forkserver's socket) are in the data dir, not in /tmp.
    (killed_run_temp,) = (data / "scratch").glob("pymp-*")

    with EmulatorProcess(data) as emu:
        sm, _ = clients(emu)
        job = sm.describe_training_job(TrainingJobName=name)
        assert job["TrainingJobStatus"] == "Failed"
        assert "stopped while this training job was running" in job["FailureReason"]
        assert job["TrainingEndTime"] >= job["TrainingStartTime"]
        # Recovery removed the job directory the killed run left behind.
        assert not (data / "training" / name).exists()
        assert list((data / "training").iterdir()) == []
        assert not killed_run_temp.exists()


def test_a_kill_during_the_forkservers_start_leaves_nothing(tmp_path):
    # The forkserver spends seconds importing xgboost and scikit-learn before it would notice the server is
    # gone; it watches the server from its first import on.
    emu = EmulatorProcess(tmp_path / "data").start()
    try:
        server = psutil.Process(emu.proc.pid)
        deadline = time.monotonic() + 30
        while not any("forkserver" in " ".join(c.cmdline()) for c in server.children()):
            assert time.monotonic() < deadline, "the forkserver never started"
            time.sleep(0.01)
        children = server.children(recursive=True)
    finally:
        emu.kill()
    left = survivors(children, timeout=3.0)
    assert not left, [(p.pid, p.cmdline()) for p in left]


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


# -- endpoints ------------------------------------------------------------------------------------------------
ROW = csv_row(housing_like(1, seed=4)[0][0])


def serving_clients(emu: EmulatorProcess):
    kw = {"endpoint_url": emu.url, "region_name": "us-east-1"}
    return boto3.client("sagemaker", **kw), boto3.client("s3", **kw), boto3.client("sagemaker-runtime", **kw)


def predict(runtime, endpoint: str) -> float:
    return float(runtime.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=ROW)["Body"].read())


def deployable(sm, s3, name: str, scale: float = 1.0, upload: bool = True) -> tuple[str, str]:
    """A model and an endpoint config named ``name``; returns (config name, artifact key)."""
    key = f"{name}/model.tar.gz"
    if upload:
        upload_xgboost(s3, BUCKET, key, scale=scale)
    else:
        ensure_bucket(s3, BUCKET)
    create_model(sm, name, f"s3://{BUCKET}/{key}")
    create_config(sm, name, [("AllTraffic", name, 1.0)])
    return name, key


def forget(sm, s3, name: str, key: str) -> None:
    """Delete what AWS lets one delete under a serving endpoint: its config, its model, its artifact."""
    sm.delete_endpoint_config(EndpointConfigName=name)
    sm.delete_model(ModelName=name)
    s3.delete_object(Bucket=BUCKET, Key=key)


def private_copies(data) -> set[str]:
    return {p.name for p in (data / "serving" / "artifacts").iterdir()}


@pytest.mark.parametrize("crash", [False, True], ids=["graceful", "kill"])
def test_an_endpoint_serves_on_after_its_config_model_and_artifact_are_gone(tmp_path, crash):
    data = tmp_path / "data"
    with EmulatorProcess(data) as emu:
        sm, s3, runtime = serving_clients(emu)
        config, key = deployable(sm, s3, "kept")
        deploy(sm, "kept", config)
        served = predict(runtime, "kept")
        forget(sm, s3, config, key)
        assert predict(runtime, "kept") == served
        if crash:
            emu.kill()
    with EmulatorProcess(data) as emu:
        sm, s3, runtime = serving_clients(emu)
        described = sm.describe_endpoint(EndpointName="kept")
        assert described["EndpointStatus"] == "InService", described.get("FailureReason")
        assert described["EndpointConfigName"] == config
        assert predict(runtime, "kept") == served
        assert len(private_copies(data)) == 1
        sm.delete_endpoint(EndpointName="kept")
        sm.get_waiter("endpoint_deleted").wait(EndpointName="kept", WaiterConfig={"Delay": 0.1, "MaxAttempts": 300})
        # No endpoint uses the copy any more: it is reclaimed.
        assert private_copies(data) == set()


def test_updates_caught_by_a_kill_finish_or_roll_back(tmp_path):
    data = tmp_path / "data"
    # Time scale 0.01: provisioning takes 2.4 s and the bake below 6 s, time to kill mid-update.
    with EmulatorProcess(data, time_scale=0.01) as emu:
        sm, s3, runtime = serving_clients(emu)
        old, _ = deployable(sm, s3, "old", scale=1.0)
        new, new_key = deployable(sm, s3, "new", scale=3.0)
        broken, _ = deployable(sm, s3, "broken", upload=False)
        for endpoint in ("finishes", "rolls-back"):
            sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=old)
        for endpoint in ("finishes", "rolls-back"):
            wait_status(sm, endpoint, "InService")
        old_prediction = predict(runtime, "finishes")
        bake = {
            "BlueGreenUpdatePolicy": {
                "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 600}
            }
        }
        sm.update_endpoint(EndpointName="finishes", EndpointConfigName=new, DeploymentConfig=bake)
        deadline = time.monotonic() + 30
        while True:
            summary = sm.describe_endpoint(EndpointName="finishes").get("PendingDeploymentSummary") or {}
            statuses = [s["Status"] for v in summary.get("ProductionVariants", []) for s in v["VariantStatus"]]
            if "Baking" in statuses:
                break
            assert time.monotonic() < deadline, summary
            time.sleep(0.05)
        # The new fleet is loaded and baking; what it was deployed from is deleted.
        forget(sm, s3, new, new_key)
        # This one's artifact fails to download; its rollback would start after 2.4 s of provisioning.
        sm.update_endpoint(EndpointName="rolls-back", EndpointConfigName=broken)
        assert sm.describe_endpoint(EndpointName="rolls-back")["EndpointStatus"] == "Updating"
        emu.kill()

    with EmulatorProcess(data) as emu:
        sm, s3, runtime = serving_clients(emu)
        # The update that had loaded its models finishes from the private copies.
        finished = wait_status(sm, "finishes", ("InService", "Failed"))
        assert finished["EndpointStatus"] == "InService" and finished["EndpointConfigName"] == new
        assert "PendingDeploymentSummary" not in finished
        assert predict(runtime, "finishes") == pytest.approx(3 * old_prediction, rel=0.2)
        # The update that cannot load rolls back: the old fleet serves, the reason is kept.
        rolled = wait_status(sm, "rolls-back", ("InService", "Failed"))
        assert rolled["EndpointStatus"] == "InService" and rolled["EndpointConfigName"] == old
        assert "Failed to update endpoint" in rolled["FailureReason"]
        assert predict(runtime, "rolls-back") == old_prediction
        # Two private copies in use (old, new); nothing else is kept.
        assert len(private_copies(data)) == 2
