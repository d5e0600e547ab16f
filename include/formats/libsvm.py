"""libsvm text: writing it the way the SageMaker MNIST notebook does, reading it fast.

Reading hands a well-formed file to pandas' compiled reader with one token per row (``index:value`` as two
fields, the label as one, so a token with two colons is refused by the reader itself) and checks each line's
shape from the rows and per-line token counts; comments and ``qid`` go to scikit-learn's svmlight reader.
We do not use xgboost's native loader (``bench.bench_libsvm`` compares with it) because it reads bad tokens
as 0 and aborts the process on some inputs. Callers fall back to a line-by-line parse only to build an error
message that names the file and the line, or for the ``<label>:<weight>`` form the compiled readers do not know.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

_ONE_TOKEN_PER_ROW = bytes.maketrans(b": \t\r\v\f\n", b"," + b"\n" * 6)


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
    if len(blocks) == 1:  # the usual single part: no concatenation copies
        features, labels = blocks[0][0], blocks[0][1]
    else:
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
    return LibsvmMatrix(features=features, labels=labels.astype(np.float64, copy=False), qid=qid)


def _parse_plain(data: bytes) -> tuple | None:
    """One pass for ``<label> <index>:<value> ...`` lines; None when the text needs the general reader.

    Each token becomes one row for pandas' C reader (``index:value`` -> ``index,value``, the label a row of
    one field), so the reader itself refuses a token with two colons; the token counts per line then say
    where each line's label row must be.
    """
    import pandas as pd
    from scipy.sparse import csr_matrix

    if b"#" in data or b"qid" in data or b"," in data:
        return None
    tokens = _tokens_per_line(data)
    try:
        # "" marks a missing second field (the label's row); "NA" and the like stay errors, not NaN.
        frame = pd.read_csv(
            io.BytesIO(data.translate(_ONE_TOKEN_PER_ROW)),
            header=None,
            names=["key", "value"],
            dtype=np.float64,
            engine="c",
            keep_default_na=False,
            na_values=[""],
        )
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError):
        return None
    keys, values = frame["key"].to_numpy(), frame["value"].to_numpy()
    if keys.size != int(tokens.sum()):  # runs of spaces, or spaces at a line's ends: count them exactly
        tokens = _tokens_per_line_in_python(data)
        if keys.size != int(tokens.sum()):
            return None
    is_label = np.isnan(values)
    line_starts = np.cumsum(tokens) - tokens
    # The label rows are exactly the lines' first tokens, and every other token has a value after its one
    # colon (an empty value, "3:" or "3: ", reads as NaN too, so the colon count catches it).
    if int(is_label.sum()) != tokens.size or not is_label[line_starts].all():
        return None
    is_pair = ~is_label
    if np.count_nonzero(np.frombuffer(data, dtype=np.uint8) == ord(":")) != keys.size - tokens.size:
        return None
    as_read = keys[is_pair]
    if as_read.size and not (as_read.min() >= 0 and as_read.max() < 2**31):  # also False for NaN
        return None
    indices = as_read.astype(np.int32)
    if not np.array_equal(indices, as_read):  # "1.5:2"
        return None
    indptr = np.zeros(tokens.size + 1, dtype=np.int64)
    np.cumsum(tokens - 1, out=indptr[1:])
    n_cols = int(indices.max()) + 1 if indices.size else 0
    matrix = csr_matrix((values[is_pair].astype(np.float32), indices, indptr), shape=(tokens.size, n_cols))
    if not matrix.has_sorted_indices:
        return None  # rare; the general readers sort them out
    return matrix, keys[line_starts], None


def _tokens_per_line(data: bytes) -> np.ndarray:
    """Whitespace-separated tokens on each non-blank line, as ``bytes.split`` counts them, or more.

    When the only whitespace is spaces and ``\\n`` (what writers produce), this counts spaces + 1 per line:
    never fewer than the line's tokens, and equal exactly when the spaces are single and inside the line, so
    the caller's check that the counts add up to the tokens the reader found also proves that. Tabs, CR and
    the like are counted line by line in Python.
    """
    if not any(c in data for c in (b"\t", b"\r", b"\v", b"\f")):
        newlines = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == ord("\n")).tolist()
        count = data.count  # bytes.count(sub, start, end) scans each line in C without slicing it
        starts, ends = [0, *(n + 1 for n in newlines)], [*newlines, len(data)]
        return np.array([count(b" ", s, e) + 1 for s, e in zip(starts, ends, strict=True) if e > s], dtype=np.int64)
    return _tokens_per_line_in_python(data)


def _tokens_per_line_in_python(data: bytes) -> np.ndarray:
    lines = data.splitlines()
    tokens = np.fromiter((len(line.split()) for line in lines), dtype=np.int64, count=len(lines))
    return tokens[tokens > 0]


def _parse_with_sklearn(path: str | os.PathLike[str]) -> tuple:
    from sklearn.datasets import load_svmlight_file

    try:
        features, labels, qid = load_svmlight_file(os.fspath(path), dtype=np.float32, zero_based=True, query_id=True)
    except (ValueError, TypeError) as e:
        raise LibsvmFormatError(str(e)) from None
    return features.tocsr(), labels, qid if qid.size and qid.any() else None
