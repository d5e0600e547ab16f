"""Processing jobs: the runner that runs a user's script unchanged (the operations are in
``processing_operations.py``).

The job directory holds what the container would see below ``/opt/ml`` (``processing/...`` inputs and
outputs, ``config/processingjobconfig.json`` and ``resourceconfig.json``, ``output/message``). The script
runs as its own process (``AppSpecification.ContainerEntrypoint`` + ``ContainerArguments``, with the job's
``Environment``; ``python3``/``python`` are this emulator's interpreter, one Python stack for every image).

Scripts hard-code ``/opt/ml/processing/...``, so that path must be the job's own:

* ``namespace``: the script starts in a private mount namespace (``unshare --mount --propagation private``)
  in which the job directory is bind-mounted on ``/opt/ml``; jobs run side by side, none sees another's
  files, and nothing changes outside. Needs root (or CAP_SYS_ADMIN) and the ``unshare`` command.
* ``lock``: where that is refused (Docker without CAP_SYS_ADMIN, desktops blocking namespaces), one job at a
  time holds a machine-wide lock and ``/opt/ml/processing``, ``/opt/ml/config`` and ``/opt/ml/output`` are
  made to point at its job directory; other jobs wait (InProgress) for the lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import posixpath
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .aws import MissingObject
from .control_plane import now
from .jobs import Failed, JobKind, JobRunner, LogShipper, Stopped
from .training import stage_s3_prefix
from .validation import split_s3_uri

log = logging.getLogger(__name__)

LOG_GROUP = "/aws/sagemaker/ProcessingJobs"
CONTAINER_ROOT = "/opt/ml"
PROCESSING_ROOT = "/opt/ml/processing"
# Nominal seconds AWS spends provisioning the instance and pulling the image; multiplied by the time scale.
NOMINAL_STARTING_SECONDS = 90.0
INTERRUPTED_REASON = (
    "InternalServerError: The local SageMaker emulator stopped while this processing job was running. "
    "Start the job again under a new name."
)
MAX_RUNTIME_REASON = "Job exceeded MaxRuntimeInSeconds provided"
# The lock that makes jobs take turns in "lock" mode: one per machine, as /opt/ml is.
LOCK_FILE = Path(tempfile.gettempdir()) / "sagemaker-emulator-opt-ml.lock"
# What a job sees below /opt/ml in "lock" mode (each made to point at the job's own directory).
LOCK_MODE_ENTRIES = ("processing", "config", "output")
MAX_MESSAGE_BYTES = 1024
# Interpreter names a script's command may start with: all run the emulator's own Python.
PYTHON_NAMES = {"python", "python3"} | {f"python3.{minor}" for minor in range(6, 20)}
PROCESSING = JobKind(
    store_kind="processing-job",
    name_key="ProcessingJobName",
    status_key="ProcessingJobStatus",
    log_group=LOG_GROUP,
    jobs_dir="processing",
    interrupted_reason=INTERRUPTED_REASON,
)
# The environment every container gets before the job's own Environment (the sklearn images set these).
BASE_ENVIRONMENT = {"PYTHONUNBUFFERED": "TRUE", "PYTHONDONTWRITEBYTECODE": "TRUE", "LANG": "C.UTF-8"}


def local_relative(local_path: str) -> str:
    """The part of a LocalPath below /opt/ml/processing, normalised; ValueError when it is not below it."""
    normal = posixpath.normpath(local_path)
    if not normal.startswith(PROCESSING_ROOT + "/") or normal == PROCESSING_ROOT:
        raise ValueError(local_path)
    return normal[len(PROCESSING_ROOT) + 1 :]


def namespace_works() -> bool:
    """Whether this process can give a child a private /opt/ml (root, unshare and mount present, allowed)."""
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("mount"):
        return False
    try:
        Path(CONTAINER_ROOT).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as probe:
            done = subprocess.run(
                [*_namespace_prefix(probe), "true"],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=10,
            )
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def _namespace_prefix(ml_dir: str) -> list[str]:
    # In the new namespace: bind the job's directory on /opt/ml, then exec the command (same pid).
    script = 'mount --bind "$1" /opt/ml && shift && exec "$@"'
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", ml_dir]


class ProcessingRunner(JobRunner):
    kind = PROCESSING

    def __init__(self, **needs: Any):
        super().__init__(**needs)
        self.isolation = "unknown"
        self._shims = self.jobs_root.parent / "processing-bin"

    def start(self) -> None:
        super().start()
        wanted = self.config.processing_isolation
        if wanted == "lock":
            self.isolation = "lock"
        elif namespace_works():
            self.isolation = "namespace"
        elif wanted == "namespace":
            raise RuntimeError(
                "processing isolation 'namespace' was asked for, but this process cannot make a private mount "
                "namespace (needs root or CAP_SYS_ADMIN and the unshare and mount commands); use 'lock' or 'auto'"
            )
        else:
            self.isolation = "lock"
        log.info("processing jobs see /opt/ml through: %s", self.isolation)
        self._write_shims()

    def _write_shims(self) -> None:
        """``python``/``python3`` on the scripts' PATH: this emulator's interpreter, for scripts that call them."""
        self._shims.mkdir(parents=True, exist_ok=True)
        for name in ("python", "python3"):
            shim = self._shims / name
            shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
            shim.chmod(0o755)

    def _interrupted(self, name: str) -> None:
        self._finish(name, "Failed", failure=INTERRUPTED_REASON)

    def stop(self, name: str) -> None:
        self._update(name, ProcessingJobStatus="Stopping")
        self.signal_stop(name)

    def _update(self, name: str, **fields: Any) -> None:
        def change(record: dict[str, Any]) -> None:
            record.update(fields)
            record["LastModifiedTime"] = now()

        self.store.update("processing-job", name, change)

    def _finish(self, name: str, status: str, failure: str | None = None, **fields: Any) -> None:
        if failure:
            fields["FailureReason"] = failure[:MAX_MESSAGE_BYTES]
        self._update(name, ProcessingJobStatus=status, ProcessingEndTime=now(), **fields)

    # -- one job ----------------------------------------------------------------------------------------------
    def _run(self, name: str, stop: threading.Event) -> None:
        record = self.store.get("processing-job", name)
        assert record is not None
        job_dir = self.jobs_root / name
        ml_dir = job_dir / "ml"
        logs = LogShipper(self.moto, record["_region"], LOG_GROUP, record["_log_stream"])
        started = time.monotonic()
        max_runtime = record["StoppingCondition"]["MaxRuntimeInSeconds"]
        exit_message: dict[str, str] = {}
        try:
            self.wait(self.config.scaled(NOMINAL_STARTING_SECONDS), stop)
            self._prepare(record, ml_dir)
            injected = self.faults.take("processing_failure", name=name)
            if injected is not None:
                raise Failed(injected.get("reason") or "AlgorithmError: injected processing failure (emulator fault)")
            log_path = job_dir / "container.log"
            log_path.touch()
            with self._isolated(ml_dir, stop):
                self._update(name, ProcessingStartTime=now())
                worker = self.pool.spawn(  # type: ignore[union-attr]
                    self._command(record, ml_dir),
                    env=self._environment(record),
                    cwd=job_dir,
                    log_path=log_path,
                )
                exitcode = self.supervise(worker, log_path, logs, stop, started, max_runtime)
            logs.flush_partial()
            exit_message = _exit_message(ml_dir)
            if exitcode != 0:
                last = next((line for line in reversed(logs.lines) if line.strip()), "")
                raise Failed(
                    f"AlgorithmError: See job logs for more information. The container exited with code {exitcode}"
                    + (f"; last output: {last.strip()}" if last else "")
                )
            self._upload(record, ml_dir)
            logs.ship()
            self._finish(name, "Completed", **exit_message)
        except Stopped as stopped:
            logs.flush_partial()
            if self._shutting_down.is_set():
                logs.ship()
                self._finish(name, "Failed", failure=INTERRUPTED_REASON)
                return
            if stopped.secondary == "MaxRuntimeExceeded":
                logs.add(MAX_RUNTIME_REASON)
            logs.ship()
            extra = {"FailureReason": MAX_RUNTIME_REASON} if stopped.secondary == "MaxRuntimeExceeded" else {}
            self._update(name, ProcessingJobStatus="Stopping")
            self._finish(name, "Stopped", **extra, **_exit_message(ml_dir))
        except Failed as failed:
            logs.add(str(failed))
            logs.ship()
            self._finish(name, "Failed", failure=str(failed), **exit_message)
        except Exception as exc:  # a bug of ours must still end the job, not leave it InProgress forever
            log.exception("processing job %s failed inside the emulator", name)
            self._finish(name, "Failed", failure=f"InternalServerError: {exc}")

    def _prepare(self, record: dict[str, Any], ml_dir: Path) -> None:
        shutil.rmtree(ml_dir, ignore_errors=True)
        processing = ml_dir / "processing"
        for folder in (processing, ml_dir / "config", ml_dir / "output"):
            folder.mkdir(parents=True, exist_ok=True)
        for item in record.get("ProcessingInputs") or []:
            source = item.get("S3Input")
            if item.get("AppManaged") or source is None:
                continue
            local = source["LocalPath"]
            target = processing / local_relative(local)
            uri = source["S3Uri"]
            bucket, prefix = split_s3_uri(uri)
            try:
                found = self.moto.s3_list(bucket, prefix)
            except MissingObject:
                found = []
            if not found:
                raise Failed(
                    f'ClientError: No S3 objects found under S3 URL "{uri}" given in input {item["InputName"]}. '
                    "Please ensure that the bucket exists and that objects exist under that S3 prefix."
                )
            stage_s3_prefix(self.moto, uri, target, f"input {item['InputName']}", local)
        for output in (record.get("ProcessingOutputConfig") or {}).get("Outputs") or []:
            if output.get("S3Output"):
                (processing / local_relative(output["S3Output"]["LocalPath"])).mkdir(parents=True, exist_ok=True)
        (ml_dir / "config" / "processingjobconfig.json").write_text(json.dumps(_job_config(record), indent=2))
        hosts = [f"algo-{i}" for i in range(1, record["ProcessingResources"]["ClusterConfig"]["InstanceCount"] + 1)]
        (ml_dir / "config" / "resourceconfig.json").write_text(json.dumps({"current_host": "algo-1", "hosts": hosts}))

    def _command(self, record: dict[str, Any], ml_dir: Path) -> list[str]:
        app = record["AppSpecification"]
        argv = [*(app.get("ContainerEntrypoint") or []), *(app.get("ContainerArguments") or [])]
        if posixpath.basename(argv[0]) in PYTHON_NAMES:
            argv[0] = sys.executable
        if self.isolation == "namespace":
            return [*_namespace_prefix(str(ml_dir)), *argv]
        return argv

    def _environment(self, record: dict[str, Any]) -> dict[str, str]:
        # Not the server's environment (credentials, settings): what a container would get.
        env = {
            "PATH": os.pathsep.join([str(self._shims), os.environ.get("PATH", "/usr/bin:/bin")]),
            "HOME": os.environ.get("HOME", "/root"),
            **BASE_ENVIRONMENT,
        }
        env.update(record.get("Environment") or {})
        return env

    @contextlib.contextmanager
    def _isolated(self, ml_dir: Path, stop: threading.Event) -> Iterator[None]:
        if self.isolation == "namespace":
            yield
            return
        with open(LOCK_FILE, "a+b") as lock:
            while True:  # wait for the lock, but leave at once on StopProcessingJob
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    self.wait(0.05, stop)
            try:
                _point_opt_ml_at(ml_dir)
                yield
            finally:
                _unpoint_opt_ml()
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _upload(self, record: dict[str, Any], ml_dir: Path) -> None:
        """Every regular file below each output's LocalPath to its S3Uri (symlinks are not followed)."""
        for output in (record.get("ProcessingOutputConfig") or {}).get("Outputs") or []:
            target = output.get("S3Output")
            if not target:
                continue
            local = ml_dir / "processing" / local_relative(target["LocalPath"])
            bucket, prefix = split_s3_uri(target["S3Uri"])
            for path in sorted(local.rglob("*")):
                if path.is_symlink() or not path.is_file():
                    continue
                relative = path.relative_to(local).as_posix()
                key = f"{prefix.rstrip('/')}/{relative}" if prefix else relative
                self.moto.s3_put(bucket, key, path.read_bytes())


def _point_opt_ml_at(ml_dir: Path) -> None:
    root = Path(CONTAINER_ROOT)
    root.mkdir(parents=True, exist_ok=True)
    for entry in LOCK_MODE_ENTRIES:
        place = root / entry
        if place.is_symlink():  # left by a job of an emulator that was killed; we hold the lock now
            place.unlink()
        elif place.exists():
            raise Failed(
                f"InternalServerError: {place} exists and is not the emulator's, so this job cannot use it "
                "(processing isolation 'lock'). Move it away, or run the emulator as root where unshare works."
            )
        place.symlink_to(ml_dir / entry, target_is_directory=True)


def _unpoint_opt_ml() -> None:
    for entry in LOCK_MODE_ENTRIES:
        place = Path(CONTAINER_ROOT) / entry
        if place.is_symlink():
            place.unlink()


def _exit_message(ml_dir: Path) -> dict[str, str]:
    message = ml_dir / "output" / "message"
    if not message.is_file() or message.is_symlink():
        return {}
    raw = message.read_bytes()[:MAX_MESSAGE_BYTES]
    return {"ExitMessage": raw.decode("utf-8", "replace")} if raw else {}


def _job_config(record: dict[str, Any]) -> dict[str, Any]:
    """/opt/ml/config/processingjobconfig.json: the request with the defaults filled in."""
    keys = (
        "ProcessingJobArn",
        "ProcessingJobName",
        "AppSpecification",
        "Environment",
        "ProcessingInputs",
        "ProcessingOutputConfig",
        "ProcessingResources",
        "RoleArn",
        "StoppingCondition",
        "NetworkConfig",
    )
    return {key: record[key] for key in keys if key in record}
