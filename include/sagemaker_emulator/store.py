"""Control-plane state: in memory for speed, written through to JSON files so a restart loses nothing.

Each resource is one file, ``<data_dir>/sagemaker/<kind>/<name>.json``, written (tmp file + rename) before
the request that changed it is answered, so the answer is never ahead of the disk and a crash mid-write
leaves the previous version intact. With ``fsync=True`` the file and its folder are also flushed to the
disk (power loss). At load, a file that is not a JSON object (torn, corrupt) and a ``*.tmp`` left by a
crash are moved to the quarantine, logged and listed in health; the rest is served. Names are unique
case-insensitively, as in SageMaker.
"""

from __future__ import annotations

import copy
import json
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .durability import Quarantine, describe_bytes, fsync_dir
from .safe_paths import record_file_stem

KINDS = ("training-job", "processing-job", "transform-job", "model", "endpoint-config", "endpoint", "tags")


class Store:
    def __init__(self, data_dir: Path, *, quarantine: Quarantine | None = None, fsync: bool = False):
        self.root = Path(data_dir) / "sagemaker"
        self.quarantine = quarantine or Quarantine(Path(data_dir))
        self.fsync = fsync
        self._lock = threading.RLock()
        self._records: dict[str, dict[str, dict[str, Any]]] = {kind: {} for kind in KINDS}
        for kind in KINDS:
            folder = self.root / kind
            folder.mkdir(parents=True, exist_ok=True)
            for leftover in folder.glob("*.tmp"):
                self.quarantine.move(
                    leftover,
                    "unfinished write left by a crash (the previous version, if any, is kept)",
                    describe_bytes(leftover.read_bytes()),
                )
            for path in folder.glob("*.json"):
                raw = path.read_bytes()
                try:
                    record = json.loads(raw)
                except ValueError as exc:
                    self.quarantine.move(path, f"not valid JSON ({exc})", describe_bytes(raw))
                    continue
                if not isinstance(record, dict):
                    self.quarantine.move(path, f"a JSON {type(record).__name__}, not a record", describe_bytes(raw))
                    continue
                self._records[kind][path.stem] = record

    @staticmethod
    def _key(name: str) -> str:
        # Also the record's file name: percent-encoded, so no name (tags are keyed by ARN) leaves its folder.
        return record_file_stem(name)

    def _write(self, kind: str, key: str, record: dict[str, Any]) -> None:
        path = self.root / kind / f"{key}.json"
        tmp = path.with_suffix(".json.tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(record, default=str))
            if self.fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
        if self.fsync:
            fsync_dir(path.parent)

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the store lock across a read-check-write sequence (e.g. a duplicate check and a create)."""
        with self._lock:
            yield

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            record = self._records[kind].get(self._key(name))
            return json.loads(json.dumps(record)) if record is not None else None

    def put(self, kind: str, name: str, record: dict[str, Any]) -> None:
        with self._lock:
            key = self._key(name)
            stored = json.loads(json.dumps(record, default=str))
            self._write(kind, key, stored)
            self._records[kind][key] = stored

    def update(self, kind: str, name: str, change: Callable[[dict[str, Any]], None]) -> dict[str, Any] | None:
        """Apply ``change`` to the stored record and persist it; None if it does not exist. Memory changes
        only once the file is written, so a failed write leaves both as they were."""
        with self._lock:
            key = self._key(name)
            current = self._records[kind].get(key)
            if current is None:
                return None
            record = copy.deepcopy(current)
            change(record)
            self._write(kind, key, record)
            self._records[kind][key] = record
            return json.loads(json.dumps(record))

    def delete(self, kind: str, name: str) -> bool:
        with self._lock:
            key = self._key(name)
            if key not in self._records[kind]:
                return False
            (self.root / kind / f"{key}.json").unlink(missing_ok=True)
            if self.fsync:
                fsync_dir(self.root / kind)
            del self._records[kind][key]
            return True

    def list(self, kind: str) -> list[dict[str, Any]]:
        with self._lock:
            return [json.loads(json.dumps(r)) for r in self._records[kind].values()]


def public(record: dict[str, Any]) -> dict[str, Any]:
    """The record as AWS describes it: internal bookkeeping keys start with '_' and are left out."""
    return {k: v for k, v in record.items() if not k.startswith("_")}
