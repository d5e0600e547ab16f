"""The batch-transform worker's pure parts: splitting into mini-batches, DataProcessing paths, join, output names."""

from __future__ import annotations

import json

import numpy as np
import pytest

from include.formats import recordio
from include.sagemaker_emulator.transform import output_relative
from include.sagemaker_emulator.transform_worker import (
    MB,
    FilterError,
    ObjectFailed,
    Plan,
    Request,
    compile_filter,
    grouped,
    joined_lines,
    line_batches,
    output_records,
    recordio_records,
    requests_for,
)


def _plan(**changes) -> Plan:
    fields = {
        "model_record": {},
        "content_type": "text/csv",
        "accept": None,
        "split": "Line",
        "compression": "None",
        "strategy": "MultiRecord",
        "max_payload_mb": 1,
        "concurrency": 1,
        "assemble": "Line",
        "input_filter": "$",
        "output_filter": "$",
        "join": False,
        "environment": {},
        "objects": [],
        **changes,
    }
    return Plan(**fields)


def test_multi_record_batches_fill_the_payload_with_whole_records() -> None:
    lines = [f"{i},{'x' * (i % 50)}" for i in range(20_000)]
    data = ("\n".join(lines) + "\n").encode()
    batches = list(line_batches(data, MB // 4))
    assert len(batches) > 1
    assert all(len(b.body) <= MB // 4 for b in batches)
    assert b"\n".join(b.body for b in batches).decode().split("\n") == lines  # nothing lost, none split
    assert [b.first for b in batches] == [1 + sum(x.count for x in batches[:i]) for i in range(len(batches))]


def test_blank_lines_and_crlf_are_not_records() -> None:
    batches = list(line_batches(b"1,2\r\n\r\n3,4\r\n", MB))
    assert [b.body for b in batches] == [b"1,2\r\n\r\n3,4"]  # one request; the parser skips the blank line
    single = list(requests_for(b"1,2\r\n\r\n3,4\r\n", _plan(strategy="SingleRecord"), compile_filter("$")))
    assert [(r.body, r.first) for r in single] == [(b"1,2", 1), (b"3,4", 2)]


def test_a_record_over_the_payload_limit_fails_its_object() -> None:
    data = b"1,2\n" + b"9" * 300 + b"\n3,4\n"
    with pytest.raises(ObjectFailed, match="record 2 is 300 bytes, larger than MaxPayloadInMB"):
        list(line_batches(data, 100))
    with pytest.raises(ObjectFailed, match="record 2 is 300 bytes"):
        list(grouped([b"1,2", b"9" * 300], 100, True, b"\n"))
    with pytest.raises(ObjectFailed, match="record 1"):
        list(requests_for(b"x" * (MB + 1), _plan(split="None"), compile_filter("$")))


def test_single_record_sends_one_record_per_request() -> None:
    requests = list(grouped([b"a", b"b", b"c"], MB, True, b"\n"))
    assert [(r.body, r.first, r.count) for r in requests] == [(b"a", 1, 1), (b"b", 2, 1), (b"c", 3, 1)]
    multi = list(grouped([b"aa", b"bb", b"cc"], 5, False, b"\n"))
    assert [(r.body, r.first, r.count) for r in multi] == [(b"aa\nbb", 1, 2), (b"cc", 3, 1)]


def test_recordio_records_keep_their_framing() -> None:
    data = recordio.dense_tensor_bytes(np.arange(6, dtype=np.float32).reshape(3, 2))
    records = recordio_records(data)
    assert len(records) == 3 and b"".join(records) == data
    with pytest.raises(ObjectFailed, match="not RecordIO"):
        recordio_records(b"not recordio at all")


@pytest.mark.parametrize(
    ("path", "document", "selected"),
    [
        ("$", ["a", "b"], ["a", "b"]),
        ("$[1:]", ["id", "1", "2"], ["1", "2"]),
        ("$[0,-1]", ["id", "1", "2", "p"], ["id", "p"]),
        ("$[-1]", ["id", "1"], ["1"]),
        ("$[1:3]", ["a", "b", "c", "d"], ["b", "c"]),
        ("$.features", {"id": 1, "features": [1, 2]}, [1, 2]),
        ("$['id','SageMakerOutput']", {"id": 1, "x": 2, "SageMakerOutput": 3}, {"id": 1, "SageMakerOutput": 3}),
    ],
)
def test_json_paths_select_as_sagemaker_documents(path: str, document, selected) -> None:
    assert compile_filter(path)(document) == selected


@pytest.mark.parametrize("path", ["$[1:", "features", "$..[", "$[?(@"])
def test_bad_paths_are_refused(path: str) -> None:
    with pytest.raises(FilterError):
        compile_filter(path)


def test_csv_join_with_filters() -> None:
    plan = _plan(join=True, input_filter="$[1:]", output_filter="$[0,-1]")
    request = next(iter(requests_for(b"id-1,1,2\nid-2,3,4\n", plan, compile_filter("$[1:]"))))
    assert request.body == b"1,2\n3,4" and request.inputs == [b"id-1,1,2", b"id-2,3,4"]
    assert joined_lines(request, b"0.5\n0.25\n", plan, compile_filter("$[0,-1]")) == [b"id-1,0.5", b"id-2,0.25"]


def test_json_join_adds_sagemaker_output() -> None:
    plan = _plan(content_type="application/jsonlines", accept="application/jsonlines", join=True)
    request = Request(b"", 1, 2, [b'{"id": 1, "features": [1]}', b"[2]"])
    lines = joined_lines(request, b'{"score": 0.5}\n{"score": 0.7}\n', plan, compile_filter("$"))
    assert [json.loads(line) for line in lines] == [
        {"id": 1, "features": [1], "SageMakerOutput": {"score": 0.5}},
        {"SageMakerInput": [2], "SageMakerOutput": {"score": 0.7}},
    ]


def test_output_records_must_match_the_input_records() -> None:
    assert output_records(b'{"predictions": [{"score": 1}, {"score": 2}]}', 2, "application/json") == [
        {"score": 1},
        {"score": 2},
    ]
    with pytest.raises(ObjectFailed, match="answered 1 output records for 2 input records"):
        output_records(b"0.5\n", 2, "text/csv")


@pytest.mark.parametrize(
    ("key", "prefix", "relative"),
    [
        ("in/data/a.csv", "in/data/", "a.csv"),
        ("in/data/sub/b.csv", "in/data", "sub/b.csv"),
        ("in/data.csv", "in/data.csv", "data.csv"),
        ("in/data.csv", "in/da", "data.csv"),
        ("a.csv", "", "a.csv"),
    ],
)
def test_output_names_keep_the_key_below_the_prefix(key: str, prefix: str, relative: str) -> None:
    assert output_relative(key, prefix) == relative
