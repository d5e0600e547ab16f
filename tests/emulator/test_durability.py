"""Nothing acknowledged is lost: writes answered 2xx survive a kill -9 one instant after the answer, and
damaged files (torn journal tail, corrupt or tampered snapshot, torn Store JSON, leftover tmp files) are
set aside, shown in health, and never stop a start."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import json
import os
import pickle
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from include.sagemaker_emulator.process import EmulatorProcess

REGION = "us-east-1"
BUCKET = "durable-bucket"
VERSIONED = "durable-versions"
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
ROLE = "arn:aws:iam::123456789012:role/SageMakerExecution"
LOG_GROUP = "/durability/test"
PART = 5 * 2**20  # S3's minimum size of a multipart part that is not the last


def clients(emu: EmulatorProcess) -> dict:
    return {
        s: boto3.client(s, endpoint_url=emu.url, region_name=REGION)
        for s in ("s3", "logs", "cloudwatch", "sagemaker", "iam")
    }


def kill_9(emu: EmulatorProcess) -> None:
    """SIGKILL: no shutdown hook, no final snapshot; only what reached the OS survives."""
    assert emu.proc is not None
    emu.proc.kill()
    emu.proc.wait()
    emu.stop()


@contextlib.contextmanager
def running(data_dir: Path, *args: str) -> Iterator[EmulatorProcess]:
    emu = EmulatorProcess(data_dir, extra_args=list(args), log_path=data_dir.parent / "emulator.log").start()
    try:
        yield emu
    finally:
        emu.stop()


class Ledger:
    """What the client was told succeeded, to compare with what a restarted emulator holds."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.deleted: set[str] = set()
        self.log_messages: list[str] = []
        self.metric_counts: dict[str, int] = {}
        self.alarms: set[str] = set()
        self.models: set[str] = set()
        self.deleted_models: set[str] = set()
        self.versions: list[str] = []
        self.object_tags: dict[str, str] = {}
        self.roles: set[str] = set()
        self.acknowledged = 0

    def put(self, key: str, body: bytes) -> None:
        self.objects[key] = body
        self.deleted.discard(key)
        self.acknowledged += 1

    def delete(self, key: str) -> None:
        self.objects.pop(key, None)
        self.deleted.add(key)
        self.acknowledged += 1


def write_each_kind(c: dict, ledger: Ledger, round_no: int, i: int) -> list:
    """One acknowledged write of each kind, as callables, so each round can end on a different kind."""
    s3, logs, cw, sm = c["s3"], c["logs"], c["cloudwatch"], c["sagemaker"]
    tag = f"r{round_no}-{i}"

    def put() -> None:
        body = f"object {tag} ".encode() * 50
        s3.put_object(Bucket=BUCKET, Key=f"put/{tag}.txt", Body=body, Metadata={"round": str(round_no)})
        ledger.put(f"put/{tag}.txt", body)

    def copy() -> None:
        source = f"put/{tag}.txt"
        if source not in ledger.objects:
            put()
        s3.copy_object(Bucket=BUCKET, Key=f"copy/{tag}.txt", CopySource={"Bucket": BUCKET, "Key": source})
        ledger.put(f"copy/{tag}.txt", ledger.objects[source])

    def delete() -> None:
        s3.put_object(Bucket=BUCKET, Key=f"del/{tag}", Body=b"short-lived")
        ledger.put(f"del/{tag}", b"short-lived")
        s3.delete_object(Bucket=BUCKET, Key=f"del/{tag}")
        ledger.delete(f"del/{tag}")

    def delete_objects() -> None:
        keys = [f"batch/{tag}/{n}" for n in range(3)]
        for key in keys:
            s3.put_object(Bucket=BUCKET, Key=key, Body=key.encode())
            ledger.put(key, key.encode())
        answer = s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": k} for k in keys[:2]], "Quiet": True})
        assert not answer.get("Errors")
        for key in keys[:2]:
            ledger.delete(key)

    def conditional() -> None:
        key = f"cond/{tag}"
        first = s3.put_object(Bucket=BUCKET, Key=key, Body=b"first", IfNoneMatch="*")
        ledger.put(key, b"first")
        with pytest.raises(ClientError) as refused:
            s3.put_object(Bucket=BUCKET, Key=key, Body=b"must not win", IfNoneMatch="*")
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"second", IfMatch=first["ETag"])
        ledger.put(key, b"second")

    def logs_write() -> None:
        message = f"log line {tag}"
        logs.put_log_events(
            logGroupName=LOG_GROUP,
            logStreamName="stream",
            logEvents=[{"timestamp": int(time.time() * 1000), "message": message}],
        )
        ledger.log_messages.append(message)
        ledger.acknowledged += 1

    def metric() -> None:
        cw.put_metric_data(
            Namespace="Durability",
            MetricData=[
                {"MetricName": "Writes", "Value": 1.0, "Dimensions": [{"Name": "Round", "Value": str(round_no)}]}
            ],
        )
        ledger.metric_counts[str(round_no)] = ledger.metric_counts.get(str(round_no), 0) + 1
        ledger.acknowledged += 1

    def alarm() -> None:
        name = f"alarm-{tag}"
        cw.put_metric_alarm(
            AlarmName=name,
            MetricName="Writes",
            Namespace="Durability",
            Statistic="Sum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=100,
            ComparisonOperator="GreaterThanThreshold",
        )
        ledger.alarms.add(name)
        ledger.acknowledged += 1

    def control_plane() -> None:
        name = f"durable-model-{tag}"
        sm.create_model(
            ModelName=name,
            PrimaryContainer={"Image": IMAGE, "ModelDataUrl": f"s3://{BUCKET}/put/{tag}.txt"},
            ExecutionRoleArn=ROLE,
        )
        sm.add_tags(ResourceArn=sm.describe_model(ModelName=name)["ModelArn"], Tags=[{"Key": "round", "Value": tag}])
        ledger.models.add(name)
        ledger.acknowledged += 2
        if i % 2:  # and a deletion, which must stay deleted
            sm.delete_model(ModelName=name)
            ledger.models.discard(name)
            ledger.deleted_models.add(name)
            ledger.acknowledged += 1

    return [put, copy, delete, delete_objects, conditional, logs_write, metric, alarm, control_plane]


def multipart(s3, ledger: Ledger, round_no: int) -> None:
    key = f"multipart/r{round_no}"
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
    parts = [b"a" * PART, f"tail {round_no}".encode()]
    etags = [
        s3.upload_part(Bucket=BUCKET, Key=key, UploadId=upload, PartNumber=n, Body=body)["ETag"]
        for n, body in enumerate(parts, 1)
    ]
    s3.complete_multipart_upload(
        Bucket=BUCKET,
        Key=key,
        UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in enumerate(etags, 1)]},
    )
    ledger.put(key, b"".join(parts))


def versions_tags_and_iam(c: dict, ledger: Ledger, round_no: int) -> None:
    """Object versions (ids must come back as they were), object tagging, an IAM role."""
    s3 = c["s3"]
    for n in range(2):
        answer = s3.put_object(Bucket=VERSIONED, Key="doc", Body=f"r{round_no} v{n}".encode())
        ledger.versions.append(answer["VersionId"])
    key = f"tagged/r{round_no}"
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"tag me")
    ledger.put(key, b"tag me")
    s3.put_object_tagging(Bucket=BUCKET, Key=key, Tagging={"TagSet": [{"Key": "round", "Value": str(round_no)}]})
    ledger.object_tags[key] = str(round_no)
    role = f"durable-role-{round_no}"
    c["iam"].create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}))
    ledger.roles.add(role)
    ledger.acknowledged += 5


def check_everything_is_back(c: dict, ledger: Ledger) -> None:
    s3, logs, cw, sm = c["s3"], c["logs"], c["cloudwatch"], c["sagemaker"]
    paginator = s3.get_paginator("list_objects_v2")
    listed = {o["Key"] for page in paginator.paginate(Bucket=BUCKET) for o in page.get("Contents", [])}
    missing = sorted(set(ledger.objects) - listed)
    assert not missing, f"{len(missing)} acknowledged objects lost, e.g. {missing[:5]}"
    resurrected = sorted(ledger.deleted & listed)
    assert not resurrected, f"deleted objects came back: {resurrected[:5]}"
    for key, body in ledger.objects.items():
        assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == body, key

    events = logs.get_log_events(logGroupName=LOG_GROUP, logStreamName="stream", startFromHead=True)["events"]
    assert [e["message"] for e in events] == ledger.log_messages

    now = dt.datetime.now(dt.UTC)
    for round_no, count in ledger.metric_counts.items():
        stats = cw.get_metric_statistics(
            Namespace="Durability",
            MetricName="Writes",
            Dimensions=[{"Name": "Round", "Value": round_no}],
            StartTime=now - dt.timedelta(hours=1),
            EndTime=now + dt.timedelta(hours=1),
            Period=3600,
            Statistics=["SampleCount"],
        )["Datapoints"]
        assert sum(p["SampleCount"] for p in stats) == count, f"round {round_no}"
    alarms = {a["AlarmName"] for a in cw.describe_alarms(AlarmNamePrefix="alarm-")["MetricAlarms"]}
    assert ledger.alarms <= alarms

    versions = c["s3"].list_object_versions(Bucket=VERSIONED, Prefix="doc")["Versions"]
    assert sorted(v["VersionId"] for v in versions) == sorted(ledger.versions)
    for key, value in ledger.object_tags.items():
        assert s3.get_object_tagging(Bucket=BUCKET, Key=key)["TagSet"] == [{"Key": "round", "Value": value}]
    roles = {r["RoleName"] for r in c["iam"].list_roles()["Roles"]}
    assert ledger.roles <= roles

    models = {m["ModelName"] for m in sm.list_models(MaxResults=100, NameContains="durable-model")["Models"]}
    assert ledger.models <= models and not (ledger.deleted_models & models)
    for name in ledger.models:
        arn = sm.describe_model(ModelName=name)["ModelArn"]
        assert sm.list_tags(ResourceArn=arn)["Tags"][0]["Key"] == "round"


def test_acknowledged_writes_survive_kill_9_round_after_round(tmp_path):
    data_dir = tmp_path / "data"
    ledger = Ledger()
    rounds, writes_per_kind = 3, 4
    for round_no in range(rounds):
        with running(data_dir) as emu:
            c = clients(emu)
            if round_no == 0:
                c["s3"].create_bucket(Bucket=BUCKET)
                c["s3"].create_bucket(Bucket=VERSIONED)
                c["s3"].put_bucket_versioning(Bucket=VERSIONED, VersioningConfiguration={"Status": "Enabled"})
                c["logs"].create_log_group(logGroupName=LOG_GROUP)
                c["logs"].create_log_stream(logGroupName=LOG_GROUP, logStreamName="stream")
            else:
                check_everything_is_back(c, ledger)
            multipart(c["s3"], ledger, round_no)
            versions_tags_and_iam(c, ledger, round_no)
            for i in range(writes_per_kind):
                writes = write_each_kind(c, ledger, round_no, i)
                # Each round ends on a different kind, killed the instant its answer arrived.
                shift = (round_no * 3) % len(writes)
                for write in writes[shift:] + writes[:shift]:
                    write()
            kill_9(emu)
    with running(data_dir) as emu:
        c = clients(emu)
        check_everything_is_back(c, ledger)
        health = emu.health()
    assert health["quarantined"] == []
    assert health["durability"]["records_not_replayable"] == 0
    assert ledger.acknowledged > 150


def test_writes_racing_snapshots_are_neither_lost_nor_doubled(tmp_path):
    """A tiny compaction threshold makes snapshots and journal switches happen while 8 writers put objects
    and log events (in fsync mode: group commits cross the switches too); after kill -9 every object is
    there and every log event exactly once."""
    data_dir = tmp_path / "data"
    with running(data_dir, "--journal-compact-bytes", "20000", "--durability", "fsync") as emu:
        c = clients(emu)
        c["s3"].create_bucket(Bucket=BUCKET)
        c["logs"].create_log_group(logGroupName=LOG_GROUP)
        c["logs"].create_log_stream(logGroupName=LOG_GROUP, logStreamName="stream")
        errors: list[BaseException] = []
        written: list[str] = []
        crossed = threading.Event()  # set once the writes have spanned two snapshots

        def writer(n: int) -> None:
            own = clients(emu)
            try:
                # At least 40 each, and on until two snapshots were taken (bounded), whatever the speed.
                for i in range(400):
                    if i >= 40 and crossed.is_set():
                        break
                    own["s3"].put_object(Bucket=BUCKET, Key=f"race/{n}/{i}", Body=os.urandom(1024))
                    own["logs"].put_log_events(
                        logGroupName=LOG_GROUP,
                        logStreamName="stream",
                        logEvents=[{"timestamp": int(time.time() * 1000), "message": f"{n}/{i}"}],
                    )
                    written.append(f"{n}/{i}")
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        while any(t.is_alive() for t in threads):
            if emu.health()["durability"]["snapshots_taken"] >= 2:
                crossed.set()
            time.sleep(0.2)
        assert not errors, errors[0]
        durability = emu.health()["durability"]
        kill_9(emu)
    assert durability["mode"] == "fsync"
    assert durability["snapshots_taken"] >= 2, "the writes must cross several snapshot/journal switches"
    with running(data_dir) as emu:
        c = clients(emu)
        keys = {
            o["Key"]
            for page in c["s3"].get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="race/")
            for o in page.get("Contents", [])
        }
        messages = []
        kwargs = {"logGroupName": LOG_GROUP, "logStreamName": "stream", "startFromHead": True}
        while True:
            page = c["logs"].get_log_events(**kwargs)
            messages += [e["message"] for e in page["events"]]
            if not page["events"]:
                break
            kwargs["nextToken"] = page["nextForwardToken"]
    assert keys == {f"race/{w}" for w in written}
    assert sorted(messages) == sorted(written)


# -- damaged files ------------------------------------------------------------------------------------


def seed_state(data_dir: Path, graceful: bool) -> None:
    """An object, a log event and a model; then a graceful stop (snapshot) or a kill -9 (journal only)."""
    with running(data_dir) as emu:
        c = clients(emu)
        c["s3"].create_bucket(Bucket=BUCKET)
        c["s3"].put_object(Bucket=BUCKET, Key="kept", Body=b"kept")
        c["sagemaker"].create_model(
            ModelName="kept-model", PrimaryContainer={"Image": IMAGE, "ModelDataUrl": "s3://x/y"}, ExecutionRoleArn=ROLE
        )
        if not graceful:
            kill_9(emu)


def quarantined(health: dict) -> list[str]:
    return [entry["file"] for entry in health["quarantined"]]


def test_torn_journal_tail_is_set_aside_and_the_rest_served(tmp_path):
    data_dir = tmp_path / "data"
    seed_state(data_dir, graceful=False)
    (journal,) = sorted((data_dir / "moto").glob("journal-*.log"))
    key = (data_dir / "moto" / "snapshot.key").read_bytes()
    unusable = pickle.dumps({"type": "from-a-newer-emulator"})
    with open(journal, "ab") as fh:
        # A record that verifies but can't be applied, then one whose write was cut short (header promises
        # 4 KB, 10 bytes arrived).
        fh.write(len(unusable).to_bytes(4, "big") + hmac.new(key, unusable, hashlib.sha256).digest() + unusable)
        fh.write((4096).to_bytes(4, "big") + b"\x00" * 32 + b"torn bytes")
    with running(data_dir) as emu:
        c = clients(emu)
        assert c["s3"].get_object(Bucket=BUCKET, Key="kept")["Body"].read() == b"kept"
        health = emu.health()
        c["s3"].put_object(Bucket=BUCKET, Key="after", Body=b"after")
        kill_9(emu)
    unapplied, torn = health["quarantined"]
    assert "could not be replayed" in unapplied["reason"] and "from-a-newer-emulator" in unapplied["held"]
    assert health["durability"]["records_not_replayable"] == 1
    assert torn["file"] == f"moto/{journal.name}" and "torn record" in torn["reason"]
    assert "torn bytes" in torn["held"]
    assert (data_dir / torn["moved_to"]).read_bytes().endswith(b"torn bytes")
    with running(data_dir) as emu:  # nothing set aside is met again; the later write is back
        s3 = clients(emu)["s3"]
        assert s3.get_object(Bucket=BUCKET, Key="after")["Body"].read() == b"after"
        assert s3.get_object(Bucket=BUCKET, Key="kept")["Body"].read() == b"kept"
        assert emu.health()["quarantined"] == []


def test_corrupt_snapshot_is_set_aside_and_later_journal_replayed(tmp_path):
    data_dir = tmp_path / "data"
    seed_state(data_dir, graceful=True)
    (snapshot,) = (data_dir / "moto").glob("snapshot-*.pickle")
    with running(data_dir) as emu:  # a write after the snapshot, in the journal only
        s3 = clients(emu)["s3"]
        s3.put_object(Bucket=BUCKET, Key="after-snapshot", Body=b"journal")
        kill_9(emu)
    raw = bytearray(snapshot.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # one flipped bit in the middle
    snapshot.write_bytes(bytes(raw))
    with running(data_dir) as emu:
        c = clients(emu)
        health = emu.health()
        assert c["s3"].get_object(Bucket=BUCKET, Key="after-snapshot")["Body"].read() == b"journal"
        # Control-plane state lives in its own files and is untouched by the moto snapshot's loss.
        assert c["sagemaker"].describe_model(ModelName="kept-model")["ModelName"] == "kept-model"
    assert quarantined(health) == [f"moto/{snapshot.name}"]
    assert "signature does not match" in health["quarantined"][0]["reason"]


def test_tampered_snapshot_never_runs_its_code(tmp_path):
    """A pickle that would create a file when loaded, written in place of the snapshot (and as the old
    unsigned snapshot file): neither is unpickled; both are quarantined."""
    data_dir = tmp_path / "data"
    seed_state(data_dir, graceful=True)
    (snapshot,) = (data_dir / "moto").glob("snapshot-*.pickle")
    proof = tmp_path / "code-ran"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {proof}",))

    payload = pickle.dumps(Exploit())
    head = snapshot.read_bytes()[: len(b"SMEMU-SNAPSHOT-1\n") + 8]
    snapshot.write_bytes(head + b"\x00" * 32 + payload)  # right header, forged signature
    (data_dir / "moto-state.pickle").write_bytes(payload)  # the old, unsigned location
    with running(data_dir) as emu:
        health = emu.health()
        s3 = clients(emu)["s3"]
        assert s3.list_buckets()["Buckets"] == []  # served, from nothing
    assert not proof.exists()
    key = data_dir / "moto" / "snapshot.key"  # the signing key: private, beside what it signs
    assert key.stat().st_mode & 0o777 == 0o600 and len(key.read_bytes()) == 32
    assert (data_dir / "moto").stat().st_mode & 0o777 == 0o700
    assert sorted(quarantined(health)) == sorted(["moto-state.pickle", f"moto/{snapshot.name}"])
    assert all(entry["moved_to"].startswith("quarantine/") for entry in health["quarantined"])


def test_torn_store_record_and_leftover_tmp_files_are_set_aside(tmp_path):
    data_dir = tmp_path / "data"
    seed_state(data_dir, graceful=True)
    models = data_dir / "sagemaker" / "model"
    (models / "torn-model.json").write_text('{"ModelName": "torn-mo')
    (models / "list-model.json").write_text("[1, 2]")
    (models / "kept-model.json.tmp").write_text('{"ModelName": "half')
    (data_dir / "moto" / "snapshot-00000099.pickle.tmp").write_bytes(b"half a snapshot")
    with running(data_dir) as emu:
        c = clients(emu)
        health = emu.health()
        assert c["sagemaker"].describe_model(ModelName="kept-model")["ModelName"] == "kept-model"
        assert c["s3"].get_object(Bucket=BUCKET, Key="kept")["Body"].read() == b"kept"
        with pytest.raises(ClientError):
            c["sagemaker"].describe_model(ModelName="torn-model")
    assert sorted(quarantined(health)) == sorted(
        [
            "sagemaker/model/torn-model.json",
            "sagemaker/model/list-model.json",
            "sagemaker/model/kept-model.json.tmp",
            "moto/snapshot-00000099.pickle.tmp",
        ]
    )
    torn = next(e for e in health["quarantined"] if e["file"].endswith("torn-model.json"))
    assert "not valid JSON" in torn["reason"] and "torn-mo" in torn["held"]
    assert not list(models.glob("*.tmp"))
    assert json.loads((data_dir / torn["moved_to"]).read_text(errors="replace") + '"}') == {"ModelName": "torn-mo"}


def test_training_artifact_and_log_are_on_disk_when_the_job_is_completed(tmp_path):
    """The emulator's own writes: the model.tar.gz is journaled before the job turns Completed, and the
    job's log lines (batched within 0.5 s) before its end; a kill -9 right after Completed keeps both."""
    from tests.emulator.helpers import read_model_tar, training_request, upload_housing_channels, wait_for_job

    data_dir = tmp_path / "data"
    with running(data_dir) as emu:
        c = clients(emu)
        channels = upload_housing_channels(c["s3"], BUCKET, "train-data", houses=300)
        request = training_request(
            "durable-job", channels, f"s3://{BUCKET}/out", image=IMAGE, hyperparameters={"num_round": "5"}
        )
        c["sagemaker"].create_training_job(**request)
        job = wait_for_job(c["sagemaker"], "durable-job", timeout=120)
        kill_9(emu)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    with running(data_dir) as emu:
        c = clients(emu)
        back = c["sagemaker"].describe_training_job(TrainingJobName="durable-job")
        assert back["TrainingJobStatus"] == "Completed"
        assert "xgboost-model" in read_model_tar(c["s3"], back["ModelArtifacts"]["S3ModelArtifacts"])
        streams = c["logs"].describe_log_streams(
            logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix="durable-job"
        )["logStreams"]
        (stream,) = streams
        events = c["logs"].get_log_events(
            logGroupName="/aws/sagemaker/TrainingJobs", logStreamName=stream["logStreamName"], startFromHead=True
        )["events"]
        assert any("train-rmse" in e["message"] for e in events)
