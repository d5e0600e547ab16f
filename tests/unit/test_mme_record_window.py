"""The registry record's window (no server): compaction keeps every version reachable and answers the same."""

from __future__ import annotations

import datetime as dt
import json
import random

import pytest

from sagemaker_fleet.operators.mme import RECORD_WINDOW, _compact, live_version_on, version_entry


class PreconditionFailed(Exception):
    response = {"Error": {"Code": "PreconditionFailed"}}


class ObjectStore:
    """Just enough of an S3 client for _compact: PutObject with IfNoneMatch, and reads by key."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put_object(self, Bucket: str, Key: str, Body: bytes, IfNoneMatch: str | None = None, **_: object) -> None:
        if IfNoneMatch == "*" and Key in self.objects:
            raise PreconditionFailed(Key)
        self.objects[Key] = Body

    def read(self, key: str) -> dict:
        return json.loads(self.objects[key])


def version_of(index: int) -> str:
    return (dt.date(2021, 1, 1) + dt.timedelta(days=index)).strftime("%Y%m%d")


def record_with(count: int, seed: int) -> dict:
    rng = random.Random(seed)
    versions, history, live = {}, [], None
    for index in range(count):
        version = version_of(index)
        entry = {"target_model": f"X/X-{version}.tar.gz", "etag": f'"{index}"'}
        if rng.random() < 0.6:
            entry["released_at"] = "2021-01-01T00:00:00+00:00"
            history.append({"version": version, "previous_version": live, "at": "t"})
            live = version
        versions[version] = entry
    return {"location": "X", "live_version": live, "versions": versions, "live_history": history}


@pytest.mark.parametrize("count", [2 * RECORD_WINDOW, 2 * RECORD_WINDOW + 1, 731])
def test_compaction_answers_like_the_full_record(count: int) -> None:
    full = record_with(count, seed=count)
    store = ObjectStore()
    kept = version_of(3)  # e.g. an old version being registered again: stays inline
    compact = _compact(store, "b", "registry/X.json", json.loads(json.dumps(full)), keep=(kept,))
    if count <= 2 * RECORD_WINDOW:
        assert compact == full and not store.objects
        return
    assert len(compact["versions"]) <= RECORD_WINDOW + 2
    assert {full["live_version"], kept} <= set(compact["versions"])
    assert len(compact["live_history"]) <= 2 * RECORD_WINDOW
    assert all(key.startswith("registry/X/archive/") for key in store.objects)
    archived = [v for key in store.objects for v in store.read(key)["versions"]]
    assert sorted(archived + list(compact["versions"])) == sorted(full["versions"])  # nothing lost or doubled
    moves = [m for key in store.objects for m in store.read(key)["live_history"]] + compact["live_history"]
    assert sorted(m["version"] for m in moves) == sorted(m["version"] for m in full["live_history"])
    for index in range(-1, count + 2):
        day = dt.date(2021, 1, 1) + dt.timedelta(days=index)
        assert live_version_on(compact, day, store.read) == live_version_on(full, day)
    for version in full["versions"]:
        assert version_entry(compact, version, store.read) == full["versions"][version]


def test_a_retried_compaction_writes_the_same_archives() -> None:
    store = ObjectStore()
    full = record_with(300, seed=1)
    first = _compact(store, "b", "registry/X.json", json.loads(json.dumps(full)), keep=())
    written = dict(store.objects)
    # The record write lost a race and the update is re-applied: the same archives, no error.
    again = _compact(store, "b", "registry/X.json", json.loads(json.dumps(full)), keep=())
    assert again == first and store.objects == written
