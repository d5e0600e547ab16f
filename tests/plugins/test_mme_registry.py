"""MME registry: versioned never-overwritten artifacts, a per-location record written with S3 conditional
writes, promotion that a backfill cannot move backwards."""

from __future__ import annotations

import contextlib
import io
import json
import tarfile
import threading
from unittest import mock

import pytest
from airflow.exceptions import AirflowException
from airflow.sdk.exceptions import AirflowSkipException
from botocore.exceptions import ClientError

from sagemaker_fleet.hooks.sagemaker import SageMakerFleetHook
from sagemaker_fleet.operators.mme import (
    MMEPromoteModelOperator,
    MMERegisterModelOperator,
    list_registered_models,
    live_version_on,
    read_live_record,
    record_key,
    update_record,
)
from tests.plugins.conftest import BUCKET, unique


def artifact(s3, text: str) -> str:
    """A small model.tar.gz at a training-output-like key; its bytes depend on ``text`` only."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        data = text.encode()
        info = tarfile.TarInfo("xgboost-model")
        info.size, info.mtime = len(data), 0
        tar.addfile(info, io.BytesIO(data))
    key = f"output/{unique('job')}/output/model.tar.gz"
    s3.put_object(Bucket=BUCKET, Key=key, Body=raw.getvalue())
    return f"s3://{BUCKET}/{key}"


@pytest.fixture
def prefixes(emulator, s3):
    root = unique("reg")
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(Bucket=BUCKET)
    return f"s3://{BUCKET}/{root}/mme/", f"s3://{BUCKET}/{root}/registry/"


def register(prefixes, model_artifact, version, location="Chicago_IL", **kwargs) -> dict:
    mme, registry = prefixes
    return MMERegisterModelOperator(
        task_id="register",
        model_artifact=model_artifact,
        mme_prefix=mme,
        registry_prefix=registry,
        location=location,
        version=version,
        **kwargs,
    ).execute(context={})


def promote(prefixes, version, location="Chicago_IL", **kwargs) -> dict:
    mme, registry = prefixes
    return MMEPromoteModelOperator(
        task_id="promote", mme_prefix=mme, registry_prefix=registry, location=location, version=version, **kwargs
    ).execute(context={})


def test_register_copies_records_and_is_a_noop_on_retry(s3, prefixes):
    source = artifact(s3, "model-a")
    first = register(prefixes, source, "20261123", metrics={"validation:rmse": "123.5"})
    assert first == {
        "location": "Chicago_IL",
        "version": "20261123",
        "target_model": "Chicago_IL/Chicago_IL-20261123.tar.gz",
        "s3_uri": prefixes[0] + "Chicago_IL/Chicago_IL-20261123.tar.gz",
        "created": True,
    }
    hook = SageMakerFleetHook()
    record = read_live_record(hook, prefixes[1], "Chicago_IL")
    assert record["live_version"] is None  # registered, not live
    entry = record["versions"]["20261123"]
    assert entry["metrics"] == {"validation:rmse": 123.5} and entry["etag"].startswith('"')
    assert list_registered_models(hook, prefixes[0]) == ["Chicago_IL/Chicago_IL-20261123.tar.gz"]

    again = register(prefixes, source, "20261123", metrics={"validation:rmse": 123.5})
    assert again == {**first, "created": False}
    assert read_live_record(hook, prefixes[1], "Chicago_IL") == record  # not even updated_at moved


def test_same_name_with_different_bytes_is_refused_and_nothing_is_overwritten(s3, prefixes):
    register(prefixes, artifact(s3, "model-a"), "20261123")
    bucket, key = prefixes[0][len("s3://") :].split("/", 1)
    before = s3.get_object(Bucket=bucket, Key=key + "Chicago_IL/Chicago_IL-20261123.tar.gz")["Body"].read()
    with pytest.raises(AirflowException, match="already exists with different bytes"):
        register(prefixes, artifact(s3, "model-b"), "20261123")
    after = s3.get_object(Bucket=bucket, Key=key + "Chicago_IL/Chicago_IL-20261123.tar.gz")["Body"].read()
    assert after == before


def test_promotion_never_moves_live_backwards_unless_asked(s3, prefixes):
    register(prefixes, artifact(s3, "old"), "20261120")
    register(prefixes, artifact(s3, "new"), "20261123")
    assert promote(prefixes, "20261123")["promoted"] is True

    backfill = promote(prefixes, "20261120")  # a backfill of an older date
    assert backfill["promoted"] is False and "older than the live 20261123" in backfill["reason"]
    assert backfill["live_version"] == "20261123"
    record = read_live_record(SageMakerFleetHook(), prefixes[1], "Chicago_IL")
    assert record["live_version"] == "20261123"
    assert record["live_target_model"] == "Chicago_IL/Chicago_IL-20261123.tar.gz"
    assert set(record["versions"]) == {"20261120", "20261123"}

    assert promote(prefixes, "20261123")["reason"] == "20261123 is already live"
    rollback = promote(prefixes, "20261120", allow_older="true")  # a rendered template
    assert rollback == {
        "location": "Chicago_IL",
        "version": "20261120",
        "live_version": "20261120",
        "previous_version": "20261123",
        "promoted": True,
        "reason": "20261120 is live (was 20261123)",
        "asset_event": False,  # no AssetAlias among the outlets
    }


def test_the_record_answers_what_was_live_on_a_date(s3, prefixes):
    hook = SageMakerFleetHook()
    register(prefixes, artifact(s3, "nightly"), "20261201")
    promote(prefixes, "20261201")
    # Backfills: Nov 1 is released for its date without moving the live pointer; Nov 15 is registered
    # but never promoted (its smoke test failed), so it never served.
    register(prefixes, artifact(s3, "backfill-1"), "20261101")
    assert promote(prefixes, "20261101")["promoted"] is False
    register(prefixes, artifact(s3, "backfill-15"), "20261115")

    record = read_live_record(hook, prefixes[1], "Chicago_IL")
    assert record["live_version"] == "20261201"
    assert [move["version"] for move in record["live_history"]] == ["20261201"]  # never backwards
    assert record["versions"]["20261101"]["released_at"] and "released_at" not in record["versions"]["20261115"]
    assert live_version_on(record, "2026-10-31") is None
    assert live_version_on(record, "2026-11-20") == "20261101"
    assert live_version_on(record, "2026-12-01") == "20261201"

    # A second promotion of the released backfill writes nothing new.
    etag = s3.head_object(Bucket=BUCKET, Key=record_key(prefixes[1], "Chicago_IL")[1])["ETag"]
    assert promote(prefixes, "20261101")["promoted"] is False
    assert s3.head_object(Bucket=BUCKET, Key=record_key(prefixes[1], "Chicago_IL")[1])["ETag"] == etag


def test_a_rejected_decision_writes_nothing(s3, prefixes):
    rejected = {"promote": False, "reason": "Keep the live model: new RMSE 107,991 exceeds the limit 22,360"}
    with pytest.raises(AirflowSkipException, match="not accepted by the evaluation: Keep the live model"):
        register(prefixes, artifact(s3, "weak"), "20261103", decision=rejected)
    with pytest.raises(AirflowSkipException):
        promote(prefixes, "20261103", decision=rejected)
    assert list_registered_models(SageMakerFleetHook(), prefixes[0]) == []
    assert read_live_record(SageMakerFleetHook(), prefixes[1], "Chicago_IL") is None

    accepted = {"promote": True, "reason": "Promote: no live model to compare with", "live_version": None}
    register(prefixes, artifact(s3, "strong"), "20261103", decision=accepted)
    record = read_live_record(SageMakerFleetHook(), prefixes[1], "Chicago_IL")
    assert record["versions"]["20261103"]["decision"] == {"reason": accepted["reason"], "live_version": None}


def test_promotion_emits_an_asset_event_through_the_alias_only_when_live_changes(s3, prefixes):
    from collections import defaultdict

    from airflow.sdk import AssetAlias

    alias = AssetAlias("housing_mme_live_models")
    mme, registry = prefixes
    register(prefixes, artifact(s3, "m"), "20261123")
    events: dict = defaultdict(list)

    class Accessor:
        def __init__(self, key):
            self.key = key

        def add(self, asset, extra=None):
            events[self.key].append((asset.uri, extra))

    context = {"outlet_events": {alias: Accessor(alias)}}
    promote_task = MMEPromoteModelOperator(
        task_id="promote",
        mme_prefix=mme,
        registry_prefix=registry,
        location="Chicago_IL",
        version="20261123",
        outlets=[alias],
    )
    assert promote_task.execute(context=context)["asset_event"] is True
    assert events[alias] == [
        (f"{registry}Chicago_IL.json", {"location": "Chicago_IL", "version": "20261123", "previous_version": None})
    ]
    # Already live: no second event.
    assert promote_task.execute(context=context)["asset_event"] is False
    assert len(events[alias]) == 1


def test_promoting_an_unregistered_version_fails_clearly(s3, prefixes):
    with pytest.raises(AirflowException, match="register 20261123 first"):
        promote(prefixes, "20261123")


def test_concurrent_registrations_lose_no_version(s3, prefixes):
    """Eight runs register eight versions of one location at once: every one ends up in the record."""
    sources = {f"202611{day:02d}": artifact(s3, f"model-{day}") for day in range(1, 9)}
    errors: list[BaseException] = []

    def run(version: str, source: str) -> None:
        try:
            register(prefixes, source, version)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=item) for item in sources.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    record = read_live_record(SageMakerFleetHook(), prefixes[1], "Chicago_IL")
    assert set(record["versions"]) == set(sources)
    assert len(list_registered_models(SageMakerFleetHook(), prefixes[0])) == 8


def test_conditional_write_conflict_is_retried_on_the_fresh_record(s3, prefixes):
    hook = SageMakerFleetHook()
    update_record(hook, prefixes[1], "Chicago_IL", lambda r: {"location": "Chicago_IL", "versions": {}, "n": 0})
    real_put = hook.s3_client.put_object
    calls = {"n": 0}

    def put_with_one_conflict(**kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            # Another writer gets in between our read and our write.
            real_put(Bucket=kwargs["Bucket"], Key=kwargs["Key"], Body=json.dumps({"versions": {}, "n": 10}).encode())
            assert "IfMatch" in kwargs
        return real_put(**kwargs)

    with mock.patch.object(hook.s3_client, "put_object", side_effect=put_with_one_conflict):
        record, written = update_record(hook, prefixes[1], "Chicago_IL", lambda r: {**r, "n": r["n"] + 1})
    assert written and record["n"] == 11  # applied on top of the other writer's value, not lost
    assert read_live_record(hook, prefixes[1], "Chicago_IL")["n"] == 11


def test_persistent_conflicts_give_up_with_a_clear_error():
    hook = mock.MagicMock()
    hook.s3_client.get_object.return_value = {"Body": io.BytesIO(b'{"n": 1}'), "ETag": '"e"'}
    hook.s3_client.get_object.side_effect = lambda **_: {"Body": io.BytesIO(b'{"n": 1}'), "ETag": '"e"'}
    hook.s3_client.put_object.side_effect = ClientError({"Error": {"Code": "PreconditionFailed"}}, "PutObject")
    with mock.patch("sagemaker_fleet.operators.mme.time.sleep"), pytest.raises(AirflowException, match="3 concurrent"):
        update_record(hook, "s3://b/registry/", "Chicago_IL", lambda r: {**r, "n": 2}, max_attempts=3)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"location": "Chicago/IL"}, ValueError),  # a model group is one path segment
        ({"location": ".."}, ValueError),
        ({"version": "2026-11-23"}, ValueError),
        ({"model_artifact": "/tmp/model.tar.gz"}, ValueError),
        ({"mme_prefix": "bucket/mme"}, ValueError),
    ],
)
def test_bad_input_is_refused_before_anything_is_written(kwargs, error):
    params = {
        "model_artifact": "s3://b/out/model.tar.gz",
        "mme_prefix": "s3://b/mme/",
        "registry_prefix": "s3://b/registry/",
        "location": "Chicago_IL",
        "version": "20261123",
        **kwargs,
    }
    op = MMERegisterModelOperator(task_id="register", **params)
    with mock.patch.object(MMERegisterModelOperator, "hook") as hook, pytest.raises(error):
        op.execute(context={})
    assert not hook.s3_client.put_object.called


def test_missing_training_artifact_is_a_clear_error(s3, prefixes):
    with pytest.raises(AirflowException, match="does not exist"):
        register(prefixes, f"s3://{BUCKET}/nowhere/model.tar.gz", "20261123")


def test_read_live_record_is_none_for_an_unknown_location(prefixes):
    assert read_live_record(SageMakerFleetHook(), prefixes[1], "Boston_MA") is None
