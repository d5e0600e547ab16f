"""Reading training channels the way the built-in containers do (label-first CSV, libsvm, parquet).

The fast path hands whole files to a compiled parser (``numpy.loadtxt`` for CSV, scikit-learn's svmlight
reader for libsvm); only when that fails do we re-read the
file line by line in Python, which is what lets errors name the channel, file and line.
"""

from __future__ import annotations

import csv
import json
import math
import pathlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ._errors import AlgorithmClientError

CSV = "csv"
LIBSVM = "libsvm"
PARQUET = "parquet"
RECORDIO_PROTOBUF = "recordio-protobuf"

# The container's accepted list, in its own order (used verbatim in its error message).
VALID_CONTENT_TYPES = [
    "csv",
    "libsvm",
    "parquet",
    "recordio-protobuf",
    "text/csv",
    "text/libsvm",
    "text/x-libsvm",
    "application/x-parquet",
    "application/x-recordio-protobuf",
]


def parse_media_type(value: str) -> tuple[str, dict[str, str]]:
    """Split ``"text/csv; label_size=1"`` into ``("text/csv", {"label_size": "1"})`` (lower-cased)."""
    parts = value.lower().split(";")
    params: dict[str, str] = {}
    for part in parts[1:]:
        key, sep, val = part.partition("=")
        if sep:
            params[key.strip()] = val.strip().strip('"')
    return parts[0].strip(), params


def xgboost_training_format(content_type: str | None) -> str:
    """Map a channel ContentType to csv/libsvm/parquet/recordio-protobuf; absent means libsvm."""
    if content_type is None:
        return LIBSVM
    media, params = parse_media_type(content_type)
    if media in ("csv", "text/csv"):
        if "label_size" in params and params["label_size"] != "1":
            raise AlgorithmClientError(
                f"{content_type} is not an accepted csv ContentType. Optional parameter label_size must be equal to 1"
            )
        return CSV
    if media in ("libsvm", "text/libsvm", "text/x-libsvm"):
        return LIBSVM
    if media in ("parquet", "application/x-parquet"):
        return PARQUET
    if media in ("recordio-protobuf", "application/x-recordio-protobuf"):
        return RECORDIO_PROTOBUF
    raise AlgorithmClientError(f"{content_type} is not an accepted ContentType: {', '.join(VALID_CONTENT_TYPES)}.")


def read_json(path: pathlib.Path, default: object) -> object:
    if not path.exists():
        return default
    try:
        return json.loads(path.read_text() or "null") or default
    except json.JSONDecodeError as e:
        raise AlgorithmClientError(f"Could not parse {path.name}: {e}") from e


def container_path(channel: str) -> str:
    """The path the real container would report for a channel (messages should match AWS)."""
    return f"/opt/ml/input/data/{channel}"


def channel_files(channel_dir: pathlib.Path) -> list[pathlib.Path]:
    """Data files of a channel, recursively, sorted; ``_``-prefixed files are skipped like the container.

    The container refuses hidden files ("Hidden file found in the data path!"), so we do too.
    """
    if not channel_dir.exists():
        return []
    if channel_dir.is_file():
        return [channel_dir]
    files = []
    for path in sorted(p for p in channel_dir.rglob("*") if p.is_file()):
        if path.name.startswith("."):
            raise AlgorithmClientError("Hidden file found in the data path! Remove that before training.")
        if path.name.startswith("_") or path.stat().st_size == 0:
            continue
        files.append(path)
    return files


@dataclass
class Dataset:
    features: object  # numpy 2-D array or scipy CSR matrix
    labels: np.ndarray
    weights: np.ndarray | None = None
    qid: np.ndarray | None = None

    @property
    def num_rows(self) -> int:
        return int(self.features.shape[0])

    @property
    def num_cols(self) -> int:
        return int(self.features.shape[1])


def _sniff_delimiter(first_line: str) -> str:
    # csv.Sniffer is what the container uses; it guesses digits for single-column lines ("1.5" -> "5"),
    # which the container's own inference decoder also overrides to ",".
    try:
        delimiter = csv.Sniffer().sniff(first_line[:512]).delimiter
    except csv.Error:
        return ","
    if delimiter.isalnum() or delimiter in ".-+":
        return ","
    return delimiter


def _first_line(path: pathlib.Path) -> str:
    with path.open("r", errors="replace") as f:
        for line in f:
            if line.strip():
                return line.rstrip("\r\n")
    return ""


def _looks_like_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _csv_slow_parse(
    path: pathlib.Path, channel: str, rel: str, delimiter: str, expected_cols: int | None, first_file: bool
) -> np.ndarray:
    """Line-by-line parse; returns the matrix or raises a ClientError naming file and line."""
    where = f"channel '{channel}', file '{rel}'"
    rows: list[list[float]] = []
    ncols = expected_cols
    ncols_line = None
    with path.open("r", errors="replace") as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.rstrip("\r\n")
            if not line.strip():
                continue
            cells = [c.strip() for c in line.split(delimiter)]
            if ncols is None:
                ncols, ncols_line = len(cells), lineno
            elif len(cells) != ncols:
                origin = f"line {ncols_line}" if ncols_line else "the previous files of the channel"
                raise AlgorithmClientError(
                    f"Failed to load csv data in {where}, line {lineno}: found {len(cells)} columns but "
                    f"{origin} has {ncols} (delimiter '{delimiter}'). All rows must have the label "
                    "followed by the same number of features."
                )
            values = []
            for col, cell in enumerate(cells, 1):
                if cell == "":
                    if col == 1:
                        raise AlgorithmClientError(
                            f"Failed to load csv data in {where}, line {lineno}: the label (column 1) is empty."
                        )
                    values.append(math.nan)  # empty feature cell = missing value, as in XGBoost
                    continue
                try:
                    values.append(float(cell))
                except ValueError:
                    if first_file and not rows and not any(_looks_like_number(c) for c in cells):
                        raise AlgorithmClientError(
                            f"Failed to load csv data in {where}, line {lineno}: it looks like a header row "
                            f"({line[:80]!r}). Training CSV must have no header row and the label in the "
                            "first column."
                        ) from None
                    raise AlgorithmClientError(
                        f"Failed to load csv data in {where}, line {lineno}, column {col}: could not "
                        f"convert {cell[:40]!r} to a number. Training CSV must be numeric only."
                    ) from None
            rows.append(values)
    if not rows:
        return np.empty((0, ncols or 0))
    return np.asarray(rows, dtype=np.float64)


def load_csv(
    files: list[pathlib.Path], channel: str, root: pathlib.Path, log: Callable[[str], None], min_cols: int = 1
) -> tuple[np.ndarray, str]:
    """Concatenate label-first CSV files into one float64 matrix (label in column 0)."""
    delimiter = _sniff_delimiter(_first_line(files[0]))
    log(f"Determined delimiter of CSV input is '{delimiter}'")
    blocks = []
    ncols = None
    for i, path in enumerate(files):
        rel = path.relative_to(root).as_posix() if path.is_relative_to(root) else path.name
        try:
            block = np.loadtxt(path, delimiter=delimiter, ndmin=2, dtype=np.float64, comments=None)
            if block.size and ncols is not None and block.shape[1] != ncols:
                raise ValueError("column count differs from previous file")
        except (ValueError, UnicodeDecodeError):
            block = _csv_slow_parse(path, channel, rel, delimiter, ncols, first_file=(i == 0))
        if block.size == 0:
            continue
        ncols = block.shape[1]
        blocks.append(block)
    if not blocks:
        return np.empty((0, 0)), delimiter
    data = blocks[0] if len(blocks) == 1 else np.vstack(blocks)
    if data.shape[1] < min_cols:
        raise AlgorithmClientError(
            f"Failed to load csv data in channel '{channel}': rows have {data.shape[1]} column(s); expected "
            f"the label followed by at least {min_cols - 1} feature column(s)."
        )
    if np.isnan(data[:, 0]).any():
        bad = int(np.flatnonzero(np.isnan(data[:, 0]))[0]) + 1
        raise AlgorithmClientError(f"Failed to load csv data in channel '{channel}': label of row {bad} is NaN.")
    return data, delimiter


def load_libsvm(files: list[pathlib.Path], channel: str, root: pathlib.Path) -> Dataset:
    """Parse ``<label>[:<weight>] [qid:<q>] <index>:<value> ...`` (indices used as given, 0-based).

    The compiled parser reads well-formed files; whatever it refuses (a bad token, ``label:weight``,
    unsorted indices) is read again line by line, which either accepts it or names the file and line.
    """
    from include.formats import libsvm

    try:
        matrix = libsvm.read_files(files)
    except libsvm.LibsvmFormatError:
        return _load_libsvm_line_by_line(files, channel, root)
    return Dataset(features=matrix.features, labels=matrix.labels, qid=matrix.qid)


def _load_libsvm_line_by_line(files: list[pathlib.Path], channel: str, root: pathlib.Path) -> Dataset:
    from scipy.sparse import csr_matrix

    labels: list[float] = []
    weights: list[float] = []
    qids: list[int] = []
    indptr = [0]
    indices: list[int] = []
    values: list[float] = []
    any_weight = False
    any_qid = False
    for path in files:
        rel = path.relative_to(root).as_posix() if path.is_relative_to(root) else path.name
        with path.open("r", errors="replace") as f:
            for lineno, raw in enumerate(f, 1):
                line = raw.split("#", 1)[0].strip()
                if not line:
                    continue
                tokens = line.split()
                head = tokens[0].split(":")
                try:
                    if len(head) > 2:
                        raise ValueError
                    labels.append(float(head[0]))
                    if len(head) == 2:
                        weights.append(float(head[1]))
                        any_weight = True
                    else:
                        weights.append(1.0)
                except ValueError:
                    raise AlgorithmClientError(
                        f"First line '{line[:50]}...' of file '{path.name}' is not 'LIBSVM' format. Please ensure "
                        f"the file is in 'LIBSVM' format. (channel '{channel}', file '{rel}', line {lineno}: "
                        f"{tokens[0][:40]!r} does not follow the LIBSVM label format <label>(:<weight>); if the "
                        "data is CSV, set the channel ContentType to 'text/csv' - libsvm is the default when "
                        "ContentType is omitted.)"
                    ) from None
                qid = 0
                for token in tokens[1:]:
                    key, sep, val = token.partition(":")
                    try:
                        if not sep:
                            raise ValueError
                        if key == "qid":
                            qid = int(val)
                            any_qid = True
                            continue
                        idx = int(key)
                        if idx < 0:
                            raise ValueError
                        indices.append(idx)
                        values.append(float(val))
                    except ValueError:
                        raise AlgorithmClientError(
                            f"Failed to load libsvm data in channel '{channel}', file '{rel}', line {lineno}: "
                            f"{token[:40]!r} is not an <index>:<value> pair."
                        ) from None
                qids.append(qid)
                indptr.append(len(indices))
    n_rows = len(labels)
    n_cols = (max(indices) + 1) if indices else 0
    matrix = csr_matrix(
        (np.asarray(values, dtype=np.float32), np.asarray(indices, dtype=np.int64), np.asarray(indptr)),
        shape=(n_rows, n_cols),
    )
    return Dataset(
        features=matrix,
        labels=np.asarray(labels, dtype=np.float64),
        weights=np.asarray(weights) if any_weight else None,
        qid=np.asarray(qids) if any_qid else None,
    )


def load_recordio(
    files: list[pathlib.Path],
    channel: str,
    root: pathlib.Path,
    require_labels: bool = True,
    allowed_kinds: frozenset[str] | None = None,
) -> Dataset:
    """Read RecordIO-protobuf files (``features["values"]``, ``label["values"]``) into one Dataset.

    Dense records give a float32 ndarray, sparse ones (``keys``) a CSR matrix. Errors name the channel,
    the file, the record and its byte offset.
    """
    from include.formats import recordio

    def sources():
        for path in files:
            rel = path.relative_to(root).as_posix() if path.is_relative_to(root) else path.name
            yield f"channel '{channel}', file '{rel}'", path.read_bytes()

    try:
        matrix = recordio.to_matrix(sources(), require_labels=require_labels, allowed_kinds=allowed_kinds)
    except recordio.RecordIOError as e:
        raise AlgorithmClientError(f"Failed to load recordio-protobuf data: {e}") from None
    labels = matrix.labels if matrix.labels is not None else np.full(matrix.features.shape[0], np.nan)
    return Dataset(features=matrix.features, labels=labels)


def load_parquet(files: list[pathlib.Path], channel: str) -> np.ndarray:
    try:
        import pandas as pd

        frames = [pd.read_parquet(p) for p in files]
    except ImportError as e:
        raise AlgorithmClientError(
            f"Failed to load parquet data in channel '{channel}': parquet input needs pyarrow, which is not "
            "installed in the local emulator. Use text/csv or libsvm."
        ) from e
    except Exception as e:
        raise AlgorithmClientError(f"Failed to load parquet data with exception:\n{e}") from e
    data = np.vstack([f.to_numpy(dtype=np.float64) for f in frames])
    return data
