"""Offline data: the digits in the MNIST notebook's libsvm layout, and the Boston housing table."""

from __future__ import annotations

import numpy as np

from include.digits import data as digits
from include.formats import libsvm
from include.housing import boston


def test_digits_splits_cover_every_row_once_and_are_seeded() -> None:
    splits = digits.load_splits(seed=0)
    sizes = {name: len(split.labels) for name, split in splits.items()}
    assert sizes == {"train": 1078, "validation": 359, "test": 360}
    assert sum(sizes.values()) == 1797
    for split in splits.values():
        assert split.features.shape[1] == 64
        assert set(split.labels.tolist()) == set(range(10))
    again = digits.load_splits(seed=0)
    np.testing.assert_array_equal(again["test"].features, splits["test"].features)
    assert not np.array_equal(digits.load_splits(seed=1)["test"].labels, splits["test"].labels)


def test_digits_libsvm_is_the_notebooks_layout(tmp_path) -> None:
    split = digits.load_splits()["test"]
    parts = digits.libsvm_parts(split)
    assert len(parts) == 5 and [len(p.split(b"\n")) for p in parts] == [72] * 5
    first = parts[0].decode().split("\n")[0].split(" ")
    assert first[0] == str(split.labels[0])
    assert [t.split(":")[0] for t in first[1:]] == [str(i) for i in range(1, 65)]  # 1-based, dense
    assert float(first[1].split(":")[1]) == split.features[0, 0]
    assert not parts[0].endswith(b"\n")
    paths = []
    for i, body in enumerate(parts):
        paths.append(tmp_path / f"examples{i}")
        paths[-1].write_bytes(body)
    matrix = libsvm.read_files(paths)
    assert matrix.features.shape == (360, 65)  # column 0 stays empty: indices are used as written
    np.testing.assert_array_equal(matrix.features.toarray()[:, 1:], split.features)
    np.testing.assert_array_equal(matrix.labels, split.labels)
    assert digits.object_keys("sagemaker/DEMO/", "train")[4] == "sagemaker/DEMO/train/examples4"
    assert len(digits.s3_objects("p")) == 15


def test_boston_is_the_506_row_table() -> None:
    frame = boston.load()
    assert frame.shape == (506, 14)
    assert list(frame.columns) == [*boston.FEATURES, "medv"]
    assert frame.notna().all().all()
    # Known values of the first row (tract 1, Nahant) and the target's range.
    assert frame.loc[0, "crim"] == 0.00632 and frame.loc[0, "medv"] == 24.0
    assert frame["medv"].min() == 5.0 and frame["medv"].max() == 50.0
    lines = boston.label_first_csv(frame).splitlines()
    assert len(lines) == 506 and lines[0].split(",")[0] == "24.0" and len(lines[0].split(",")) == 14
