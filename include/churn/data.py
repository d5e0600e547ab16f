"""An offline, synthetic stand-in for the telecom churn CSV (``raw_churn.csv``) of the seed overview notebook.

**Schema.** :func:`generate` returns the notebook's 21 columns (``COLUMNS``: the well-known customer churn data
set AWS ships with its XGBoost churn example, ``State`` .. ``CustServ Calls`` and the label ``Churn?``), 3,333
rows by default, ``Churn?`` written as ``True.``/``False.`` and the plans as ``yes``/``no``, as in the original.

**Values** (each column drawn close to the original's distribution):

* ``State`` one of the 50 states or DC; ``Area Code`` 408, 415 or 510; ``Phone`` ``ddd-dddd``;
* ``Account Length`` ~ Normal(101, 40) clipped to [1, 243];
* ``Int'l Plan`` yes for ~10 %, ``VMail Plan`` yes for ~28 %; ``VMail Message`` 0 without a voice-mail plan,
  else ~ Normal(29, 8) clipped to [4, 51];
* minutes per period (day, evening, night, international) normal around 180, 200, 200 and 10; calls normal
  around 100 (international: Poisson(4.5)); each charge is minutes times the period's rate (0.17, 0.085,
  0.045, 0.27 per minute), so the charges carry nothing the minutes do not;
* ``CustServ Calls`` ~ Poisson(1.56).

**Signal** (documented, learnable, non-linear as in the original): the log-odds of churn are

    -2.8 + 2.2 * [Day Mins > 245] + 0.012 * (Day Mins - 180) + 1.8 * [CustServ Calls >= 4]
    + 1.9 * [Int'l Plan = yes] + 1.2 * [Int'l Plan = yes and Intl Mins > 13] - 1.0 * [VMail Plan = yes]

so about 14-15 % of customers churn (the original has 483 of 3,333, 14.5 %). Tree models (XGBoost, a
RandomForest) reach an AUC of about 0.83-0.9 on it; the labels are drawn, not thresholded, so no model is perfect.

**Missing values.** The original has none; ``missing_fraction`` (default 1 %) blanks that share of ``Day Mins``
and of ``State`` so the notebook's imputers (median for numbers, ``missing`` for categories) have work to do.

Everything is seeded (``numpy.random.default_rng(seed)``); no network access.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

ROWS = 3333  # the original data set's size
LABEL = "Churn?"
LABEL_VALUES = ("False.", "True.")
COLUMNS = [
    "State", "Account Length", "Area Code", "Phone", "Int'l Plan", "VMail Plan", "VMail Message", "Day Mins",
    "Day Calls", "Day Charge", "Eve Mins", "Eve Calls", "Eve Charge", "Night Mins", "Night Calls", "Night Charge",
    "Intl Mins", "Intl Calls", "Intl Charge", "CustServ Calls", LABEL,
]  # fmt: skip
STATES = [
    "AK", "AL", "AR", "AZ", "CA", "CO", "CT", "DC", "DE", "FL", "GA", "HI", "IA", "ID", "IL", "IN", "KS", "KY",
    "LA", "MA", "MD", "ME", "MI", "MN", "MO", "MS", "MT", "NC", "ND", "NE", "NH", "NJ", "NM", "NV", "NY", "OH",
    "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VA", "VT", "WA", "WI", "WV", "WY",
]  # fmt: skip
AREA_CODES = (408, 415, 510)
RATE_PER_MINUTE = {"Day": 0.17, "Eve": 0.085, "Night": 0.045, "Intl": 0.27}
MISSING_FRACTION = 0.01
MIN_ROWS, MAX_ROWS = 100, 1_000_000


def churn_log_odds(frame: pd.DataFrame) -> np.ndarray:
    """The documented log-odds of churn for each row (see the module docstring); NaN minutes count as 180."""
    day_mins = frame["Day Mins"].fillna(180.0).to_numpy(dtype=float)
    intl_plan = (frame["Int'l Plan"] == "yes").to_numpy()
    return (
        -2.8
        + 2.2 * (day_mins > 245)
        + 0.012 * (day_mins - 180)
        + 1.8 * (frame["CustServ Calls"].to_numpy() >= 4)
        + 1.9 * intl_plan
        + 1.2 * (intl_plan & (frame["Intl Mins"].to_numpy(dtype=float) > 13))
        - 1.0 * (frame["VMail Plan"] == "yes").to_numpy()
    )


def generate(rows: int = ROWS, seed: int = 0, missing_fraction: float = MISSING_FRACTION) -> pd.DataFrame:
    """``rows`` customers with the notebook's 21 columns, seeded; ``Churn?`` drawn from :func:`churn_log_odds`."""
    import pandas as pd

    if isinstance(rows, bool) or not isinstance(rows, int) or not MIN_ROWS <= rows <= MAX_ROWS:
        raise ValueError(f"rows must be an integer from {MIN_ROWS} to {MAX_ROWS}, got {rows!r}")
    if not 0.0 <= missing_fraction < 0.5:
        raise ValueError(f"missing_fraction must be in [0, 0.5), got {missing_fraction!r}")
    rng = np.random.default_rng(seed)

    def minutes(mean: float, sd: float) -> np.ndarray:
        return np.clip(rng.normal(mean, sd, rows), 0, None).round(1)

    def calls(mean: float, sd: float) -> np.ndarray:
        return np.clip(rng.normal(mean, sd, rows).round(), 0, None).astype(int)

    vmail_plan = rng.choice(["yes", "no"], rows, p=[0.28, 0.72])
    frame = pd.DataFrame(
        {
            "State": rng.choice(STATES, rows),
            "Account Length": np.clip(rng.normal(101, 40, rows).round(), 1, 243).astype(int),
            "Area Code": rng.choice(AREA_CODES, rows),
            "Phone": [
                f"{a}-{b:04d}" for a, b in zip(rng.integers(327, 423, rows), rng.integers(0, 10_000, rows), strict=True)
            ],
            "Int'l Plan": rng.choice(["yes", "no"], rows, p=[0.1, 0.9]),
            "VMail Plan": vmail_plan,
            "VMail Message": np.where(vmail_plan == "yes", np.clip(rng.normal(29, 8, rows).round(), 4, 51), 0).astype(
                int
            ),
            "Day Mins": minutes(180, 54),
            "Day Calls": calls(100, 20),
            "Eve Mins": minutes(201, 51),
            "Eve Calls": calls(100, 20),
            "Night Mins": minutes(201, 51),
            "Night Calls": calls(100, 20),
            "Intl Mins": np.clip(rng.normal(10.2, 2.8, rows), 0, 20).round(1),
            "Intl Calls": rng.poisson(4.5, rows),
            "CustServ Calls": rng.poisson(1.56, rows),
        }
    )
    for period, rate in RATE_PER_MINUTE.items():
        frame[f"{period} Charge"] = (frame[f"{period} Mins"] * rate).round(2)
    churn_probability = 1.0 / (1.0 + np.exp(-churn_log_odds(frame)))
    frame[LABEL] = np.where(rng.random(rows) < churn_probability, LABEL_VALUES[1], LABEL_VALUES[0])
    missing = int(round(rows * missing_fraction))
    if missing:
        # The label was drawn from the complete minutes; the preprocessing sees them blanked, as real gaps are.
        frame.loc[rng.choice(rows, missing, replace=False), "Day Mins"] = np.nan
        frame.loc[rng.choice(rows, missing, replace=False), "State"] = np.nan
    return frame[COLUMNS]


def to_csv_bytes(frame: pd.DataFrame) -> bytes:
    """The frame as ``raw_churn.csv``: a header row, no index, as the notebook reads it with ``pd.read_csv``."""
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    return buffer.getvalue().encode("utf-8")
