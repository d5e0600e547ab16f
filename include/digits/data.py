"""scikit-learn's handwritten digits (1,797 images of 8 x 8 pixels, 10 classes), offline, laid out in S3
the way the SageMaker MNIST notebook lays out MNIST for XGBoost.

**Layout.** Three splits (``train``, ``validation``, ``test``), each written as ``PARTS`` (5) libsvm objects
``<prefix>/<split>/examples0`` .. ``examples4``; every line is ``<label> 1:<p1> 2:<p2> ... 64:<p64>``
(1-based indices, every pixel written, pixel values 0..16 as floats), lines joined by ``\\n`` with no trailing
newline: the notebook's ``to_libsvm``. Unlike the notebook, which cuts each split into 5 parts of
``int(n / 5)`` rows and drops the remainder, the parts here differ by at most one row and keep every row.

**Splits.** A stratified, seeded 60/20/20 split (``train_test_split`` twice): 1,078 / 359 / 360 rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from include.formats.libsvm import format_rows

PARTS = 5
SPLITS = ("train", "validation", "test")
NUM_CLASSES = 10
NUM_FEATURES = 64


@dataclass(frozen=True)
class Split:
    name: str
    features: np.ndarray  # float64, rows x 64
    labels: np.ndarray  # int64, 0..9


def load_splits(seed: int = 0) -> dict[str, Split]:
    """The three splits, stratified on the label and the same for the same seed."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    features, labels = load_digits(return_X_y=True)
    x_train, x_rest, y_train, y_rest = train_test_split(
        features, labels, test_size=0.4, random_state=seed, stratify=labels
    )
    x_valid, x_test, y_valid, y_test = train_test_split(
        x_rest, y_rest, test_size=0.5, random_state=seed, stratify=y_rest
    )
    return {
        "train": Split("train", x_train.astype(np.float64), y_train.astype(np.int64)),
        "validation": Split("validation", x_valid.astype(np.float64), y_valid.astype(np.int64)),
        "test": Split("test", x_test.astype(np.float64), y_test.astype(np.int64)),
    }


def libsvm_parts(split: Split, parts: int = PARTS) -> list[bytes]:
    """The split as ``parts`` libsvm bodies, in row order (the notebook's ``upload_to_s3`` partitions)."""
    if parts < 1:
        raise ValueError(f"parts must be at least 1, got {parts}")
    chunks = np.array_split(np.arange(len(split.labels)), parts)
    return [format_rows(split.labels[rows].tolist(), split.features[rows].tolist()) for rows in chunks]


def object_keys(prefix: str, split_name: str, parts: int = PARTS) -> list[str]:
    """``<prefix>/<split>/examples<i>``: the notebook's key names."""
    return [f"{prefix.rstrip('/')}/{split_name}/examples{i}" for i in range(parts)]


def s3_objects(prefix: str, seed: int = 0, parts: int = PARTS) -> dict[str, bytes]:
    """Every object of the layout, key -> body, ready for ``put_object``."""
    objects: dict[str, bytes] = {}
    for name, split in load_splits(seed).items():
        objects.update(zip(object_keys(prefix, name, parts), libsvm_parts(split, parts), strict=True))
    return objects
