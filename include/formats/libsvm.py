"""libsvm text: writing it the way the SageMaker MNIST notebook does, reading it fast.

Reading hands the whole file to pandas' compiled number parser once its shape is checked (each line a
label then ``index:value`` pairs), or to scikit-learn's svmlight reader for comments and ``qid``; both keep
up with xgboost's native loader (``bench.bench_libsvm``), which we do not use because it reads bad tokens
as 0 and aborts the process on some inputs. Callers fall back to a line-by-line parse only to build an error message
that names the file and the line, or for the ``<label>:<weight>`` form the compiled parser does not know.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

_ONE_NUMBER_PER_LINE = bytes.maketrans(b": \t\r\v\f", b"\n" * 6)


class LibsvmFormatError(ValueError):
    """The compiled parser refused the text (the caller decides how to explain where)."""


@dataclass
class LibsvmMatrix:
    features: object  # scipy CSR matrix, float32
    labels: np.ndarray
    qid: np.ndarray | None


def format_rows(labels: Iterable[object], rows: Iterable[Sequence[object]], one_based: bool = True) -> bytes:
    """``<label> <i>:<value> ...`` per row, every feature written (dense), rows joined by newlines.

    This is the notebook's ``to_libsvm``: 1-based indices, no trailing newline, values as ``str()`` gives them.
    """
    first = 1 if one_based else 0
    lines = [
        f"{label} " + " ".join(f"{i}:{value}" for i, value in enumerate(row, first))
        for label, row in zip(labels, rows, strict=True)
    ]
    return "\n".join(lines).encode("utf-8")


def read_files(paths: Sequence[str | os.PathLike[str]]) -> LibsvmMatrix:
    """Read libsvm files (0-based indices used as given) into one CSR matrix; qid kept when present.

    Well-formed files (``<label> <index>:<value> ...``) go through pandas' compiled number parser in one
    pass; files with comments or ``qid`` go through scikit-learn's svmlight reader. Raises
    LibsvmFormatError for anything neither accepts (bad tokens, ``<label>:<weight>``, unsorted indices).
    """
    from scipy.sparse import csr_matrix

    blocks = []
    for path in paths:
        with open(path, "rb") as f:
            data = f.read()
        blocks.append(_parse_plain(data) or _parse_with_sklearn(path))
    n_cols = max((b[0].shape[1] for b in blocks), default=0)
    labels = np.concatenate([b[1] for b in blocks]) if blocks else np.empty(0)
    indptr = [np.zeros(1, dtype=np.int64)]
    for b in blocks:
        indptr.append(b[0].indptr[1:].astype(np.int64) + indptr[-1][-1])
    features = csr_matrix(
        (
            np.concatenate([b[0].data for b in blocks]) if blocks else np.empty(0, np.float32),
            np.concatenate([b[0].indices for b in blocks]) if blocks else np.empty(0, np.int64),
            np.concatenate(indptr),
        ),
        shape=(len(labels), n_cols),
    )
    qids = [b[2] for b in blocks]
    qid = None
    if any(q is not None for q in qids):
        qid = np.concatenate(
            [q if q is not None else np.zeros(b[0].shape[0]) for q, b in zip(qids, blocks, strict=True)]
        )
    return LibsvmMatrix(features=features, labels=labels.astype(np.float64), qid=qid)


def _parse_plain(data: bytes) -> tuple | None:
    """One pass for ``<label> <index>:<value> ...`` lines; None when the text needs the general reader."""
    import pandas as pd
    from scipy.sparse import csr_matrix

    if b"#" in data or b"qid" in data:
        return None
    lines = data.splitlines()
    tokens = np.fromiter((len(line.split()) for line in lines), dtype=np.int64, count=len(lines))
    pairs_per_line = np.fromiter((line.count(b":") for line in lines), dtype=np.int64, count=len(lines))
    rows = tokens > 0
    tokens, pairs_per_line = tokens[rows], pairs_per_line[rows]
    # Every token after the label holds exactly one colon and the label none (a weight would add one).
    if not np.array_equal(tokens, pairs_per_line + 1):
        return None
    # One number per line for pandas' C reader (blank lines, i.e. repeated blanks, are skipped).
    one_per_line = data.translate(_ONE_NUMBER_PER_LINE)
    try:
        frame = pd.read_csv(io.BytesIO(one_per_line), header=None, dtype=np.float64, engine="c")
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError):
        return None
    if frame.shape[1] != 1:  # a comma or another separator pandas knows: not libsvm
        return None
    numbers = frame.iloc[:, 0].to_numpy()
    numbers_per_line = 1 + 2 * pairs_per_line
    if numbers.size != int(numbers_per_line.sum()):
        return None
    starts = np.concatenate(([0], np.cumsum(numbers_per_line)[:-1]))
    is_pair = np.ones(numbers.size, dtype=bool)
    is_pair[starts] = False
    pairs = numbers[is_pair].reshape(-1, 2)
    indices = pairs[:, 0]
    if indices.size and (indices.min() < 0 or indices.max() >= 2**31 or not np.all(indices == np.floor(indices))):
        return None
    indices = indices.astype(np.int64)
    indptr = np.concatenate(([0], np.cumsum(pairs_per_line)))
    n_cols = int(indices.max()) + 1 if indices.size else 0
    matrix = csr_matrix((pairs[:, 1].astype(np.float32), indices, indptr), shape=(int(rows.sum()), n_cols))
    if not matrix.has_sorted_indices:
        return None  # rare; the general readers sort them out
    return matrix, numbers[starts], None


def _parse_with_sklearn(path: str | os.PathLike[str]) -> tuple:
    from sklearn.datasets import load_svmlight_file

    try:
        features, labels, qid = load_svmlight_file(os.fspath(path), dtype=np.float32, zero_based=True, query_id=True)
    except (ValueError, TypeError) as e:
        raise LibsvmFormatError(str(e)) from None
    return features.tocsr(), labels, qid if qid.size and qid.any() else None
