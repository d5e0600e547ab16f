"""The chaos suite's workload and its ledger of acknowledged writes.

Client threads mix S3 puts and deletes, CloudWatch Logs events, training jobs, endpoint updates (after
which the superseded config, model and artifact are deleted, as AWS allows under a serving endpoint) and
invocations, until the emulator dies under them. Only a write the emulator answered 2xx enters the ledger;
one cut off by the kill is uncertain and checked by nobody. After the restart, ``check`` holds the
emulator to the ledger.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.emulator.serving_helpers import XGB_IMAGE, csv_row, housing_like

BUCKET = "chaos"
ROLE = "arn:aws:iam::123456789012:role/SageMakerExecution"
LOG_GROUP = "/chaos/acknowledged"
ENDPOINTS = ("chaos-a", "chaos-b")
ROW = csv_row(housing_like(1, seed=4)[0][0])
TRAINING_HYPERPARAMETERS = {"max_depth": "3", "eta": "0.3", "objective": "reg:squarederror", "num_round": "5"}
SETTLED = ("InService", "Failed", "OutOfService")
# No retries: a request cut off by a kill must fail, not be resent to the restarted emulator.
CLIENT_CONFIG = Config(retries={"total_max_attempts": 1}, connect_timeout=2, read_timeout=30)


def clients(url: str) -> dict[str, Any]:
    kw = {"endpoint_url": url, "region_name": "us-east-1", "config": CLIENT_CONFIG}
    return {name: boto3.client(name, **kw) for name in ("s3", "sagemaker", "sagemaker-runtime", "logs")}


@dataclass
class Ledger:
    """What the emulator acknowledged, as it must be found after any restart."""

    objects: dict[str, bytes] = field(default_factory=dict)  # S3 key -> bytes
    deleted_objects: set[str] = field(default_factory=set)
    verified: set[str] = field(default_factory=set)  # keys read back in full once
    log_events: dict[str, str] = field(default_factory=dict)  # message -> stream
    jobs: set[str] = field(default_factory=set)
    models: dict[str, bool] = field(default_factory=dict)  # name -> exists
    configs: dict[str, bool] = field(default_factory=dict)
    # endpoint -> the configs it may serve once settled (two while an update's answer was cut off)
    endpoint_configs: dict[str, set[str]] = field(default_factory=dict)
    acknowledged: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ack(self, change: Any) -> None:
        with self.lock:
            change()
            self.acknowledged += 1


@dataclass
class Deployable:
    """One deployable model: its archive's S3 key (deletable unless a training job wrote it)."""

    model: str
    config: str
    key: str
    owned_artifact: bool


class Workload:
    def __init__(
        self,
        url: str,
        ledger: Ledger,
        rng: random.Random,
        archives: list[bytes],
        channels: dict[str, str],
        deployables: dict[str, Deployable],
    ):
        self.deployables = deployables  # config name -> what it deploys, across rounds
        self.c = clients(url)
        self.ledger = ledger
        self.rng = random.Random(rng.random())
        self.archives = archives
        self.channels = channels
        self.stop = threading.Event()
        self.dying = threading.Event()  # set just before the kill: later failures are the kill's
        self.failures: list[str] = []
        self.invocations = 0
        # What the kill may catch mid-way: an endpoint update, a training job.
        self.updating: str | None = None
        self.training: str | None = None
        self._threads: list[threading.Thread] = []
        # endpoint -> what it serves now (known to this workload), for the forget-after-update step
        self.serving: dict[str, Deployable] = {}

    # -- running ------------------------------------------------------------------------------------------------
    def start(self, serving: dict[str, Deployable]) -> None:
        self.serving = dict(serving)
        for target in (self._writer, self._trainer, self._deployer, self._invoker):
            thread = threading.Thread(target=self._guard, args=(target,), name=target.__name__, daemon=True)
            self._threads.append(thread)
            thread.start()

    def finish(self) -> dict[str, Deployable]:
        self.stop.set()
        for thread in self._threads:
            thread.join(60)
        return self.serving

    def _guard(self, target: Any) -> None:
        try:
            target()
        except Exception as exc:  # after the kill every request fails; before it, that is a finding
            if not self.dying.is_set():
                self.failures.append(f"{target.__name__}: {exc!r}")

    def _pause(self, low: float, high: float) -> None:
        self.stop.wait(self.rng.uniform(low, high))

    # -- the client threads ---------------------------------------------------------------------------------------
    def _writer(self) -> None:
        s3, logs = self.c["s3"], self.c["logs"]
        stream = f"writer-{uuid.uuid4().hex[:8]}"
        logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=stream)
        while not self.stop.is_set():
            roll = self.rng.random()
            if roll < 0.7:
                key = f"objects/{uuid.uuid4().hex}"
                body = self.rng.randbytes(self.rng.randint(1, 1024))
                s3.put_object(Bucket=BUCKET, Key=key, Body=body)
                self.ledger.ack(lambda key=key, body=body: self.ledger.objects.__setitem__(key, body))
            elif roll < 0.85 and (own := [k for k in list(self.ledger.objects) if k.startswith("objects/")]):
                with self.ledger.lock:
                    key = self.rng.choice(sorted(own))
                    self.ledger.objects.pop(key, None)  # uncertain until acknowledged
                s3.delete_object(Bucket=BUCKET, Key=key)
                self.ledger.ack(lambda key=key: self.ledger.deleted_objects.add(key))
            else:
                message = f"acknowledged {uuid.uuid4().hex}"
                logs.put_log_events(
                    logGroupName=LOG_GROUP,
                    logStreamName=stream,
                    logEvents=[{"timestamp": int(time.time() * 1000), "message": message}],
                )
                self.ledger.ack(lambda m=message: self.ledger.log_events.__setitem__(m, stream))
            self._pause(0.0, 0.02)

    def _trainer(self) -> None:
        sm = self.c["sagemaker"]
        while not self.stop.is_set():
            name = f"chaos-job-{uuid.uuid4().hex[:10]}"
            sm.create_training_job(
                TrainingJobName=name,
                AlgorithmSpecification={"TrainingImage": XGB_IMAGE, "TrainingInputMode": "File"},
                RoleArn=ROLE,
                InputDataConfig=[
                    {
                        "ChannelName": channel,
                        "ContentType": "text/csv",
                        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri}},
                    }
                    for channel, uri in self.channels.items()
                ],
                OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/jobs"},
                ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
                StoppingCondition={"MaxRuntimeInSeconds": 600},
                HyperParameters=TRAINING_HYPERPARAMETERS,
            )
            self.ledger.ack(lambda name=name: self.ledger.jobs.add(name))
            self.training = name
            while not self.stop.is_set():
                status = sm.describe_training_job(TrainingJobName=name)["TrainingJobStatus"]
                if status not in ("InProgress", "Stopping"):
                    self.training = None
                    break
                self._pause(0.05, 0.1)

    def _deployer(self) -> None:
        sm, s3 = self.c["sagemaker"], self.c["s3"]
        while not self.stop.is_set():
            endpoint = self.rng.choice(ENDPOINTS)
            if sm.describe_endpoint(EndpointName=endpoint)["EndpointStatus"] != "InService":
                self._pause(0.05, 0.1)
                continue
            new = self._new_deployable(sm, s3)
            old_configs = self.ledger.endpoint_configs[endpoint]
            with self.ledger.lock:
                self.ledger.endpoint_configs[endpoint] = old_configs | {new.config}  # uncertain
            self.updating = endpoint
            sm.update_endpoint(EndpointName=endpoint, EndpointConfigName=new.config)
            self.ledger.ack(lambda e=endpoint, n=new: self.ledger.endpoint_configs.__setitem__(e, {n.config}))
            while True:
                described = sm.describe_endpoint(EndpointName=endpoint)
                if described["EndpointStatus"] in SETTLED:
                    break
                if self.stop.wait(0.05):
                    return
            self.updating = None
            if described["EndpointStatus"] != "InService" or described["EndpointConfigName"] != new.config:
                raise AssertionError(f"update of {endpoint} to {new.config} ended {described}")
            old, self.serving[endpoint] = self.serving[endpoint], new
            self._forget(sm, s3, old)
            self._pause(0.05, 0.2)

    def _new_deployable(self, sm: Any, s3: Any) -> Deployable:
        """A model and config from a finished job's artifact or from a fresh upload of a prepared archive."""
        name = f"chaos-{uuid.uuid4().hex[:10]}"
        artifact = self._completed_artifact(sm)
        if artifact is not None and self.rng.random() < 0.5:
            key, owned = artifact, False
        else:
            key, owned = f"artifacts/{name}/model.tar.gz", True
            body = self.rng.choice(self.archives)
            s3.put_object(Bucket=BUCKET, Key=key, Body=body)
            self.ledger.ack(lambda: self.ledger.objects.__setitem__(key, body))
        sm.create_model(
            ModelName=name,
            ExecutionRoleArn=ROLE,
            PrimaryContainer={"Image": XGB_IMAGE, "ModelDataUrl": f"s3://{BUCKET}/{key}"},
        )
        self.ledger.ack(lambda: self.ledger.models.__setitem__(name, True))
        sm.create_endpoint_config(
            EndpointConfigName=name,
            ProductionVariants=[
                {
                    "VariantName": "AllTraffic",
                    "ModelName": name,
                    "InitialInstanceCount": 1,
                    "InstanceType": "ml.m5.large",
                }
            ],
        )
        self.ledger.ack(lambda: self.ledger.configs.__setitem__(name, True))
        deployable = Deployable(name, name, key, owned)
        self.deployables[name] = deployable
        return deployable

    def _completed_artifact(self, sm: Any) -> str | None:
        with self.ledger.lock:
            jobs = sorted(self.ledger.jobs)
        for name in self.rng.sample(jobs, min(3, len(jobs))):
            job = sm.describe_training_job(TrainingJobName=name)
            if job["TrainingJobStatus"] == "Completed":
                return job["ModelArtifacts"]["S3ModelArtifacts"].split("/", 3)[3]
        return None

    def _forget(self, sm: Any, s3: Any, old: Deployable) -> None:
        """Delete what the endpoint was deployed from: it must serve on regardless, restarts included."""
        for ledger, delete in (
            (self.ledger.configs, lambda: sm.delete_endpoint_config(EndpointConfigName=old.config)),
            (self.ledger.models, lambda: sm.delete_model(ModelName=old.model)),
        ):
            with self.ledger.lock:
                ledger.pop(old.model, None)  # uncertain until acknowledged
            delete()
            self.ledger.ack(lambda ledger=ledger: ledger.__setitem__(old.model, False))
        if old.owned_artifact:
            with self.ledger.lock:
                self.ledger.objects.pop(old.key, None)
            s3.delete_object(Bucket=BUCKET, Key=old.key)
            self.ledger.ack(lambda: self.ledger.deleted_objects.add(old.key))

    def _invoker(self) -> None:
        runtime = self.c["sagemaker-runtime"]
        while not self.stop.is_set():
            for endpoint in ENDPOINTS:
                answer = runtime.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=ROW)
                float(answer["Body"].read())
                self.invocations += 1
            self._pause(0.0, 0.01)


# -- after a restart --------------------------------------------------------------------------------------------
@dataclass
class Findings:
    lost: list[str] = field(default_factory=list)
    dangling: list[str] = field(default_factory=list)
    not_serving: list[str] = field(default_factory=list)


def _exists(call: Any, *args: Any, **kwargs: Any) -> bool:
    try:
        call(*args, **kwargs)
    except ClientError as err:
        code = err.response["Error"]["Code"]
        if code in ("NoSuchKey", "404", "ValidationException", "ResourceNotFound", "ResourceNotFoundException"):
            return False
        raise
    return True


def check(url: str, ledger: Ledger, settle_timeout: float = 60.0) -> Findings:
    """Hold the restarted emulator to the ledger: every acknowledged write back, no record pointing at
    something missing, every endpoint serving real predictions."""
    c = clients(url)
    s3, sm, runtime, logs = c["s3"], c["sagemaker"], c["sagemaker-runtime"], c["logs"]
    found = Findings()
    # One listing holds every object's ETag (the MD5 of its bytes); what was written since the last check
    # is also read back in full.
    etags = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        etags.update({o["Key"]: o["ETag"].strip('"') for o in page.get("Contents", [])})
    for key, body in sorted(ledger.objects.items()):
        if key not in etags:
            found.lost.append(f"s3://{BUCKET}/{key} (missing)")
        elif etags[key] != hashlib.md5(body).hexdigest() or (
            key not in ledger.verified and s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() != body
        ):
            found.lost.append(f"s3://{BUCKET}/{key} (different bytes)")
        else:
            ledger.verified.add(key)
            continue
        ledger.objects.pop(key)  # each loss counts once
    for key in sorted(ledger.deleted_objects - set(ledger.objects)):
        if _exists(s3.head_object, Bucket=BUCKET, Key=key):
            found.lost.append(f"delete of s3://{BUCKET}/{key} (the object is back)")
            ledger.deleted_objects.discard(key)
    streams: dict[str, set[str]] = {}
    for stream in set(ledger.log_events.values()):
        try:
            events = logs.get_log_events(logGroupName=LOG_GROUP, logStreamName=stream, startFromHead=True)["events"]
        except ClientError:
            events = []
        streams[stream] = {e["message"] for e in events}
    for message, stream in list(ledger.log_events.items()):
        if message not in streams[stream]:
            found.lost.append(f"log event {message!r} in {stream}")
            ledger.log_events.pop(message)
    for kind, names, describe in (
        ("model", ledger.models, lambda n: sm.describe_model(ModelName=n)),
        ("endpoint config", ledger.configs, lambda n: sm.describe_endpoint_config(EndpointConfigName=n)),
    ):
        for name, should_exist in sorted(names.items()):
            if _exists(describe, name) != should_exist:
                found.lost.append(f"{kind} {name} ({'missing' if should_exist else 'deleted, but back'})")
                names.pop(name)
    for name in sorted(ledger.jobs):
        try:
            job = sm.describe_training_job(TrainingJobName=name)
        except ClientError:
            found.lost.append(f"training job {name}")
            ledger.jobs.discard(name)
            continue
        status = job["TrainingJobStatus"]
        if status == "Completed":
            artifact = job["ModelArtifacts"]["S3ModelArtifacts"]
            bucket, key = artifact[len("s3://") :].split("/", 1)
            if not _exists(s3.head_object, Bucket=bucket, Key=key):
                found.dangling.append(f"training job {name} is Completed but {artifact} does not exist")
                ledger.jobs.discard(name)
        elif status == "Failed":
            if not job.get("FailureReason"):
                found.dangling.append(f"training job {name} is Failed without a FailureReason")
        elif status != "Stopped":
            found.dangling.append(f"training job {name} is {status} right after a restart")
    deadline = time.monotonic() + settle_timeout
    for endpoint, allowed in sorted(ledger.endpoint_configs.items()):
        while True:
            described = sm.describe_endpoint(EndpointName=endpoint)
            if described["EndpointStatus"] in SETTLED or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        if described["EndpointStatus"] != "InService":
            found.not_serving.append(f"{endpoint} is {described['EndpointStatus']}: {described.get('FailureReason')}")
            continue
        if described["EndpointConfigName"] not in allowed:
            found.lost.append(f"update of {endpoint}: serves {described['EndpointConfigName']}, not one of {allowed}")
        with ledger.lock:  # settle what the answer that was cut off left open
            ledger.endpoint_configs[endpoint] = {described["EndpointConfigName"]}
        try:
            answer = runtime.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=ROW)
            float(answer["Body"].read())
        except (ClientError, ValueError) as exc:
            found.not_serving.append(f"{endpoint}: {exc}")
    return found


def private_copies(data: Path, timeout: float = 3.0) -> tuple[list[str], list[str]]:
    """(copies no endpoint record refers to, referred copies that are missing) in the emulator's data dir.
    Retried briefly: a finishing deployment records its new copies a moment before reclaiming the old."""
    deadline = time.monotonic() + timeout
    while True:
        referenced = set()
        for path in (data / "sagemaker" / "endpoint").glob("*.json"):
            record = json.loads(path.read_text())
            specs = [
                *(record.get("_deployed") or []),
                *(record.get("_deploying") or []),
                *((record.get("_pending") or {}).get("Variants") or []),
            ]
            referenced.update(spec["Artifact"] for spec in specs if spec.get("Artifact"))
        folder = data / "serving" / "artifacts"
        kept = {p.name.removesuffix(".tar.gz") for p in folder.iterdir()} if folder.exists() else set()
        unused, missing = sorted(kept - referenced), sorted(referenced - kept)
        if not (unused or missing) or time.monotonic() > deadline:
            return unused, missing
        time.sleep(0.1)
