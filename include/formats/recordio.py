"""RecordIO-wrapped protobuf, the SageMaker first-party algorithms' ``application/x-recordio-protobuf``.

Two layers, both written here by hand (no protobuf dependency, no generated code):

* **Framing** (MXNet RecordIO as the SageMaker SDK writes it): per record the magic ``0xced7230a`` and the
  payload length as little-endian uint32, the payload, then zero padding to a 4-byte boundary. The top
  three bits of the length word are MXNet's continuation flag; the SDK never sets them and we refuse them.
* **Payload**: the ``aialgs.data.Record`` protobuf message (proto2)::

      Float32Tensor { repeated float  values = 1 [packed]; repeated uint64 keys = 2 [packed];
                      repeated uint64 shape = 3 [packed]; }
      Float64Tensor { repeated double values = 1 [packed]; keys = 2; shape = 3 }
      Int32Tensor   { repeated int32  values = 1 [packed]; keys = 2; shape = 3 }
      Value  { oneof { Float32Tensor float32_tensor = 2; Float64Tensor float64_tensor = 3;
                       Int32Tensor int32_tensor = 7; Bytes bytes = 9; } }
      Record { map<string, Value> features = 1; map<string, Value> label = 2; optional string uid = 3;
               optional string metadata = 4; optional string configuration = 5; }

The writers reproduce the SageMaker Python SDK v2's ``write_numpy_to_dense_tensor`` and
``write_spmatrix_to_sparse_tensor`` byte for byte (golden fixtures in ``tests/fixtures/recordio``): one
Record per row, the row in ``features["values"]``, the label in ``label["values"]``, float32 -> Float32Tensor,
float64 -> Float64Tensor, integers -> Int32Tensor; sparse rows also carry ``keys`` (column indices) and
``shape=[n_cols]``. The reader accepts packed and unpacked repeated fields and skips unknown fields, as any
protobuf parser does; every error names the source, the record number and the byte offset.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, Any

import numpy as np

MAGIC = 0xCED7230A
CONTENT_TYPE = "application/x-recordio-protobuf"
_HEADER = struct.Struct("<II")
_LENGTH_MASK = (1 << 29) - 1

# wire types
_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5

# Value.oneof field numbers -> tensor kind, and the numpy dtype of its values
_VALUE_FIELDS = {2: "float32", 3: "float64", 7: "int32"}
_KIND_FIELD = {kind: number for number, kind in _VALUE_FIELDS.items()}
_BYTES_FIELD = 9


class RecordIOError(ValueError):
    """Malformed RecordIO-protobuf input, or data the format cannot carry."""


@dataclass(frozen=True)
class Tensor:
    """One ``Value``: a float32/float64/int32 tensor, dense (``keys`` empty) or sparse."""

    values: np.ndarray
    kind: str = "float32"
    keys: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.uint64))
    shape: tuple[int, ...] = ()
    span: tuple[int, int] | None = None  # byte range of the values in the payload, when one packed run

    @property
    def is_sparse(self) -> bool:
        return self.keys.size > 0 or bool(self.shape)


@dataclass
class Record:
    features: dict[str, Tensor] = field(default_factory=dict)
    label: dict[str, Tensor] = field(default_factory=dict)
    uid: str | None = None
    metadata: str | None = None
    configuration: str | None = None


# ------------------------------------------------------------------------------------------ wire encoding


def _varint(value: int) -> bytes:
    value &= 0xFFFFFFFFFFFFFFFF  # negative int32 values are sign-extended to 10 bytes, as protobuf does
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _len_field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | _LEN) + _varint(len(payload)) + payload


def _tensor_kind(dtype: np.dtype) -> str:
    # The SDK's _resolve_type: float32, float64 and the platform int; we accept any integer dtype that fits.
    if dtype == np.float32:
        return "float32"
    if dtype == np.float64:
        return "float64"
    if np.issubdtype(dtype, np.integer):
        return "int32"
    raise RecordIOError(f"Unsupported dtype {dtype} on array: RecordIO-protobuf carries float32, float64 or int32.")


def _packed_values(values: np.ndarray, kind: str) -> bytes:
    if kind == "float32":
        return values.astype("<f4", copy=False).tobytes()
    if kind == "float64":
        return values.astype("<f8", copy=False).tobytes()
    if values.size and (values.min() < -(2**31) or values.max() >= 2**31):
        raise RecordIOError("Integer values do not fit an Int32Tensor (range -2**31 .. 2**31-1).")
    return b"".join(_varint(int(v)) for v in values)


def _encode_tensor(tensor: Tensor) -> bytes:
    body = b""
    if tensor.values.size:
        body += _len_field(1, _packed_values(tensor.values, tensor.kind))
    if tensor.keys.size:
        body += _len_field(2, b"".join(_varint(int(k)) for k in tensor.keys))
    if tensor.shape:
        body += _len_field(3, b"".join(_varint(int(s)) for s in tensor.shape))
    return _len_field(_KIND_FIELD[tensor.kind], body)


def _as_tensor(value: Tensor | np.ndarray | Iterable[float]) -> Tensor:
    if isinstance(value, Tensor):
        return value
    array = np.asarray(value)
    if array.ndim == 0:
        array = array.reshape(1)
    return Tensor(values=array.ravel(), kind=_tensor_kind(array.dtype))


def _encode_map(number: int, entries: Mapping[str, Tensor | np.ndarray]) -> bytes:
    out = b""
    for key, value in entries.items():
        entry = _len_field(1, key.encode()) + _len_field(2, _encode_tensor(_as_tensor(value)))
        out += _len_field(number, entry)
    return out


def encode_record(
    features: Mapping[str, Tensor | np.ndarray] | None = None, label: Mapping[str, Tensor | np.ndarray] | None = None
) -> bytes:
    """Serialise one ``Record`` message (no framing)."""
    return _encode_map(1, features or {}) + _encode_map(2, label or {})


def frame(payload: bytes) -> bytes:
    """Wrap one payload in a RecordIO frame (magic, length, payload, zero padding to 4 bytes)."""
    if len(payload) > _LENGTH_MASK:
        raise RecordIOError(f"Record of {len(payload)} bytes is too large for one RecordIO frame.")
    return _HEADER.pack(MAGIC, len(payload)) + payload + b"\x00" * (-len(payload) % 4)


def encode_records(records: Iterable[tuple[Mapping[str, Any] | None, Mapping[str, Any] | None]]) -> bytes:
    """Frame ``(features, label)`` pairs into one RecordIO byte string (used for inference responses)."""
    return b"".join(frame(encode_record(features, label)) for features, label in records)


# ------------------------------------------------------------------------------------------ SDK writers


def _check_labels(array_rows: int, labels: Any) -> tuple[np.ndarray | None, str | None]:
    if labels is None:
        return None, None
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise RecordIOError("Labels must be a Vector")
    if labels.shape[0] != array_rows:
        raise RecordIOError(f"Label shape {labels.shape} not compatible with array of {array_rows} rows")
    return labels, _tensor_kind(labels.dtype)


def _dense_frame(row: np.ndarray, kind: str, label: np.ndarray | None, label_kind: str | None) -> bytes:
    """One framed Record: the row in ``features["values"]``, the label (1 value) in ``label["values"]``."""
    packed = _packed_values(row, kind)
    tensor = _len_field(1, packed) if packed else b""
    entry = _len_field(1, b"values") + _len_field(2, _len_field(_KIND_FIELD[kind], tensor))
    payload = _len_field(1, entry)
    if label is not None:
        payload += _encode_map(2, {"values": Tensor(values=label, kind=label_kind or "float32")})
    return frame(payload)


def dense_tensor_bytes(array: Any, labels: Any = None) -> bytes:
    """The bytes ``write_numpy_to_dense_tensor(file, array, labels)`` writes: one Record per row."""
    array = np.asarray(array)
    if array.ndim != 2:
        raise RecordIOError("Array must be a Matrix")
    kind = _tensor_kind(array.dtype)
    labels, label_kind = _check_labels(array.shape[0], labels)
    rows = array.shape[0]
    if rows and array.shape[1] and kind != "int32" and label_kind != "int32":
        # Fixed-width values: every frame has row 0's layout, so build row 0 and fill the others' values in.
        first = _dense_frame(array[0], kind, None if labels is None else labels[:1], label_kind)
        record = decode_record(first[_HEADER.size :])
        frames = np.tile(np.frombuffer(first, dtype=np.uint8), (rows, 1))
        for tensor, values in ((record.features["values"], array), (record.label.get("values"), labels)):
            if tensor is not None and tensor.span is not None:
                start, stop = (_HEADER.size + offset for offset in tensor.span)
                little_endian = values.astype("<f4" if tensor.kind == "float32" else "<f8", copy=False)
                frames[:, start:stop] = np.ascontiguousarray(little_endian).view(np.uint8).reshape(rows, -1)
        return frames.tobytes()
    out = []
    for index, row in enumerate(array):
        label = None if labels is None else labels[index : index + 1]
        out.append(_dense_frame(row, kind, label, label_kind))
    return b"".join(out)


def sparse_tensor_bytes(matrix: Any, labels: Any = None) -> bytes:
    """The bytes ``write_spmatrix_to_sparse_tensor(file, matrix, labels)`` writes (values, keys, shape)."""
    from scipy.sparse import issparse

    if not issparse(matrix):
        raise RecordIOError("Array must be sparse")
    csr = matrix.tocsr()
    n_rows, n_cols = csr.shape
    kind = _tensor_kind(csr.dtype)
    labels, label_kind = _check_labels(n_rows, labels)
    out = []
    for row in range(n_rows):
        start, end = csr.indptr[row], csr.indptr[row + 1]
        tensor = Tensor(values=csr.data[start:end], kind=kind, keys=csr.indices[start:end].astype(np.uint64),
                        shape=(n_cols,))  # fmt: skip
        label = None if labels is None else {"values": Tensor(values=labels[row : row + 1], kind=label_kind)}
        out.append(frame(encode_record({"values": tensor}, label)))
    return b"".join(out)


def write_numpy_to_dense_tensor(file: IO[bytes], array: Any, labels: Any = None) -> None:
    """Drop-in for the SDK v2 function of the same name."""
    file.write(dense_tensor_bytes(array, labels))


def write_spmatrix_to_sparse_tensor(file: IO[bytes], matrix: Any, labels: Any = None) -> None:
    """Drop-in for the SDK v2 function of the same name."""
    file.write(sparse_tensor_bytes(matrix, labels))


# ------------------------------------------------------------------------------------------ reading


class _Reader:
    """A cursor over one protobuf message; ``where`` names the source and record for error messages."""

    __slots__ = ("buf", "pos", "end", "where")

    def __init__(self, buf: memoryview, start: int, end: int, where: str) -> None:
        self.buf, self.pos, self.end, self.where = buf, start, end, where

    def fail(self, what: str) -> RecordIOError:
        return RecordIOError(f"{self.where}: malformed protobuf payload at byte {self.pos}: {what}")

    def varint(self) -> int:
        result = shift = 0
        buf, pos, end = self.buf, self.pos, self.end
        while True:
            if pos >= end:
                raise self.fail("truncated varint")
            byte = buf[pos]
            pos += 1
            result |= (byte & 0x7F) << shift
            if byte < 0x80:
                self.pos = pos
                return result
            shift += 7
            if shift >= 70:
                raise self.fail("varint longer than 10 bytes")

    def length_delimited(self) -> tuple[int, int]:
        length = self.varint()
        start, stop = self.pos, self.pos + length
        if stop > self.end:
            raise self.fail(f"field of {length} bytes runs past the end of its message")
        self.pos = stop
        return start, stop

    def skip(self, wire: int) -> None:
        if wire == _VARINT:
            self.varint()
        elif wire == _I64:
            self.pos += 8
        elif wire == _LEN:
            self.length_delimited()
        elif wire == _I32:
            self.pos += 4
        else:
            raise self.fail(f"unsupported wire type {wire}")
        if self.pos > self.end:
            raise self.fail("truncated field")

    def fields(self) -> Iterator[tuple[int, int]]:
        while self.pos < self.end:
            tag = self.varint()
            number, wire = tag >> 3, tag & 7
            if number == 0:
                raise self.fail("field number 0")
            yield number, wire


def _read_varints(reader: _Reader, wire: int, out: list[int]) -> None:
    if wire == _LEN:  # packed
        start, stop = reader.length_delimited()
        sub = _Reader(reader.buf, start, stop, reader.where)
        while sub.pos < stop:
            out.append(sub.varint())
    elif wire == _VARINT:
        out.append(reader.varint())
    else:
        raise reader.fail(f"wire type {wire} for an integer field")


def _decode_tensor(reader: _Reader, start: int, stop: int, kind: str) -> Tensor:
    sub = _Reader(reader.buf, start, stop, reader.where)
    width, fixed_wire = {"float32": (4, _I32), "float64": (8, _I64), "int32": (0, _VARINT)}[kind]
    chunks: list[np.ndarray] = []
    spans: list[tuple[int, int]] = []
    ints: list[int] = []
    keys: list[int] = []
    shape: list[int] = []
    for number, wire in sub.fields():
        if number == 1:
            if kind == "int32":
                _read_varints(sub, wire, ints)
            elif wire == _LEN:
                a, b = sub.length_delimited()
                if (b - a) % width:
                    raise sub.fail(f"packed {kind} values of {b - a} bytes (not a multiple of {width})")
                chunks.append(np.frombuffer(sub.buf[a:b], dtype="<f4" if width == 4 else "<f8"))
                spans.append((a, b))
            elif wire == fixed_wire:
                a = sub.pos
                sub.skip(wire)
                chunks.append(np.frombuffer(sub.buf[a : a + width], dtype="<f4" if width == 4 else "<f8"))
            else:
                raise sub.fail(f"wire type {wire} for {kind} values")
        elif number == 2:
            _read_varints(sub, wire, keys)
        elif number == 3:
            _read_varints(sub, wire, shape)
        else:
            sub.skip(wire)
    if kind == "int32":
        values = np.asarray([v - (1 << 64) if v >= 1 << 63 else v for v in ints], dtype=np.int64).astype(np.int32)
    elif chunks:
        values = chunks[0] if len(chunks) == 1 else np.concatenate(chunks)
    else:
        values = np.empty(0, dtype=np.float32 if kind == "float32" else np.float64)
    span = spans[0] if len(spans) == 1 and len(chunks) == 1 else None
    return Tensor(values=values, kind=kind, keys=np.asarray(keys, dtype=np.uint64), shape=tuple(shape), span=span)


def _decode_value(reader: _Reader, start: int, stop: int) -> Tensor:
    sub = _Reader(reader.buf, start, stop, reader.where)
    tensor = None
    for number, wire in sub.fields():
        if number in _VALUE_FIELDS and wire == _LEN:
            a, b = sub.length_delimited()
            tensor = _decode_tensor(sub, a, b, _VALUE_FIELDS[number])
        elif number == _BYTES_FIELD:
            raise sub.fail("a Bytes value; only float32/float64/int32 tensors are supported")
        else:
            sub.skip(wire)
    if tensor is None:
        raise sub.fail("a Value with no tensor set")
    return tensor


def _decode_map_entry(reader: _Reader, start: int, stop: int) -> tuple[str, Tensor]:
    sub = _Reader(reader.buf, start, stop, reader.where)
    key, value = "", None
    for number, wire in sub.fields():
        if number == 1 and wire == _LEN:
            a, b = sub.length_delimited()
            try:
                key = bytes(sub.buf[a:b]).decode()
            except UnicodeDecodeError:
                raise sub.fail("map key is not UTF-8") from None
        elif number == 2 and wire == _LEN:
            a, b = sub.length_delimited()
            value = _decode_value(sub, a, b)
        else:
            sub.skip(wire)
    if value is None:
        raise sub.fail(f"map entry {key!r} has no value")
    return key, value


def decode_record(payload: bytes | memoryview, where: str = "record") -> Record:
    """Parse one ``Record`` message (no framing)."""
    buf = memoryview(payload)
    reader = _Reader(buf, 0, len(buf), where)
    record = Record()
    for number, wire in reader.fields():
        if number in (1, 2) and wire == _LEN:
            a, b = reader.length_delimited()
            key, value = _decode_map_entry(reader, a, b)
            (record.features if number == 1 else record.label)[key] = value
        elif number in (3, 4, 5) and wire == _LEN:
            a, b = reader.length_delimited()
            text = bytes(buf[a:b]).decode(errors="replace")
            setattr(record, {3: "uid", 4: "metadata", 5: "configuration"}[number], text)
        else:
            reader.skip(wire)
    return record


def iter_payloads(data: bytes | memoryview, source: str = "<bytes>") -> Iterator[tuple[int, memoryview]]:
    """Yield ``(byte offset, payload)`` for each RecordIO frame; raises RecordIOError naming source and offset."""
    view = memoryview(data)
    size, pos, index = len(view), 0, 0
    while pos < size:
        if size - pos < _HEADER.size:
            raise RecordIOError(f"{source}: record {index} at byte {pos}: truncated RecordIO header")
        magic, word = _HEADER.unpack_from(view, pos)
        if magic != MAGIC:
            raise RecordIOError(
                f"{source}: record {index} at byte {pos}: bad magic 0x{magic:08x}, expected 0x{MAGIC:08x} "
                "(is this RecordIO-protobuf? CSV data needs ContentType text/csv)"
            )
        if word >> 29:
            raise RecordIOError(
                f"{source}: record {index} at byte {pos}: multi-part RecordIO records are not supported"
            )
        start = pos + _HEADER.size
        stop = start + word
        if stop > size:
            raise RecordIOError(
                f"{source}: record {index} at byte {pos}: length {word} runs past the end of the data ({size} bytes)"
            )
        yield pos, view[start:stop]
        pos = stop + (-word % 4)
        index += 1


def read_records(data: bytes | memoryview, source: str = "<bytes>") -> Iterator[Record]:
    """Parse every Record of a RecordIO-protobuf byte string."""
    for index, (offset, payload) in enumerate(iter_payloads(data, source)):
        yield decode_record(payload, f"{source}: record {index} at byte {offset}")


def read_records_from(file: IO[bytes], source: str | None = None) -> Iterator[Record]:
    """Like the SDK's ``read_records(file)``: parse every Record of an open binary file."""
    return read_records(file.read(), source or getattr(file, "name", "<file>"))


def _uniform_block(
    data: bytes | memoryview, source: str, feature_key: str, label_key: str
) -> tuple[Record, np.ndarray, np.ndarray | None] | None:
    """Fast path for what the SDK writer produces: equal-size frames of dense rows that differ only in their
    feature and label values. Record 0 is parsed in full; every other frame must match it byte for byte
    outside those values, so parsing it would find its values at the same offsets (protobuf structure is
    in the tags and lengths, which are then identical). Returns None when that does not hold."""
    view = memoryview(data)
    if len(view) < _HEADER.size:
        return None
    magic, word = _HEADER.unpack_from(view, 0)
    frame_size = _HEADER.size + word + (-word % 4)
    if magic != MAGIC or word >> 29 or len(view) % frame_size or len(view) // frame_size < 2:
        return None
    record = decode_record(view[_HEADER.size : _HEADER.size + word], f"{source}: record 0 at byte 0")
    features, label = record.features.get(feature_key), record.label.get(label_key)
    regions = []
    for tensor in (features, label):
        if tensor is not None:
            if tensor.span is None or tensor.is_sparse or tensor.kind == "int32":
                return None
            regions.append((_HEADER.size + tensor.span[0], _HEADER.size + tensor.span[1], tensor))
    if features is None:
        return None
    frames = np.frombuffer(view, dtype=np.uint8).reshape(-1, frame_size)
    structure = np.ones(frame_size, dtype=bool)
    for start, stop, _ in regions:
        structure[start:stop] = False
    if not (frames[:, structure] == frames[0, structure]).all():
        return None
    blocks = []
    for start, stop, tensor in regions:
        dtype = "<f4" if tensor.kind == "float32" else "<f8"
        blocks.append(np.ascontiguousarray(frames[:, start:stop]).view(dtype).reshape(len(frames), -1))
    return record, blocks[0], (blocks[1][:, 0] if label is not None else None)


_NO_KEYS = np.empty(0, dtype=np.uint64)


def _check_kinds(features: Tensor, label: Tensor | None, allowed: frozenset[str] | None, where: str) -> None:
    for role, found in (("features", features), ("label", label)):
        if allowed and found is not None and found.kind not in allowed:
            raise RecordIOError(
                f"{where}: the {role} are a {found.kind} tensor; only {' or '.join(sorted(allowed))} "
                "tensors are supported here (write the arrays as float32)"
            )


@dataclass
class Matrix:
    """Records gathered into one feature matrix: dense ndarray or scipy CSR, plus labels if every row had one."""

    features: Any
    labels: np.ndarray | None
    sparse: bool


def to_matrix(
    sources: Iterable[tuple[str, bytes | memoryview]],
    feature_key: str = "values",
    label_key: str = "values",
    require_labels: bool = False,
    dtype: Any = np.float32,
    allowed_kinds: frozenset[str] | None = None,
) -> Matrix:
    """Gather ``features[feature_key]`` (and ``label[label_key][0]``) of every record of every source.

    Dense rows must all have the same length. If any row is sparse (``keys``) the result is CSR, with
    ``shape[0]`` (or max key + 1) columns, as the XGBoost container's reader decides. ``allowed_kinds``
    (e.g. ``{"float32"}`` for Linear Learner) refuses other tensor types.
    """
    rows: list[np.ndarray] = []
    keys: list[np.ndarray] = []
    labels: list[float] = []
    missing_label: str | None = None
    sparse = False
    n_cols = 0
    width: int | None = None
    width_where = ""
    for source, data in sources:
        block = _uniform_block(data, source, feature_key, label_key)
        if block is not None:
            record, values, block_labels = block
            where = f"{source}: record 0 at byte 0"
            _check_kinds(record.features[feature_key], record.label.get(label_key), allowed_kinds, where)
            if width is None:
                width, width_where = values.shape[1], where
            elif values.shape[1] != width:
                raise RecordIOError(
                    f"{where}: {values.shape[1]} feature values, but {width_where} has {width}; "
                    "dense records must all have the same number of features"
                )
            rows.extend(values)
            keys.extend([_NO_KEYS] * len(values))
            if block_labels is None:
                missing_label = missing_label or where
                labels.extend([np.nan] * len(values))
            else:
                labels.extend(block_labels.tolist())
            continue
        for index, (offset, payload) in enumerate(iter_payloads(data, source)):
            where = f"{source}: record {index} at byte {offset}"
            record = decode_record(payload, where)
            tensor = record.features.get(feature_key)
            if tensor is None:
                raise RecordIOError(f"{where}: no features[{feature_key!r}] (found {sorted(record.features)})")
            label = record.label.get(label_key)
            _check_kinds(tensor, label, allowed_kinds, where)
            if tensor.is_sparse:
                if tensor.keys.size != tensor.values.size:
                    raise RecordIOError(f"{where}: {tensor.keys.size} keys but {tensor.values.size} values")
                sparse = True
                top = int(tensor.keys.max()) + 1 if tensor.keys.size else 0
                n_cols = max(n_cols, int(tensor.shape[0]) if tensor.shape else 0, top)
                if tensor.shape and top > tensor.shape[0]:
                    raise RecordIOError(f"{where}: key {top - 1} is outside shape {list(tensor.shape)}")
            else:
                if width is None:
                    width, width_where = tensor.values.size, where
                elif tensor.values.size != width:
                    raise RecordIOError(
                        f"{where}: {tensor.values.size} feature values, but {width_where} has {width}; "
                        "dense records must all have the same number of features"
                    )
            rows.append(tensor.values)
            keys.append(tensor.keys)
            if label is None or label.values.size == 0:
                missing_label = missing_label or where
                labels.append(np.nan)
            else:
                labels.append(float(label.values[0]))
    if require_labels and missing_label:
        raise RecordIOError(f"{missing_label}: no label[{label_key!r}] value (training records need a label)")
    label_array = None if missing_label else np.asarray(labels, dtype=np.float64)
    if sparse:
        from scipy.sparse import csr_matrix

        n_cols = max(n_cols, width or 0)
        indptr = np.zeros(len(rows) + 1, dtype=np.int64)
        cols = []
        for i, (values, row_keys) in enumerate(zip(rows, keys, strict=True)):
            cols.append(row_keys.astype(np.int64) if row_keys.size else np.arange(values.size, dtype=np.int64))
            indptr[i + 1] = indptr[i] + values.size
        data = np.concatenate(rows).astype(dtype) if rows else np.empty(0, dtype=dtype)
        indices = np.concatenate(cols) if cols else np.empty(0, dtype=np.int64)
        return Matrix(csr_matrix((data, indices, indptr), shape=(len(rows), n_cols)), label_array, True)
    features = np.vstack(rows).astype(dtype, copy=False) if rows else np.empty((0, 0), dtype=dtype)
    return Matrix(features, label_array, False)
