"""The lock fallback (one job at a time through the real /opt/ml) and processing workers that die with the
server: each with an emulator of its own."""

from __future__ import annotations

import time
from pathlib import Path

import boto3
import psutil
import pytest
from botocore.exceptions import ClientError

from include.sagemaker_emulator.process import EmulatorProcess
from tests.emulator.helpers import unique
from tests.emulator.processing_helpers import processing_request, wait_processing
from tests.emulator.test_processing_jobs import BUCKET, SLEEPING_SCRIPT, put_script, s3_json, sum_job


def clients(emu: EmulatorProcess):
    kw = {"endpoint_url": emu.url, "region_name": "us-east-1"}
    return boto3.client("sagemaker", **kw), boto3.client("s3", **kw)


def test_the_lock_fallback_runs_jobs_in_turn_through_the_real_opt_ml(tmp_path) -> None:
    with EmulatorProcess(tmp_path / "data", extra_args=["--processing-isolation", "lock"]) as emu:
        assert emu.health()["processing_isolation"] == "lock"
        sm, s3 = clients(emu)
        names = [unique("lock-left"), unique("lock-right")]
        numbers = [{"l1.txt": [1], "l2.txt": [2, 3]}, {"r.txt": [40]}]
        for name, files in zip(names, numbers, strict=True):
            sm.create_processing_job(**sum_job(s3, name, files))
        jobs = [wait_processing(sm, name) for name in names]
        assert [j["ProcessingJobStatus"] for j in jobs] == ["Completed"] * 2, [j.get("FailureReason") for j in jobs]
        left, right = (s3_json(s3, f"s3://{BUCKET}/out/{name}/result.json") for name in names)
        assert left["seen"] == ["l1.txt", "l2.txt"] and left["total"] == 6 and left["job"] == names[0]
        assert right["seen"] == ["r.txt"] and right["total"] == 40 and right["job"] == names[1]
        # In turn: one script was done with /opt/ml before the other started.
        first, second = sorted((left, right), key=lambda r: r["started"])
        assert first["ended"] <= second["started"]
    # The job's entries below /opt/ml are gone once it is over.
    assert not any(Path("/opt/ml", entry).is_symlink() for entry in ("processing", "config", "output"))


def test_a_kill_ends_the_script_and_the_job_comes_back_failed(tmp_path) -> None:
    data = tmp_path / "d"
    name = unique("proc-killed")
    emu = EmulatorProcess(data).start()
    try:
        sm, s3 = clients(emu)
        sm.create_processing_job(
            **processing_request(name, code_uri=put_script(s3, "sleep.py", SLEEPING_SCRIPT), script="sleep.py")
        )
        server = psutil.Process(emu.proc.pid)
        deadline = time.monotonic() + 60
        while not (scripts := [p for p in server.children(recursive=True) if "sleep.py" in " ".join(p.cmdline())]):
            assert time.monotonic() < deadline, "the script never started"
            time.sleep(0.05)
        assert (data / "processing" / name).is_dir()
    finally:
        emu.kill()
    (script,) = scripts
    script.wait(10)  # raises TimeoutExpired if the script outlived the server
    with EmulatorProcess(data) as emu:
        sm, _ = clients(emu)
        job = sm.describe_processing_job(ProcessingJobName=name)
        assert job["ProcessingJobStatus"] == "Failed"
        assert "stopped while this processing job was running" in job["FailureReason"]
        assert not (data / "processing" / name).exists()


def test_processing_has_its_own_concurrency_quota(tmp_path) -> None:
    with EmulatorProcess(tmp_path / "data", extra_args=["--max-processing-jobs", "1"]) as emu:
        sm, s3 = clients(emu)
        code = put_script(s3, "sleep.py", SLEEPING_SCRIPT)
        running = unique("quota-first")
        sm.create_processing_job(**processing_request(running, code_uri=code, script="sleep.py"))
        refused = unique("quota-second")
        with pytest.raises(ClientError) as over:
            sm.create_processing_job(**processing_request(refused, code_uri=code, script="sleep.py"))
        assert over.value.response["Error"]["Code"] == "ResourceLimitExceeded"
        assert "for processing job usage' is 1 Instances" in over.value.response["Error"]["Message"]
        assert not sm.list_processing_jobs(NameContains=refused)["ProcessingJobSummaries"]
        sm.stop_processing_job(ProcessingJobName=running)
        assert wait_processing(sm, running)["ProcessingJobStatus"] == "Stopped"
        # The slot is free again once the first job stopped.
        sm.create_processing_job(
            **processing_request(refused, code_uri=put_script(s3, "ok.py", "print(1)\n"), script="ok.py")
        )
        assert wait_processing(sm, refused)["ProcessingJobStatus"] == "Completed"
