"""SageMaker names: always valid, bounded, deterministic; versions and MME keys round-trip."""

import datetime as dt
import random
import string

import pytest

from include.housing.locations import SEED_LOCATIONS
from include.housing.naming import (
    NAME_PATTERN,
    coerce_run_date,
    is_valid_sagemaker_name,
    mme_artifact_key,
    model_version,
    parse_mme_artifact_key,
    sagemaker_name,
    training_job_name,
)

_ALPHABET = string.ascii_letters + string.digits + "_-. /:@é"


def _random_text(rng: random.Random, longest: int) -> str:
    return "".join(rng.choice(_ALPHABET) for _ in range(rng.randint(0, longest)))


def test_sagemaker_name_is_always_valid_and_bounded_for_random_inputs():
    rng = random.Random(20261123)
    for _ in range(3000):
        parts = [_random_text(rng, 40) for _ in range(rng.randint(1, 5))]
        max_length = rng.choice([63, 63, 40, 20, 9])
        try:
            name = sagemaker_name(*parts, max_length=max_length)
        except ValueError:
            assert not any(c.isascii() and c.isalnum() for c in "".join(parts))
            continue
        assert NAME_PATTERN.match(name), (parts, name)
        assert len(name) <= max_length
        assert name == name.lower()
        assert sagemaker_name(*parts, max_length=max_length) == name


def test_long_names_are_truncated_with_a_hash_that_keeps_them_distinct():
    base = "housing-" * 10
    first = sagemaker_name(base, "chicago-il")
    second = sagemaker_name(base, "houston-tx")
    assert len(first) == len(second) == 63
    assert first != second
    assert first[:-9] == second[:-9]  # same readable head, different hash tail
    assert is_valid_sagemaker_name(first) and is_valid_sagemaker_name(second)


def test_sagemaker_name_slugifies_and_refuses_empty():
    assert sagemaker_name("Housing_MME", "Chicago_IL", "2026.11.23") == "housing-mme-chicago-il-2026-11-23"
    with pytest.raises(ValueError):
        sagemaker_name("__", "..")
    with pytest.raises(ValueError):
        sagemaker_name("x", max_length=64)


def test_training_job_name():
    assert training_job_name("housing_mme_nightly", "Chicago_IL", "2026-11-23") == "hmn-chicago-il-20261123"
    assert training_job_name("housing_mme_nightly", "Chicago_IL", dt.date(2026, 11, 23), 1).endswith("-r1")
    assert training_job_name("housing_mme_nightly", "Chicago_IL", dt.datetime(2026, 11, 23, 3, 0), 2) == (
        "hmn-chicago-il-20261123-r2"
    )
    with pytest.raises(ValueError):
        training_job_name("housing_mme_nightly", "Chicago_IL", "2026-11-23", -1)


def test_training_job_names_stay_valid_for_long_dag_ids_and_locations():
    rng = random.Random(7)
    long_location = "Abcdefghij" * 4 + "_TX"
    for _ in range(500):
        dag_id = "_".join(_random_text(rng, 12) or "x" for _ in range(rng.randint(1, 20))) + "a"
        location = rng.choice([*SEED_LOCATIONS, long_location])
        name = training_job_name(dag_id, location, "2026-11-23", rng.randint(0, 50))
        assert is_valid_sagemaker_name(name) and len(name) <= 63


def test_run_date_coercion():
    for value in ("2026-11-23", "20261123", "2026-11-23T00:00:00+00:00", dt.datetime(2026, 11, 23, 12)):
        assert coerce_run_date(value) == dt.date(2026, 11, 23)
    with pytest.raises(ValueError):
        coerce_run_date("yesterday")


def test_versions_sort_by_date_and_revision():
    versions = [
        model_version("Chicago_IL", "2026-11-23", revision=1),
        model_version("Chicago_IL", "2026-01-02"),
        model_version("Chicago_IL", "2026-11-23"),
        model_version("Chicago_IL", "2025-12-31"),
        model_version("Chicago_IL", "2026-11-23", revision=10),
    ]
    assert sorted(versions) == ["20251231", "20260102", "20261123", "20261123-r01", "20261123-r10"]


def test_artifact_key_round_trip_and_uniqueness():
    key = mme_artifact_key("Chicago_IL", "20261123")
    assert key == "Chicago_IL/Chicago_IL-20261123.tar.gz"
    assert parse_mme_artifact_key(key) == ("Chicago_IL", "20261123")
    keys = {
        mme_artifact_key(loc, model_version(loc, dt.date(2026, 11, 1) + dt.timedelta(days=d)))
        for loc in SEED_LOCATIONS
        for d in range(30)
    }
    assert len(keys) == 300
    for k in keys:
        assert mme_artifact_key(*parse_mme_artifact_key(k)) == k


@pytest.mark.parametrize(
    "key",
    [
        "Chicago_IL.tar.gz",
        "Chicago_IL/Houston_TX-20261123.tar.gz",
        "Chicago_IL/Chicago_IL-20261399.tar.gz",
        "Chicago_IL/Chicago_IL-latest.tar.gz",
        "prefix/Chicago_IL/Chicago_IL-20261123.tar.gz",
        "Chicago_XX/Chicago_XX-20261123.tar.gz",
        "Chicago_IL/Chicago_IL-20261123.tar",
    ],
)
def test_foreign_keys_are_refused(key):
    with pytest.raises(ValueError):
        parse_mme_artifact_key(key)


def test_bad_versions_are_refused():
    with pytest.raises(ValueError):
        mme_artifact_key("Chicago_IL", "2026-11-23")
    with pytest.raises(ValueError):
        model_version("Chicago_IL", "2026-11-23", revision=100)
