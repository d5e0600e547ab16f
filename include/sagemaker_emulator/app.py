"""The one HTTP port: an ASGI app that routes each request by the service its SigV4 signature names.

``sagemaker`` requests are ours (``/endpoints/{name}/invocations`` is the runtime, everything else the
control plane by ``X-Amz-Target``); every other request goes to moto. ``/_emulator/*`` is the emulator's
own API (health, fault injection) and its read-only pages for a browser (``pages.py``).
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from . import operations, pages
from .control_plane import RequestContext
from .emulator import Emulator
from .errors import AwsError
from .faults import FaultSpecError
from .shapes import parse_json

log = logging.getLogger(__name__)

INVOKE_PATH = re.compile(r"^/endpoints/([^/]+)/invocations$")
CREDENTIAL_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/([^/]+)/([^/]+)/aws4_request")
RESOURCE_KINDS = ("training-job", "processing-job", "transform-job", "model", "endpoint-config", "endpoint")
JSON_11 = [(b"content-type", b"application/x-amz-json-1.1")]
# The largest control-plane (and /_emulator) request body accepted; bigger ones are refused unread.
MAX_CONTROL_PLANE_BODY = 1024 * 1024


def _headers(scope: dict[str, Any]) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


class BodyTooLarge(Exception):
    def __init__(self, size: int | None):
        super().__init__(size)
        self.size = size  # the declared Content-Length, None when the body came chunked


async def _read_body(receive: Any, headers: dict[str, str] | None = None, limit: int | None = None) -> bytes:
    """The request body; with ``limit``, BodyTooLarge as soon as it is known to be longer (from
    Content-Length before reading anything, or while reading a chunked body), never holding more."""
    if limit is not None and headers is not None:
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise BodyTooLarge(int(declared))
    chunks = []
    size = 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if limit is not None and size > limit:
            raise BodyTooLarge(None)
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def _send(send: Any, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _send_json(send: Any, status: int, payload: Any, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await _send(send, status, json.dumps(payload).encode(), headers or [(b"content-type", b"application/json")])


class EmulatorApp:
    def __init__(self, emulator: Emulator):
        self.emulator = emulator
        self._moto_pool: ThreadPoolExecutor | None = None

    @property
    def moto_pool(self) -> ThreadPoolExecutor:
        if self._moto_pool is None:
            self._moto_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="moto")
        return self._moto_pool

    async def _pass_to_moto(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Pass a request to moto. The whole answer is held until moto is done and, for a mutation, until
        it is in the journal (MotoFacade.serve): nothing is acknowledged that a kill -9 could lose."""
        from a2wsgi.wsgi import build_environ

        body = await _read_body(receive)
        environ = build_environ(scope, io.BytesIO(body))  # type: ignore[arg-type]
        loop = asyncio.get_running_loop()
        try:
            status, headers, answer = await loop.run_in_executor(
                self.moto_pool, self.emulator.moto.serve, environ, body
            )
        except Exception as exc:  # a bug of ours or a journal write that failed: never a silent 200
            log.exception("moto request %s %s failed", scope["method"], scope["path"])
            await _send(send, 500, f"InternalError: {exc!r}".encode(), [(b"content-type", b"text/plain")])
            return
        raw_headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]
        if not any(k == b"content-length" for k, _ in raw_headers):
            raw_headers.append((b"content-length", str(len(answer)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else answer})

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path.startswith("/_emulator/"):
            await self._emulator_api(scope, receive, send)
            return
        headers = _headers(scope)
        match = CREDENTIAL_SCOPE.search(headers.get("authorization", ""))
        if match and match.group(2) == "sagemaker":
            region = match.group(1)
            invoke = INVOKE_PATH.match(path)
            if invoke:
                body = await _read_body(receive)
                await self._runtime(region, invoke.group(1), headers, body, send)
                return
            try:
                body = await _read_body(receive, headers, MAX_CONTROL_PLANE_BODY)
            except BodyTooLarge as exc:
                await self._body_too_large(exc, send)
                return
            await self._control_plane(region, headers, body, send)
            return
        await self._pass_to_moto(scope, receive, send)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await asyncio.to_thread(self.emulator.start)
                except Exception as exc:
                    log.exception("emulator failed to start")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await asyncio.to_thread(self.emulator.shutdown)
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _control_plane(self, region: str, headers: dict[str, str], body: bytes, send: Any) -> None:
        request_id = str(uuid.uuid4()).encode()
        target = headers.get("x-amz-target", "")
        service, _, operation = target.partition(".")
        try:
            if service != "SageMaker" or not operation:
                raise AwsError("UnknownOperationException", f"Missing or unknown X-Amz-Target {target!r}.")
            request = parse_json(body or b"{}")
            ctx = RequestContext(self.emulator, region, operation)
            result = await asyncio.to_thread(operations.dispatch, ctx, request)
            await _send_json(send, 200, result, [*JSON_11, (b"x-amzn-requestid", request_id)])
        except AwsError as err:
            await _send_json(
                send,
                err.status,
                {"__type": err.code, "message": err.message},
                [*JSON_11, (b"x-amzn-requestid", request_id)],
            )
        except Exception as exc:  # a bug of ours: say so, as a 400 botocore will not retry and hide
            log.exception("control plane %s failed", operation)
            await _send_json(
                send,
                400,
                {"__type": "InternalEmulatorError", "message": f"{operation}: {exc!r}"},
                [*JSON_11, (b"x-amzn-requestid", request_id)],
            )

    @staticmethod
    async def _body_too_large(exc: BodyTooLarge, send: Any) -> None:
        size = f"of {exc.size} bytes " if exc.size is not None else ""
        await _send_json(
            send,
            413,
            {
                "__type": "ValidationException",
                "message": f"Request body {size}exceeds the {MAX_CONTROL_PLANE_BODY} bytes (1 MiB) the emulator "
                "accepts in a SageMaker control-plane request.",
            },
            [*JSON_11, (b"x-amzn-requestid", str(uuid.uuid4()).encode())],
        )

    async def _runtime(self, region: str, endpoint: str, headers: dict[str, str], body: bytes, send: Any) -> None:
        serving = self.emulator.serving
        if serving is None:
            await _send_json(
                send,
                400,
                {"message": "InvokeEndpoint is not available in this emulator build."},
                [(b"x-amzn-errortype", b"ValidationError"), (b"content-type", b"application/json")],
            )
            return
        status, response_headers, response_body = await serving.invoke(region, endpoint, headers, body)
        await _send(
            send,
            status,
            response_body,
            [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response_headers.items()],
        )

    async def _emulator_api(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path, method = scope["path"], scope["method"]
        # The read-only pages for a browser (S3 index, resource descriptions): pages.py.
        page = pages.render(self.emulator, scope)
        if page is not None:
            await _send(send, page.status, b"" if method == "HEAD" else page.body, page.headers())
            return
        try:
            body = await _read_body(receive, _headers(scope), MAX_CONTROL_PLANE_BODY)
        except BodyTooLarge:
            await _send_json(
                send,
                413,
                {"code": "RequestEntityTooLarge", "error": f"request body exceeds {MAX_CONTROL_PLANE_BODY} bytes"},
            )
            return
        if path == "/_emulator/health" and method == "GET":
            await _send_json(send, 200, self.emulator.health())
        elif path == "/_emulator/faults" and method == "GET":
            await _send_json(send, 200, {"faults": self.emulator.faults.active()})
        elif path == "/_emulator/faults" and method == "POST":
            try:
                active = self.emulator.faults.add(parse_json(body or b"null"))
            except FaultSpecError as exc:
                await _send_json(send, 400, {"code": "InvalidFaultSpec", "error": f"invalid fault spec: {exc}"})
                return
            except AwsError as exc:
                await _send_json(send, 400, {"code": "InvalidFaultSpec", "error": f"invalid fault spec: {exc.message}"})
                return
            await _send_json(send, 200, {"faults": active})
        elif path == "/_emulator/faults" and method == "DELETE":
            self.emulator.faults.clear()
            await _send_json(send, 200, {"faults": []})
        else:
            await _send_json(send, 404, {"error": f"no emulator API at {method} {path}"})
