"""RecordIO-protobuf: byte-exact against the SageMaker SDK v2 writer (golden fixtures), round trips, errors."""

from __future__ import annotations

import io
import pathlib
import struct

import numpy as np
import pytest
from scipy.sparse import csr_matrix
from scipy.sparse import random as sparse_random

from include.formats import recordio

FIXTURES = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "recordio"


@pytest.fixture(scope="module")
def inputs() -> dict[str, object]:
    z = np.load(FIXTURES / "inputs.npz")
    data = {key: z[key] for key in z.files}
    data["sparse"] = csr_matrix(
        (data["sparse_data"], data["sparse_indices"], data["sparse_indptr"]), shape=tuple(data["sparse_shape"])
    )
    return data


def _golden_cases(inputs: dict) -> dict[str, bytes]:
    return {
        "dense_float32_labels": recordio.dense_tensor_bytes(inputs["dense32"], inputs["labels32"]),
        "dense_float32_nolabels": recordio.dense_tensor_bytes(inputs["dense32"]),
        "dense_float64_labels": recordio.dense_tensor_bytes(inputs["dense64"], inputs["labels64"]),
        "dense_int_labels": recordio.dense_tensor_bytes(inputs["dense_int"], inputs["labels_int"]),
        "sparse_float32_labels": recordio.sparse_tensor_bytes(inputs["sparse"], inputs["labels32"]),
        "sparse_float64_nolabels": recordio.sparse_tensor_bytes(inputs["sparse"].astype(np.float64)),
    }


def test_writer_reproduces_the_sdk_bytes(inputs) -> None:
    cases = _golden_cases(inputs)
    assert len(cases) == len(list(FIXTURES.glob("*.bin")))
    for name, ours in cases.items():
        assert ours == (FIXTURES / f"{name}.bin").read_bytes(), name


def test_file_api_matches_bytes_api(inputs) -> None:
    buffer = io.BytesIO()
    recordio.write_numpy_to_dense_tensor(buffer, inputs["dense32"], inputs["labels32"])
    assert buffer.getvalue() == (FIXTURES / "dense_float32_labels.bin").read_bytes()
    buffer = io.BytesIO()
    recordio.write_spmatrix_to_sparse_tensor(buffer, inputs["sparse"], inputs["labels32"])
    assert buffer.getvalue() == (FIXTURES / "sparse_float32_labels.bin").read_bytes()


def test_reader_reads_the_sdk_bytes(inputs) -> None:
    dense = recordio.to_matrix([("f", (FIXTURES / "dense_float32_labels.bin").read_bytes())])
    assert not dense.sparse and dense.features.dtype == np.float32
    np.testing.assert_array_equal(dense.features, inputs["dense32"])
    np.testing.assert_array_equal(dense.labels, inputs["labels32"])

    unlabelled = recordio.to_matrix([("f", (FIXTURES / "dense_float32_nolabels.bin").read_bytes())])
    assert unlabelled.labels is None

    wide = recordio.to_matrix([("f", (FIXTURES / "dense_float64_labels.bin").read_bytes())], dtype=np.float64)
    np.testing.assert_array_equal(wide.features, inputs["dense64"])
    np.testing.assert_array_equal(wide.labels, inputs["labels64"])

    records = list(recordio.read_records((FIXTURES / "dense_int_labels.bin").read_bytes()))
    assert [r.features["values"].kind for r in records] == ["int32", "int32"]
    np.testing.assert_array_equal(np.vstack([r.features["values"].values for r in records]), inputs["dense_int"])
    assert [int(r.label["values"].values[0]) for r in records] == inputs["labels_int"].tolist()

    for name in ("sparse_float32_labels", "sparse_float64_nolabels"):
        sparse = recordio.to_matrix([(name, (FIXTURES / f"{name}.bin").read_bytes())])
        assert sparse.sparse and sparse.features.shape == (3, 10)
        np.testing.assert_array_equal(sparse.features.toarray(), inputs["sparse"].toarray())
    first = next(recordio.read_records((FIXTURES / "sparse_float32_labels.bin").read_bytes()))
    assert first.features["values"].keys.tolist() == [1, 7] and first.features["values"].shape == (10,)


def test_frames_are_padded_to_four_bytes() -> None:
    data = recordio.dense_tensor_bytes(np.array([[1, 2, 3]] * 3))  # Int32 varints: 19-byte payloads
    offsets = [offset for offset, _ in recordio.iter_payloads(data)]
    assert offsets == [0, 28, 56] and len(data) == 84
    assert struct.unpack_from("<II", data, 0) == (0xCED7230A, 19)
    assert data[27:28] == b"\x00"


def test_dense_and_sparse_round_trip() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(200, 17)).astype(np.float32)
    y = rng.integers(0, 2, 200).astype(np.float32)
    back = recordio.to_matrix([("a", recordio.dense_tensor_bytes(x[:120], y[:120])),
                               ("b", recordio.dense_tensor_bytes(x[120:], y[120:]))])  # fmt: skip
    np.testing.assert_array_equal(back.features, x)
    np.testing.assert_array_equal(back.labels, y)

    s = sparse_random(50, 300, density=0.02, format="csr", random_state=3, dtype=np.float32)
    back = recordio.to_matrix([("s", recordio.sparse_tensor_bytes(s, np.arange(50, dtype=np.float32)))])
    assert back.sparse and back.features.shape == (50, 300)
    np.testing.assert_array_equal(back.features.toarray(), s.toarray())
    np.testing.assert_array_equal(back.labels, np.arange(50))


def test_inference_style_records_round_trip() -> None:
    payload = recordio.encode_records(
        [(None, {"score": np.float32(0.25), "predicted_label": np.float32(0)}), (None, {"score": [0.1, 0.9]})]
    )
    records = list(recordio.read_records(payload))
    assert list(records[0].label) == ["score", "predicted_label"] and not records[0].features
    assert records[0].label["score"].values.tolist() == [0.25]
    assert records[1].label["score"].kind == "float64"
    np.testing.assert_allclose(records[1].label["score"].values, [0.1, 0.9])


def test_reader_skips_unknown_fields_and_accepts_unpacked_floats() -> None:
    # Float32Tensor with two unpacked floats (tag 0x0D each) and an unknown varint field 15
    tensor = b"\x0d" + struct.pack("<f", 1.5) + b"\x0d" + struct.pack("<f", -2.0) + b"\x78\x05"
    value = b"\x12" + bytes([len(tensor)]) + tensor
    entry = b"\x0a\x06values" + b"\x12" + bytes([len(value)]) + value
    payload = b"\x0a" + bytes([len(entry)]) + entry + b"\x1a\x03uid" + b"\xa0\x01\x07"  # uid, unknown field 20
    record = recordio.decode_record(payload)
    assert record.features["values"].values.tolist() == [1.5, -2.0]
    assert record.uid == "uid"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"1,2,3\n4,5,6\n", "bad magic 0x2c322c31"),
        (struct.pack("<II", 0xCED7230A, 100) + b"\x00" * 8, "length 100 runs past the end"),
        (struct.pack("<II", 0xCED7230A, 1 << 29) + b"\x00" * 8, "multi-part RecordIO records are not supported"),
        (b"\x0a\xce\xd7", "truncated RecordIO header"),
        (recordio.frame(b"\x0a\x05\x0a\x03ab"), "runs past the end of its message"),
    ],
)
def test_malformed_input_names_source_and_offset(data: bytes, message: str) -> None:
    good = recordio.dense_tensor_bytes(np.ones((1, 2), dtype=np.float32))
    with pytest.raises(recordio.RecordIOError) as err:
        recordio.to_matrix([("channel 'train', file 'part-1'", good + data)])
    text = str(err.value)
    assert message in text and "channel 'train', file 'part-1'" in text
    assert f"record 1 at byte {len(good)}" in text


def test_matrix_errors() -> None:
    rows = recordio.dense_tensor_bytes(np.ones((2, 3), dtype=np.float32), np.ones(2, dtype=np.float32))
    short = recordio.dense_tensor_bytes(np.ones((1, 2), dtype=np.float32), np.ones(1, dtype=np.float32))
    with pytest.raises(recordio.RecordIOError, match=r"b: record 0 at byte 0: 2 feature values, but a: record 0"):
        recordio.to_matrix([("a", rows), ("b", short)])
    with pytest.raises(recordio.RecordIOError, match="no label"):
        recordio.to_matrix([("x", recordio.dense_tensor_bytes(np.ones((1, 2), np.float32)))], require_labels=True)
    doubles = recordio.dense_tensor_bytes(np.ones((1, 2)), np.ones(1))
    with pytest.raises(recordio.RecordIOError, match="features are a float64 tensor; only float32"):
        recordio.to_matrix([("x", doubles)], allowed_kinds=frozenset({"float32"}))


def test_writer_refuses_what_the_format_cannot_carry() -> None:
    with pytest.raises(recordio.RecordIOError, match="Unsupported dtype"):
        recordio.dense_tensor_bytes(np.array([["a"]]))
    with pytest.raises(recordio.RecordIOError, match="Int32Tensor"):
        recordio.dense_tensor_bytes(np.array([[2**40]]))
    with pytest.raises(recordio.RecordIOError, match="Array must be a Matrix"):
        recordio.dense_tensor_bytes(np.ones(3, dtype=np.float32))
    with pytest.raises(recordio.RecordIOError, match="not compatible"):
        recordio.dense_tensor_bytes(np.ones((3, 2), dtype=np.float32), np.ones(2, dtype=np.float32))
    with pytest.raises(recordio.RecordIOError, match="must be sparse"):
        recordio.sparse_tensor_bytes(np.ones((3, 2), dtype=np.float32))


def test_uniform_frames_take_the_fast_path_and_agree_with_the_record_parser() -> None:
    rng = np.random.default_rng(9)
    x = rng.normal(size=(300, 7)).astype(np.float32)
    y = rng.normal(size=300).astype(np.float32)
    data = recordio.dense_tensor_bytes(x, y)
    assert recordio._uniform_block(data, "s", "values", "values") is not None
    fast = recordio.to_matrix([("s", data)])
    by_record = list(recordio.read_records(data))
    np.testing.assert_array_equal(fast.features, np.vstack([r.features["values"].values for r in by_record]))
    np.testing.assert_array_equal(fast.labels, [r.label["values"].values[0] for r in by_record])


def test_frames_that_differ_in_structure_fall_back_to_the_record_parser() -> None:
    x = np.ones((3, 2), dtype=np.float32)
    good = recordio.dense_tensor_bytes(x, np.zeros(3, dtype=np.float32))
    # same frame size, but record 2's label is under another key of the same length
    odd = recordio.frame(recordio.encode_record({"values": x[0]}, {"valuez": np.zeros(1, dtype=np.float32)}))
    data = good[: 2 * len(good) // 3] + odd
    assert len(odd) == len(good) // 3
    assert recordio._uniform_block(data, "s", "values", "values") is None
    with pytest.raises(recordio.RecordIOError, match=r"s: record 2 at byte \d+: no label\['values'\] value"):
        recordio.to_matrix([("s", data)], require_labels=True)


def test_vectorised_writer_matches_the_per_row_encoder() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(50, 6)).astype(np.float32)
    x[0, 0], x[1, 1], x[2, 2] = np.nan, -0.0, np.inf
    for labels in (None, rng.normal(size=50), rng.normal(size=50).astype(np.float32)):
        kind = None if labels is None else ("float64" if labels.dtype == np.float64 else "float32")
        per_row = b"".join(
            recordio._dense_frame(x[i], "float32", None if labels is None else labels[i : i + 1], kind)
            for i in range(len(x))
        )
        assert recordio.dense_tensor_bytes(x, labels) == per_row
