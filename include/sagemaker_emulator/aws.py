"""moto, in this process: the WSGI app that serves S3, Logs, CloudWatch, IAM and STS over HTTP, direct
access to its backends for the emulator's own reads and writes (no HTTP round trip on hot paths), and
snapshots of its state to disk (moto itself keeps nothing on disk)."""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import threading
import time
from pathlib import Path
from typing import Any

from .config import ACCOUNT_ID

log = logging.getLogger(__name__)

# moto services whose state survives a restart.
PERSISTED_SERVICES = ("s3", "logs", "cloudwatch", "iam", "sts")


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


class MotoFacade:
    def __init__(self, data_dir: Path):
        self.snapshot_path = Path(data_dir) / "moto-state.pickle"
        self._dirty = threading.Event()
        self._lock = threading.Lock()
        self._app: Any = None

    # -- HTTP ---------------------------------------------------------------------------------------
    def wsgi_app(self) -> Any:
        if self._app is None:
            from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

            def served_only(backend: str) -> Any:
                # moto's dispatcher serves every AWS service it knows, signed or not, and its own admin API
                # (/moto-api: reset, a recorder that writes a client's upload to a file in the working
                # directory). Only the services the emulator offers get through.
                return create_backend_app(backend) if backend in SERVED_SERVICES else _not_served(backend)

            self._app = DomainDispatcherApplication(served_only)
        return self._app

    def mark_dirty(self) -> None:
        self._dirty.set()

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
        self._s3.put_object(bucket, key, data)
        self.mark_dirty()

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
        from moto.logs.exceptions import ResourceAlreadyExistsException

        backend = _backend_dict("logs")[ACCOUNT_ID][region]
        with self._lock:
            if group not in backend.groups:
                with contextlib.suppress(ResourceAlreadyExistsException):
                    backend.create_log_group(group, {})
            if stream not in backend.groups[group].streams:
                backend.create_log_stream(group, stream)
            backend.put_log_events(group, stream, [{"timestamp": ts, "message": msg} for ts, msg in lines])
        self.mark_dirty()

    # -- CloudWatch metrics and alarms ----------------------------------------------------------------
    def metrics_put(self, region: str, namespace: str, metric_data: list[dict[str, Any]]) -> None:
        if metric_data:
            _backend_dict("cloudwatch")[ACCOUNT_ID][region].put_metric_data(namespace, metric_data)
            self.mark_dirty()

    def alarm_states(self, region: str, names: list[str]) -> dict[str, str]:
        backend = _backend_dict("cloudwatch")[ACCOUNT_ID][region]
        return {a.name: a.state_value for a in backend.describe_alarms() if a.name in names}

    # -- persistence --------------------------------------------------------------------------------
    def restore(self) -> bool:
        if not self.snapshot_path.exists():
            return False
        with open(self.snapshot_path, "rb") as fh:
            snapshot = pickle.load(fh)
        for service, regions in snapshot["services"].items():
            account = _backend_dict(service)[ACCOUNT_ID]
            for region, backend in regions.items():
                account[region] = backend
        _backend_dict("s3").bucket_accounts.update(snapshot.get("bucket_accounts", {}))
        log.info("restored moto state from %s", self.snapshot_path)
        return True

    def snapshot(self) -> None:
        """Write moto's state to disk atomically (tmp file + rename), under a lock so writers don't interleave."""
        with self._lock:
            self._dirty.clear()
            services = {}
            for service in PERSISTED_SERVICES:
                backends = _backend_dict(service)
                if ACCOUNT_ID in backends:
                    services[service] = dict(backends[ACCOUNT_ID])
            data = {"services": services, "bucket_accounts": dict(_backend_dict("s3").bucket_accounts)}
            tmp = self.snapshot_path.with_suffix(".tmp")
            with open(tmp, "wb") as fh:
                pickle.dump(data, fh, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, self.snapshot_path)

    def run_snapshots(self, interval: float, stop: threading.Event) -> None:
        """Background loop: snapshot at most every ``interval`` seconds while something changed."""
        while not stop.is_set():
            if self._dirty.wait(timeout=0.5):
                stop.wait(interval)
                try:
                    started = time.perf_counter()
                    self.snapshot()
                    log.debug("moto snapshot took %.3f s", time.perf_counter() - started)
                except Exception:  # keep serving; the next change retries the snapshot
                    log.exception("moto snapshot failed")
