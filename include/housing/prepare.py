"""Validate a day's raw listings, quarantine bad rows and split the rest into training channels.

Output formats are what the built-in SageMaker XGBoost (and Linear Learner) read with
``ContentType=text/csv``: label in the first column, no header, no index.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import Counter
from dataclasses import asdict, dataclass, field

from include.housing.feed import FEATURE_COLUMNS, LABEL_COLUMN, LISTING_ID_COLUMN, RAW_COLUMNS
from include.housing.locations import validate_location
from include.housing.naming import coerce_run_date

__all__ = [
    "MIN_GOOD_ROWS",
    "REASON_COLUMN",
    "SPLIT_FRACTIONS",
    "VALUE_RANGES",
    "DataValidationError",
    "PreparedData",
    "TooManyBadRowsError",
    "channel_prefix",
    "prepare_listings",
    "split_sizes",
]

REASON_COLUMN = "REASON"
SPLIT_FRACTIONS = (0.6, 0.3, 0.1)  # train, validation, test
# With fewer good rows one of the three channels would be empty.
MIN_GOOD_ROWS = 10
MIN_YEAR_BUILT = 1800

# Inclusive bounds; None = the run's year for YEAR_BUILT. PRICE's lower bound is exclusive (> 0).
VALUE_RANGES: dict[str, tuple[float, float | None]] = {
    LABEL_COLUMN: (0, 1_000_000_000),
    "YEAR_BUILT": (MIN_YEAR_BUILT, None),
    "SQUARE_FEET": (100, 20_000),
    "NUM_BEDROOMS": (1, 20),
    "NUM_BATHROOMS": (0.5, 20),
    "LOT_ACRES": (0, 100),
    "GARAGE_SPACES": (0, 10),
}
_WHOLE_NUMBER_COLUMNS = ("YEAR_BUILT", "SQUARE_FEET", "NUM_BEDROOMS", "GARAGE_SPACES")


class DataValidationError(ValueError):
    """The listings cannot be used: wrong columns, empty, or too few good rows."""


class TooManyBadRowsError(DataValidationError):
    """More rows failed the checks than the run allows (``max_bad_fraction``)."""


@dataclass(frozen=True)
class PreparedData:
    """One location's channels for one run, as CSV text ready to upload."""

    location: str
    train_csv: str
    validation_csv: str
    test_csv: str
    quarantine_csv: str
    rows_total: int
    rows_bad: int
    rows_good: int
    rows_train: int
    rows_validation: int
    rows_test: int
    seed: int
    bad_reasons: dict[str, int] = field(default_factory=dict)

    @property
    def bad_fraction(self) -> float:
        return self.rows_bad / self.rows_total if self.rows_total else 0.0

    def to_summary(self) -> dict:
        """Counts and reasons without the CSV bodies: small and JSON-safe, fit for XCom."""
        summary = {k: v for k, v in asdict(self).items() if not k.endswith("_csv")}
        summary["bad_reasons"] = dict(self.bad_reasons)
        summary["bad_fraction"] = round(self.bad_fraction, 6)
        summary["columns"] = [LABEL_COLUMN, *FEATURE_COLUMNS]
        return summary


def split_sizes(rows: int) -> tuple[int, int, int]:
    """Train/validation/test row counts for ``rows`` good rows: 60/30/10, each within one row."""
    train = round(rows * SPLIT_FRACTIONS[0])
    validation = round(rows * SPLIT_FRACTIONS[1])
    return train, validation, rows - train - validation


def channel_prefix(root_prefix: str, run_date: dt.date | str, location: str) -> str:
    """``<root>/date=2026-11-23/location=Chicago_IL``: one partition per run date and location."""
    validate_location(location)
    root = root_prefix.rstrip("/")
    if not root:
        raise ValueError("root_prefix must not be empty")
    return f"{root}/date={coerce_run_date(run_date).isoformat()}/location={location}"


def prepare_listings(
    raw_csv: str,
    *,
    location: str,
    max_bad_fraction: float = 0.2,
    seed: int,
    run_date: dt.date | str | None = None,
) -> PreparedData:
    """Check the raw listings, set bad rows aside with a reason each, split the good ones.

    ``run_date`` (when given) bounds YEAR_BUILT by the run's year instead of today's, so a backfill
    of a past date judges its data as it would have been judged on that date.
    Raises :class:`DataValidationError` for a wrong schema or too few good rows, and
    :class:`TooManyBadRowsError` when the bad fraction exceeds ``max_bad_fraction``.
    """
    import numpy as np
    import pandas as pd

    validate_location(location)
    if not 0.0 <= max_bad_fraction <= 1.0:
        raise ValueError(f"max_bad_fraction must be within [0, 1], got {max_bad_fraction!r}")
    max_year = coerce_run_date(run_date).year if run_date is not None else dt.date.today().year

    if not raw_csv or not raw_csv.strip():
        raise DataValidationError(f"{location}: the listings file is empty")
    # csv.reader rather than pandas.read_csv: a ragged row must be quarantined, not fail the whole
    # file (or, worse, silently turn the first column into an index). Everything stays text here:
    # numeric parsing is one of the checks.
    try:
        records = [record for record in csv.reader(io.StringIO(raw_csv)) if record]
    except csv.Error as error:
        raise DataValidationError(f"{location}: the listings are not readable CSV: {error}") from None
    header = [name.strip() for name in records[0]]
    missing = [c for c in RAW_COLUMNS if c not in header]
    extra = [c for c in header if c not in RAW_COLUMNS]
    duplicated = sorted({c for c in header if header.count(c) > 1})
    if missing or extra or duplicated:
        parts = []
        if missing:
            parts.append(f"missing column(s) {', '.join(missing)}")
        if extra:
            parts.append(f"unexpected column(s) {', '.join(extra)}")
        if duplicated:
            parts.append(f"duplicated column(s) {', '.join(duplicated)}")
        raise DataValidationError(
            f"{location}: schema mismatch: {'; '.join(parts)} (expected {', '.join(RAW_COLUMNS)})"
        )
    body = records[1:]
    total = len(body)
    if total == 0:
        raise DataValidationError(f"{location}: the listings file has a header but no rows")
    width = len(header)
    field_counts = np.array([len(record) for record in body])
    # Pad short rows and cut long ones so the frame is rectangular; the row is flagged below.
    raw = pd.DataFrame([(record + [""] * width)[:width] for record in body], columns=header, dtype=str)
    raw = raw[list(RAW_COLUMNS)]

    # One list of (category, detail) per row; category feeds the summary, detail the REASON column.
    problems: list[list[tuple[str, str]]] = [[] for _ in range(total)]

    def flag(mask, category: str, template: str | None = None, texts: list[str] | None = None) -> None:
        # The row's message is built only for flagged rows; "{value}" is the cell as written.
        for index in np.flatnonzero(mask):
            detail = template.format(value=texts[index]) if template and texts else category
            problems[index].append((category, detail))

    ragged = field_counts != width
    flag(ragged, "wrong number of fields", f"row has {{value}} fields, expected {width}", field_counts.tolist())
    ids = raw[LISTING_ID_COLUMN].str.strip()
    flag((ids == "").to_numpy(), f"{LISTING_ID_COLUMN} missing")
    dup = (ids.duplicated(keep="first") & (ids != "")).to_numpy()
    flag(dup, f"{LISTING_ID_COLUMN} duplicate", f"{LISTING_ID_COLUMN} duplicate {{value!r}}", ids.tolist())

    numbers: dict[str, np.ndarray] = {}
    for column, (low, high) in VALUE_RANGES.items():
        text = raw[column].str.strip()
        values = pd.to_numeric(text, errors="coerce").to_numpy(dtype=float)
        numbers[column] = values
        empty = (text == "").to_numpy()
        shown = text.tolist()
        flag(empty, f"{column} missing")
        bad_text = np.isnan(values) & ~empty
        flag(bad_text, f"{column} not numeric", f"{column} not numeric: {{value!r}}", shown)
        infinite = np.isinf(values)
        flag(infinite, f"{column} not finite", f"{column} not finite: {{value!r}}", shown)
        finite = np.isfinite(values)
        upper = max_year if high is None else high
        below = finite & ((values <= low) if column == LABEL_COLUMN else (values < low))
        above = finite & (values > upper)
        bound = f"(0, {upper:g}]" if column == LABEL_COLUMN else f"[{low:g}, {upper:g}]"
        if column == "YEAR_BUILT":
            flag(above, "YEAR_BUILT in the future", f"YEAR_BUILT {{value}} is after {max_year}", shown)
            flag(below, "YEAR_BUILT out of range", f"YEAR_BUILT {{value}} outside {bound}", shown)
        else:
            flag(below | above, f"{column} out of range", f"{column} {{value}} outside {bound}", shown)
        if column in _WHOLE_NUMBER_COLUMNS:
            fractional = finite & (values != np.round(values))
            flag(fractional, f"{column} not a whole number", f"{column} not a whole number: {{value}}", shown)

    bad = np.array([bool(p) for p in problems])
    bad_count = int(bad.sum())
    reasons = Counter(category for row in problems for category, _ in row)
    if bad_count / total > max_bad_fraction:
        commonest = ", ".join(f"{name} ({count})" for name, count in reasons.most_common(3))
        raise TooManyBadRowsError(
            f"{location}: {bad_count} of {total} rows were bad ({bad_count / total:.1%}, more than the "
            f"allowed {max_bad_fraction:.1%}); commonest reasons: {commonest}"
        )
    good_count = total - bad_count
    if good_count < MIN_GOOD_ROWS:
        raise DataValidationError(
            f"{location}: only {good_count} good row(s) of {total}; at least {MIN_GOOD_ROWS} are needed "
            "for a train/validation/test split"
        )

    quarantine_csv = ""
    if bad_count:
        quarantine = raw[bad].copy()
        quarantine[REASON_COLUMN] = ["; ".join(d for _, d in problems[i]) for i in np.flatnonzero(bad)]
        quarantine_csv = quarantine.to_csv(index=False, lineterminator="\n")

    good = pd.DataFrame({c: numbers[c][~bad] for c in (LABEL_COLUMN, *FEATURE_COLUMNS)})
    # Whole-number columns are checked above; the price may carry cents, so it stays float unless whole.
    for column in (LABEL_COLUMN, *_WHOLE_NUMBER_COLUMNS):
        if (good[column] == good[column].round()).all():
            good[column] = good[column].astype("int64")
    order = np.random.default_rng(seed).permutation(good_count)
    train_n, validation_n, test_n = split_sizes(good_count)

    def channel(rows) -> str:
        return good.iloc[rows].to_csv(header=False, index=False, lineterminator="\n")

    return PreparedData(
        location=location,
        train_csv=channel(order[:train_n]),
        validation_csv=channel(order[train_n : train_n + validation_n]),
        test_csv=channel(order[train_n + validation_n :]),
        quarantine_csv=quarantine_csv,
        rows_total=total,
        rows_bad=bad_count,
        rows_good=good_count,
        rows_train=train_n,
        rows_validation=validation_n,
        rows_test=test_n,
        seed=seed,
        bad_reasons=dict(reasons.most_common()),
    )
