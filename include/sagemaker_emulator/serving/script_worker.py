"""A script-mode serving worker: the only process that imports the user's inference script.

Started by :mod:`.script_mode` as a command (``python script_worker.py --socket-fd N ...``) with the model's
environment. It imports the program from the code directory the way the scikit-learn serving container does
(``SAGEMAKER_PROGRAM`` without ``.py``), calls ``model_fn(model_dir)`` once, reports ready on its socket and
then answers requests one at a time with ``input_fn``/``predict_fn``/``output_fn`` (or ``transform_fn``),
using the container's defaults where the script defines none.

Wire format on the socket (both directions): a 8-byte header ``!II`` = (length of the JSON meta, length of
the body), the meta, the body. Requests carry ``{"content_type", "accept"}``; answers ``{"status",
"content_type"}``. Error answers carry the container's JSON error body (``error``, ``error-message``,
``stack-trace``); the traceback is also printed on stderr, which the server ships to CloudWatch Logs.

The server imports this module only for its framing helpers (importing it runs nothing and imports no
user code); as a worker it needs only the standard library, numpy (lazily, for the default handlers) and
the lifeline.
"""

from __future__ import annotations

import argparse
import importlib
import io
import json
import os
import socket
import struct
import sys
import traceback
from pathlib import Path
from typing import Any

HEADER = struct.Struct("!II")
JSON, CSV, NPY = "application/json", "text/csv", "application/x-npy"
# Content types whose body input_fn receives as str (sagemaker_containers' UTF8_TYPES), others as bytes.
TEXT_TYPES = (JSON, CSV)


class UnsupportedFormatError(Exception):
    """The default input_fn/output_fn do not handle this content type (415 on input, 406 on output)."""

    def __init__(self, content_type: str):
        super().__init__(f"Content type {content_type} is not supported by this framework.")


class UserError(Exception):
    """The script defines a combination of handlers the container refuses, or no model_fn."""


# ------------------------------------------------------------------------------------------------- framing
def recv_exact(sock: socket.socket, size: int) -> bytes:
    buffer = bytearray(size)
    view = memoryview(buffer)
    received = 0
    while received < size:
        count = sock.recv_into(view[received:], size - received)
        if count == 0:
            raise EOFError("the peer closed the connection")
        received += count
    return bytes(buffer)


def send_message(sock: socket.socket, meta: dict[str, Any], body: bytes) -> None:
    encoded = json.dumps(meta).encode()
    sock.sendall(HEADER.pack(len(encoded), len(body)) + encoded + body)


def recv_message(sock: socket.socket) -> tuple[dict[str, Any], bytes]:
    meta_length, body_length = HEADER.unpack(recv_exact(sock, HEADER.size))
    meta = json.loads(recv_exact(sock, meta_length))
    return meta, recv_exact(sock, body_length) if body_length else b""


# ------------------------------------------------------------------------------------------------- defaults
def _base_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def default_model_fn(model_dir: str) -> Any:
    raise UserError(
        "Please provide a model_fn implementation: the scikit-learn serving container has no default model_fn "
        "(define model_fn(model_dir) in the SAGEMAKER_PROGRAM script; it returns the loaded model)."
    )


def default_input_fn(input_data: Any, content_type: str) -> Any:
    import numpy as np

    kind = _base_type(content_type)
    if kind == JSON:
        return np.array(json.loads(input_data)).astype(np.float32)
    if kind == CSV:
        import csv

        rows = list(csv.reader(io.StringIO(input_data), delimiter=",", quotechar='"', doublequote=True, strict=True))
        # squeeze() as the container does: a single row becomes 1-D, which scikit-learn's predict refuses.
        return np.array(rows).squeeze().astype(np.float32)
    if kind == NPY:
        # The container loads with allow_pickle=True; here client bytes never unpickle (object arrays refused).
        return np.load(io.BytesIO(input_data), allow_pickle=False)
    raise UnsupportedFormatError(content_type)


def default_predict_fn(data: Any, model: Any) -> Any:
    return model.predict(data)


def default_output_fn(prediction: Any, accept: str) -> tuple[bytes, str]:
    import numpy as np

    kind = _base_type(accept)
    if kind == JSON:

        def default(value: Any) -> Any:
            if hasattr(value, "tolist"):
                return value.tolist()
            return json.JSONEncoder().default(value)

        return json.dumps(prediction, default=default).encode(), accept
    if kind == CSV:
        import csv

        array = np.array(prediction)
        if array.ndim == 1:
            array = array.reshape(array.shape[0], 1)  # one value per line
        stream = io.StringIO()
        csv.writer(stream, lineterminator="\n", delimiter=",", quotechar='"', doublequote=True).writerows(array)
        return stream.getvalue().encode(), accept
    if kind == NPY:
        stream = io.BytesIO()
        np.save(stream, prediction)
        return stream.getvalue(), accept
    raise UnsupportedFormatError(accept)


# ------------------------------------------------------------------------------------------------- handlers
class Handlers:
    """The user's functions with the container's defaults where the module defines none."""

    def __init__(self, module: Any, program: str):
        def user(name: str) -> Any:
            function = getattr(module, name, None)
            return function if callable(function) else None

        self.model_fn = user("model_fn")
        if self.model_fn is None:
            raise UserError(
                f"{program} defines no model_fn(model_dir). The scikit-learn serving container requires one: "
                "it loads the model that input_fn/predict_fn/output_fn (or transform_fn) use."
            )
        self.transform_fn = user("transform_fn")
        custom = [name for name in ("input_fn", "predict_fn", "output_fn") if user(name) is not None]
        if self.transform_fn is not None and custom:
            raise UserError(
                f"{program} defines transform_fn together with {', '.join(custom)}: transform_fn replaces "
                "input_fn, predict_fn and output_fn, so define either transform_fn or those."
            )
        self.input_fn = user("input_fn") or default_input_fn
        self.predict_fn = user("predict_fn") or default_predict_fn
        self.output_fn = user("output_fn") or default_output_fn
        self.model: Any = None

    def load(self, model_dir: str) -> None:
        self.model = self.model_fn(model_dir)

    def transform(self, content: Any, content_type: str, accept: str) -> tuple[int, Any, str]:
        if self.transform_fn is not None:
            return 200, self.transform_fn(self.model, content, content_type, accept), accept
        try:
            data = self.input_fn(content, content_type)
        except UnsupportedFormatError as exc:
            return _error(exc, 415)
        prediction = self.predict_fn(data, self.model)
        try:
            result = self.output_fn(prediction, accept)
        except UnsupportedFormatError as exc:
            return _error(exc, 406)
        return 200, result, accept


def _error(exc: BaseException, status: int) -> tuple[int, bytes, str]:
    body = {"error": type(exc).__name__, "error-message": str(exc), "stack-trace": traceback.format_exc()}
    return status, json.dumps(body).encode(), JSON


def _as_response(result: Any, accept: str) -> tuple[bytes, str]:
    """Bytes and content type from what a handler returned: (data, content type) or the data alone."""
    content_type = accept
    if isinstance(result, tuple) and len(result) == 2:
        result, content_type = result[0], result[1] or accept
    if isinstance(result, str):
        return result.encode(), content_type
    if isinstance(result, (bytes, bytearray, memoryview)):
        return bytes(result), content_type
    raise TypeError(
        f"output_fn/transform_fn returned {type(result).__name__}; return the response body (bytes or str), "
        "optionally as a (body, content_type) tuple"
    )


def answer(handlers: Handlers, meta: dict[str, Any], body: bytes, default_accept: str) -> tuple[int, bytes, str]:
    content_type = meta.get("content_type") or JSON
    accept = meta.get("accept") or default_accept
    if accept == "*/*":
        accept = default_accept
    try:
        content: Any = body.decode("utf-8") if _base_type(content_type) in TEXT_TYPES else body
        status, result, fallback_type = handlers.transform(content, content_type, accept)
        if status != 200:
            return status, result, fallback_type
        data, out_type = _as_response(result, fallback_type)
        return 200, data, out_type
    except Exception as exc:  # the user's code failed: the container answers 500 and logs the traceback
        traceback.print_exc()
        return _error(exc, 500)


def serve(sock: socket.socket, handlers: Handlers, default_accept: str) -> None:
    while True:
        try:
            meta, body = recv_message(sock)
        except EOFError:
            return  # the server closed our socket: the endpoint is gone
        status, data, content_type = answer(handlers, meta, body, default_accept)
        send_message(sock, {"status": status, "content_type": content_type}, data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--socket-fd", type=int, required=True)
    parser.add_argument("--server-pid", type=int, required=True)
    parser.add_argument("--code-dir", required=True)
    parser.add_argument("--program", required=True)
    parser.add_argument("--model-dir", required=True)
    args = parser.parse_args(argv)

    from include.sagemaker_emulator.lifeline import exit_with

    exit_with(args.server_pid)  # die with the server, however it ends
    sock = socket.socket(fileno=args.socket_fd)
    # The user's directory comes first, as /opt/ml/code does in the container; not this file's directory.
    sys.path[0] = args.code_dir
    os.chdir(args.code_dir)
    try:
        module = importlib.import_module(Path(args.program).with_suffix("").as_posix().replace("/", "."))
        handlers = Handlers(module, args.program)
        handlers.load(args.model_dir)
    except BaseException as exc:
        trace = traceback.format_exc()
        print(trace, file=sys.stderr, flush=True)
        message = str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"
        send_message(sock, {"status": "failed", "message": message}, trace.encode())
        return 1
    print(f"Loaded the model with {args.program}'s model_fn; worker {os.getpid()} ready", file=sys.stderr, flush=True)
    send_message(sock, {"status": "ready", "pid": os.getpid()}, b"")
    serve(sock, handlers, os.environ.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT") or JSON)
    return 0


if __name__ == "__main__":
    sys.exit(main())
