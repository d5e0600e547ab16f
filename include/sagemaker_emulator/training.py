"""Training jobs: the control-plane operations and the runner that really trains.

Each job runs its algorithm in its own worker process (forked from a forkserver that has xgboost and
scikit-learn imported already, so a job starts in milliseconds), so a crash, a stop or a timeout can never
take the server down. The server thread that watches the job downloads the channels from S3 into an
/opt/ml-like job directory, tails the worker's log into CloudWatch Logs, walks the real
SecondaryStatus sequence, and uploads ``model.tar.gz`` when the algorithm succeeds.
"""

from __future__ import annotations

import io
import json
import logging
import multiprocessing
import os
import re
import shutil
import sys
import tarfile
import threading
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .aws import MissingObject
from .control_plane import RequestContext, check_tags, list_page, now, operation, paged, save_tags
from .errors import AwsError, constraint_error, not_found, validation_error
from .lifeline import SERVER_PID_ENV, exit_with
from .safe_paths import KeyEscapesChannel, channel_file, inside
from .store import public
from .validation import arn, check_name, check_role, require, split_s3_uri

if TYPE_CHECKING:
    from .emulator import Emulator

log = logging.getLogger(__name__)

TERMINAL = {"Completed", "Failed", "Stopped"}
CHANNEL_NAME = re.compile(r"^[A-Za-z0-9\.\-_]+$")
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
# The forkserver warm-up waits at most this long for the serving plane to restore its endpoints.
RESTORE_WAIT_SECONDS = 30.0
INTERRUPTED_REASON = (
    "InternalServerError: The local SageMaker emulator stopped while this training job was running. "
    "Start the job again under a new name."
)


# -- operations -------------------------------------------------------------------------------------------
def _check_channels(ctx: RequestContext, body: dict[str, Any], role: str) -> list[dict[str, Any]]:
    channels = body.get("InputDataConfig") or []
    if not isinstance(channels, list) or len(channels) > 20:
        raise constraint_error(channels, "inputDataConfig", "Member must have length less than or equal to 20")
    seen: set[str] = set()
    checked = []
    for index, channel in enumerate(channels, start=1):
        member = f"inputDataConfig.{index}.member"
        name = channel.get("ChannelName") if isinstance(channel, dict) else None
        if not name or len(name) > 64 or not CHANNEL_NAME.match(name):
            raise constraint_error(
                name, f"{member}.channelName", "Member must satisfy regular expression pattern: [A-Za-z0-9\\.\\-_]+"
            )
        if name in (".", ".."):
            # The pattern allows them, but as a directory below /opt/ml/input/data they would name another one.
            raise validation_error(
                f"Channel name {name!r} is not supported by the local emulator: it names a directory outside "
                "/opt/ml/input/data. Choose a channel name with a letter or digit."
            )
        if name in seen:
            raise validation_error(f"Channel names must be unique. Channel {name} is specified more than once.")
        seen.add(name)
        source = require(channel, "DataSource", "S3DataSource")
        uri = require(source, "S3Uri")
        data_type = require(source, "S3DataType")
        if data_type != "S3Prefix":
            raise validation_error(f"S3DataType {data_type} in channel {name} is not emulated locally; use S3Prefix.")
        bucket, prefix = split_s3_uri(uri, f"InputDataConfig channel {name} S3Uri")
        try:
            found = ctx.emulator.moto.s3_list(bucket, prefix)
        except MissingObject:
            found = []
        if not found:
            raise validation_error(
                f'No S3 objects found under S3 URL "{uri}" given in input data source. Please ensure that the '
                f"bucket exists in the selected region ({ctx.region}), that objects exist under that S3 prefix, "
                f'and that the role "{role}" has "s3:ListBucket" permissions on bucket "{bucket}".'
            )
        checked.append(
            {
                **channel,
                "DataSource": {"S3DataSource": {"S3DataDistributionType": "FullyReplicated", **source}},
                "CompressionType": channel.get("CompressionType", "None"),
                "RecordWrapperType": channel.get("RecordWrapperType", "None"),
            }
        )
    return checked


@operation("CreateTrainingJob")
def create_training_job(ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
    from .algorithms import DEFAULT_METRIC_DEFINITIONS, UnsupportedImageError, algorithm_for_image, algorithm_version

    name = check_name(body.get("TrainingJobName"), "trainingJobName")
    spec = require(body, "AlgorithmSpecification")
    image = spec.get("TrainingImage")
    if not image:
        raise validation_error(
            "AlgorithmSpecification.TrainingImage is required (algorithm resources are not emulated)."
        )
    try:
        algorithm = algorithm_for_image(image)
    except UnsupportedImageError as exc:
        raise validation_error(f"Requested image {image} not found. {exc}") from exc
    input_mode = require(spec, "TrainingInputMode")
    if input_mode not in ("File", "Pipe", "FastFile"):
        raise constraint_error(
            input_mode,
            "algorithmSpecification.trainingInputMode",
            "Member must satisfy enum value set: [Pipe, File, FastFile]",
        )
    role = check_role(require(body, "RoleArn"))
    output_path = require(body, "OutputDataConfig", "S3OutputPath")
    split_s3_uri(output_path, "OutputDataConfig.S3OutputPath")
    resources = require(body, "ResourceConfig")
    require(resources, "InstanceType")
    count = require(resources, "InstanceCount")
    if not isinstance(count, int) or count < 1:
        raise constraint_error(
            count, "resourceConfig.instanceCount", "Member must have value greater than or equal to 1"
        )
    volume = require(resources, "VolumeSizeInGB")
    if not isinstance(volume, int) or volume < 1:
        # The model allows 0 for instance groups, which are not emulated; one instance needs a volume.
        raise constraint_error(
            volume, "resourceConfig.volumeSizeInGB", "Member must have value greater than or equal to 1"
        )
    stopping = require(body, "StoppingCondition")
    max_runtime = stopping.get("MaxRuntimeInSeconds", 86400)
    if not isinstance(max_runtime, int) or max_runtime < 1:
        raise constraint_error(
            max_runtime, "stoppingCondition.maxRuntimeInSeconds", "Member must have value greater than or equal to 1"
        )
    hyperparameters = body.get("HyperParameters") or {}
    if not isinstance(hyperparameters, dict) or len(hyperparameters) > 100:
        raise constraint_error(hyperparameters, "hyperParameters", "Member must have length less than or equal to 100")
    for key, value in hyperparameters.items():
        if not isinstance(value, str):
            raise constraint_error(value, f"hyperParameters.{key}", "Member must be a string")
    channels = _check_channels(ctx, body, role)
    tags = check_tags(body.get("Tags"))

    emulator = ctx.emulator
    job_arn = arn(ctx.region, "training-job", name)
    created = now()
    store = emulator.store
    with store.locked():
        if store.get("training-job", name) is not None:
            raise AwsError(
                "ResourceInUse",
                "Training job names must be unique within an AWS account and region, and a training job with "
                f"this name already exists ({job_arn})",
            )
        # The quota counts instances: a 2-instance job takes two.
        running = sum(
            int(j["ResourceConfig"].get("InstanceCount", 1))
            for j in store.list("training-job")
            if j["TrainingJobStatus"] in ("InProgress", "Stopping")
        )
        limit = emulator.config.max_concurrent_training_jobs
        if running + count > limit:
            raise AwsError(
                "ResourceLimitExceeded",
                f"The account-level service limit '{resources['InstanceType']} for training job usage' is {limit} "
                f"Instances, with current utilization of {running} Instances and a request delta of {count} Instances. "
                "Please use AWS Service Quotas to request an increase for this quota. If AWS Service Quotas is not "
                "available, contact AWS support to request an increase for this quota.",
            )
        record = {
            "TrainingJobName": name,
            "TrainingJobArn": job_arn,
            "ModelArtifacts": {"S3ModelArtifacts": ""},
            "TrainingJobStatus": "InProgress",
            "SecondaryStatus": "Starting",
            "HyperParameters": hyperparameters,
            "AlgorithmSpecification": {
                **spec,
                "MetricDefinitions": spec.get("MetricDefinitions") or DEFAULT_METRIC_DEFINITIONS.get(algorithm, []),
                "EnableSageMakerMetricsTimeSeries": spec.get("EnableSageMakerMetricsTimeSeries", False),
            },
            "RoleArn": role,
            "InputDataConfig": channels,
            "OutputDataConfig": {"KmsKeyId": "", "CompressionType": "GZIP", **body["OutputDataConfig"]},
            "ResourceConfig": resources,
            "StoppingCondition": {**stopping, "MaxRuntimeInSeconds": max_runtime},
            "CreationTime": created,
            "LastModifiedTime": created,
            "SecondaryStatusTransitions": [
                {"Status": "Starting", "StartTime": created, "StatusMessage": STATUS_MESSAGES["Starting"]}
            ],
            "EnableNetworkIsolation": bool(body.get("EnableNetworkIsolation", False)),
            "EnableInterContainerTrafficEncryption": bool(body.get("EnableInterContainerTrafficEncryption", False)),
            "EnableManagedSpotTraining": bool(body.get("EnableManagedSpotTraining", False)),
            "_algorithm": algorithm,
            # The container version decides validation and early-stopping rules (e.g. `silent` only in 1.0-1).
            "_algorithm_version": algorithm_version(image),
            "_region": ctx.region,
            "_log_stream": f"{name}/algo-1-{int(created)}",
        }
        for optional in (
            "VpcConfig",
            "CheckpointConfig",
            "DebugHookConfig",
            "Environment",
            "RetryStrategy",
            "ExperimentConfig",
            "ProfilerConfig",
        ):
            if body.get(optional) is not None:
                record[optional] = body[optional]
        store.put("training-job", name, record)
    if tags:
        save_tags(ctx, job_arn, tags)
    emulator.training.submit(name)
    return {"TrainingJobArn": job_arn}


def _get_job(ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
    record = ctx.emulator.store.get("training-job", require(body, "TrainingJobName"))
    if record is None:
        raise not_found()
    return record


@operation("DescribeTrainingJob")
def describe_training_job(ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
    return public(_get_job(ctx, body))


@operation("StopTrainingJob")
def stop_training_job(ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
    record = _get_job(ctx, body)
    status = record["TrainingJobStatus"]
    if status in TERMINAL:
        raise validation_error(f"The request was rejected because the training job is in status {status}.")
    ctx.emulator.training.stop(record["TrainingJobName"])
    return {}


@operation("ListTrainingJobs")
def list_training_jobs(ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
    page, token = list_page(
        ctx.emulator.store.list("training-job"), body, name_key="TrainingJobName", status_key="TrainingJobStatus"
    )
    keys = (
        "TrainingJobName",
        "TrainingJobArn",
        "CreationTime",
        "TrainingEndTime",
        "LastModifiedTime",
        "TrainingJobStatus",
        "SecondaryStatus",
    )
    return paged("TrainingJobSummaries", [{k: r[k] for k in keys if k in r} for r in page], token)


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


def _warm_up(server_pid: int) -> None:
    """Runs in a throwaway worker so the forkserver is started before the first job needs it."""
    exit_with(server_pid)


class _Stopped(Exception):
    def __init__(self, secondary: str):
        super().__init__(secondary)
        self.secondary = secondary


class TrainingRunner:
    def __init__(self, emulator: Emulator):
        self.emulator = emulator
        self._stop_events: dict[str, threading.Event] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()
        self._shutting_down = threading.Event()
        self._mp = multiprocessing.get_context("forkserver")
        # The forkserver inherits the environment: it learns whom to watch before it imports anything heavy.
        os.environ[SERVER_PID_ENV] = str(os.getpid())
        self._mp.set_forkserver_preload(
            [
                "include.sagemaker_emulator.forkserver_lifeline",
                "include.sagemaker_emulator.algorithms",
                "xgboost",
                "numpy",
                "sklearn.linear_model",
                "sklearn.preprocessing",
            ]
        )
        self.jobs_root = Path(emulator.config.data_dir) / "training"

    # -- lifecycle ------------------------------------------------------------------------------------------
    def start(self) -> None:
        self.recover()
        threading.Thread(target=self._warm, name="forkserver-warmup", daemon=True).start()

    def _warm(self) -> None:
        restored = getattr(self.emulator.serving, "restored", None)
        if restored is not None:
            restored.wait(RESTORE_WAIT_SECONDS)
        try:
            worker = self._mp.Process(target=_warm_up, args=(os.getpid(),))
            worker.start()
            worker.join()
        except Exception:
            log.exception("could not warm up the training forkserver")

    def recover(self) -> None:
        """Jobs that were running when the emulator stopped come back Failed, saying why, and every job
        directory goes: no job runs yet, so none is needed (a kill -9 leaves them behind)."""
        for record in self.emulator.store.list("training-job"):
            if record["TrainingJobStatus"] in ("InProgress", "Stopping"):
                self._finish(
                    record["TrainingJobName"],
                    "Failed",
                    "Failed",
                    failure=INTERRUPTED_REASON,
                    TrainingEndTime=now(),
                )
        if self.jobs_root.is_dir():
            for leftover in self.jobs_root.iterdir():
                if leftover.is_dir() and not leftover.is_symlink():
                    shutil.rmtree(leftover, ignore_errors=True)
                else:
                    leftover.unlink(missing_ok=True)
                log.info("removed the job directory %s left by the previous run", leftover)

    def shutdown(self, timeout: float = 5.0) -> None:
        self._shutting_down.set()
        with self._lock:
            events = list(self._stop_events.values())
            threads = list(self._threads.values())
        for event in events:
            event.set()
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    # -- jobs -------------------------------------------------------------------------------------------------
    def submit(self, name: str) -> None:
        stop = threading.Event()
        thread = threading.Thread(target=self._run, args=(name, stop), name=f"training-{name}", daemon=True)
        with self._lock:
            self._stop_events[name] = stop
            self._threads[name] = thread
        thread.start()

    def stop(self, name: str) -> None:
        self._transition(name, "Stopping", primary="Stopping")
        with self._lock:
            event = self._stop_events.get(name)
        if event is not None:
            event.set()

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

        self.emulator.store.update("training-job", name, change)

    def _finish(self, name: str, primary: str, secondary: str, failure: str | None = None, **fields: Any) -> None:
        extra = dict(fields)
        if failure:
            extra["FailureReason"] = failure
        self._transition(name, secondary, primary=primary, **extra)

    def _wait(self, seconds: float, stop: threading.Event) -> None:
        if seconds > 0 and stop.wait(seconds):
            raise _Stopped("Stopped")
        if stop.is_set():
            raise _Stopped("Stopped")

    def _run(self, name: str, stop: threading.Event) -> None:
        emulator = self.emulator
        record = emulator.store.get("training-job", name)
        assert record is not None
        region = record["_region"]
        job_dir = self.jobs_root / name
        hosts = _hosts(record)
        host_logs = {host: _LogShipper(emulator, region, _host_stream(record, host)) for host in hosts}
        logs = host_logs["algo-1"]

        def ship_all() -> None:
            for shipper in host_logs.values():
                shipper.ship()

        started = time.monotonic()
        max_runtime = record["StoppingCondition"]["MaxRuntimeInSeconds"]
        try:
            self._wait(emulator.config.scaled(NOMINAL_SECONDS["Starting"]), stop)
            self._transition(name, "Downloading")
            cluster = self._prepare(record, job_dir, hosts)
            if record["ResourceConfig"]["InstanceCount"] > 1 and cluster is None:
                logs.add(
                    f"{record['_algorithm']}: the local emulator trains on host algo-1 with the data of all "
                    f"{record['ResourceConfig']['InstanceCount']} instances (distributed training is emulated "
                    "for XGBoost only); every instance is still billed."
                )
            self._wait(emulator.config.scaled(NOMINAL_SECONDS["Downloading"]), stop)
            self._transition(name, "Training", TrainingStartTime=now())
            injected = emulator.faults.take("training_failure", name=name)
            if injected is not None:
                reason = injected.get("reason") or "AlgorithmError: injected training failure (emulator fault)"
                logs.add(reason)
                raise _Failed(reason)
            failed_host, exitcode = self._train(record, job_dir, hosts, cluster, stop, host_logs, started, max_runtime)
            ship_all()
            if failed_host is not None:
                failure_file = _host_dir(job_dir, failed_host) / "output" / "failure"
                reason = (
                    failure_file.read_text()
                    if failure_file.exists()
                    else f"AlgorithmError: the algorithm process exited with code {exitcode}"
                )
                if len(hosts) > 1:
                    kind, _, detail = reason.partition(": ")
                    reason = f"{kind}: Host {failed_host}: {detail}"
                raise _Failed(reason)
            training_end = now()
            self._transition(name, "Uploading")
            master = cluster["workers"][0] if cluster else "algo-1"
            artifact = self._upload(record, job_dir, _host_dir(job_dir, master))
            self._wait(emulator.config.scaled(NOMINAL_SECONDS["Uploading"]), stop)
            metrics = _final_metrics(record, logs.lines)
            self._finish_completed(name, record, artifact, metrics, training_end)
        except _Stopped as stopped:
            ship_all()
            if self._shutting_down.is_set():
                self._finish(
                    name,
                    "Failed",
                    "Failed",
                    failure=INTERRUPTED_REASON,
                )
            else:
                self._transition(name, "Stopping", primary="Stopping")
                self._finish(
                    name,
                    "Stopped",
                    stopped.secondary,
                    TrainingEndTime=now(),
                    **_times(emulator.store.get("training-job", name)),
                )
        except _Failed as failed:
            logs.add(str(failed))
            ship_all()
            self._finish(name, "Failed", "Failed", failure=str(failed), TrainingEndTime=now())
        except Exception as exc:  # a bug of ours must still end the job, not leave it InProgress forever
            log.exception("training job %s failed inside the emulator", name)
            self._finish(name, "Failed", "Failed", failure=f"InternalServerError: {exc}", TrainingEndTime=now())
        finally:
            shutil.rmtree(job_dir, ignore_errors=True)
            with self._lock:
                self._stop_events.pop(name, None)
                self._threads.pop(name, None)

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
        has_data = {host: set() for host in hosts}  # host -> channels that got a data file
        for channel in record["InputDataConfig"]:
            name = channel["ChannelName"]
            source = channel["DataSource"]["S3DataSource"]
            bucket, prefix = split_s3_uri(source["S3Uri"])
            target = job_dir / "input" / "data" / name
            sharded = source.get("S3DataDistributionType") == "ShardedByS3Key" and len(hosts) > 1
            for host in hosts:
                (_host_dir(job_dir, host) / "input" / "data" / name).mkdir(parents=True, exist_ok=True)
            mapped = sorted(_channel_files(name, source["S3Uri"], bucket, prefix, target, self.emulator.moto))
            for index, (key, path) in enumerate(mapped):
                body = self.emulator.moto.s3_get(bucket, key)
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
            resource = {
                "current_host": host,
                "current_instance_type": record["ResourceConfig"]["InstanceType"],
                "hosts": hosts,
                "network_interface_name": "eth0",
            }
            (config_dir / "resourceconfig.json").write_text(json.dumps(resource))
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
        host_logs: dict[str, _LogShipper],
        started: float,
        max_runtime: int,
    ) -> tuple[str | None, int]:
        """One worker process per host; returns (the first host that failed, its exit code) or (None, 0).
        A failure on any host stops the others, as SageMaker stops the whole cluster."""
        workers: dict[str, Any] = {}
        log_paths = {host: _host_dir(job_dir, host) / "output" / f"{host}.log" for host in hosts}
        offsets = dict.fromkeys(hosts, 0)
        for host in hosts:
            log_paths[host].touch()
            workers[host] = self._mp.Process(
                target=run_algorithm,
                args=(
                    record["_algorithm"],
                    str(_host_dir(job_dir, host)),
                    record.get("_algorithm_version"),
                    os.getpid(),
                    host,
                    cluster,
                ),
                daemon=True,
            )
            workers[host].start()
        try:
            while True:
                next(iter(workers.values())).join(0.02)
                for host in hosts:
                    offsets[host] = host_logs[host].read(log_paths[host], offsets[host])
                failed = next((h for h in hosts if workers[h].exitcode not in (None, 0)), None)
                if failed is not None:
                    return failed, workers[failed].exitcode
                if all(worker.exitcode == 0 for worker in workers.values()):
                    return None, 0
                if stop.is_set():
                    raise _Stopped("Stopped")
                if time.monotonic() - started > max_runtime:
                    raise _Stopped("MaxRuntimeExceeded")
                for shipper in host_logs.values():
                    shipper.ship_if_due()
        finally:
            for worker in workers.values():
                if worker.exitcode is None:
                    _terminate(worker)
            for host in hosts:
                host_logs[host].read(log_paths[host], offsets[host])

    def _upload(self, record: dict[str, Any], job_dir: Path, master_dir: Path) -> str:
        bucket, prefix = split_s3_uri(record["OutputDataConfig"]["S3OutputPath"])
        base = "/".join(p for p in (prefix.rstrip("/"), record["TrainingJobName"], "output") if p)
        self.emulator.moto.s3_put(bucket, f"{base}/model.tar.gz", _tar_gz(master_dir / "model"))
        output_data = master_dir / "output" / "data"
        if any(output_data.iterdir()):
            self.emulator.moto.s3_put(bucket, f"{base}/output.tar.gz", _tar_gz(output_data))
        return f"s3://{bucket}/{base}/model.tar.gz"

    def _finish_completed(
        self, name: str, record: dict[str, Any], artifact: str, metrics: list[dict[str, Any]], training_end: float
    ) -> None:
        current = self.emulator.store.get("training-job", name) or record
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


class _Failed(Exception):
    pass


def _hosts(record: dict[str, Any]) -> list[str]:
    """algo-1..N for a distributed XGBoost job; other algorithms train on algo-1 (a logged note says so)."""
    count = int(record["ResourceConfig"].get("InstanceCount", 1))
    if record["_algorithm"] != "xgboost":
        return ["algo-1"]
    return [f"algo-{i}" for i in range(1, count + 1)]


def _host_dir(job_dir: Path, host: str) -> Path:
    """The host's /opt/ml: the job directory itself for algo-1, hosts/<host> beside it for the others."""
    return job_dir if host == "algo-1" else job_dir / "hosts" / host


def _host_stream(record: dict[str, Any], host: str) -> str:
    """``<job>/algo-N-<epoch>``: one CloudWatch stream per host, as SageMaker names them."""
    return record["_log_stream"].replace("/algo-1-", f"/{host}-", 1)


def _channel_files(
    channel: str, uri: str, bucket: str, prefix: str, channel_dir: Path, moto: Any
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
                f"ClientError: The S3 object key {key!r} in channel {channel} ({uri}) names a path outside the "
                f"channel directory /opt/ml/input/data/{channel} ('..' above the prefix). Rename the object."
            ) from None
        if not inside(channel_dir, path):  # cannot happen after channel_file; checked so a bug cannot write out
            raise _Failed(f"ClientError: The S3 object key {key!r} in channel {channel} escapes the channel directory.")
        mapped.append((key, path))
    files: dict[Path, str] = {}  # file -> key
    directories: dict[Path, str] = {}  # directory some file needs -> the first key needing it
    for key, path in mapped:
        parents = [channel_dir / p for p in path.relative_to(channel_dir).parents]
        clash = files.get(path) or directories.get(path) or next((files[p] for p in parents if p in files), None)
        if clash is not None:
            raise _Failed(
                f"ClientError: The S3 objects {clash!r} and {key!r} in channel {channel} ({uri}) cannot both be "
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


def _terminate(worker: Any) -> None:
    # SIGTERM first, as SageMaker does, then kill what does not stop.
    worker.terminate()
    worker.join(2.0)
    if worker.is_alive():
        worker.kill()
        worker.join(1.0)


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


class _LogShipper:
    """Collects the worker's log lines and ships them to CloudWatch Logs in batches."""

    def __init__(self, emulator: Emulator, region: str, stream: str):
        self.emulator = emulator
        self.region = region
        self.stream = stream
        self.lines: list[str] = []
        self._pending: list[tuple[int, str]] = []
        self._last_ship = time.monotonic()
        self._partial = b""

    def add(self, line: str) -> None:
        self.lines.append(line)
        self._pending.append((int(time.time() * 1000), line))

    def read(self, path: Path, offset: int) -> int:
        with open(path, "rb") as fh:
            fh.seek(offset)
            chunk = fh.read()
        if not chunk:
            return offset
        data = self._partial + chunk
        *complete, self._partial = data.split(b"\n")
        for raw in complete:
            self.add(raw.decode("utf-8", "replace"))
        return offset + len(chunk)

    def ship_if_due(self) -> None:
        if self._pending and time.monotonic() - self._last_ship > 0.5:
            self.ship()

    def ship(self) -> None:
        if self._pending:
            batch, self._pending = self._pending, []
            self.emulator.moto.logs_put(self.region, LOG_GROUP, self.stream, batch)
        self._last_ship = time.monotonic()
