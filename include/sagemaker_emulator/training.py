"""Training jobs: the runner that really trains (the operations are in ``training_operations.py``).

Each job runs its algorithm in its own worker process (forked from the pool's forkserver, which has xgboost
and scikit-learn imported already, so a job starts in milliseconds), so a crash, a stop or a timeout can never
take the server down. The job's watcher thread (``jobs.JobRunner``) downloads the channels from S3 into an
/opt/ml-like job directory, tails the worker's log into CloudWatch Logs, walks the real SecondaryStatus
sequence, and uploads ``model.tar.gz`` when the algorithm succeeds.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import shutil
import sys
import tarfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from .control_plane import now
from .jobs import Failed as _Failed
from .jobs import JobKind, JobRunner, LogShipper, Stopped
from .lifeline import exit_with
from .safe_paths import KeyEscapesChannel, channel_file, inside
from .validation import split_s3_uri

log = logging.getLogger(__name__)

# Nominal seconds AWS spends in each phase before the real work; multiplied by the time scale.
NOMINAL_SECONDS = {"Starting": 60.0, "Downloading": 20.0, "Uploading": 5.0, "Stopping": 5.0}
STATUS_MESSAGES = {
    "Starting": "Preparing the instances for training",
    "Downloading": "Downloading the training image",
    "Training": "Training image download completed. Training in progress.",
    "Uploading": "Uploading generated training model",
    "Completed": "Training job completed",
    "Failed": "Training job failed",
    "Stopping": "Stopping the training job",
    "Stopped": "Training job stopped",
    "MaxRuntimeExceeded": "Job exceeded MaxRuntimeInSeconds provided",
}
LOG_GROUP = "/aws/sagemaker/TrainingJobs"
INTERRUPTED_REASON = (
    "InternalServerError: The local SageMaker emulator stopped while this training job was running. "
    "Start the job again under a new name."
)
TRAINING = JobKind(
    store_kind="training-job",
    name_key="TrainingJobName",
    status_key="TrainingJobStatus",
    log_group=LOG_GROUP,
    jobs_dir="training",
    interrupted_reason=INTERRUPTED_REASON,
)
# What the forkserver imports once, so each training worker starts with it loaded.
WORKER_PRELOAD = (
    "include.sagemaker_emulator.algorithms",
    "xgboost",
    "numpy",
    "sklearn.linear_model",
    "sklearn.preprocessing",
)


# -- the worker process ---------------------------------------------------------------------------------------
def run_algorithm(algorithm: str, job_dir: str, version: str | None = None, server_pid: int | None = None) -> None:
    """Entry point of a worker process: run the algorithm; a failure leaves its reason in output/failure."""
    from .algorithms import AlgorithmClientError, AlgorithmError, train

    if server_pid is not None:
        exit_with(server_pid)  # no training on after the emulator is gone, even after a kill -9

    root = Path(job_dir)
    with open(root / "output" / "algo-1.log", "a", buffering=1) as log_file:

        def emit(line: str) -> None:
            log_file.write(line.rstrip("\n") + "\n")

        try:
            train(algorithm, root, emit, version=version)
        except AlgorithmClientError as exc:
            _fail(root, f"ClientError: {exc}", emit)
            sys.exit(1)
        except AlgorithmError as exc:
            _fail(root, f"AlgorithmError: {exc}", emit)
            sys.exit(2)
        except Exception as exc:  # any crash of the algorithm is the algorithm's error, as on AWS
            _fail(root, f"AlgorithmError: framework error: \n{traceback.format_exc()}\n{exc}", emit)
            sys.exit(2)


def _fail(root: Path, reason: str, emit: Any) -> None:
    emit(reason)
    (root / "output" / "failure").write_text(reason)


class TrainingRunner(JobRunner):
    kind = TRAINING

    def __init__(self, *, warm_after: threading.Event | None = None, **needs: Any):
        super().__init__(**needs)
        self._warm_after = warm_after

    def start(self) -> None:
        super().start()
        if self.pool is not None:
            self.pool.warm(self._warm_after)

    def _interrupted(self, name: str) -> None:
        self._finish(name, "Failed", "Failed", failure=INTERRUPTED_REASON, TrainingEndTime=now())

    def stop(self, name: str) -> None:
        self._transition(name, "Stopping", primary="Stopping")
        self.signal_stop(name)

    def _transition(
        self, name: str, secondary: str, primary: str | None = None, message: str | None = None, **fields: Any
    ) -> None:
        stamp = now()

        def change(record: dict[str, Any]) -> None:
            transitions = record["SecondaryStatusTransitions"]
            if transitions and transitions[-1]["Status"] == secondary:
                return
            if transitions and "EndTime" not in transitions[-1]:
                transitions[-1]["EndTime"] = stamp
            entry = {
                "Status": secondary,
                "StartTime": stamp,
                "StatusMessage": message or STATUS_MESSAGES.get(secondary, secondary),
            }
            if secondary in ("Completed", "Failed", "Stopped", "MaxRuntimeExceeded"):
                entry["EndTime"] = stamp
            transitions.append(entry)
            record["SecondaryStatus"] = secondary
            if primary:
                record["TrainingJobStatus"] = primary
            record["LastModifiedTime"] = stamp
            record.update(fields)

        self.store.update("training-job", name, change)

    def _finish(self, name: str, primary: str, secondary: str, failure: str | None = None, **fields: Any) -> None:
        extra = dict(fields)
        if failure:
            extra["FailureReason"] = failure
        self._transition(name, secondary, primary=primary, **extra)

    def _run(self, name: str, stop: threading.Event) -> None:
        record = self.store.get("training-job", name)
        assert record is not None
        job_dir = self.jobs_root / name
        logs = LogShipper(self.moto, record["_region"], LOG_GROUP, record["_log_stream"])
        started = time.monotonic()
        max_runtime = record["StoppingCondition"]["MaxRuntimeInSeconds"]
        try:
            self.wait(self.config.scaled(NOMINAL_SECONDS["Starting"]), stop)
            self._transition(name, "Downloading")
            self._prepare(record, job_dir)
            self.wait(self.config.scaled(NOMINAL_SECONDS["Downloading"]), stop)
            self._transition(name, "Training", TrainingStartTime=now())
            injected = self.faults.take("training_failure", name=name)
            if injected is not None:
                reason = injected.get("reason") or "AlgorithmError: injected training failure (emulator fault)"
                logs.add(reason)
                raise _Failed(reason)
            exitcode = self._train(record, job_dir, stop, logs, started, max_runtime)
            logs.ship()
            if exitcode != 0:
                failure_file = job_dir / "output" / "failure"
                reason = (
                    failure_file.read_text()
                    if failure_file.exists()
                    else f"AlgorithmError: the algorithm process exited with code {exitcode}"
                )
                raise _Failed(reason)
            training_end = now()
            self._transition(name, "Uploading")
            artifact = self._upload(record, job_dir)
            self.wait(self.config.scaled(NOMINAL_SECONDS["Uploading"]), stop)
            metrics = _final_metrics(record, logs.lines)
            self._finish_completed(name, record, artifact, metrics, training_end)
        except Stopped as stopped:
            logs.ship()
            if self._shutting_down.is_set():
                self._finish(name, "Failed", "Failed", failure=INTERRUPTED_REASON)
            else:
                self._transition(name, "Stopping", primary="Stopping")
                self._finish(
                    name,
                    "Stopped",
                    stopped.secondary,
                    TrainingEndTime=now(),
                    **_times(self.store.get("training-job", name)),
                )
        except _Failed as failed:
            logs.add(str(failed))
            logs.ship()
            self._finish(name, "Failed", "Failed", failure=str(failed), TrainingEndTime=now())
        except Exception as exc:  # a bug of ours must still end the job, not leave it InProgress forever
            log.exception("training job %s failed inside the emulator", name)
            self._finish(name, "Failed", "Failed", failure=f"InternalServerError: {exc}", TrainingEndTime=now())

    def _prepare(self, record: dict[str, Any], job_dir: Path) -> None:
        shutil.rmtree(job_dir, ignore_errors=True)
        config_dir = job_dir / "input" / "config"
        for folder in (config_dir, job_dir / "model", job_dir / "output" / "data"):
            folder.mkdir(parents=True, exist_ok=True)
        default_mode = record["AlgorithmSpecification"]["TrainingInputMode"]
        input_config = {}
        for channel in record["InputDataConfig"]:
            name = channel["ChannelName"]
            source = channel["DataSource"]["S3DataSource"]
            target = job_dir / "input" / "data" / name
            stage_s3_prefix(self.moto, source["S3Uri"], target, f"channel {name}", f"/opt/ml/input/data/{name}")
            entry = {
                "TrainingInputMode": channel.get("InputMode", default_mode),
                "S3DistributionType": source.get("S3DataDistributionType", "FullyReplicated"),
                "RecordWrapperType": channel.get("RecordWrapperType", "None"),
            }
            if channel.get("ContentType"):
                entry["ContentType"] = channel["ContentType"]
            input_config[name] = entry
        (config_dir / "hyperparameters.json").write_text(json.dumps(record["HyperParameters"]))
        (config_dir / "inputdataconfig.json").write_text(json.dumps(input_config))
        (config_dir / "resourceconfig.json").write_text(json.dumps({"current_host": "algo-1", "hosts": ["algo-1"]}))

    def _train(
        self,
        record: dict[str, Any],
        job_dir: Path,
        stop: threading.Event,
        logs: LogShipper,
        started: float,
        max_runtime: int,
    ) -> int:
        log_path = job_dir / "output" / "algo-1.log"
        log_path.touch()
        assert self.pool is not None
        worker = self.pool.fork(
            run_algorithm, (record["_algorithm"], str(job_dir), record.get("_algorithm_version"), os.getpid())
        )
        return self.supervise(worker, log_path, logs, stop, started, max_runtime)

    def _upload(self, record: dict[str, Any], job_dir: Path) -> str:
        bucket, prefix = split_s3_uri(record["OutputDataConfig"]["S3OutputPath"])
        base = "/".join(p for p in (prefix.rstrip("/"), record["TrainingJobName"], "output") if p)
        self.moto.s3_put(bucket, f"{base}/model.tar.gz", _tar_gz(job_dir / "model"))
        output_data = job_dir / "output" / "data"
        if any(output_data.iterdir()):
            self.moto.s3_put(bucket, f"{base}/output.tar.gz", _tar_gz(output_data))
        return f"s3://{bucket}/{base}/model.tar.gz"

    def _finish_completed(
        self, name: str, record: dict[str, Any], artifact: str, metrics: list[dict[str, Any]], training_end: float
    ) -> None:
        current = self.store.get("training-job", name) or record
        times = _times({**current, "TrainingEndTime": training_end})
        self._finish(
            name,
            "Completed",
            "Completed",
            ModelArtifacts={"S3ModelArtifacts": artifact},
            FinalMetricDataList=metrics,
            TrainingEndTime=training_end,
            **times,
        )


def stage_s3_prefix(moto: Any, uri: str, target: Path, what: str, shown: str) -> None:
    """Download every object under ``uri`` into ``target`` (what/shown name it in errors), keys checked first."""
    bucket, prefix = split_s3_uri(uri)
    target.mkdir(parents=True, exist_ok=True)
    for key, path in _channel_files(what, uri, bucket, prefix, target, moto, shown):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(moto.s3_get(bucket, key))


def _channel_files(
    what: str, uri: str, bucket: str, prefix: str, channel_dir: Path, moto: Any, shown: str
) -> list[tuple[str, Path]]:
    """(key, file) for every object of a channel, all checked before the first byte is written: a key that
    climbs out of the channel, then two keys that would need the same file, fail the job as ClientError."""
    mapped: list[tuple[str, Path]] = []
    for key, _size in moto.s3_list(bucket, prefix):
        if key.endswith("/"):
            continue
        try:
            path = channel_dir / channel_file(key, prefix)
        except KeyEscapesChannel:
            raise _Failed(
                f"ClientError: The S3 object key {key!r} in {what} ({uri}) names a path outside the "
                f"{what.split()[0]} directory {shown} ('..' above the prefix). Rename the object."
            ) from None
        if not inside(channel_dir, path):  # cannot happen after channel_file; checked so a bug cannot write out
            raise _Failed(f"ClientError: The S3 object key {key!r} in {what} escapes its directory {shown}.")
        mapped.append((key, path))
    files: dict[Path, str] = {}  # file -> key
    directories: dict[Path, str] = {}  # directory some file needs -> the first key needing it
    for key, path in mapped:
        parents = [channel_dir / p for p in path.relative_to(channel_dir).parents]
        clash = files.get(path) or directories.get(path) or next((files[p] for p in parents if p in files), None)
        if clash is not None:
            raise _Failed(
                f"ClientError: The S3 objects {clash!r} and {key!r} in {what} ({uri}) cannot both be "
                "downloaded: they need the same file, or one needs as a file what the other needs as a directory."
            )
        files[path] = key
        for parent in parents:
            directories.setdefault(parent, key)
    return mapped


def _times(record: dict[str, Any] | None) -> dict[str, Any]:
    if not record or "TrainingStartTime" not in record:
        return {}
    end = record.get("TrainingEndTime") or now()
    seconds = max(1, round(end - record["TrainingStartTime"]))
    return {
        "TrainingTimeInSeconds": seconds,
        "BillableTimeInSeconds": seconds * record["ResourceConfig"]["InstanceCount"],
    }


def _tar_gz(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=6) as tar:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                tar.add(path, arcname=str(path.relative_to(folder)))
    return buffer.getvalue()


def _final_metrics(record: dict[str, Any], lines: list[str]) -> list[dict[str, Any]]:
    """The last value of each MetricDefinition's regex in the job's own log, as SageMaker reports them."""
    results = []
    stamp = now()
    for definition in record["AlgorithmSpecification"].get("MetricDefinitions") or []:
        try:
            pattern = re.compile(definition["Regex"])
        except re.error:
            continue
        value = None
        for line in lines:
            match = pattern.match(line)
            if match and match.groups():
                try:
                    value = float(match.group(1))
                except ValueError:
                    continue
        if value is not None:
            results.append({"MetricName": definition["Name"], "Value": value, "Timestamp": stamp})
    return results
