"""The pure parts of the emulator's durability: journal framing and torn tails, signed snapshots, the
signing key, the readers-writer lock, and the Store's quarantine of damaged files."""

from __future__ import annotations

import json
import os
import pickle
import threading
import time

import pytest

from include.sagemaker_emulator.durability import (
    Journal,
    Quarantine,
    SharedExclusiveLock,
    SnapshotInvalid,
    load_or_create_key,
    read_journal,
    read_signed_snapshot,
    write_signed_snapshot,
)
from include.sagemaker_emulator.store import Store

KEY = bytes(range(32))


@pytest.mark.parametrize("fsync", [False, True])
def test_journal_round_trip(tmp_path, fsync):
    quarantine = Quarantine(tmp_path)
    journal = Journal(tmp_path / "j.log", KEY, fsync=fsync)
    payloads = [os.urandom(n) for n in (0, 1, 100, 70_000)]
    for n, payload in enumerate(payloads, 1):
        assert journal.append(payload) == n
        journal.sync(n)
    journal.close()
    journal.sync(4)  # after close: covered by close's fsync, no error
    assert list(read_journal(tmp_path / "j.log", KEY, quarantine)) == payloads
    assert quarantine.listing() == []


def test_every_torn_tail_keeps_the_whole_records_before_it(tmp_path):
    payloads = [f"record {n}".encode() * (n + 1) for n in range(4)]
    journal = Journal(tmp_path / "full.log", KEY, fsync=False)
    ends = []
    for payload in payloads:
        journal.append(payload)
        ends.append(journal.size)
    journal.close()
    full = (tmp_path / "full.log").read_bytes()
    for cut in range(1, len(full)):
        path = tmp_path / "cut.log"
        path.write_bytes(full[:cut])
        quarantine = Quarantine(tmp_path)
        whole = sum(1 for end in ends if end <= cut)
        assert list(read_journal(path, KEY, quarantine)) == payloads[:whole], cut
        torn = cut not in ends
        assert len(quarantine.listing()) == int(torn), cut
        # The torn tail is cut off, so the next read is clean.
        assert path.stat().st_size == (ends[whole - 1] if whole else 0)
        assert len(list(read_journal(path, KEY, Quarantine(tmp_path)))) == whole


def test_a_flipped_bit_or_another_key_stops_reading_at_that_record(tmp_path):
    journal = Journal(tmp_path / "j.log", KEY, fsync=False)
    journal.append(b"first")
    first_end = journal.size
    journal.append(b"second")
    journal.append(b"third")
    journal.close()
    raw = bytearray((tmp_path / "j.log").read_bytes())
    raw[first_end + 40] ^= 1  # inside the second record's payload
    (tmp_path / "j.log").write_bytes(bytes(raw))
    quarantine = Quarantine(tmp_path)
    assert list(read_journal(tmp_path / "j.log", KEY, quarantine)) == [b"first"]
    (entry,) = quarantine.listing()
    assert "signature does not match" in entry["reason"] and f"byte {first_end}" in entry["reason"]
    other = Quarantine(tmp_path)
    (tmp_path / "k.log").write_bytes(bytes(raw[:first_end]))
    assert list(read_journal(tmp_path / "k.log", bytes(32), other)) == []
    assert len(other.listing()) == 1


def test_signed_snapshot_refuses_anything_altered(tmp_path):
    path = tmp_path / "snapshot-00000003.pickle"
    payload = pickle.dumps({"state": list(range(100))})
    write_signed_snapshot(path, KEY, 3, payload, fsync=True)
    assert read_signed_snapshot(path, KEY, 3) == payload
    assert not list(tmp_path.glob("*.tmp"))
    with pytest.raises(SnapshotInvalid, match="generation"):
        read_signed_snapshot(path, KEY, 4)  # an older generation renamed as a newer one
    with pytest.raises(SnapshotInvalid, match="signature"):
        read_signed_snapshot(path, bytes(32), 3)
    raw = path.read_bytes()
    for damaged in (raw[:-1], raw[:30], raw[:-5] + b"xxxxx", b"\x80\x04K\x01."):
        path.write_bytes(damaged)
        with pytest.raises(SnapshotInvalid):
            read_signed_snapshot(path, KEY, 3)


def test_signing_key_is_made_once_private_and_replaced_when_damaged(tmp_path):
    quarantine = Quarantine(tmp_path)
    key_path = tmp_path / "moto" / "snapshot.key"
    key = load_or_create_key(key_path, quarantine)
    assert len(key) == 32 and key_path.stat().st_mode & 0o777 == 0o600
    assert load_or_create_key(key_path, quarantine) == key
    key_path.write_bytes(b"short")
    fresh = load_or_create_key(key_path, quarantine)
    assert len(fresh) == 32 and fresh != key
    (entry,) = quarantine.listing()
    assert entry["file"] == "moto/snapshot.key" and "short" not in entry["held"]  # a key is never logged


def test_exclusive_waits_for_shared_holders_and_blocks_new_ones():
    lock = SharedExclusiveLock()
    order: list[str] = []
    inside = threading.Event()
    release = threading.Event()

    def mutation(name: str) -> None:
        with lock.shared():
            order.append(f"{name} in")
            inside.set()
            release.wait(5)
            order.append(f"{name} out")

    def snapshot() -> None:
        with lock.exclusive():
            order.append("snapshot")

    first = threading.Thread(target=mutation, args=("a",))
    first.start()
    assert inside.wait(5)
    snap = threading.Thread(target=snapshot)
    snap.start()
    while not lock._exclusive_waiting:  # the snapshot is queued behind "a"
        time.sleep(0.001)
    late = threading.Thread(target=mutation, args=("b",))
    late.start()
    release.set()
    for thread in (first, snap, late):
        thread.join(5)
    assert order == ["a in", "a out", "snapshot", "b in", "b out"]


def test_store_sets_aside_torn_records_and_tmp_files(tmp_path):
    store = Store(tmp_path)
    store.put("model", "Good", {"ModelName": "Good"})
    folder = tmp_path / "sagemaker" / "model"
    (folder / "torn.json").write_text('{"ModelName": "to')
    (folder / "number.json").write_text("42")
    (folder / "good.json.tmp").write_text("{")
    quarantine = Quarantine(tmp_path)
    reloaded = Store(tmp_path, quarantine=quarantine, fsync=True)
    assert [r["ModelName"] for r in reloaded.list("model")] == ["Good"]
    assert sorted(e["file"] for e in quarantine.listing()) == [
        "sagemaker/model/good.json.tmp",
        "sagemaker/model/number.json",
        "sagemaker/model/torn.json",
    ]
    assert sorted(p.name for p in folder.iterdir()) == ["good.json"]
    assert len(list((tmp_path / "quarantine").iterdir())) == 3
    # fsync mode writes through the same way.
    reloaded.update("model", "good", lambda r: r.update(Tag="x"))
    assert json.loads((folder / "good.json").read_text()) == {"ModelName": "Good", "Tag": "x"}


def test_store_update_that_fails_to_write_leaves_memory_unchanged(tmp_path, monkeypatch):
    store = Store(tmp_path)
    store.put("model", "m", {"ModelName": "m", "v": 1})

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store, "_write", disk_full)
    with pytest.raises(OSError):
        store.update("model", "m", lambda r: r.update(v=2))
    assert store.get("model", "m")["v"] == 1


def _environ(method: str, path: str, query: str = "", host: str = "127.0.0.1:4566", **headers: str) -> dict:
    return {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query, "HTTP_HOST": host, **headers}


SIGNED = "AWS4-HMAC-SHA256 Credential=k/20250101/us-east-1/{}/aws4_request, SignedHeaders=host, Signature=0"


@pytest.mark.parametrize(
    ("environ", "location"),
    [
        (_environ("PUT", "/bucket/a/b c.txt"), ("bucket", "a/b c.txt")),
        (_environ("PUT", "/bucket/k%2Bplus"), ("bucket", "k+plus")),
        (_environ("PUT", "/bucket"), ("bucket", "")),
        (_environ("PUT", "/key/in/vhost", host="mybucket.s3.us-east-1.amazonaws.com"), ("mybucket", "key/in/vhost")),
        (_environ("DELETE", "/k", host="my.dotted.bucket.s3.amazonaws.com"), ("my.dotted.bucket", "k")),
        (_environ("PUT", "/bucket/x", host="localhost:4566"), ("bucket", "x")),
    ],
)
def test_s3_location_reads_bucket_and_key_as_moto_does(environ, location):
    from include.sagemaker_emulator.aws import _s3_location

    assert _s3_location(environ) == location


@pytest.mark.parametrize(
    ("environ", "body", "service", "mutating"),
    [
        (
            _environ(
                "POST", "/", HTTP_X_AMZ_TARGET="Logs_20140328.PutLogEvents", HTTP_AUTHORIZATION=SIGNED.format("logs")
            ),
            b"{}",
            "logs",
            True,
        ),
        (
            _environ(
                "POST", "/", HTTP_X_AMZ_TARGET="Logs_20140328.GetLogEvents", HTTP_AUTHORIZATION=SIGNED.format("logs")
            ),
            b"{}",
            "logs",
            False,
        ),
        (
            _environ(
                "POST",
                "/service/GraniteServiceVersion20100801/operation/PutMetricData",
                HTTP_AUTHORIZATION=SIGNED.format("monitoring"),
            ),
            b"",
            "monitoring",
            True,
        ),
        (
            _environ(
                "POST",
                "/service/GraniteServiceVersion20100801/operation/DescribeAlarms",
                HTTP_AUTHORIZATION=SIGNED.format("monitoring"),
            ),
            b"",
            "monitoring",
            False,
        ),
        (_environ("POST", "/", HTTP_AUTHORIZATION=SIGNED.format("iam")), b"Action=CreateRole&RoleName=r", "iam", True),
        (_environ("POST", "/", HTTP_AUTHORIZATION=SIGNED.format("iam")), b"Action=ListRoles", "iam", False),
        (
            _environ("POST", "/", HTTP_AUTHORIZATION=SIGNED.format("sts")),
            b"Version=2011-06-15",
            "sts",
            True,
        ),  # unknown: kept
        (
            _environ("PUT", "/b/k", "X-Amz-Credential=k%2F20250101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Signature=0"),
            b"",
            "s3",
            None,
        ),
        (_environ("PUT", "/b/k"), b"data", "s3", None),  # unsigned: moto's default service
    ],
)
def test_requests_are_told_apart_by_service_and_operation(environ, body, service, mutating):
    from include.sagemaker_emulator.aws import _mutating_operation, _service

    assert _service(environ, body) == service
    if mutating is not None:
        assert _mutating_operation(environ, body) is mutating
