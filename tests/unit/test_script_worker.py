"""The script-mode serving worker's handlers, in-process: the scikit-learn container's defaults and rules."""

from __future__ import annotations

import io
import json
import types

import numpy as np
import pytest

from include.sagemaker_emulator.serving import script_worker as worker


class _Doubler:
    def predict(self, x):
        return np.asarray(x).sum(axis=-1) * 2


def _handlers(**functions) -> worker.Handlers:
    module = types.SimpleNamespace(model_fn=lambda model_dir: _Doubler(), **functions)
    handlers = worker.Handlers(module, "inference.py")
    handlers.load("/nonexistent")
    return handlers


def test_default_handlers_decode_predict_and_encode_like_the_container():
    handlers = _handlers()
    status, body, content_type = worker.answer(handlers, {"content_type": "text/csv"}, b"1,2\n3,4", "application/json")
    assert (status, json.loads(body), content_type) == (200, [6.0, 14.0], "application/json")
    status, body, _ = worker.answer(
        handlers, {"content_type": "application/json", "accept": "text/csv"}, b"[[1,2]]", ""
    )
    assert body == b"6.0\n"  # one value per line, trailing newline
    npy = io.BytesIO()
    np.save(npy, np.array([[1.0, 1.0]]))
    status, body, content_type = worker.answer(
        handlers, {"content_type": "application/x-npy", "accept": "*/*"}, npy.getvalue(), "application/x-npy"
    )
    assert content_type == "application/x-npy" and np.load(io.BytesIO(body)).tolist() == [4.0]


def test_a_single_csv_row_is_squeezed_to_1d_as_the_container_does():
    assert worker.default_input_fn("1,2,3", "text/csv").shape == (3,)


def test_unsupported_content_type_and_accept_answer_415_and_406():
    handlers = _handlers()
    status, body, _ = worker.answer(handlers, {"content_type": "application/xml"}, b"<x/>", "application/json")
    assert status == 415 and json.loads(body)["error"] == "UnsupportedFormatError"
    status, _, _ = worker.answer(handlers, {"content_type": "text/csv", "accept": "text/html"}, b"1,2\n3,4", "")
    assert status == 406


def test_npy_requests_never_unpickle():
    npy = io.BytesIO()
    np.save(npy, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    status, body, _ = worker.answer(_handlers(), {"content_type": "application/x-npy"}, npy.getvalue(), "")
    assert status == 500 and "allow_pickle" in json.loads(body)["error-message"]


def test_user_exceptions_are_500_with_the_traceback(capsys):
    def predict_fn(data, model):
        raise KeyError("no such feature")

    status, body, content_type = worker.answer(
        _handlers(predict_fn=predict_fn), {"content_type": "application/json"}, b"[[1]]", "application/json"
    )
    error = json.loads(body)
    assert (status, content_type, error["error"]) == (500, "application/json", "KeyError")
    assert "no such feature" in error["stack-trace"] and "Traceback" in capsys.readouterr().err


def test_transform_fn_replaces_the_three_and_may_not_be_mixed_with_them():
    def transform_fn(model, content, content_type, accept):
        return f"{content_type}:{content}", "text/plain"

    status, body, content_type = worker.answer(
        _handlers(transform_fn=transform_fn), {"content_type": "text/csv"}, b"1,2", "application/json"
    )
    assert (status, body, content_type) == (200, b"text/csv:1,2", "text/plain")
    with pytest.raises(worker.UserError, match="transform_fn together with input_fn"):
        _handlers(transform_fn=transform_fn, input_fn=lambda body, content_type: body)


def test_model_fn_is_required():
    with pytest.raises(worker.UserError, match="defines no model_fn"):
        worker.Handlers(types.SimpleNamespace(predict_fn=lambda d, m: d), "inference.py")


def test_framing_round_trips_over_a_socket_pair():
    import socket

    left, right = socket.socketpair()
    with left, right:
        worker.send_message(left, {"content_type": "text/csv"}, b"1,2\n" * 1000)
        assert worker.recv_message(right) == ({"content_type": "text/csv"}, b"1,2\n" * 1000)
        left.close()
        with pytest.raises(EOFError):
            worker.recv_message(right)
