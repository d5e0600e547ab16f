"""The synthetic feed: deterministic, the seed's formula, realistic bad rows, fast."""

import csv
import io
import time

import pytest

from include.housing.feed import (
    FEATURE_COLUMNS,
    LABEL_COLUMN,
    MAX_YEAR,
    PRICE_FLOOR,
    PRICE_NOISE_BOUND,
    RAW_COLUMNS,
    generate_listings,
    location_price_level,
    seed_price,
)
from include.housing.locations import SEED_LOCATIONS


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_columns_follow_the_seed_order():
    assert LABEL_COLUMN == "PRICE"
    assert FEATURE_COLUMNS == (
        "YEAR_BUILT",
        "SQUARE_FEET",
        "NUM_BEDROOMS",
        "NUM_BATHROOMS",
        "LOT_ACRES",
        "GARAGE_SPACES",
    )
    assert ("LISTING_ID", "PRICE", *FEATURE_COLUMNS) == RAW_COLUMNS
    header = generate_listings("Chicago_IL", "2026-11-23", 5).splitlines()[0]
    assert header.split(",") == list(RAW_COLUMNS)


def test_same_location_and_date_give_identical_csv():
    assert generate_listings("Chicago_IL", "2026-11-23", 300) == generate_listings("Chicago_IL", "2026-11-23", 300)


def test_different_date_or_location_give_different_csv():
    base = generate_listings("Chicago_IL", "2026-11-23", 300)
    assert generate_listings("Chicago_IL", "2026-11-24", 300) != base
    other = _rows(generate_listings("Houston_TX", "2026-11-23", 300))
    assert [r["PRICE"] for r in other] != [r["PRICE"] for r in _rows(base)]


def test_row_count_and_unique_listing_ids():
    rows = _rows(generate_listings("Dallas_TX", "2026-11-23", 1000))
    assert len(rows) == 1000
    assert len({r["LISTING_ID"] for r in rows}) == 1000
    assert generate_listings("Dallas_TX", "2026-11-23", 0).strip() == ",".join(RAW_COLUMNS)


@pytest.mark.parametrize("location", ["Chicago_IL", "SanFrancisco_CA", "Boise_ID"])
def test_seed_formula_holds_within_the_noise_bound(location):
    level = location_price_level(location)
    for row in _rows(generate_listings(location, "2026-11-23", 2000)):
        year, sqft = int(row["YEAR_BUILT"]), int(row["SQUARE_FEET"])
        bedrooms, bathrooms = int(row["NUM_BEDROOMS"]), float(row["NUM_BATHROOMS"])
        acres, garage = float(row["LOT_ACRES"]), int(row["GARAGE_SPACES"])
        assert 2 <= bedrooms <= 6 and bathrooms in (1.0, 1.5, 2.0, 2.5, 3.0) and 0 <= garage <= 3
        assert year <= MAX_YEAR and sqft > 0 and acres > 0
        expected = max(seed_price(year, sqft, bedrooms, bathrooms, acres, garage), PRICE_FLOOR) * level
        assert abs(int(row["PRICE"]) - expected) <= PRICE_NOISE_BOUND * expected + 1, row


def test_noise_is_really_there():
    rows = _rows(generate_listings("Phoenix_AZ", "2026-11-23", 500))
    level = location_price_level("Phoenix_AZ")
    exact = 0
    for row in rows:
        formula = seed_price(
            int(row["YEAR_BUILT"]),
            int(row["SQUARE_FEET"]),
            int(row["NUM_BEDROOMS"]),
            float(row["NUM_BATHROOMS"]),
            float(row["LOT_ACRES"]),
            int(row["GARAGE_SPACES"]),
        )
        exact += abs(int(row["PRICE"]) - formula * level) <= 1
    assert exact < 25


def test_locations_have_different_price_levels():
    levels = {loc: location_price_level(loc) for loc in SEED_LOCATIONS}
    assert levels["SanFrancisco_CA"] > levels["Chicago_IL"] > levels["SanAntonio_TX"]
    assert location_price_level("Boise_ID") == location_price_level("Boise_ID")
    assert 0.7 <= location_price_level("Boise_ID") <= 1.5


def test_year_built_is_capped_at_the_run_year_for_old_dates():
    rows = _rows(generate_listings("Chicago_IL", "2010-06-01", 1000))
    assert max(int(r["YEAR_BUILT"]) for r in rows) <= 2010


def test_bad_fraction_injects_the_expected_number_and_kinds_of_bad_rows():
    clean = _rows(generate_listings("Chicago_IL", "2026-11-23", 1000))
    dirty = _rows(generate_listings("Chicago_IL", "2026-11-23", 1000, bad_fraction=0.2))
    changed = [(c, d) for c, d in zip(clean, dirty, strict=True) if c != d]
    assert len(changed) == 200
    seen = set()
    for _, row in changed:
        values = [row[c] for c in (LABEL_COLUMN, *FEATURE_COLUMNS)]
        if "" in values:
            seen.add("missing")
        elif row["SQUARE_FEET"].startswith("-"):
            seen.add("negative")
        elif row["YEAR_BUILT"].isdigit() and int(row["YEAR_BUILT"]) > 2026:
            seen.add("future")
        else:
            assert any(not v.replace(".", "").isdigit() for v in values), row
            seen.add("text")
    assert seen == {"missing", "negative", "future", "text"}


def test_invalid_arguments():
    with pytest.raises(ValueError):
        generate_listings("Chicago", "2026-11-23", 10)
    with pytest.raises(ValueError):
        generate_listings("Chicago_IL", "2026-11-23", -1)
    with pytest.raises(ValueError):
        generate_listings("Chicago_IL", "2026-11-23", 10, bad_fraction=1.5)


def test_forty_locations_of_a_thousand_houses_is_fast():
    locations = [*SEED_LOCATIONS] * 4
    generate_listings("Chicago_IL", "2026-11-23", 10)  # numpy import out of the timing
    start = time.perf_counter()
    for location in locations:
        generate_listings(location, "2026-11-23", 1000)
    assert time.perf_counter() - start < 1.0
