"""The daily listings feed: the AWS seed notebook's synthetic houses, one CSV per location and date.

Seed notebook ("xgboost_multi_model_endpoint_home_value"), per house::

    SQUARE_FEET   = int(normal(3000, 750))
    NUM_BEDROOMS  = randint(2, 7)              # 2..6
    NUM_BATHROOMS = randint(2, 7) / 2          # 1.0..3.0
    LOT_ACRES     = round(normal(1.0, 0.25), 2)
    GARAGE_SPACES = randint(0, 4)              # 0..3
    YEAR_BUILT    = min(MAX_YEAR, int(normal(1995, 10)))
    PRICE = int(SQUARE_FEET*150 + 10000*NUM_BEDROOMS + 15000*NUM_BATHROOMS + 15000*LOT_ACRES
                + 15000*GARAGE_SPACES - 5000*(MAX_YEAR - YEAR_BUILT))

What this module adds, so that models differ per location and are not trivially exact:

* a per-location price level (:func:`location_price_level`): a fixed, plausible multiplier for the
  ten seed cities, a stable hash-derived one in [0.7, 1.5] for any other location;
* multiplicative noise ``normal(0, PRICE_NOISE_SD)`` clipped to +-``PRICE_NOISE_BOUND``, so
  ``PRICE == round(max(formula, PRICE_FLOOR) * level * (1 + noise))`` with ``|noise| <= bound``;
* guards that keep a clean feed valid: SQUARE_FEET >= 500, LOT_ACRES >= 0.05, the formula price
  floored at ``PRICE_FLOOR`` (extreme draws could make it negative), and YEAR_BUILT capped at the
  run's year as well as at MAX_YEAR (a house listed in 2015 was not built in 2019). The formula
  itself keeps MAX_YEAR = 2019 as in the seed.

Everything is seeded by a SHA-256 of (location, date), never Python's salted ``hash()``, so the same
location and date give byte-identical CSV in every process.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from include.housing.locations import validate_location
from include.housing.naming import coerce_run_date

__all__ = [
    "BAD_ROW_KINDS",
    "FEATURE_COLUMNS",
    "LABEL_COLUMN",
    "LISTING_ID_COLUMN",
    "MAX_YEAR",
    "PRICE_FLOOR",
    "PRICE_NOISE_BOUND",
    "PRICE_NOISE_SD",
    "RAW_COLUMNS",
    "generate_listings",
    "location_price_level",
    "seed_price",
    "stable_seed",
]

MAX_YEAR = 2019
LABEL_COLUMN = "PRICE"
# The seed's column order after the label.
FEATURE_COLUMNS: tuple[str, ...] = (
    "YEAR_BUILT",
    "SQUARE_FEET",
    "NUM_BEDROOMS",
    "NUM_BATHROOMS",
    "LOT_ACRES",
    "GARAGE_SPACES",
)
LISTING_ID_COLUMN = "LISTING_ID"
RAW_COLUMNS: tuple[str, ...] = (LISTING_ID_COLUMN, LABEL_COLUMN, *FEATURE_COLUMNS)

PRICE_NOISE_SD = 0.03
PRICE_NOISE_BOUND = 0.08
PRICE_FLOOR = 25_000
MIN_SQUARE_FEET = 500
MIN_LOT_ACRES = 0.05

# Rough relative house-price levels of the seed cities (national level = 1.0).
_SEED_PRICE_LEVELS: dict[str, float] = {
    "NewYork_NY": 1.9,
    "LosAngeles_CA": 1.8,
    "Chicago_IL": 0.95,
    "Houston_TX": 0.85,
    "Dallas_TX": 0.95,
    "Phoenix_AZ": 1.0,
    "Philadelphia_PA": 0.9,
    "SanAntonio_TX": 0.8,
    "SanDiego_CA": 1.6,
    "SanFrancisco_CA": 2.2,
}

BAD_ROW_KINDS: tuple[str, ...] = ("missing_value", "negative_square_feet", "non_numeric", "future_year")
# Text a vendor really puts in numeric cells; no commas or quotes, so no CSV quoting is needed.
_JUNK_TEXT: tuple[str, ...] = ("n/a", "unknown", "TBD", "call agent", "3 bed", "see listing")


def stable_seed(*parts: str) -> int:
    """A 64-bit seed from text parts, identical across processes and Python versions."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big")


def location_price_level(location: str) -> float:
    """The location's price multiplier: fixed for seed cities, hash-derived in [0.7, 1.5] otherwise."""
    validate_location(location)
    if location in _SEED_PRICE_LEVELS:
        return _SEED_PRICE_LEVELS[location]
    unit = stable_seed("price-level", location) / 2**64
    return round(0.7 + 0.8 * unit, 3)


def seed_price(
    year_built: int,
    square_feet: int,
    num_bedrooms: int,
    num_bathrooms: float,
    lot_acres: float,
    garage_spaces: int,
) -> int:
    """The seed notebook's price formula, before location level, floor and noise."""
    return int(
        square_feet * 150
        + 10000 * num_bedrooms
        + 15000 * num_bathrooms
        + 15000 * lot_acres
        + 15000 * garage_spaces
        - 5000 * (MAX_YEAR - year_built)
    )


def generate_listings(location: str, run_date: dt.date | str, houses: int, *, bad_fraction: float = 0.0) -> str:
    """The day's raw listings for ``location`` as CSV text with a header (columns: RAW_COLUMNS).

    ``bad_fraction`` of the rows (rounded) are corrupted the way vendor feeds go wrong: a missing
    value, negative square feet, text in a numeric cell, or a year built after the run's year.
    Clean rows are the same whatever ``bad_fraction`` is: corruption uses its own random stream.
    """
    import numpy as np

    validate_location(location)
    day = coerce_run_date(run_date)
    if isinstance(houses, bool) or not isinstance(houses, int) or houses < 0:
        raise ValueError(f"houses must be a non-negative int, got {houses!r}")
    if not 0.0 <= bad_fraction <= 1.0:
        raise ValueError(f"bad_fraction must be within [0, 1], got {bad_fraction!r}")

    rng = np.random.default_rng(stable_seed("listings", location, day.isoformat()))
    square_feet = np.maximum(rng.normal(3000, 750, houses).astype(np.int64), MIN_SQUARE_FEET)
    bedrooms = rng.integers(2, 7, houses)
    bathrooms = rng.integers(2, 7, houses) / 2
    lot_acres = np.maximum(np.round(rng.normal(1.0, 0.25, houses), 2), MIN_LOT_ACRES)
    garage = rng.integers(0, 4, houses)
    year_built = np.minimum(min(MAX_YEAR, day.year), rng.normal(1995, 10, houses).astype(np.int64))
    formula = (
        square_feet * 150
        + 10000 * bedrooms
        + 15000 * bathrooms
        + 15000 * lot_acres
        + 15000 * garage
        - 5000 * (MAX_YEAR - year_built)
    ).astype(np.int64)  # int() in the seed truncates toward zero, as astype does
    noise = np.clip(rng.normal(0.0, PRICE_NOISE_SD, houses), -PRICE_NOISE_BOUND, PRICE_NOISE_BOUND)
    price = np.rint(np.maximum(formula, PRICE_FLOOR) * location_price_level(location) * (1 + noise))

    stamp = day.strftime("%Y%m%d")
    columns: dict[str, list[str]] = {
        LISTING_ID_COLUMN: [f"{location}-{stamp}-{i:06d}" for i in range(houses)],
        LABEL_COLUMN: [str(v) for v in price.astype(np.int64).tolist()],
        "YEAR_BUILT": [str(v) for v in year_built.tolist()],
        "SQUARE_FEET": [str(v) for v in square_feet.tolist()],
        "NUM_BEDROOMS": [str(v) for v in bedrooms.tolist()],
        "NUM_BATHROOMS": [f"{v:.1f}" for v in bathrooms.tolist()],
        "LOT_ACRES": [f"{v:.2f}" for v in lot_acres.tolist()],
        "GARAGE_SPACES": [str(v) for v in garage.tolist()],
    }
    if bad_fraction and houses:
        _corrupt(columns, houses, bad_fraction, day, np.random.default_rng(stable_seed("bad", location, stamp)))

    lines = [",".join(RAW_COLUMNS)]
    lines.extend(",".join(row) for row in zip(*(columns[c] for c in RAW_COLUMNS), strict=True))
    return "\n".join(lines) + "\n"


def _corrupt(columns: dict[str, list[str]], houses: int, bad_fraction: float, day: dt.date, rng) -> None:
    """Overwrite round(houses * bad_fraction) random rows in place, one defect per row."""
    count = min(houses, round(houses * bad_fraction))
    rows = rng.choice(houses, size=count, replace=False)
    kinds = rng.integers(0, len(BAD_ROW_KINDS), count)
    numeric = (LABEL_COLUMN, *FEATURE_COLUMNS)
    for row, kind in zip(rows.tolist(), kinds.tolist(), strict=True):
        name = BAD_ROW_KINDS[kind]
        if name == "missing_value":
            columns[numeric[rng.integers(len(numeric))]][row] = ""
        elif name == "negative_square_feet":
            columns["SQUARE_FEET"][row] = "-" + columns["SQUARE_FEET"][row]
        elif name == "non_numeric":
            column = numeric[rng.integers(len(numeric))]
            columns[column][row] = _JUNK_TEXT[rng.integers(len(_JUNK_TEXT))]
        else:  # future_year
            columns["YEAR_BUILT"][row] = str(day.year + int(rng.integers(1, 6)))
