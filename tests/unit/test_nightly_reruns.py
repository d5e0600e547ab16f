"""Reruns never overwrite (issue 14): a date rebuilt with other Params is refused before anything is written,
naming what changed and the revision that builds it beside the first; a revision has its own partitions, job
and model version. S3 is moto, in process."""

from __future__ import annotations

import hashlib

import boto3
import pytest
from moto import mock_aws

from include.housing import nightly
from include.housing.params import InvalidParamsError

SETTINGS = {"bucket": "b-reruns", "role_arn": nightly.DEFAULT_ROLE_ARN, "raw_source": "synthetic"}


def _plan(run_id: str = "manual__first", **params) -> dict:
    return nightly.build_plan(
        {"locations": ["Chicago_IL", "Dallas_TX"], "houses_per_location": 100, **params},
        SETTINGS,
        "2026-11-23",
        dag_id="housing_mme_nightly",
        run_id=run_id,
        image_uri="img:1",
    )


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch):
    # A live emulator fixture earlier in the session points AWS_ENDPOINT_URL at itself; moto's mock only
    # intercepts AWS's own endpoints.
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=SETTINGS["bucket"])
        yield client


def _objects(s3) -> dict[str, tuple[str, str]]:
    """key -> (ETag, sha256 of the bytes) of everything in the bucket."""
    found = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=SETTINGS["bucket"]):
        for item in page.get("Contents", []):
            body = s3.get_object(Bucket=SETTINGS["bucket"], Key=item["Key"])["Body"].read()
            found[item["Key"]] = (item["ETag"], hashlib.sha256(body).hexdigest())
    return found


def _build(s3, plan: dict) -> None:
    for location in plan["locations"]:
        ingested = nightly.ingest_listings(s3, plan, location)
        nightly.prepare_location(s3, plan, location, ingested["raw_uri"])


def test_same_params_rerun_is_idempotent_and_byte_identical(s3) -> None:
    first = _plan()
    _build(s3, first)
    before = _objects(s3)
    assert "prepared/date=2026-11-23/location=Chicago_IL/build.json" in before
    again = _plan(run_id="manual__again")
    assert nightly.rerun_conflicts(s3, again) == []
    _build(s3, again)
    assert _objects(s3) == before


def test_other_params_are_refused_naming_the_change_and_the_next_revision(s3) -> None:
    _build(s3, _plan())
    before = _objects(s3)
    changed = _plan(run_id="manual__changed", houses_per_location=40, hyperparameters={"num_round": 80})
    problems = nightly.rerun_conflicts(s3, changed)
    assert len(problems) == 2  # both locations
    chicago = next(p for p in problems if p.startswith("Chicago_IL"))
    assert "houses_per_location: 100 -> 40" in chicago and "hyperparameters.num_round: 25 -> 80" in chicago
    assert "revision 1" in chicago and "20261123-r01" in chicago and "manual__first" in chicago
    # Even if the check were skipped (another run raced it), ingest writes nothing.
    with pytest.raises(nightly.BuildConflictError, match="nothing was written"):
        nightly.ingest_listings(s3, changed, "Chicago_IL")
    assert _objects(s3) == before


def test_a_revision_builds_beside_the_first_build_which_stays_byte_identical(s3) -> None:
    _build(s3, _plan())
    before = _objects(s3)
    revised = _plan(run_id="manual__r1", houses_per_location=40, revision=1)
    assert nightly.rerun_conflicts(s3, revised) == []
    _build(s3, revised)
    after = _objects(s3)
    assert {key: after[key] for key in before} == before
    added = set(after) - set(before)
    assert "raw/date=2026-11-23/location=Chicago_IL/revision=01/listings.csv" in added
    assert "prepared/date=2026-11-23/location=Chicago_IL/revision=01/train/train.csv" in added
    config = nightly.build_training_config(revised, "Chicago_IL", {"train": "s3://x/t/", "validation": "s3://x/v/"})
    assert config["TrainingJobName"] == "hmn-chicago-il-20261123-v01"
    assert (
        nightly.build_training_config(_plan(), "Chicago_IL", {"train": "s3://x/t/", "validation": "s3://x/v/"})[
            "TrainingJobName"
        ]
        == "hmn-chicago-il-20261123"
    )
    # A third build with yet other Params is pointed at revision 2, the next free one.
    (problem, *_) = nightly.rerun_conflicts(s3, _plan(run_id="manual__x", houses_per_location=60, revision=1))
    assert "revision 2" in problem and "20261123-r02" in problem


def test_revision_is_checked_like_every_param() -> None:
    with pytest.raises(InvalidParamsError, match=r"revision: 100 is outside \[0, 99\]"):
        _plan(revision=100)
    assert _plan(revision=None)["revision"] == 0  # an empty optional form field means the default
