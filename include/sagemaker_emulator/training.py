"""Training jobs: the runner that really trains (the operations are in ``training_operations.py``).

Each job runs its algorithm in its own worker process, one per host for distributed XGBoost (forked from the
pool's forkserver, which has xgboost and scikit-learn imported already, so a job starts in milliseconds), so a
crash, a stop or a timeout can never take the server down. The job's watcher thread (``jobs.JobRunner``) downloads the channels from S3 into an
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

from . import script_mode
from .aws import MissingObject
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
def run_algorithm(
    algorithm: str,
    job_dir: str,
    version: str | None = None,
    server_pid: int | None = None,
    host: str = "algo-1",
    cluster: dict[str, Any] | None = None,
) -> None:
    """Entry point of a worker process (one per host): run the algorithm; a failure leaves its reason in
    output/failure, the host's log goes to output/<host>.log."""
    from .algorithms import AlgorithmClientError, AlgorithmError, train

    if server_pid is not None:
        exit_with(server_pid)  # no training on after the emulator is gone, even after a kill -9

    root = Path(job_dir)
    with open(root / "output" / f"{host}.log", "a", buffering=1) as log_file:

        def emit(line: str) -> None:
            log_file.write(line.rstrip("\n") + "\n")

        try:
            train(algorithm, root, emit, version=version, cluster=cluster)
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
        hosts = _hosts(record)
        host_logs = {
            host: LogShipper(self.moto, record["_region"], LOG_GROUP, _host_stream(record, host)) for host in hosts
        }
        logs = host_logs["algo-1"]

        def ship_all() -> None:
            for shipper in host_logs.values():
                shipper.ship()

        started = time.monotonic()
        max_runtime = record["StoppingCondition"]["MaxRuntimeInSeconds"]
        try:
            self.wait(self.config.scaled(NOMINAL_SECONDS["Starting"]), stop)
            self._transition(name, "Downloading")
            cluster = self._prepare(record, job_dir, hosts)
            if record["ResourceConfig"]["InstanceCount"] > 1 and cluster is None and not record.get("_script"):
                logs.add(
                    f"{record['_algorithm']}: the local emulator trains on host algo-1 with the data of all "
                    f"{record['ResourceConfig']['InstanceCount']} instances (distributed training is emulated "
                    "for XGBoost only); every instance is still billed."
                )
            self.wait(self.config.scaled(NOMINAL_SECONDS["Downloading"]), stop)
            self._transition(name, "Training", TrainingStartTime=now())
            injected = self.faults.take("training_failure", name=name)
            if injected is not None:
                reason = injected.get("reason") or "AlgorithmError: injected training failure (emulator fault)"
                logs.add(reason)
                raise _Failed(reason)
            failed_host, exitcode = self._train(record, job_dir, hosts, cluster, stop, host_logs, started, max_runtime)
            ship_all()
            if failed_host is not None:
                failure_file = _host_dir(job_dir, failed_host) / "output" / "failure"
                if record.get("_script"):
                    reason = script_mode.failure_reason(
                        _host_dir(job_dir, failed_host),
                        exitcode,
                        self._script_argv(record),
                        host_logs[failed_host].lines,
                    )
                elif failure_file.exists():
                    reason = failure_file.read_text()
                else:
                    reason = f"AlgorithmError: the algorithm process exited with code {exitcode}"
                if len(hosts) > 1:
                    kind, _, detail = reason.partition(": ")
                    reason = f"{kind}: Host {failed_host}: {detail}"
                raise _Failed(reason)
            training_end = now()
            self._transition(name, "Uploading")
            master = cluster["workers"][0] if cluster else "algo-1"
            artifact = self._upload(record, job_dir, _host_dir(job_dir, master))
            self.wait(self.config.scaled(NOMINAL_SECONDS["Uploading"]), stop)
            metrics = _final_metrics(record, logs.lines)
            self._finish_completed(name, record, artifact, metrics, training_end)
        except Stopped as stopped:
            ship_all()
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
            ship_all()
            self._finish(name, "Failed", "Failed", failure=str(failed), TrainingEndTime=now())
        except Exception as exc:  # a bug of ours must still end the job, not leave it InProgress forever
            log.exception("training job %s failed inside the emulator", name)
            self._finish(name, "Failed", "Failed", failure=f"InternalServerError: {exc}", TrainingEndTime=now())

    def _prepare(self, record: dict[str, Any], job_dir: Path, hosts: list[str]) -> dict[str, Any] | None:
        """Each host's /opt/ml tree: its channels (ShardedByS3Key: key i of the sorted keys goes to host
        i mod N of the sorted hosts; FullyReplicated: every key to every host) and its resourceconfig.json.

        Returns the cluster of a distributed job (None for one host): the hosts that got data in train (and
        in validation when configured), which train together, and the tracker's rendezvous file.
        """
        shutil.rmtree(job_dir, ignore_errors=True)
        for host in hosts:
            host_dir = _host_dir(job_dir, host)
            for folder in (host_dir / "input" / "config", host_dir / "model", host_dir / "output" / "data"):
                folder.mkdir(parents=True, exist_ok=True)
        default_mode = record["AlgorithmSpecification"]["TrainingInputMode"]
        input_config = {}
        has_data: dict[str, set[str]] = {host: set() for host in hosts}  # host -> channels that got a data file
        for channel in record["InputDataConfig"]:
            name = channel["ChannelName"]
            source = channel["DataSource"]["S3DataSource"]
            uri = source["S3Uri"]
            bucket, prefix = split_s3_uri(uri)
            target = job_dir / "input" / "data" / name
            sharded = source.get("S3DataDistributionType") == "ShardedByS3Key" and len(hosts) > 1
            for host in hosts:
                (_host_dir(job_dir, host) / "input" / "data" / name).mkdir(parents=True, exist_ok=True)
            # Every key is checked (escape, clash) before the first byte is written, on any host.
            mapped = sorted(
                _channel_files(f"channel {name}", uri, bucket, prefix, target, self.moto, f"/opt/ml/input/data/{name}")
            )
            for index, (key, path) in enumerate(mapped):
                body = self.moto.s3_get(bucket, key)
                relative = path.relative_to(target)
                for host in [hosts[index % len(hosts)]] if sharded else hosts:
                    host_path = _host_dir(job_dir, host) / "input" / "data" / name / relative
                    host_path.parent.mkdir(parents=True, exist_ok=True)
                    host_path.write_bytes(body)
                    if body and not any(part[:1] in "._" for part in relative.parts):
                        has_data[host].add(name)
            entry = {
                "TrainingInputMode": channel.get("InputMode", default_mode),
                "S3DistributionType": source.get("S3DataDistributionType", "FullyReplicated"),
                "RecordWrapperType": channel.get("RecordWrapperType", "None"),
            }
            if channel.get("ContentType"):
                entry["ContentType"] = channel["ContentType"]
            input_config[name] = entry
        for host in hosts:
            config_dir = _host_dir(job_dir, host) / "input" / "config"
            (config_dir / "hyperparameters.json").write_text(json.dumps(record["HyperParameters"]))
            (config_dir / "inputdataconfig.json").write_text(json.dumps(input_config))
            (config_dir / "resourceconfig.json").write_text(json.dumps(_resource_config(record, host, hosts)))
        if record.get("_script"):
            self._stage_script(record, job_dir, hosts)
            return None  # every host runs the script; no xgboost collective
        if len(hosts) == 1:
            return None
        needed = {"train"} | ({"validation"} if "validation" in input_config else set())
        workers = [host for host in hosts if needed <= has_data[host]] or [hosts[0]]
        timeout = min(int(record["StoppingCondition"]["MaxRuntimeInSeconds"]), 600)
        return {"workers": workers, "rendezvous": str(job_dir / "rendezvous.json"), "timeout": timeout}

    def _train(
        self,
        record: dict[str, Any],
        job_dir: Path,
        hosts: list[str],
        cluster: dict[str, Any] | None,
        stop: threading.Event,
        host_logs: dict[str, LogShipper],
        started: float,
        max_runtime: int,
    ) -> tuple[str | None, int]:
        """One worker process per host, forked from the pool; returns (the first host that failed, its exit
        code) or (None, 0). A failure on any host stops the others, as SageMaker stops the whole cluster."""
        assert self.pool is not None
        if record.get("_script"):
            return self._run_script(record, job_dir, hosts, stop, host_logs, started, max_runtime)
        workers = {}
        for host in hosts:
            log_path = _host_dir(job_dir, host) / "output" / f"{host}.log"
            log_path.touch()
            worker = self.pool.fork(
                run_algorithm,
                (
                    record["_algorithm"],
                    str(_host_dir(job_dir, host)),
                    record.get("_algorithm_version"),
                    os.getpid(),
                    host,
                    cluster,
                ),
            )
            workers[host] = (worker, log_path, host_logs[host])
        return self.supervise_all(workers, stop, started, max_runtime)

    # -- script mode ------------------------------------------------------------------------------------------
    def _script_base(self, host_dir: Path) -> str:
        """Where the script sees its /opt/ml: the real path in a private mount namespace, else the job dir."""
        if self.config.processing_isolation != "lock" and script_mode.private_opt_ml_works():
            return script_mode.CONTAINER_ROOT
        return str(host_dir)

    @staticmethod
    def _script_argv(record: dict[str, Any]) -> list[str]:
        decoded = script_mode.decode_hyperparameters(record["HyperParameters"])
        user = {k: v for k, v in decoded.items() if not k.startswith("sagemaker_")}
        return script_mode.command(record["_script"]["program"], script_mode.user_args(user))

    def _stage_script(self, record: dict[str, Any], job_dir: Path, hosts: list[str]) -> None:
        """sourcedir.tar.gz into every host's /opt/ml/code, and requirements.txt checked, before training."""
        uri = record["_script"]["submit_directory"]
        bucket, key = split_s3_uri(uri)
        try:
            archive = self.moto.s3_get(bucket, key)
        except MissingObject:
            raise _Failed(
                f"ClientError: The source archive {uri} (sagemaker_submit_directory) does not exist."
            ) from None
        for host in hosts:
            host_dir = _host_dir(job_dir, host)
            code_dir = host_dir / "code"
            script_mode.extract_source(archive, code_dir, uri)
            program = code_dir / record["_script"]["program"]
            if record["_script"]["program"].endswith((".py", ".sh")) and not (
                program.is_file() and inside(code_dir, program)
            ):
                raise _Failed(
                    f"ClientError: sagemaker_program {record['_script']['program']!r} is not a file in the source "
                    f"archive {uri}."
                )
            if program.suffix == ".sh":
                program.chmod(0o755)  # the toolkit makes the entry point executable before running it
            with open(host_dir / "output" / f"{host}.log", "a") as log_file:
                script_mode.check_requirements(code_dir, lambda line, out=log_file: out.write(line + "\n"))

    def _run_script(
        self,
        record: dict[str, Any],
        job_dir: Path,
        hosts: list[str],
        stop: threading.Event,
        host_logs: dict[str, LogShipper],
        started: float,
        max_runtime: int,
    ) -> tuple[str | None, int]:
        """The user's script as its own process on every host (each with its own resourceconfig.json)."""
        assert self.pool is not None
        shims = self.jobs_root.parent / "script-bin"
        script_mode.write_shims(shims)
        argv = self._script_argv(record)
        workers = {}
        for host in hosts:
            host_dir = _host_dir(job_dir, host)
            base = self._script_base(host_dir)
            config_dir = host_dir / "input" / "config"
            toolkit = script_mode.toolkit_environment(
                record,
                framework=record["_script"]["framework"],
                host=host,
                hosts=hosts,
                base=base,
                input_config=json.loads((config_dir / "inputdataconfig.json").read_text()),
                resource_config=json.loads((config_dir / "resourceconfig.json").read_text()),
            )
            for folder in ("output/intermediate", "input/data"):
                (host_dir / folder).mkdir(parents=True, exist_ok=True)
            log_path = host_dir / "output" / f"{host}.log"
            shown = " ".join("python" if part == sys.executable else part for part in argv)
            with open(log_path, "a") as log_file:
                log_file.write(f"Invoking user script\nTraining Env:\n\n{toolkit['SM_TRAINING_ENV']}\n\n")
                log_file.write(f"Invoking script with the following command:\n\n{shown}\n\n")
            prefix = script_mode.namespace_prefix(host_dir) if base == script_mode.CONTAINER_ROOT else []
            worker = self.pool.spawn(
                [*prefix, *argv],
                env=script_mode.process_environment(toolkit, shims, record),
                cwd=host_dir / "code",
                log_path=log_path,
            )
            workers[host] = (worker, log_path, host_logs[host])
        return self.supervise_all(workers, stop, started, max_runtime)

    def _upload(self, record: dict[str, Any], job_dir: Path, master_dir: Path) -> str:
        bucket, prefix = split_s3_uri(record["OutputDataConfig"]["S3OutputPath"])
        base = "/".join(p for p in (prefix.rstrip("/"), record["TrainingJobName"], "output") if p)
        self.moto.s3_put(bucket, f"{base}/model.tar.gz", _tar_gz(master_dir / "model"))
        output_data = master_dir / "output" / "data"
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


def _hosts(record: dict[str, Any]) -> list[str]:
    """algo-1..N for a distributed XGBoost job and a script-mode job (one process per host); other algorithms
    train on algo-1 (a logged note says so)."""
    count = int(record["ResourceConfig"].get("InstanceCount", 1))
    if record["_algorithm"] not in ("xgboost", script_mode.SCRIPT):
        return ["algo-1"]
    return [f"algo-{i}" for i in range(1, count + 1)]


def _resource_config(record: dict[str, Any], host: str, hosts: list[str]) -> dict[str, Any]:
    """/opt/ml/input/config/resourceconfig.json of one host, as SageMaker writes it."""
    instance_type = record["ResourceConfig"]["InstanceType"]
    return {
        "current_host": host,
        "current_instance_type": instance_type,
        "current_group_name": "homogeneousCluster",
        "hosts": hosts,
        "instance_groups": [
            {"instance_group_name": "homogeneousCluster", "instance_type": instance_type, "hosts": hosts}
        ],
        "network_interface_name": "eth0",
    }


def _host_dir(job_dir: Path, host: str) -> Path:
    """The host's /opt/ml: the job directory itself for algo-1, hosts/<host> beside it for the others."""
    return job_dir if host == "algo-1" else job_dir / "hosts" / host


def _host_stream(record: dict[str, Any], host: str) -> str:
    """``<job>/algo-N-<epoch>``: one CloudWatch stream per host, as SageMaker names them."""
    return record["_log_stream"].replace("/algo-1-", f"/{host}-", 1)


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
