"""Control-plane state: in memory for speed, written through to JSON files so a restart loses nothing.

Each resource is one file, ``<data_dir>/sagemaker/<kind>/<name>.json``, replaced atomically, so a crash
mid-write leaves the previous version intact. Names are unique case-insensitively, as in SageMaker.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .safe_paths import record_file_stem

KINDS = ("training-job", "model", "endpoint-config", "endpoint", "tags")


class Store:
    def __init__(self, data_dir: Path):
        self.root = Path(data_dir) / "sagemaker"
        self._lock = threading.RLock()
        self._records: dict[str, dict[str, dict[str, Any]]] = {kind: {} for kind in KINDS}
        for kind in KINDS:
            folder = self.root / kind
            folder.mkdir(parents=True, exist_ok=True)
            for path in folder.glob("*.json"):
                self._records[kind][path.stem] = json.loads(path.read_text())

    @staticmethod
    def _key(name: str) -> str:
        # Also the record's file name: percent-encoded, so no name (tags are keyed by ARN) leaves its folder.
        return record_file_stem(name)

    def _write(self, kind: str, key: str, record: dict[str, Any]) -> None:
        path = self.root / kind / f"{key}.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(record, default=str))
        os.replace(tmp, path)

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
            self._records[kind][key] = json.loads(json.dumps(record, default=str))
            self._write(kind, key, self._records[kind][key])

    def update(self, kind: str, name: str, change: Callable[[dict[str, Any]], None]) -> dict[str, Any] | None:
        """Apply ``change`` to the stored record in place and persist it; None if it does not exist."""
        with self._lock:
            key = self._key(name)
            record = self._records[kind].get(key)
            if record is None:
                return None
            change(record)
            self._write(kind, key, record)
            return json.loads(json.dumps(record))

    def delete(self, kind: str, name: str) -> bool:
        with self._lock:
            key = self._key(name)
            if self._records[kind].pop(key, None) is None:
                return False
            (self.root / kind / f"{key}.json").unlink(missing_ok=True)
            return True

    def list(self, kind: str) -> list[dict[str, Any]]:
        with self._lock:
            return [json.loads(json.dumps(r)) for r in self._records[kind].values()]


def public(record: dict[str, Any]) -> dict[str, Any]:
    """The record as AWS describes it: internal bookkeeping keys start with '_' and are left out."""
    return {k: v for k, v in record.items() if not k.startswith("_")}
