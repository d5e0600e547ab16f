"""libsvm: the notebook's writer layout, the fast reader against the line-by-line one, and the errors."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest

from include.formats import libsvm
from include.sagemaker_emulator.algorithms import _data
from include.sagemaker_emulator.algorithms._errors import AlgorithmClientError


def _write(tmp_path: pathlib.Path, name: str, text: str) -> pathlib.Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_format_rows_is_the_notebooks_layout() -> None:
    body = libsvm.format_rows([3, 1], [[0.0, 0.5], [1.25, 0.0]])
    assert body == b"3 1:0.0 2:0.5\n1 1:1.25 2:0.0"
    assert libsvm.format_rows([2], [[7]], one_based=False) == b"2 0:7"


def test_fast_reader_matches_line_by_line(tmp_path: pathlib.Path) -> None:
    rng = np.random.default_rng(3)
    lines = []
    for i in range(300):
        cols = sorted(rng.choice(40, size=int(rng.integers(0, 12)), replace=False))
        lines.append(f"{i % 7} " + " ".join(f"{c}:{rng.normal():.5g}" for c in cols))
    a = _write(tmp_path, "a", "\n".join(lines[:150]) + "\n\n")
    b = _write(tmp_path, "b", "\n".join(lines[150:]))
    fast = _data.load_libsvm([a, b], "train", tmp_path)
    slow = _data._load_libsvm_line_by_line([a, b], "train", tmp_path)
    assert fast.num_rows == slow.num_rows == 300
    assert fast.num_cols == slow.num_cols
    np.testing.assert_array_equal(fast.labels, slow.labels)
    np.testing.assert_array_equal(fast.features.toarray(), slow.features.toarray())


@pytest.mark.parametrize(
    ("text", "rows", "weights", "qid"),
    [
        ("1:0.5 0:1 2:3\n0:2 1:1\n", 2, [0.5, 2.0], None),  # <label>:<weight>, only the line reader knows it
        ("1 qid:4 0:1\n0 qid:4 1:2  # a comment\n", 2, None, [4, 4]),  # sklearn's reader
        ("1 3:1 0:2\n", 1, None, None),  # unsorted indices
    ],
)
def test_other_libsvm_forms_still_read(tmp_path: pathlib.Path, text: str, rows: int, weights, qid) -> None:
    dataset = _data.load_libsvm([_write(tmp_path, "f", text)], "train", tmp_path)
    assert dataset.num_rows == rows
    assert (dataset.weights.tolist() if dataset.weights is not None else None) == weights
    assert (dataset.qid.tolist() if dataset.qid is not None else None) == qid


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1,2,3\n4,5,6\n", "is not 'LIBSVM' format"),
        ("1 0:1\n0 1:abc\n", "line 2: '1:abc' is not an <index>:<value> pair"),
        ("1 -1:2\n", "'-1:2' is not an <index>:<value> pair"),
        ("1 0:1 7\n", "'7' is not an <index>:<value> pair"),
    ],
)
def test_bad_libsvm_names_file_and_line(tmp_path: pathlib.Path, text: str, message: str) -> None:
    with pytest.raises(AlgorithmClientError, match="channel 'train', file 'part-1'") as info:
        _data.load_libsvm([_write(tmp_path, "part-1", text)], "train", tmp_path)
    assert message in str(info.value)


@pytest.mark.parametrize(
    "text",
    [
        "3 1:2 4:0.5\n7 0:1e-3 5:+2\n",
        "3\t1:2\r\n4  2:3 \n",  # tabs, CRLF, runs of spaces, a trailing space: counted line by line
        " 3 1:2\n\n\n4 0:1",  # a leading space, blank lines, no final newline
        "3\n4 1:1\n",  # a row with no features
    ],
)
def test_fast_parse_accepts_what_the_line_reader_accepts(tmp_path: pathlib.Path, text: str) -> None:
    assert libsvm._parse_plain(text.encode()) is not None
    path = _write(tmp_path, "f", text)
    fast = _data.load_libsvm([path], "train", tmp_path)
    slow = _data._load_libsvm_line_by_line([path], "train", tmp_path)
    np.testing.assert_array_equal(fast.labels, slow.labels)
    np.testing.assert_array_equal(fast.features.toarray(), slow.features.toarray())


@pytest.mark.parametrize(
    "text",
    [
        "3 1:2:3 4\n",  # a token with two colons (the same colon and token counts as "3 1:2 3:4")
        "3: 1:2\n",  # an empty label weight
        "3 1:\n",  # an empty value
        "3 :1\n",  # an empty index
        "3 1:2\n4 1,5\n",  # a comma instead of a colon
        "NA 1:2\n",
        "3 1:NA\n",  # pandas' NA words are not numbers here
        "0 1:1 7\n2:1 3:4\n",  # a token without colon and a label with one, on different lines
        "3 1.5:2\n",
    ],
)
def test_fast_parse_refuses_malformed_tokens(tmp_path: pathlib.Path, text: str) -> None:
    assert libsvm._parse_plain(text.encode()) is None
    with pytest.raises(AlgorithmClientError, match="channel 'train', file 'f'"):
        _data.load_libsvm([_write(tmp_path, "f", text)], "train", tmp_path)
