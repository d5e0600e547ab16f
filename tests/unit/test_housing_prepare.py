"""Validation, quarantine and the 60/30/10 label-first splits."""

import csv
import io
import json

import pytest

from include.housing.feed import FEATURE_COLUMNS, RAW_COLUMNS, generate_listings
from include.housing.prepare import (
    REASON_COLUMN,
    DataValidationError,
    TooManyBadRowsError,
    channel_prefix,
    prepare_listings,
    split_sizes,
)

DAY = "2026-11-23"
HEADER = ",".join(RAW_COLUMNS)


def _prepare(text: str, **kwargs):
    kwargs.setdefault("seed", 1)
    kwargs.setdefault("run_date", DAY)
    return prepare_listings(text, location="Chicago_IL", **kwargs)


def _lines(text: str) -> list[list[str]]:
    return [line.split(",") for line in text.splitlines()]


def test_clean_feed_splits_60_30_10_label_first_without_header():
    prepared = _prepare(generate_listings("Chicago_IL", DAY, 1000))
    assert prepared.rows_bad == 0 and prepared.quarantine_csv == ""
    assert (prepared.rows_train, prepared.rows_validation, prepared.rows_test) == (600, 300, 100)
    train = _lines(prepared.train_csv)
    assert len(train) == 600 and len(_lines(prepared.validation_csv)) == 300 and len(_lines(prepared.test_csv)) == 100
    for row in train:
        assert len(row) == 1 + len(FEATURE_COLUMNS)
        assert all(cell.replace(".", "").isdigit() for cell in row)  # no header, no text, no index
    assert "PRICE" not in prepared.train_csv


def test_label_is_the_first_column():
    raw = f"{HEADER}\n" + "\n".join(f"id{i},{300000 + i},1990,2000,3,2.0,0.5,1" for i in range(20)) + "\n"
    prepared = _prepare(raw)
    labels = sorted(int(row[0]) for row in _lines(prepared.train_csv + prepared.validation_csv + prepared.test_csv))
    assert labels == [300000 + i for i in range(20)]
    assert all(row[1:] == ["1990", "2000", "3", "2.0", "0.5", "1"] for row in _lines(prepared.train_csv))


@pytest.mark.parametrize("good", [10, 11, 17, 33, 99, 250, 1001])
def test_split_proportions_within_one_row(good):
    train, validation, test = split_sizes(good)
    assert train + validation + test == good
    for size, share in ((train, 0.6), (validation, 0.3), (test, 0.1)):
        assert abs(size - share * good) <= 1
        assert size >= 1


def test_splits_are_deterministic_by_seed_and_partition_the_rows():
    text = generate_listings("Chicago_IL", DAY, 200)
    first, again, other = _prepare(text, seed=5), _prepare(text, seed=5), _prepare(text, seed=6)
    assert first == again
    assert first.train_csv != other.train_csv

    def rows(prepared):
        return sorted((prepared.train_csv + prepared.validation_csv + prepared.test_csv).splitlines())

    assert rows(first) == rows(other)
    assert len(rows(first)) == 200


def test_quarantine_has_raw_columns_and_a_reason_per_row():
    raw = "\n".join(
        [
            HEADER,
            "a,300000,1990,-2000,3,2.0,0.5,1",
            "b,,1990,2000,3,2.0,0.5,1",
            "c,300000,1990,lots,3,2.0,0.5,1",
            "d,300000,2031,2000,3,2.0,0.5,1",
            "e,300000,1990,2000,2.5,2.0,0.5,1",
            "a,300000,1990,2000,3,2.0,0.5,1",
            *[f"g{i},300000,1990,2000,3,2.0,0.5,1" for i in range(30)],
        ]
    )
    prepared = _prepare(raw, max_bad_fraction=0.5)
    assert prepared.rows_total == 36 and prepared.rows_bad == 6 and prepared.rows_good == 30
    quarantine = list(csv.DictReader(io.StringIO(prepared.quarantine_csv)))
    assert list(quarantine[0]) == [*RAW_COLUMNS, REASON_COLUMN]
    reasons = [row[REASON_COLUMN] for row in quarantine]  # quarantine keeps the input order
    assert reasons == [
        "SQUARE_FEET -2000 outside [100, 20000]",
        "PRICE missing",
        "SQUARE_FEET not numeric: 'lots'",
        "YEAR_BUILT 2031 is after 2026",
        "NUM_BEDROOMS not a whole number: 2.5",
        "LISTING_ID duplicate 'a'",
    ]
    summary = prepared.to_summary()
    assert json.loads(json.dumps(summary)) == summary
    assert summary["rows_bad"] == 6 and summary["bad_reasons"]["PRICE missing"] == 1
    assert "train_csv" not in summary


def test_feed_bad_rows_are_all_caught():
    text = generate_listings("Chicago_IL", DAY, 1000, bad_fraction=0.1)
    prepared = _prepare(text)
    assert prepared.rows_bad == 100
    assert prepared.rows_train + prepared.rows_validation + prepared.rows_test == 900


def test_too_many_bad_rows_message_says_how_many_and_why():
    text = generate_listings("Chicago_IL", DAY, 200, bad_fraction=0.5)
    with pytest.raises(TooManyBadRowsError) as error:
        _prepare(text, max_bad_fraction=0.2)
    message = str(error.value)
    assert "100 of 200 rows were bad" in message
    assert "commonest reasons:" in message
    assert "YEAR_BUILT in the future" in message or "SQUARE_FEET out of range" in message
    assert isinstance(error.value, DataValidationError) and isinstance(error.value, ValueError)


def test_max_bad_fraction_is_inclusive():
    text = generate_listings("Chicago_IL", DAY, 100, bad_fraction=0.2)
    assert _prepare(text, max_bad_fraction=0.2).rows_bad == 20


def test_schema_mismatch_names_the_columns():
    text = generate_listings("Chicago_IL", DAY, 20).replace("LOT_ACRES", "ACRES")
    with pytest.raises(DataValidationError) as error:
        _prepare(text)
    assert "missing column(s) LOT_ACRES" in str(error.value)
    assert "unexpected column(s) ACRES" in str(error.value)


def test_empty_and_too_small_inputs():
    with pytest.raises(DataValidationError, match="empty"):
        _prepare("")
    with pytest.raises(DataValidationError, match="no rows"):
        _prepare(HEADER + "\n")
    with pytest.raises(DataValidationError, match="at least 10"):
        _prepare(generate_listings("Chicago_IL", DAY, 5))


def test_year_limit_follows_the_run_date():
    raw = HEADER + "\n" + "\n".join(f"i{i},300000,2020,2000,3,2.0,0.5,1" for i in range(12))
    with pytest.raises(TooManyBadRowsError, match="YEAR_BUILT in the future"):
        _prepare(raw, run_date="2019-05-01")
    assert _prepare(raw, run_date="2020-05-01").rows_bad == 0


def test_channel_prefix():
    assert channel_prefix("s3://bucket/housing/", "2026-11-23", "Chicago_IL") == (
        "s3://bucket/housing/date=2026-11-23/location=Chicago_IL"
    )
    assert channel_prefix("data", "20261123", "Houston_TX") == "data/date=2026-11-23/location=Houston_TX"
    with pytest.raises(ValueError):
        channel_prefix("data", "2026-11-23", "houston")


def test_ragged_rows_are_quarantined_not_fatal():
    good = [f"g{i},300000,1990,2000,3,2.0,0.5,1" for i in range(20)]
    raw = "\n".join([HEADER, "short,1,2", *good, "long,300000,1990,2000,3,2.0,0.5,1,extra", ""])
    prepared = _prepare(raw, max_bad_fraction=0.2)
    assert prepared.rows_total == 22 and prepared.rows_bad == 2 and prepared.rows_good == 20
    quarantine = list(csv.DictReader(io.StringIO(prepared.quarantine_csv)))
    assert [row["LISTING_ID"] for row in quarantine] == ["short", "long"]
    assert quarantine[0][REASON_COLUMN].startswith("row has 3 fields, expected 8")
    assert quarantine[1][REASON_COLUMN] == "row has 9 fields, expected 8"
    assert prepared.bad_reasons["wrong number of fields"] == 2


def test_prices_with_cents_are_kept_exactly():
    raw = HEADER + "\n" + "\n".join(f"i{i},300000.5,1990,2000,3,2.0,0.5,1" for i in range(10))
    prepared = _prepare(raw)
    assert {row[0] for row in _lines(prepared.train_csv)} == {"300000.5"}
