"""moto, in this process: the WSGI app that serves S3, Logs, CloudWatch, IAM and STS over HTTP, direct
access to its backends for the emulator's own reads and writes (no HTTP round trip on hot paths), and
the durability of its state (moto itself keeps nothing on disk).

Durability: every mutation moto answers 2xx is appended to a journal (``durability.Journal``) before the
answer leaves, so it survives kill -9 (``--durability fsync`` adds a group-committed fsync: power loss).
What a record holds:

- S3 object writes (put, copy, delete, DeleteObjects, CompleteMultipartUpload, tagging, ACLs): the key's
  resulting versions and tags, not the request: replaying requests can't work for multipart uploads
  (their ids are random) and would not reproduce version ids. In-progress multipart uploads are recorded
  as they are created, get parts and end.
- every other mutation (buckets, Logs, CloudWatch, IAM, STS): the request, replayed through moto at
  start with moto's clock set to the time it was first served.
- the emulator's own writes (``s3_put``, ``logs_put``, ``metrics_put``): the call and its arguments.

At start the newest valid snapshot is loaded and every journal after it replayed. Snapshots are taken when
the journals outgrow ``compact_bytes`` and at graceful shutdown, under the exclusive side of a
readers-writer lock (mutations hold the shared side), so no mutation is lost or applied twice across the
switch to a new journal generation. Snapshots and journal records are pickles signed with HMAC-SHA256
(see ``durability``); an unsigned, torn or altered file is quarantined, never unpickled.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import pickle
import re
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import parse_qs, unquote

from .config import ACCOUNT_ID
from .durability import (
    DURABILITY_MODES,
    Journal,
    Quarantine,
    SharedExclusiveLock,
    SnapshotInvalid,
    describe_bytes,
    load_or_create_key,
    read_journal,
    read_signed_snapshot,
    write_signed_snapshot,
)

log = logging.getLogger(__name__)

# moto services whose state survives a restart.
PERSISTED_SERVICES = ("s3", "logs", "cloudwatch", "iam", "sts")
# moto modules whose clock is set back to a record's time while it is replayed.
CLOCKED_MODULES = ("moto.s3.models", "moto.logs.models", "moto.cloudwatch.models", "moto.iam.models")
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Operations that change nothing: not journaled (anything else is, to be safe).
READ_OPERATION = re.compile(r"^(Describe|Get|List|Filter|Test|Lookup|Simulate|Head|Select)")
CREDENTIAL_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/([^/]+)/([^/]+)/aws4_request")
SNAPSHOT_NAME = re.compile(r"^snapshot-(\d{8})\.pickle$")
JOURNAL_NAME = re.compile(r"^journal-(\d{8})\.log$")
# Environ entries a replayed request needs (the rest describe the connection or the server).
REPLAYED_ENVIRON = re.compile(
    r"^(HTTP_.*|CONTENT_TYPE|CONTENT_LENGTH|REQUEST_METHOD|PATH_INFO|QUERY_STRING|SCRIPT_NAME)$"
)

Response = tuple[int, list[tuple[str, str]], bytes]


# The moto backends reachable over HTTP (the README's API coverage); everything else is refused.
SERVED_SERVICES = frozenset(PERSISTED_SERVICES)


def _not_served(backend: str) -> Any:
    what = "moto's admin API" if backend == "moto_api" else f"the AWS service {backend!r}"
    body = (
        "<ErrorResponse><Error><Type>Sender</Type><Code>UnsupportedService</Code><Message>"
        f"The local SageMaker emulator does not serve {what}; it serves SageMaker, "
        f"{', '.join(sorted(SERVED_SERVICES))}.</Message></Error></ErrorResponse>"
    ).encode()

    def refuse(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("400 Bad Request", [("Content-Type", "text/xml"), ("Content-Length", str(len(body)))])
        return [body]

    return refuse


class MissingObject(KeyError):
    """No S3 object (or bucket) at the given location."""


def _backend_dict(service: str) -> Any:
    from moto.backends import get_backend

    return get_backend(service)  # type: ignore[arg-type]


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)  # moto keeps naive UTC datetimes


class MotoFacade:
    def __init__(
        self,
        data_dir: Path,
        *,
        durability: str = "write",
        quarantine: Quarantine | None = None,
        compact_bytes: int = 64 * 2**20,
    ):
        if durability not in DURABILITY_MODES:
            raise ValueError(f"durability must be one of {', '.join(DURABILITY_MODES)}, not {durability!r}")
        self.data_dir = Path(data_dir)
        self.folder = self.data_dir / "moto"
        self.legacy_snapshot_path = self.data_dir / "moto-state.pickle"
        self.durability = durability
        self.quarantine = quarantine or Quarantine(self.data_dir)
        self.compact_bytes = compact_bytes
        self._rw = SharedExclusiveLock()
        self._record_lock = threading.RLock()  # a key's state is read and appended as one step
        self._lock = threading.Lock()  # log group/stream creation
        self._app: Any = None
        self._key = b""
        self._journal: Journal | None = None
        self._generation = 0
        self._older_journals_bytes = 0
        self.replayed = 0
        self.replay_failures = 0
        self.snapshots_taken = 0
        self.last_snapshot_seconds: float | None = None
        self.last_snapshot_bytes = 0

    # -- HTTP ---------------------------------------------------------------------------------------
    def wsgi_app(self) -> Any:
        if self._app is None:
            from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

            def served_only(backend: str) -> Any:
                # moto's dispatcher serves every AWS service it knows, signed or not, and its own admin API
                # (/moto-api: reset, a recorder that writes a client's upload to a file in the working
                # directory). Only the services the emulator offers get through.
                return create_backend_app(backend) if backend in SERVED_SERVICES else _not_served(backend)

            class CachedDispatcher(DomainDispatcherApplication):
                """moto's dispatcher, remembering which backend serves a host: moto works that out anew for
                each request by listing its ~175 service packages on disk (two directory scans per request,
                under a global lock), which capped S3 writes at a few hundred per second."""

                def __init__(self) -> None:
                    super().__init__(served_only)
                    self._backend_by_host: dict[str | None, Any] = {}

                def get_backend_for_host(self, host: str | None) -> Any:
                    if host in self._backend_by_host:
                        return self._backend_by_host[host]
                    backend = super().get_backend_for_host(host)
                    if len(self._backend_by_host) < 4096:  # hosts come from requests: bound the memory
                        self._backend_by_host[host] = backend
                    return backend

            self._app = CachedDispatcher()
        return self._app

    def _call(self, environ: dict[str, Any]) -> Response:
        started: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
            started["status"], started["headers"] = int(status.split(" ", 1)[0]), headers

        result = self.wsgi_app()(environ, start_response)
        try:
            body = b"".join(result)
        finally:
            if hasattr(result, "close"):
                result.close()
        return started["status"], started["headers"], body

    def serve(self, environ: dict[str, Any], body: bytes) -> Response:
        """Answer one HTTP request; a mutation answered 2xx is in the journal before this returns."""
        environ["wsgi.input"] = io.BytesIO(body)
        if environ["REQUEST_METHOD"] in READ_METHODS or self._journal is None:
            return self._call(environ)
        service = _service(environ, body)
        if service != "s3" and not _mutating_operation(environ, body):
            return self._call(environ)
        request = _Request(
            environ,
            body,
            service,
            _s3_location(environ) if service == "s3" else ("", ""),
            parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True),
        )
        with self._rw.shared():
            # A bucket is created or removed under the record lock, so no record of a key in it can be
            # journaled ahead of it (S3 key writes themselves run concurrently).
            with self._record_lock if request.on_bucket else contextlib.nullcontext():
                status, headers, answer = self._call(environ)
                sequence = self._record_http(request, answer) if 200 <= status < 300 else 0
            journal = self._journal
        if sequence and journal is not None:
            journal.sync(sequence)
        return status, headers, answer

    # -- S3 -----------------------------------------------------------------------------------------
    @property
    def _s3(self) -> Any:
        return _backend_dict("s3")[ACCOUNT_ID]["aws"]

    def s3_get(self, bucket: str, key: str) -> bytes:
        from moto.s3.exceptions import MissingBucket

        try:
            obj = self._s3.get_object(bucket, key)
        except MissingBucket as exc:
            raise MissingObject(f"s3://{bucket}/{key}") from exc
        if obj is None:
            raise MissingObject(f"s3://{bucket}/{key}")
        return bytes(obj.value)

    def s3_etag(self, bucket: str, key: str) -> str | None:
        from moto.s3.exceptions import MissingBucket

        try:
            obj = self._s3.get_object(bucket, key)
        except MissingBucket:
            return None
        return obj.etag if obj is not None else None

    def s3_put(self, bucket: str, key: str, data: bytes) -> None:
        """Store an object; on disk (the journal) when this returns, e.g. before a job is marked Completed."""
        with self._rw.shared():
            self._s3.put_object(bucket, key, data)
            sequence = self._append_key_states(bucket, [key])
            journal = self._journal
        if sequence and journal is not None:
            journal.sync(sequence)

    def s3_bucket_names(self) -> list[str]:
        """Every bucket's name, sorted."""
        return sorted(self._s3.buckets)

    def s3_list(self, bucket: str, prefix: str) -> list[tuple[str, int]]:
        """(key, size) of every object under ``prefix``, sorted; MissingObject if the bucket does not exist."""
        from moto.s3.exceptions import MissingBucket

        try:
            found = self._s3.get_bucket(bucket)
        except MissingBucket as exc:
            raise MissingObject(f"s3://{bucket}") from exc
        keys = []
        for name in list(found.keys.keys()):
            if name.startswith(prefix):
                obj = found.keys.get(name)
                if obj is not None:
                    keys.append((name, obj.size))
        return sorted(keys)

    # -- CloudWatch Logs ----------------------------------------------------------------------------
    def logs_put(self, region: str, group: str, stream: str, lines: list[tuple[int, str]]) -> None:
        """Append ``(timestamp_ms, message)`` events, creating the group and stream on first use."""
        if not lines:
            return
        with self._rw.shared():
            self._logs_put(region, group, stream, lines)
            sequence = self._append_call("logs_put", (region, group, stream, lines))
            journal = self._journal
        if sequence and journal is not None:
            journal.sync(sequence)

    def _logs_put(self, region: str, group: str, stream: str, lines: list[tuple[int, str]]) -> None:
        from moto.logs.exceptions import ResourceAlreadyExistsException

        backend = _backend_dict("logs")[ACCOUNT_ID][region]
        with self._lock:
            if group not in backend.groups:
                with contextlib.suppress(ResourceAlreadyExistsException):
                    backend.create_log_group(group, {})
            if stream not in backend.groups[group].streams:
                backend.create_log_stream(group, stream)
            backend.put_log_events(group, stream, [{"timestamp": ts, "message": msg} for ts, msg in lines])

    # -- CloudWatch metrics and alarms ----------------------------------------------------------------
    def metrics_put(self, region: str, namespace: str, metric_data: list[dict[str, Any]]) -> None:
        if not metric_data:
            return
        with self._rw.shared():
            _backend_dict("cloudwatch")[ACCOUNT_ID][region].put_metric_data(namespace, metric_data)
            sequence = self._append_call("metrics_put", (region, namespace, metric_data))
            journal = self._journal
        if sequence and journal is not None:
            journal.sync(sequence)

    def alarm_states(self, region: str, names: list[str]) -> dict[str, str]:
        backend = _backend_dict("cloudwatch")[ACCOUNT_ID][region]
        return {a.name: a.state_value for a in backend.describe_alarms() if a.name in names}

    # -- journal records ----------------------------------------------------------------------------
    def _append(self, record: dict[str, Any]) -> int:
        assert self._journal is not None
        return self._journal.append(pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL))

    def _append_call(self, function: str, args: tuple[Any, ...]) -> int:
        if self._journal is None:
            return 0
        with self._record_lock:
            return self._append({"type": "call", "function": function, "args": args, "time": _utcnow()})

    def _key_state(self, bucket: Any, key: str) -> dict[str, Any]:
        versions = list(bucket.keys.getlist(key, []))
        tagger = self._s3.tagger
        arns = [v.arn for v in versions if hasattr(v, "arn")]  # delete markers carry no tags
        tags = {arn: tagger.list_tags_for_resource(arn)["Tags"] for arn in arns}
        return {"key": key, "versions": versions, "tags": {arn: t for arn, t in tags.items() if t}}

    def _append_key_states(self, bucket_name: str, keys: list[str]) -> int:
        """Record the current versions (none = deleted) and tags of each key; read and written as one step so
        the journal's last record of a key is its state after the last write."""
        if self._journal is None:
            return 0
        with self._record_lock:
            bucket = self._s3.buckets.get(bucket_name)
            if bucket is None:
                return 0
            states = [self._key_state(bucket, key) for key in keys]
            return self._append({"type": "s3-keys", "bucket": bucket_name, "states": states})

    def _append_multipart(self, bucket_name: str, upload_id: str, part: int | None) -> int:
        with self._record_lock:
            bucket = self._s3.buckets.get(bucket_name)
            upload = bucket.multiparts.get(upload_id) if bucket is not None else None
            record: dict[str, Any] = {"type": "s3-multipart", "bucket": bucket_name, "upload_id": upload_id}
            if upload is None:
                record["upload"] = None  # completed or aborted
            elif part is None:
                record["upload"] = upload
            else:
                record["part"] = (part, upload.parts.get(part))
            return self._append(record)

    def _record_http(self, request: _Request, answer: bytes) -> int:
        environ, body, query = request.environ, request.body, request.query
        if request.service != "s3":
            return self._append_request(environ, body)
        bucket, key = request.location
        method = environ["REQUEST_METHOD"]
        if not bucket:
            return self._append_request(environ, body)
        if not key:
            if method == "POST" and "delete" in query:
                return self._append_key_states(bucket, _keys_of_delete_objects(body))
            return self._append_request(environ, body)
        upload_id = query.get("uploadId", [None])[0]
        if method == "POST" and "uploads" in query:
            created = re.search(rb"<UploadId>([^<]+)</UploadId>", answer)
            if created is None:
                return self._append_request(environ, body)
            return self._append_multipart(bucket, created.group(1).decode(), None)
        if upload_id and method == "PUT":
            return self._append_multipart(bucket, upload_id, int(query.get("partNumber", ["0"])[0]))
        if upload_id and method == "DELETE":
            return self._append_multipart(bucket, upload_id, None)
        if upload_id and method == "POST":
            self._append_multipart(bucket, upload_id, None)
        sequence = self._append_key_states(bucket, [key])
        if method == "PUT" and self._s3.buckets.get(bucket) is not None and key not in self._s3.buckets[bucket].keys:
            # Our reading of the key differs from moto's: keep the request itself so the write is not lost.
            log.warning(
                "journal: PUT %s answered 2xx but no key %r in bucket %r; recording the request",
                environ.get("PATH_INFO"),
                key,
                bucket,
            )
            return self._append_request(environ, body)
        return sequence

    def _append_request(self, environ: dict[str, Any], body: bytes) -> int:
        kept = {k: v for k, v in environ.items() if isinstance(v, str) and REPLAYED_ENVIRON.match(k)}
        with self._record_lock:
            return self._append({"type": "request", "environ": kept, "body": body, "time": _utcnow()})

    # -- replay ---------------------------------------------------------------------------------------
    def _apply(self, record: dict[str, Any]) -> None:
        kind = record["type"]
        if kind == "s3-keys":
            bucket = self._bucket_for_replay(record["bucket"])
            tagger = self._s3.tagger
            for state in record["states"]:
                for old in bucket.keys.getlist(state["key"], []):
                    if hasattr(old, "arn"):
                        tagger.delete_all_tags_for_resource(old.arn)
                if state["versions"]:
                    bucket.keys.setlist(state["key"], state["versions"])
                elif state["key"] in bucket.keys:
                    bucket.keys.pop(state["key"])
                for arn, tags in state["tags"].items():
                    tagger.tag_resource(arn, tags)
        elif kind == "s3-multipart":
            bucket = self._bucket_for_replay(record["bucket"])
            if "part" in record:
                upload = bucket.multiparts.get(record["upload_id"])
                number, part = record["part"]
                if upload is not None and part is not None:
                    upload.parts[number] = part
                    if number not in upload.partlist:
                        upload.partlist = sorted([*upload.partlist, number])
            elif record["upload"] is None:
                bucket.multiparts.pop(record["upload_id"], None)
            else:
                bucket.multiparts[record["upload_id"]] = record["upload"]
        elif kind == "request":
            environ = {
                **record["environ"],
                "wsgi.input": io.BytesIO(record["body"]),
                "wsgi.url_scheme": "http",
                "wsgi.errors": sys.stderr,
                "wsgi.version": (1, 0),
                "wsgi.multithread": True,
                "wsgi.multiprocess": False,
                "wsgi.run_once": False,
                "SERVER_NAME": "127.0.0.1",
                "SERVER_PORT": "0",
                "SERVER_PROTOCOL": "HTTP/1.1",
            }
            with _moto_clock(record["time"]):
                status, _headers, answer = self._call(environ)
            if not 200 <= status < 300:
                raise RuntimeError(
                    f"replayed {environ.get('REQUEST_METHOD')} {environ.get('PATH_INFO')} answered {status}: {answer[:200]!r}"
                )
        elif kind == "call":
            with _moto_clock(record["time"]):
                if record["function"] == "logs_put":
                    self._logs_put(*record["args"])
                elif record["function"] == "metrics_put":
                    region, namespace, data = record["args"]
                    _backend_dict("cloudwatch")[ACCOUNT_ID][region].put_metric_data(namespace, data)
                else:
                    raise RuntimeError(f"unknown journaled call {record['function']!r}")
        else:
            raise RuntimeError(f"unknown journal record type {kind!r}")

    def _bucket_for_replay(self, name: str) -> Any:
        bucket = self._s3.buckets.get(name)
        if bucket is None:  # its creation was in a snapshot that was quarantined: keep the objects anyway
            log.warning("journal: bucket %s is missing; re-creating it to hold its journaled objects", name)
            bucket = self._s3.create_bucket(name, "us-east-1")
        return bucket

    # -- persistence --------------------------------------------------------------------------------
    def _generations(self) -> tuple[dict[int, Path], dict[int, Path]]:
        snapshots, journals = {}, {}
        for path in self.folder.iterdir():
            if match := SNAPSHOT_NAME.match(path.name):
                snapshots[int(match.group(1))] = path
            elif match := JOURNAL_NAME.match(path.name):
                journals[int(match.group(1))] = path
        return snapshots, journals

    def _snapshot_path(self, generation: int) -> Path:
        return self.folder / f"snapshot-{generation:08d}.pickle"

    def _journal_path(self, generation: int) -> Path:
        return self.folder / f"journal-{generation:08d}.log"

    def restore(self) -> bool:
        """Load the newest valid snapshot, replay the journals after it, and open a new journal generation.
        Damaged files are quarantined and the rest is served. True if any state was restored."""
        self.folder.mkdir(parents=True, exist_ok=True)
        os.chmod(self.folder, 0o700)
        self._key = load_or_create_key(self.folder / "snapshot.key", self.quarantine)
        for leftover in self.folder.glob("*.tmp"):
            self.quarantine.move(
                leftover, "unfinished snapshot write (tmp file left by a crash)", describe_bytes(leftover.read_bytes())
            )
        if self.legacy_snapshot_path.exists():
            self.quarantine.move(
                self.legacy_snapshot_path,
                "unsigned snapshot from an older emulator: not loaded, since an unsigned pickle could run code",
                f"{self.legacy_snapshot_path.stat().st_size} bytes",
            )
        snapshots, journals = self._generations()
        base = 0
        for generation in sorted(snapshots, reverse=True):
            path = snapshots[generation]
            try:
                state = pickle.loads(read_signed_snapshot(path, self._key, generation))
                self._install(state)
            except SnapshotInvalid as exc:
                self.quarantine.move(path, f"snapshot not loaded: {exc}", f"{path.stat().st_size} bytes")
                continue
            except Exception as exc:  # signed by us but not loadable (e.g. another moto version)
                self.quarantine.move(path, f"snapshot not loaded: {exc!r}", f"{path.stat().st_size} bytes")
                continue
            base = generation
            self.last_snapshot_bytes = path.stat().st_size
            log.info("restored moto state from %s", path)
            break
        restored = base > 0
        for generation in sorted(g for g in journals if g >= base):
            restored |= self._replay(journals[generation])
        self._generation = max([base, *snapshots, *journals], default=0) + 1
        self._older_journals_bytes = sum(p.stat().st_size for g, p in journals.items() if g >= base)
        if self.durability != "off":
            self._journal = Journal(self._journal_path(self._generation), self._key, fsync=self.durability == "fsync")
        if self.replay_failures:
            self.snapshot()  # supersedes the journals holding the records set aside, so they are not met again
        return restored

    def _replay(self, path: Path) -> bool:
        count = 0
        for number, payload in enumerate(read_journal(path, self._key, self.quarantine), 1):
            try:
                self._apply(pickle.loads(payload))
                count += 1
            except Exception as exc:  # signed by us, yet not applicable (e.g. another moto version): set aside
                self.replay_failures += 1
                log.exception("journal %s: record %d could not be replayed", path.name, number)
                self.quarantine.keep_bytes(
                    path,
                    payload,
                    f"record {number} could not be replayed: {exc!r}",
                    describe_bytes(payload),
                    suffix=f"record-{number}",
                )
        self.replayed += count
        log.info("replayed %d records from %s", count, path.name)
        return count > 0

    def _install(self, state: dict[str, Any]) -> None:
        for service, regions in state["services"].items():
            account = _backend_dict(service)[ACCOUNT_ID]
            for region, backend in regions.items():
                account[region] = backend
        _backend_dict("s3").bucket_accounts.update(state.get("bucket_accounts", {}))

    def journal_bytes(self) -> int:
        return self._older_journals_bytes + (self._journal.size if self._journal is not None else 0)

    def snapshot(self) -> None:
        """Write moto's state as a new signed snapshot generation and drop the files it supersedes.

        Under the exclusive lock: serialise the state and switch appends to a new journal; then, with
        mutations flowing again, write the snapshot and delete older generations. A crash at any point
        leaves an older snapshot plus every journal after it."""
        started = time.perf_counter()
        with self._rw.exclusive():
            services = {}
            for service in PERSISTED_SERVICES:
                backends = _backend_dict(service)
                if ACCOUNT_ID in backends:
                    services[service] = dict(backends[ACCOUNT_ID])
            state = {"services": services, "bucket_accounts": dict(_backend_dict("s3").bucket_accounts)}
            payload = pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
            self.folder.mkdir(parents=True, exist_ok=True)
            if not self._key:
                self._key = load_or_create_key(self.folder / "snapshot.key", self.quarantine)
            generation = self._generation + 1
            if self._journal is not None:
                self._journal.close()
                self._journal = Journal(self._journal_path(generation), self._key, fsync=self.durability == "fsync")
            self._generation = generation
            self._older_journals_bytes = 0
        write_signed_snapshot(
            self._snapshot_path(generation), self._key, generation, payload, fsync=self.durability == "fsync"
        )
        snapshots, journals = self._generations()
        for old in [
            *(p for g, p in snapshots.items() if g < generation),
            *(p for g, p in journals.items() if g < generation),
        ]:
            old.unlink(missing_ok=True)
        self.snapshots_taken += 1
        self.last_snapshot_bytes = len(payload)
        self.last_snapshot_seconds = time.perf_counter() - started
        log.info("moto snapshot %d: %d bytes in %.3f s", generation, len(payload), self.last_snapshot_seconds)

    def run_compaction(self, stop: threading.Event, check_every: float = 1.0) -> None:
        """Background loop: snapshot when the journals outgrow ``compact_bytes`` (bounds replay time at start)."""
        while not stop.wait(check_every):
            # Not before the journal is as large as the last snapshot: each snapshot rewrites the whole
            # state, so a large state with a small threshold would be rewritten over and over.
            if self._journal is None or self.journal_bytes() < max(self.compact_bytes, self.last_snapshot_bytes):
                continue
            try:
                self.snapshot()
            except Exception:  # keep serving: the journal still holds everything
                log.exception("moto snapshot failed")

    def close(self) -> None:
        """Graceful shutdown: a final snapshot (so the next start replays nothing) and the journal closed."""
        if not self._key:
            return  # never restored: writing a snapshot now would supersede state this process never loaded
        self.snapshot()
        if self._journal is not None:
            self._journal.close()
            self._journal = None

    def health(self) -> dict[str, Any]:
        return {
            "mode": self.durability,
            "generation": self._generation,
            "journal_bytes": self.journal_bytes(),
            "records_replayed_at_start": self.replayed,
            "records_not_replayable": self.replay_failures,
            "snapshots_taken": self.snapshots_taken,
            "last_snapshot_seconds": self.last_snapshot_seconds,
            "last_snapshot_bytes": self.last_snapshot_bytes,
        }


@contextlib.contextmanager
def _moto_clock(moment: datetime) -> Any:
    """Make moto's ``utcnow`` answer ``moment`` (timestamps of replayed records match the first run)."""
    with contextlib.ExitStack() as stack:
        for name in CLOCKED_MODULES:
            module = sys.modules.get(name)
            if module is not None and hasattr(module, "utcnow"):
                stack.enter_context(mock.patch.object(module, "utcnow", lambda: moment))
        yield


def _service(environ: dict[str, Any], body: bytes) -> str:
    """The service a request is for: the SigV4 scope (header or presigned query), else moto's default, S3."""
    match = CREDENTIAL_SCOPE.search(environ.get("HTTP_AUTHORIZATION", "")) or CREDENTIAL_SCOPE.search(
        unquote(environ.get("QUERY_STRING", "")).replace("X-Amz-Credential=", "Credential=")
    )
    if match:
        return match.group(2)
    if environ.get("HTTP_X_AMZ_TARGET") or b"Action=" in body[:4096]:
        return "other"
    return "s3"


def _operation(environ: dict[str, Any], body: bytes) -> str | None:
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return target.rpartition(".")[2]
    path = environ.get("PATH_INFO", "")
    if "/operation/" in path:  # smithy RPCv2 (CloudWatch)
        return path.rpartition("/")[2]
    for source in (environ.get("QUERY_STRING", ""), body[:4096].decode("latin-1")):
        action = parse_qs(source).get("Action")
        if action:
            return action[0]
    return None


def _mutating_operation(environ: dict[str, Any], body: bytes) -> bool:
    """For Logs, CloudWatch, IAM, STS: anything but a read (an unrecognised operation counts as a write)."""
    operation = _operation(environ, body)
    return operation is None or not READ_OPERATION.match(operation)


@dataclass(frozen=True)
class _Request:
    """A mutating request to moto, parsed once."""

    environ: dict[str, Any]
    body: bytes
    service: str
    location: tuple[str, str]  # (bucket, key) for S3
    query: dict[str, list[str]]

    @property
    def on_bucket(self) -> bool:
        """An S3 request on a bucket itself (create, delete, configuration), not on its keys."""
        return self.service == "s3" and bool(self.location[0]) and not self.location[1] and "delete" not in self.query


def _s3_location(environ: dict[str, Any]) -> tuple[str, str]:
    """(bucket, key) as moto reads them from the request: path style or virtual-hosted style."""
    from moto.s3.responses import S3Response

    class _Seen:  # what subdomain_based_buckets looks at
        headers = {"host": environ.get("HTTP_HOST", "")}
        url = f"http://{environ.get('HTTP_HOST', '')}{environ.get('PATH_INFO', '')}"

    path = unquote(environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8", errors="replace"))
    if S3Response.subdomain_based_buckets(_Seen):
        from moto.s3.utils import bucket_name_from_url

        return bucket_name_from_url(_Seen.url) or "", path.lstrip("/")
    parts = path.lstrip("/").split("/", 1)
    return parts[0], parts[1] if len(parts) > 1 else ""


def _keys_of_delete_objects(body: bytes) -> list[str]:
    import xmltodict

    objects = xmltodict.parse(body).get("Delete", {}).get("Object", [])
    if isinstance(objects, dict):
        objects = [objects]
    return [o["Key"] for o in objects if isinstance(o, dict) and o.get("Key") is not None]
