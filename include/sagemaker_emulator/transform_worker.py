"""The batch-transform worker: what runs on one transform instance, in its own process forked from the pool.

The server (``transform.py``) stages the instance's input objects as ``input/<n>`` (numbered, never named by a
key), extracts the model into ``model/`` and writes ``plan.json``. This process loads the model through
``serving.predictor_for_model(..., batch=True)``, the same kind of object real-time serving uses, and for each
object in order:

* splits it into records (``SplitType`` None: the whole object; Line: lines; RecordIO: RecordIO records);
* applies ``DataProcessing.InputFilter`` to each record;
* sends requests of one record (``SingleRecord``) or of whole records up to ``MaxPayloadInMB``
  (``MultiRecord``), up to ``MaxConcurrentTransforms`` at a time, never spanning two objects;
* joins each output record to its input record (``JoinSource`` Input), applies ``OutputFilter`` and
  assembles the answers (``AssembleWith`` Line: one per line; None: concatenated);
* writes ``output/<n>.out`` only when every request of the object succeeded; otherwise it records the error,
  logs it (``data.log``, shipped as the ``data-log`` stream) and goes on with the next object.

``results.json`` tells the server which objects succeeded. No byte of the input runs as code: built-in
models load from their native formats, and requests are parsed as data.

DataProcessing paths use JSONPath as the jsonpath-ng library reads it (the subset SageMaker documents: ``$``,
``$.a``, ``$['a','b']``, ``$[1]``, ``$[-1]``, ``$[0,2]``, ``$[1:]``, ``$[1:4]``). CSV records are JSON arrays of
their cells for the filters. Slices end exclusively (Python's and JSONPath's rule): AWS's documentation calls
the end inclusive in one example, which this emulator does not copy.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MB = 1024 * 1024
DEFAULT_MAX_PAYLOAD_MB = 6
MAX_THREADS = 32


class FilterError(ValueError):
    """A DataProcessing path that is not JSONPath."""


class ModelLoadFailed(Exception):
    """The model container could not load the model: the whole job fails."""


class ObjectFailed(Exception):
    """One input object cannot be transformed; the message names the records and the error."""


# -- DataProcessing ------------------------------------------------------------------------------------------
def compile_filter(path: str) -> Callable[[Any], Any]:
    """A function selecting ``path`` from a record (a list of CSV cells or a JSON value)."""
    if path == "$":
        return lambda document: document
    from jsonpath_ng.exceptions import JsonPathLexerError, JsonPathParserError
    from jsonpath_ng.ext import parse

    if not path.startswith("$"):
        raise FilterError("a JSONPath starts with '$'")
    try:
        expression = parse(path)
    except (JsonPathLexerError, JsonPathParserError, Exception) as exc:
        raise FilterError(str(exc) or type(exc).__name__) from None

    def select(document: Any) -> Any:
        matches = expression.find(document)
        if isinstance(document, list):
            return [match.value for match in matches]
        if len(matches) == 1 and "," not in path:
            return matches[0].value
        return {str(match.path): match.value for match in matches}

    return select


def _csv_cells(record: bytes) -> list[str]:
    return next(csv.reader([record.decode("utf-8")]), [])


def _csv_line(cells: list[Any]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(cells)
    return out.getvalue().encode("utf-8")


def _is_csv(media: str) -> bool:
    return media in ("text/csv", "csv", "")


def _media(value: str | None) -> str:
    return value.split(";", 1)[0].strip().lower() if value else ""


# -- the plan ------------------------------------------------------------------------------------------------
@dataclass
class Plan:
    model_record: dict[str, Any]
    content_type: str | None
    accept: str | None
    split: str
    compression: str
    strategy: str | None
    max_payload_mb: int | None
    concurrency: int | None
    assemble: str
    input_filter: str
    output_filter: str
    join: bool
    environment: dict[str, str]
    objects: list[dict[str, Any]]
    region: str = "us-east-1"
    # s3:// URI -> file in the instance directory, for what the model needs besides its artifact
    staged: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> Plan:
        return cls(**json.loads(path.read_text()))

    @property
    def needs_records(self) -> bool:
        """Whether each record is handled on its own (filters, join), not only sent in batches of bytes."""
        return self.join or self.input_filter != "$" or self.output_filter != "$"


@dataclass
class Request:
    body: bytes
    first: int  # 1-based number of the first record in the object
    count: int
    inputs: list[bytes] | None = None  # the records as read (for JoinSource), when records are handled one by one


# -- splitting -----------------------------------------------------------------------------------------------
def _lines(data: bytes) -> list[bytes]:
    return [line.rstrip(b"\r") for line in data.split(b"\n") if line.strip()]


def _too_large(number: int, size: int, limit: int) -> ObjectFailed:
    return ObjectFailed(
        f"record {number} is {size} bytes, larger than MaxPayloadInMB ({limit // MB} MB); a record is never split"
    )


def line_batches(data: bytes, limit: int) -> Iterator[Request]:
    """MultiRecord over lines without per-record work: cut the object at the last newline before the limit."""
    start, first, size = 0, 1, len(data)
    while start < size:
        if data[start : start + 1] in (b"\n", b"\r"):
            start += 1
            continue
        end = min(start + limit, size)
        if end < size and data[end : end + 1] != b"\n":
            cut = data.rfind(b"\n", start, end)
            if cut <= start:
                stop = data.find(b"\n", start)
                raise _too_large(first, (size if stop < 0 else stop) - start, limit)
            end = cut
        body = data[start:end].rstrip(b"\r\n")
        count = body.count(b"\n") + 1
        yield Request(body, first, count)
        first += count
        start = end + 1


def grouped(records: list[bytes], limit: int, single: bool, separator: bytes) -> Iterator[Request]:
    """Requests of one record (SingleRecord) or of whole records up to ``limit`` bytes (MultiRecord)."""
    group: list[bytes] = []
    size = 0
    first = 1
    for number, record in enumerate(records, 1):
        if len(record) > limit:
            raise _too_large(number, len(record), limit)
        extra = len(record) + (len(separator) if group else 0)
        if group and (single or size + extra > limit):
            yield Request(separator.join(group), first, len(group))
            group, size, first = [], 0, number
            extra = len(record)
        group.append(record)
        size += extra
    if group:
        yield Request(separator.join(group), first, len(group))


def recordio_records(data: bytes) -> list[bytes]:
    from include.formats import recordio

    try:
        return [recordio.frame(bytes(payload)) for _offset, payload in recordio.iter_payloads(data, "input object")]
    except recordio.RecordIOError as exc:
        raise ObjectFailed(f"the object is not RecordIO: {exc}") from None


def requests_for(data: bytes, plan: Plan, input_filter: Callable[[Any], Any]) -> Iterator[Request]:
    limit = (plan.max_payload_mb or DEFAULT_MAX_PAYLOAD_MB) * MB
    single = plan.strategy == "SingleRecord"
    if plan.split == "None":
        if len(data) > limit:
            raise _too_large(1, len(data), limit)
        yield Request(data, 1, 1, [data] if plan.needs_records else None)
        return
    if plan.split == "RecordIO":
        yield from grouped(recordio_records(data), limit, single, b"")
        return
    if not plan.needs_records:
        if single:
            yield from grouped(_lines(data), limit, True, b"\n")
        else:
            yield from line_batches(data, limit)
        return
    originals = _lines(data)
    filtered = [_filter_record(record, number, plan, input_filter) for number, record in enumerate(originals, 1)]
    for request in grouped(filtered, limit, single, b"\n"):
        request.inputs = originals[request.first - 1 : request.first - 1 + request.count]
        yield request


def _filter_record(record: bytes, number: int, plan: Plan, select: Callable[[Any], Any]) -> bytes:
    if plan.input_filter == "$":
        return record
    try:
        if _is_csv(_media(plan.content_type)):
            return _csv_line(select(_csv_cells(record)))
        return json.dumps(select(json.loads(record)), separators=(",", ":")).encode()
    except (ValueError, TypeError) as exc:
        raise ObjectFailed(f"record {number}: InputFilter {plan.input_filter} cannot be applied: {exc}") from None


# -- answers -------------------------------------------------------------------------------------------------
def output_records(body: bytes, count: int, accept: str) -> list[Any]:
    """One output per input record of a request: lines (CSV, JSON Lines) or the items of a JSON answer."""
    text = body.decode("utf-8")
    if accept == "application/json":
        document = json.loads(text)
        if isinstance(document, dict) and isinstance(document.get("predictions"), list):
            items = document["predictions"]
        elif isinstance(document, list) and count > 1:
            items = document
        else:
            items = [document]
    else:
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        items = [json.loads(line) for line in lines] if "json" in accept else lines
    if len(items) != count:
        raise ObjectFailed(
            f"the model answered {len(items)} output records for {count} input records, so they cannot be joined"
        )
    return items


def joined_lines(request: Request, answer: bytes, plan: Plan, output_filter: Callable[[Any], Any]) -> list[bytes]:
    accept = _media(plan.accept) or "text/csv"
    outputs = output_records(answer, request.count, accept)
    csv_in = _is_csv(_media(plan.content_type))
    lines = []
    for position, output in enumerate(outputs):
        if plan.join:
            assert request.inputs is not None
            original = request.inputs[position]
            if csv_in:
                record: Any = _csv_cells(original) + (
                    _csv_cells(output.encode()) if isinstance(output, str) else [output]
                )
            else:
                source = json.loads(original)
                value = _as_json(output)
                if isinstance(source, dict):
                    record = {**source, "SageMakerOutput": value}
                else:
                    record = {"SageMakerInput": source, "SageMakerOutput": value}
        else:
            record = _csv_cells(output.encode()) if isinstance(output, str) and _is_csv(accept) else output
        selected = output_filter(record)
        if isinstance(selected, list) and (csv_in if plan.join else _is_csv(accept)):
            lines.append(_csv_line(selected))
        elif isinstance(selected, str):
            lines.append(selected.encode())
        else:
            lines.append(json.dumps(selected, separators=(",", ":")).encode())
    return lines


def _as_json(output: Any) -> Any:
    if not isinstance(output, str):
        return output
    try:
        return json.loads(output)
    except ValueError:
        return output


# -- the process ---------------------------------------------------------------------------------------------
def run_transform(instance_dir: str, server_pid: int | None = None) -> None:
    """Entry point of a transform instance's worker process (forked from the pool)."""
    from .lifeline import exit_with

    if server_pid is not None:
        exit_with(server_pid)  # no transform goes on after the emulator is gone, even after a kill -9
    root = Path(instance_dir)
    with (
        open(root / "transform.log", "a", buffering=1) as log_file,
        open(root / "data.log", "a", buffering=1) as data_log,
    ):

        def emit(line: str) -> None:
            log_file.write(line.rstrip("\n") + "\n")

        try:
            results = _transform_all(root, Plan.load(root / "plan.json"), emit, data_log)
        except ModelLoadFailed as exc:
            reason = f"AlgorithmError: {exc}"
            emit(reason)
            (root / "failure").write_text(reason)
            sys.exit(2)
        except Exception as exc:
            reason = f"AlgorithmError: {type(exc).__name__}: {exc}"
            emit(traceback.format_exc())
            emit(reason)
            (root / "failure").write_text(reason)
            sys.exit(2)
    (root / "results.tmp").write_text(json.dumps(results))
    os.replace(root / "results.tmp", root / "results.json")


def _transform_all(root: Path, plan: Plan, emit: Callable[[str], None], data_log: Any) -> dict[str, Any]:
    from .algorithms import ModelInvocationError
    from .serving import predictor_for_model

    os.environ.update(plan.environment)

    def staged(bucket: str, key: str) -> bytes:
        # The worker has no S3: what the model needs besides its artifact was downloaded by the server.
        name = plan.staged.get(f"s3://{bucket}/{key}")
        if name is None:
            raise ModelInvocationError(500, f"s3://{bucket}/{key} was not staged for this transform job")
        return (root / name).read_bytes()

    try:
        predictor = predictor_for_model(
            plan.model_record,
            root / "model",
            batch=True,
            s3_get=staged,
            log_line=emit,
            environment=plan.environment,
            region=plan.region,
        )
    except ModelInvocationError as exc:
        raise ModelLoadFailed(
            f"Model container failed to respond to ping (the model did not load: {exc.message})"
        ) from None
    try:
        return _transform_objects(root, plan, predictor, emit, data_log)
    finally:
        close = getattr(predictor, "close", None)
        if close is not None:
            close()


def _transform_objects(
    root: Path, plan: Plan, predictor: Any, emit: Callable[[str], None], data_log: Any
) -> dict[str, Any]:
    defaults = getattr(predictor, "execution_parameters", dict)()
    if plan.concurrency is None:
        plan.concurrency = defaults.get("MaxConcurrentTransforms", 1)
    if plan.strategy is None:
        plan.strategy = "SingleRecord" if defaults.get("BatchStrategy") == "SINGLE_RECORD" else "MultiRecord"
    threads = max(1, min(plan.concurrency or 1, MAX_THREADS))
    emit(
        f"Loaded {predictor.algorithm} model; BatchStrategy {plan.strategy}, MaxConcurrentTransforms {threads}, "
        f"MaxPayloadInMB {plan.max_payload_mb or DEFAULT_MAX_PAYLOAD_MB}, SplitType {plan.split}"
    )
    input_filter = compile_filter(plan.input_filter)
    output_filter = compile_filter(plan.output_filter)
    results: dict[str, Any] = {}
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="invocations") as pool:
        for item in plan.objects:
            index, uri = item["index"], item["uri"]
            try:
                records, requests = _transform_object(root, index, plan, predictor, pool, input_filter, output_filter)
            except ObjectFailed as failed:
                message = f"{uri}: {failed}"
                emit(f"[sagemaker logs]: {message}")
                data_log.write(f"[sagemaker logs]: {message}\n")
                results[str(index)] = {"error": str(failed)}
                continue
            emit(f"[sagemaker logs]: {uri}: {records} records in {requests} requests")
            results[str(index)] = {"records": records, "requests": requests}
    return results


def _transform_object(
    root: Path,
    index: int,
    plan: Plan,
    predictor: Any,
    pool: ThreadPoolExecutor,
    input_filter: Callable[[Any], Any],
    output_filter: Callable[[Any], Any],
) -> tuple[int, int]:
    data = (root / "input" / str(index)).read_bytes()
    if plan.compression == "Gzip":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise ObjectFailed(f"CompressionType is Gzip but the object is not gzip data ({exc})") from None
    requests = list(requests_for(data, plan, input_filter))

    def invoke(request: Request) -> bytes:
        from .algorithms import ModelInvocationError

        try:
            body, _content_type = predictor.invoke(request.body, plan.content_type, plan.accept, False)
        except ModelInvocationError as exc:
            last = request.first + request.count - 1
            where = f"record {request.first}" if request.count == 1 else f"records {request.first}-{last}"
            raise ObjectFailed(f"{where}: the model container answered {exc.status_code}: {exc.message}") from None
        if plan.needs_records:
            try:
                return b"\n".join(joined_lines(request, body, plan, output_filter)) + b"\n"
            except (ValueError, TypeError) as exc:  # an answer or input record that is not what it says it is
                raise ObjectFailed(f"records {request.first}-{request.first + request.count - 1}: {exc}") from None
        if plan.assemble == "Line" and body and not body.endswith(b"\n"):
            return body + b"\n"
        return body

    answers = list(pool.map(invoke, requests))
    target = root / "output" / f"{index}.out"
    partial = target.with_suffix(".partial")
    with open(partial, "wb") as out:
        for answer in answers:
            out.write(answer)
    os.replace(partial, target)
    return sum(r.count for r in requests), len(requests)
