"""Batch-transform jobs: the runner (the operations are in ``transform_operations.py``, the per-instance work in
``transform_worker.py``).

A job's watcher thread (``jobs.JobRunner``):

1. waits the nominal start-up time (scaled), then takes an injected ``transform_failure`` fault if one matches;
2. downloads the model's ``model.tar.gz`` and extracts it (only plain files, inside the job directory);
3. lists the input (every object under the ``S3Prefix``, or the keys a ``ManifestFile`` names), and gives each
   instance its objects: key i of the sorted keys to instance i mod N, whole objects only (as for
   ``ShardedByS3Key``; AWS publishes no assignment function);
4. stages each instance's objects as numbered files (no key becomes a file name) and forks one worker per
   instance from the pool; each has its own CloudWatch stream ``<job>/<instance-id>-<epoch>``, and its
   per-record errors go to ``<job>/<instance-id>-<epoch>/data-log``;
5. uploads ``<S3OutputPath>/<key relative to the input prefix>.out`` for every object whose records all
   succeeded. The job ends Completed when all did, Failed naming the first object that did not (the others'
   outputs are still stored, as AWS does), Stopped with no output at all after StopTransformJob.

Output names: for an ``S3Prefix`` the part of the key after the prefix (a prefix ending in part of a name, e.g.
``in/data`` for ``in/data.csv``, counts from the last ``/``); for a ``ManifestFile`` the relative key listed.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import posixpath
import shutil
import tarfile
import threading
import time
from pathlib import Path
from typing import Any

from .aws import MissingObject
from .control_plane import now
from .jobs import Failed, JobKind, JobRunner, LogShipper, Stopped
from .transform_worker import run_transform
from .validation import split_s3_uri

log = logging.getLogger(__name__)

LOG_GROUP = "/aws/sagemaker/TransformJobs"
# Nominal seconds AWS spends provisioning the instances and starting the model container; times the time scale.
NOMINAL_STARTING_SECONDS = 120.0
INTERRUPTED_REASON = (
    "InternalServerError: The local SageMaker emulator stopped while this transform job was running. "
    "Start the job again under a new name."
)
MAX_REASON_CHARS = 1024
# A transform job has no MaxRuntimeInSeconds; this only keeps a runaway worker from holding its thread forever.
MAX_RUNTIME_SECONDS = 4 * 3600
TRANSFORM = JobKind(
    store_kind="transform-job",
    name_key="TransformJobName",
    status_key="TransformJobStatus",
    log_group=LOG_GROUP,
    jobs_dir="transform",
    interrupted_reason=INTERRUPTED_REASON,
)


def instance_id(job: str, index: int) -> str:
    return "i-" + hashlib.sha1(f"{job}/{index}".encode()).hexdigest()[:17]


def output_relative(key: str, prefix: str) -> str:
    """The name an input object's output keeps below S3OutputPath (without ``.out``)."""
    if prefix and not prefix.endswith("/") and key != prefix and not key.startswith(prefix + "/"):
        prefix = posixpath.dirname(prefix)  # a prefix ending inside a name: count from its folder
    relative = key[len(prefix) :].lstrip("/")
    return relative or posixpath.basename(key)


class TransformRunner(JobRunner):
    kind = TRANSFORM

    def _interrupted(self, name: str) -> None:
        self._finish(name, "Failed", failure=INTERRUPTED_REASON)

    def stop(self, name: str) -> None:
        self._update(name, TransformJobStatus="Stopping")
        self.signal_stop(name)

    def _update(self, name: str, **fields: Any) -> None:
        def change(record: dict[str, Any]) -> None:
            record.update(fields)
            record["LastModifiedTime"] = now()

        self.store.update("transform-job", name, change)

    def _finish(self, name: str, status: str, failure: str | None = None) -> None:
        fields: dict[str, Any] = {"TransformJobStatus": status, "TransformEndTime": now()}
        if failure:
            fields["FailureReason"] = failure[:MAX_REASON_CHARS]
        self._update(name, **fields)

    # -- one job ----------------------------------------------------------------------------------------------
    def _run(self, name: str, stop: threading.Event) -> None:
        record = self.store.get("transform-job", name)
        assert record is not None
        job_dir = self.jobs_root / name
        count = int(record["TransformResources"].get("InstanceCount", 1))
        streams = [f"{name}/{instance_id(name, i)}-{record['_epoch']}" for i in range(count)]
        logs = [LogShipper(self.moto, record["_region"], LOG_GROUP, stream) for stream in streams]
        data_logs = [LogShipper(self.moto, record["_region"], LOG_GROUP, f"{stream}/data-log") for stream in streams]

        def ship_all() -> None:
            for shipper in (*logs, *data_logs):
                shipper.ship()

        try:
            self.wait(self.config.scaled(NOMINAL_STARTING_SECONDS), stop)
            injected = self.faults.take("transform_failure", name=name)
            if injected is not None:
                reason = injected.get("reason") or "AlgorithmError: injected transform failure (emulator fault)"
                logs[0].add(reason)
                raise Failed(reason)
            objects = self._inputs(record)
            shutil.rmtree(job_dir, ignore_errors=True)
            model_dir = job_dir / "model"
            self._extract_model(record, model_dir)
            self._update(name, TransformStartTime=now())
            instances = self._stage(record, job_dir, model_dir, objects, count)
            workers = {}
            for index, instance_dir in enumerate(instances):
                log_path = instance_dir / "transform.log"
                log_path.touch()
                worker = self.pool.fork(run_transform, (str(instance_dir), os.getpid()))  # type: ignore[union-attr]
                workers[str(index)] = (worker, log_path, logs[index])
            failed, exitcode = self.supervise_all(workers, stop, time.monotonic(), MAX_RUNTIME_SECONDS)
            for shipper in logs:
                shipper.flush_partial()
            if failed is not None:
                failure_file = instances[int(failed)] / "failure"
                raise Failed(
                    failure_file.read_text()
                    if failure_file.exists()
                    else f"AlgorithmError: the transform worker exited with code {exitcode}"
                )
            if stop.is_set():
                raise Stopped("Stopped")
            first_error = self._upload(record, instances, data_logs)
            if first_error is not None:
                raise Failed(f"ClientError: See job logs for more information. {first_error}")
            ship_all()
            self._finish(name, "Completed")
        except Stopped:
            ship_all()
            if self._shutting_down.is_set():
                self._finish(name, "Failed", failure=INTERRUPTED_REASON)
            else:
                self._update(name, TransformJobStatus="Stopping")
                self._finish(name, "Stopped")
        except Failed as failed:
            logs[0].add(str(failed))
            ship_all()
            self._finish(name, "Failed", failure=str(failed))
        except Exception as exc:  # a bug of ours must still end the job, not leave it InProgress forever
            log.exception("transform job %s failed inside the emulator", name)
            ship_all()
            self._finish(name, "Failed", failure=f"InternalServerError: {exc}")

    def _inputs(self, record: dict[str, Any]) -> list[tuple[str, str, str]]:
        """(bucket, key, output name) of every input object, in key order."""
        source = record["TransformInput"]["DataSource"]["S3DataSource"]
        uri = source["S3Uri"]
        bucket, prefix = split_s3_uri(uri)
        if source["S3DataType"] == "ManifestFile":
            return self._manifest(uri, bucket, prefix)
        try:
            listed = self.moto.s3_list(bucket, prefix)
        except MissingObject:
            listed = []
        keys = sorted(key for key, _size in listed if not key.endswith("/"))
        if not keys:
            raise Failed(
                f'ClientError: No S3 objects found under S3 URL "{uri}" given in input data source. Please ensure '
                "that the bucket exists and that objects exist under that S3 prefix."
            )
        return [(bucket, key, output_relative(key, prefix)) for key in keys]

    def _manifest(self, uri: str, bucket: str, key: str) -> list[tuple[str, str, str]]:
        """A manifest: ``[{"prefix": "s3://bucket/prefix/"}, "relative/key", ...]``."""
        try:
            manifest = json.loads(self.moto.s3_get(bucket, key))
        except MissingObject:
            raise Failed(f"ClientError: The manifest file {uri} does not exist.") from None
        except ValueError as exc:
            raise Failed(f"ClientError: The manifest file {uri} is not JSON: {exc}") from None
        if (
            not isinstance(manifest, list)
            or not manifest
            or not isinstance(manifest[0], dict)
            or not isinstance(manifest[0].get("prefix"), str)
            or not all(isinstance(item, str) and item for item in manifest[1:])
        ):
            raise Failed(
                f'ClientError: The manifest file {uri} must be a JSON array: [{{"prefix": "s3://bucket/prefix/"}}, '
                '"relative/key", ...].'
            )
        base_bucket, base = split_s3_uri(manifest[0]["prefix"], f"the prefix of manifest {uri}")
        if not manifest[1:]:
            raise Failed(f"ClientError: The manifest file {uri} lists no objects.")
        return [(base_bucket, base + relative, relative) for relative in manifest[1:]]

    def _extract_model(self, record: dict[str, Any], model_dir: Path) -> None:
        from .serving.runtime import _within_space

        url = record["_container"]["ModelDataUrl"]
        try:
            bucket, key = split_s3_uri(url, "ModelDataUrl")
            raw = self.moto.s3_get(bucket, key)
        except MissingObject:
            raise Failed(
                f'ClientError: Failed to download model data from URL: "{url}". Please ensure that there is an '
                "object located at the URL and that the role passed to CreateModel has permissions to download it."
            ) from None
        model_dir.mkdir(parents=True)
        try:
            with tarfile.open(fileobj=io.BytesIO(raw), mode="r:*") as tar:
                tar.extractall(model_dir, filter=_within_space(str(model_dir)))
        except (tarfile.TarError, OSError, EOFError, ValueError) as exc:
            raise Failed(
                f"ClientError: The model data at {url} is not a readable model.tar.gz archive ({exc})."
            ) from None

    def _stage(
        self, record: dict[str, Any], job_dir: Path, model_dir: Path, objects: list[tuple[str, str, str]], count: int
    ) -> list[Path]:
        """Each instance's directory: its objects as input/<n>, output/, a link to the model, plan.json."""
        transform_input, output = record["TransformInput"], record["TransformOutput"]
        processing = record.get("DataProcessing") or {}
        container = record["_container"]
        environment = {"SAGEMAKER_BATCH": "true", **(container.get("Environment") or {})}
        for member, variable in (
            ("MaxPayloadInMB", "SAGEMAKER_MAX_PAYLOAD_IN_MB"),
            ("MaxConcurrentTransforms", "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS"),
        ):
            if record.get(member) is not None:
                environment[variable] = str(record[member])
        if record.get("BatchStrategy"):
            environment["SAGEMAKER_BATCH_STRATEGY"] = (
                "SINGLE_RECORD" if record["BatchStrategy"] == "SingleRecord" else "MULTI_RECORD"
            )
        environment.update(record.get("Environment") or {})
        staged = self._stage_code(container, job_dir)
        instances = []
        for index in range(count):
            instance_dir = job_dir / f"instance-{index + 1}"
            (instance_dir / "input").mkdir(parents=True)
            (instance_dir / "output").mkdir()
            (instance_dir / "model").symlink_to(model_dir, target_is_directory=True)
            mine = []
            for number, (bucket, key, relative) in enumerate(objects):
                if number % count != index:
                    continue
                try:
                    data = self.moto.s3_get(bucket, key)
                except MissingObject:
                    raise Failed(f"ClientError: The input object s3://{bucket}/{key} does not exist.") from None
                (instance_dir / "input" / str(number)).write_bytes(data)
                mine.append({"index": number, "uri": f"s3://{bucket}/{key}", "relative": relative})
            plan = {
                "model_record": {"ModelName": record["ModelName"], "PrimaryContainer": container},
                "content_type": transform_input.get("ContentType"),
                "accept": output.get("Accept"),
                "split": transform_input["SplitType"],
                "compression": transform_input["CompressionType"],
                "strategy": record.get("BatchStrategy"),
                "max_payload_mb": record.get("MaxPayloadInMB"),
                "concurrency": record.get("MaxConcurrentTransforms") or None,
                "assemble": output["AssembleWith"],
                "input_filter": processing.get("InputFilter", "$"),
                "output_filter": processing.get("OutputFilter", "$"),
                "join": processing.get("JoinSource") == "Input",
                "environment": environment,
                "objects": mine,
                "region": record["_region"],
                "staged": {uri: f"../{name}" for uri, name in staged.items()},
            }
            (instance_dir / "plan.json").write_text(json.dumps(plan))
            instances.append(instance_dir)
        return instances

    def _stage_code(self, container: dict[str, Any], job_dir: Path) -> dict[str, str]:
        """A script-mode model's code (SAGEMAKER_SUBMIT_DIRECTORY in S3), for the worker, which has no S3."""
        uri = (container.get("Environment") or {}).get("SAGEMAKER_SUBMIT_DIRECTORY", "")
        if not uri.startswith(("s3://", "https://")):
            return {}
        try:
            bucket, key = split_s3_uri(uri, "SAGEMAKER_SUBMIT_DIRECTORY")
            (job_dir / "sourcedir.tar.gz").write_bytes(self.moto.s3_get(bucket, key))
        except MissingObject:
            raise Failed(f"ClientError: The model's SAGEMAKER_SUBMIT_DIRECTORY {uri} does not exist.") from None
        return {f"s3://{bucket}/{key}": "sourcedir.tar.gz"}

    def _upload(self, record: dict[str, Any], instances: list[Path], data_logs: list[LogShipper]) -> str | None:
        """Store every fully transformed object's output; the first failure (object and error), if any."""
        bucket, prefix = split_s3_uri(record["TransformOutput"]["S3OutputPath"])
        failures: list[tuple[int, str]] = []
        for instance_dir, data_log in zip(instances, data_logs, strict=True):
            results = json.loads((instance_dir / "results.json").read_text())
            data_log.read(instance_dir / "data.log", 0)
            data_log.flush_partial()
            for item in json.loads((instance_dir / "plan.json").read_text())["objects"]:
                outcome = results.get(str(item["index"]), {"error": "the worker did not transform it"})
                if "error" in outcome:
                    failures.append((item["index"], f"{item['uri']}: {outcome['error']}"))
                    continue
                key = "/".join(p for p in (prefix.rstrip("/"), item["relative"] + ".out") if p)
                self.moto.s3_put(bucket, key, (instance_dir / "output" / f"{item['index']}.out").read_bytes())
        if not failures:
            return None
        failures.sort()
        others = f" ({len(failures) - 1} more objects failed)" if len(failures) > 1 else ""
        return f"Failed to transform {failures[0][1]}{others}"
