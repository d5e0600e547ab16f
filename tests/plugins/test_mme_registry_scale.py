"""The MME registry at fleet scale: an MME prefix with 10,000 registered versions still lists, promotes and
serves, and the per-location work stays O(locations), not O(versions).

The 10,000 versions are generated objects (small bytes at each version's TargetModel key) with registry
records as the registry wrote them before records had a window: one hot location with 2,000 versions in its
record, eighty with 100 each. Two of the hot location's versions are real XGBoost models, to be served.
Cost is asserted by counting S3 requests and record bytes, never by timing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from sagemaker_fleet.hooks.sagemaker import SageMakerFleetHook
from sagemaker_fleet.operators.mme import (
    RECORD_WINDOW,
    MMEPromoteModelOperator,
    MMERegisterModelOperator,
    archive_reader,
    list_live_models,
    list_locations,
    list_registered_models,
    live_version_on,
    read_live_record,
    version_entry,
)
from sagemaker_fleet.utils.naming import mme_artifact_key
from tests.emulator.serving_helpers import create_config, create_model, csv_row, housing_like, xgboost_archive
from tests.plugins.conftest import BUCKET, unique

HOT = "Chicago_IL"
HOT_VERSIONS = 2000
OTHERS = [f"{town}_{state}" for state in ("TX", "CA", "OH", "WA") for town in (
    "Springfield", "Riverside", "Franklin", "Greenville", "Bristol", "Clinton", "Fairview", "Salem", "Madison",
    "Georgetown", "Arlington", "Ashland", "Burlington", "Dayton", "Dover", "Hudson", "Jackson", "Kingston",
    "Lebanon", "Milton",
)]  # fmt: skip
OTHER_VERSIONS = 100
FIRST_DAY = dt.date(2020, 1, 1)
REAL_OLD_INDEX = 6  # an archived, released version of HOT that is a real model


def version_of(index: int) -> str:
    return (FIRST_DAY + dt.timedelta(days=index)).strftime("%Y%m%d")


def released(index: int) -> bool:
    return index % 3 != 1  # every third version was registered but never released


def legacy_record(location: str, count: int, mme_prefix: str, etags: dict[str, str]) -> dict:
    """A record as the registry wrote it before the window: every version inline."""
    versions, history, live = {}, [], None
    for index in range(count):
        version = version_of(index)
        target = mme_artifact_key(location, version)
        entry = {
            "target_model": target,
            "s3_uri": mme_prefix + target,
            "etag": etags[target],
            "registered_at": f"{version[:4]}-{version[4:6]}-{version[6:]}T02:30:00+00:00",
            "metrics": {"test:rmse": 10_000.0 + index, "test:mae": 8_000.0 + index},
            "decision": {"reason": "generated", "live_version": live},
        }
        if released(index):
            entry["released_at"] = entry["registered_at"]
            history.append({"version": version, "previous_version": live, "at": entry["registered_at"]})
            live = version
        versions[version] = entry
    return {
        "location": location,
        "live_version": live,
        "live_target_model": mme_artifact_key(location, live),
        "versions": versions,
        "live_history": history,
        "updated_at": "2025-06-22T02:30:00+00:00",
    }


class S3Calls:
    """Counts the S3 operations a client sends (botocore's before-call event) and the bytes it reads."""

    def __init__(self, client) -> None:
        self.client, self.calls = client, Counter()
        client.meta.events.register("before-call.s3", self._count)

    def _count(self, model, **_: object) -> None:
        self.calls[model.name] += 1

    def __enter__(self) -> Counter:
        self.calls.clear()
        return self.calls

    def __exit__(self, *exc: object) -> None:
        self.client.meta.events.unregister("before-call.s3", self._count)


@pytest.fixture(scope="module")
def fleet(emulator, s3):
    root = unique("fleet")
    mme, registry = f"s3://{BUCKET}/{root}/mme/", f"s3://{BUCKET}/{root}/registry/"
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(Bucket=BUCKET)
    real = {version_of(REAL_OLD_INDEX): xgboost_archive(seed=3)}
    objects = {
        mme_artifact_key(location, version_of(i)): real.get(version_of(i)) if location == HOT else None
        for location, count in [(HOT, HOT_VERSIONS)] + [(o, OTHER_VERSIONS) for o in OTHERS]
        for i in range(count)
    }
    assert len(objects) == 10_000

    import boto3
    from botocore.config import Config

    # One client with a pool as wide as the threads writing through it.
    writer = boto3.client("s3", endpoint_url=emulator.url, region_name="us-east-1",
                          config=Config(max_pool_connections=16))  # fmt: skip

    def put(target: str) -> tuple[str, str]:
        body = objects[target] or f"generated {target}".encode()
        return target, writer.put_object(Bucket=BUCKET, Key=f"{root}/mme/{target}", Body=body)["ETag"]

    with ThreadPoolExecutor(16) as pool:
        etags = dict(pool.map(put, objects))
    for location, count in [(HOT, HOT_VERSIONS)] + [(o, OTHER_VERSIONS) for o in OTHERS]:
        record = legacy_record(location, count, mme, etags)
        s3.put_object(Bucket=BUCKET, Key=f"{root}/registry/{location}.json", Body=json.dumps(record).encode())
    source = f"{root}/output/new/model.tar.gz"
    s3.put_object(Bucket=BUCKET, Key=source, Body=xgboost_archive(seed=11))
    return {"mme": mme, "registry": registry, "root": root, "new_source": f"s3://{BUCKET}/{source}"}


def register_and_promote(fleet: dict, version: str, source: str) -> tuple[dict, dict]:
    common = {"mme_prefix": fleet["mme"], "registry_prefix": fleet["registry"], "location": HOT, "version": version}
    registered = MMERegisterModelOperator(
        task_id="register", model_artifact=source, metrics={"test:rmse": 9_000.0}, **common
    ).execute(context={})
    promoted = MMEPromoteModelOperator(task_id="promote", **common).execute(context={})
    return registered, promoted


def test_ten_thousand_versions_list_promote_and_serve(fleet, s3, sm) -> None:
    hook = SageMakerFleetHook()
    # Listing every TargetModel pages through all of them; listing the fleet is one request for 81 locations.
    assert len(list_registered_models(hook, fleet["mme"])) == 10_000
    with S3Calls(hook.s3_client) as calls:
        locations = list_locations(hook, fleet["registry"])
    assert locations == sorted([HOT, *OTHERS]) and calls == {"ListObjectsV2": 1}

    # The first write to the hot record compacts it: its 2,000 versions move to archives, the window stays.
    new_version = "20260101"
    registered, promoted = register_and_promote(fleet, new_version, fleet["new_source"])
    assert (
        registered["created"] and promoted["promoted"] and promoted["previous_version"] == version_of(1998)
    )  # 1999 never released
    record = read_live_record(hook, fleet["registry"], HOT)
    assert record["live_version"] == new_version
    assert new_version in record["versions"] and len(record["versions"]) <= RECORD_WINDOW + 2
    assert sum(a["count"] for a in record["archives"]) + len(record["versions"]) == HOT_VERSIONS + 1
    assert len(record["live_history"]) <= 2 * RECORD_WINDOW
    record_bytes = len(s3.get_object(Bucket=BUCKET, Key=f"{fleet['root']}/registry/{HOT}.json")["Body"].read())
    assert record_bytes < 64 * 1024, record_bytes  # the legacy record: 0.9 MB

    # Every archived version is still there, with its history.
    read = archive_reader(hook, fleet["registry"])
    old = version_of(REAL_OLD_INDEX)
    assert old not in record["versions"] and version_entry(record, old, read)["released_at"]
    assert "released_at" not in version_entry(record, version_of(1000), read)  # index 1000 % 3 == 1
    # The version live on an archived date: the newest released one on or before it.
    day = FIRST_DAY + dt.timedelta(days=1000)
    assert live_version_on(record, day, read) == version_of(999)
    assert live_version_on(record, FIRST_DAY - dt.timedelta(days=1), read) is None
    with pytest.raises(ValueError, match="archive_reader"):
        live_version_on(record, day)
    assert live_version_on(record, "2026-01-02") == new_version  # the nightly path needs no archive

    # The next night's register + promote costs the same few requests however many versions exist.
    source = f"{fleet['root']}/output/next/model.tar.gz"
    s3.put_object(Bucket=BUCKET, Key=source, Body=xgboost_archive(seed=12))
    common = {"mme_prefix": fleet["mme"], "registry_prefix": fleet["registry"], "location": HOT}
    MMERegisterModelOperator(
        task_id="register", model_artifact=f"s3://{BUCKET}/{source}", version="20260102", **common
    ).execute(context={})
    operator = MMEPromoteModelOperator(task_id="promote", version="20260102", **common)
    with S3Calls(operator.hook.s3_client) as calls:
        assert operator.execute(context={})["promoted"]
    assert "ListObjectsV2" not in calls and sum(calls.values()) <= 4, calls

    live = list_live_models(hook, fleet["registry"])
    assert len(live) == 81 and live[HOT] == mme_artifact_key(HOT, "20260102")

    # Serving: one MME over the prefix answers for the newest version and for an archived one.
    name = unique("fleet-mme")
    create_model(sm, name, fleet["mme"], multi_model=True)
    create_config(sm, name, [("AllTraffic", name, 1.0)])
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    runtime = hook.runtime_client
    row = csv_row(housing_like(1, seed=5)[0][0])
    for target in (mme_artifact_key(HOT, "20260102"), mme_artifact_key(HOT, old)):
        answer = runtime.invoke_endpoint(EndpointName=name, TargetModel=target, ContentType="text/csv", Body=row)
        assert float(answer["Body"].read().decode().strip().strip("[]").split(",")[0]) > 0
    sm.delete_endpoint(EndpointName=name)
