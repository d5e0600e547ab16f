"""An offline, synthetic stand-in for the NASA NeoWs asteroid CSV the seed notebook downloads.

**Schema.** :func:`generate` returns the notebook's raw 40 columns (``RAW_COLUMNS``, NASA's own headers such as
``Est Dia in KM(min)`` and ``Miss Dist.(Astronomical)``, ``Hazardous`` last as a bool). :func:`clean` applies
the notebook's steps: normalise the headers (strip, lower case, spaces to ``_``, drop parentheses), move
``hazardous`` first, name the columns as the notebook does (``NOTEBOOK_COLUMNS``) and drop the five date/text
columns, giving 35 columns; :func:`features_and_labels` takes columns 3.. as the 32 float32 features
(``FEATURES``) and ``hazardous`` as the 0/1 label. :func:`split` is the notebook's 80/10/10 random split.

**Physics** (so the columns relate as in the real data, each derived from a few draws):

* ``H`` (absolute magnitude) ~ Normal(22.3, 2.9) clipped to [11, 32] (the notebook's bell-shaped histogram);
* diameters from ``D_km = 1329 / sqrt(albedo) * 10**(-H/5)`` with albedo 0.25 (min) and 0.05 (max), then
  metres, miles and feet;
* relative velocity log-normal around 14 km/s, also per hour and in mph; miss distance uniform in
  (0.0005, 0.5) AU, also lunar distances, km and miles;
* orbits: semi-major axis ``a`` log-normal around 1.4 AU, eccentricity ``e`` ~ 0.9 * Beta(2, 3), inclination
  |Normal(0, 12)| degrees; perihelion ``a(1-e)``, aphelion ``a(1+e)``, period ``365.25 * a**1.5`` days, mean
  motion ``360 / period``, Jupiter's Tisserand invariant from ``a, e, i``; angles uniform in [0, 360);
* ``orbit_uncertainity`` 0..9 bimodal (the notebook's two-peaked histogram), ``orbit_id`` 1..600 skewed low;
* minimum orbit intersection distance (MOID) ~ Exponential(mean 0.11 AU).

**Signal** (documented, learnable): ``hazardous`` is NASA's definition of a potentially hazardous asteroid,
``H <= 22.0 and MOID <= 0.05 AU``, with ``LABEL_NOISE`` (2 %) of labels flipped. About 18 % of rows are
hazardous, as the notebook's baseline MAE of 0.18 implies. The rule is an AND of two thresholds, which a tree model learns
almost exactly; a linear model cannot draw it, so absolute-loss (median) regression on the 0/1 label lands
near the median baseline, as the notebook's printed MAE (0.181 vs 0.18) shows, while a linear binary classifier
still ranks the hazardous ones above the rest.

Everything is seeded (``numpy.random.default_rng(seed)``): the same seed gives the same frame in every process.
No network access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

ROWS = 4687  # the notebook's data set: 4687 x 40
HAZARD_MAX_MAGNITUDE = 22.0
HAZARD_MAX_MOID_AU = 0.05
LABEL_NOISE = 0.02

RAW_COLUMNS = [
    "Neo Reference ID", "Name", "Absolute Magnitude", "Est Dia in KM(min)", "Est Dia in KM(max)",
    "Est Dia in M(min)", "Est Dia in M(max)", "Est Dia in Miles(min)", "Est Dia in Miles(max)",
    "Est Dia in Feet(min)", "Est Dia in Feet(max)", "Close Approach Date", "Epoch Date Close Approach",
    "Relative Velocity km per sec", "Relative Velocity km per hr", "Miles per hour", "Miss Dist.(Astronomical)",
    "Miss Dist.(lunar)", "Miss Dist.(kilometers)", "Miss Dist.(miles)", "Orbiting Body", "Orbit ID",
    "Orbit Determination Date", "Orbit Uncertainity", "Minimum Orbit Intersection", "Jupiter Tisserand Invariant",
    "Epoch Osculation", "Eccentricity", "Semi Major Axis", "Inclination", "Asc Node Longitude", "Orbital Period",
    "Perihelion Distance", "Perihelion Arg", "Aphelion Dist", "Perihelion Time", "Mean Anomaly", "Mean Motion",
    "Equinox", "Hazardous",
]  # fmt: skip

# The notebook's explicit names, label first (its `df.columns = [...]`).
NOTEBOOK_COLUMNS = [
    "hazardous", "neo_reference_id", "name", "absolute_magnitude", "est_dia_in_kmmin", "est_dia_in_kmmax",
    "est_dia_in_mmin", "est_dia_in_mmax", "est_dia_in_milesmin", "est_dia_in_milesmax", "est_dia_in_feetmin",
    "est_dia_in_feetmax", "close_approach_date", "epoch_date_close_approach", "relative_velocity_km_per_sec",
    "relative_velocity_km_per_hr", "miles_per_hour", "miss_dist.astronomical", "miss_dist.lunar",
    "miss_dist.kilometers", "miss_dist.miles", "orbiting_body", "orbit_id", "orbit_determination_date",
    "orbit_uncertainity", "minimum_orbit_intersection", "jupiter_tisserand_invariant", "epoch_osculation",
    "eccentricity", "semi_major_axis", "inclination", "asc_node_longitude", "orbital_period",
    "perihelion_distance", "perihelion_arg", "aphelion_dist", "perihelion_time", "mean_anomaly", "mean_motion",
    "equinox",
]  # fmt: skip
DROPPED = ["close_approach_date", "orbiting_body", "orbit_determination_date", "epoch_date_close_approach", "equinox"]
CLEAN_COLUMNS = [c for c in NOTEBOOK_COLUMNS if c not in DROPPED]  # 35
FEATURES = CLEAN_COLUMNS[3:]  # 32: everything after hazardous, neo_reference_id, name
LABEL = "hazardous"

_KM_TO_MILES = 0.621371
_KM_TO_FEET = 3280.84
_AU_KM = 149_597_870.7
_AU_LUNAR = 389.17


def generate(rows: int = ROWS, seed: int = 0) -> pd.DataFrame:
    """The raw 40-column frame, as ``pd.read_csv`` of NASA's CSV would return it."""
    import pandas as pd

    if rows < 1:
        raise ValueError(f"rows must be >= 1 (got {rows})")
    rng = np.random.default_rng(seed)
    magnitude = np.clip(rng.normal(22.3, 2.9, rows), 11.0, 32.0).round(1)
    dia_km_min = 1329.0 / np.sqrt(0.25) * 10 ** (-magnitude / 5)
    dia_km_max = 1329.0 / np.sqrt(0.05) * 10 ** (-magnitude / 5)
    velocity = np.exp(rng.normal(np.log(14.0), 0.45, rows))
    miss_au = rng.uniform(0.0005, 0.5, rows)
    a = np.clip(np.exp(rng.normal(np.log(1.4), 0.3, rows)), 0.6, 5.0)
    e = 0.9 * rng.beta(2.0, 3.0, rows)
    inclination = np.minimum(np.abs(rng.normal(0.0, 12.0, rows)), 75.0)
    period = 365.25 * a**1.5
    mean_motion = 360.0 / period
    mean_anomaly = rng.uniform(0.0, 360.0, rows)
    epoch_osculation = 2458000.5 - rng.integers(0, 3000, rows).astype(float)
    moid = rng.exponential(0.11, rows)
    uncertainty = np.where(rng.random(rows) < 0.55, rng.integers(0, 3, rows), rng.integers(5, 10, rows))
    approach = np.datetime64("1995-01-01") + rng.integers(0, 8000, rows).astype("timedelta64[D]")
    determined = np.datetime64("2014-01-01") + rng.integers(0, 1300, rows).astype("timedelta64[D]")
    hazardous = (magnitude <= HAZARD_MAX_MAGNITUDE) & (moid <= HAZARD_MAX_MOID_AU)
    hazardous ^= rng.random(rows) < LABEL_NOISE
    ids = 2_000_000 + rng.choice(1_800_000, rows, replace=False)
    tisserand = 5.2 / a + 2 * np.cos(np.radians(inclination)) * np.sqrt(a / 5.2 * (1 - e**2))
    columns = [
        ids, ids, magnitude, dia_km_min, dia_km_max, dia_km_min * 1000, dia_km_max * 1000,
        dia_km_min * _KM_TO_MILES, dia_km_max * _KM_TO_MILES, dia_km_min * _KM_TO_FEET, dia_km_max * _KM_TO_FEET,
        approach.astype(str), (approach - np.datetime64("1970-01-01")).astype("timedelta64[ms]").astype(np.int64),
        velocity, velocity * 3600, velocity * 3600 * _KM_TO_MILES, miss_au, miss_au * _AU_LUNAR, miss_au * _AU_KM,
        miss_au * _AU_KM * _KM_TO_MILES, np.full(rows, "Earth"), 1 + np.minimum(rng.geometric(0.04, rows), 599),
        np.char.add(determined.astype(str), " 06:18:22"), uncertainty, moid, tisserand, epoch_osculation, e, a,
        inclination, rng.uniform(0, 360, rows), period, a * (1 - e), rng.uniform(0, 360, rows), a * (1 + e),
        epoch_osculation - mean_anomaly / mean_motion, mean_anomaly, mean_motion, np.full(rows, "J2000"), hazardous,
    ]  # fmt: skip
    return pd.DataFrame(dict(zip(RAW_COLUMNS, columns, strict=True)))


def clean(raw: pd.DataFrame) -> pd.DataFrame:
    """The notebook's cleaning: normalised headers, ``hazardous`` first, its names, five columns dropped (35)."""
    missing = [c for c in RAW_COLUMNS if c not in raw.columns]
    if missing:
        raise ValueError(f"asteroid data is missing column(s) {missing}; expected NASA's 40 NeoWs columns")
    frame = raw[RAW_COLUMNS].copy()
    frame.columns = (
        frame.columns.str.strip().str.lower().str.replace(" ", "_").str.replace("(", "").str.replace(")", "")
    )
    order = frame.columns.tolist()
    order.insert(0, order.pop(order.index(LABEL)))
    frame = frame[order]
    frame.columns = NOTEBOOK_COLUMNS
    return frame.drop(columns=DROPPED)


def features_and_labels(clean_frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """``(X, y)`` as the notebook feeds ``write_numpy_to_dense_tensor``: 32 float32 features, 0/1 float32 label."""
    x = clean_frame.iloc[:, 3:].to_numpy(dtype=np.float32)
    y = clean_frame.iloc[:, 0].astype(int).to_numpy().astype(np.float32)
    if x.shape[1] != len(FEATURES):
        raise ValueError(f"expected {len(FEATURES)} feature columns after cleaning, got {x.shape[1]}")
    return x, y


def split(clean_frame: pd.DataFrame, seed: int = 0) -> dict[str, pd.DataFrame]:
    """The notebook's split: one uniform draw per row, < 0.8 train, < 0.9 validation, the rest test."""
    draw = np.random.default_rng(seed).random(len(clean_frame))
    return {
        "train": clean_frame[draw < 0.8],
        "validation": clean_frame[(draw >= 0.8) & (draw < 0.9)],
        "test": clean_frame[draw >= 0.9],
    }
