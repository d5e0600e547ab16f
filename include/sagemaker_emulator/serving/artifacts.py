"""Private copies of the model artifacts endpoints serve, so an endpoint survives a restart after its
model, endpoint config or S3 object was deleted (AWS keeps serving what it deployed).

Each copy is named by the SHA-256 of its bytes, never by anything a client chose, and is checked against
that name when read (a torn or altered copy counts as missing). Copies no endpoint record refers to are
reclaimed; a deployment holds a claim on the copies it is about to record, so a concurrent reclaim never
takes one from under it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

from ..durability import fsync_dir

log = logging.getLogger(__name__)

DIGEST = re.compile(r"^[0-9a-f]{64}$")
SUFFIX = ".tar.gz"


class ArtifactStore:
    def __init__(self, root: Path, *, fsync: bool = False):
        self.root = Path(root)
        self.fsync = fsync  # also flush each copy to the disk (--durability fsync)
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._claims: Counter[str] = Counter()

    def _path(self, digest: str) -> Path:
        if not DIGEST.match(digest):
            raise ValueError(f"not an artifact digest: {digest!r}")
        return self.root / f"{digest}{SUFFIX}"

    def keep(self, raw: bytes) -> str:
        """Store ``raw`` (once per content) and claim it; the caller releases the claim once a record refers
        to it. Returns the digest."""
        digest = hashlib.sha256(raw).hexdigest()
        path = self._path(digest)
        with self._lock:
            self._claims[digest] += 1
            if self._intact(path, digest):
                return digest
        tmp = path.with_name(f".{digest}.{threading.get_ident()}.tmp")
        with open(tmp, "wb") as fh:
            fh.write(raw)
            if self.fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
        if self.fsync:
            fsync_dir(self.root)
        return digest

    def release(self, digests: Iterable[str]) -> None:
        with self._lock:
            for digest in digests:
                self._claims[digest] -= 1
                if self._claims[digest] <= 0:
                    del self._claims[digest]

    def read(self, digest: str) -> bytes | None:
        """The copy's bytes, or None when it is missing or does not match its digest."""
        try:
            raw = self._path(digest).read_bytes()
        except (OSError, ValueError):
            return None
        if hashlib.sha256(raw).hexdigest() != digest:
            log.warning("the private copy of artifact %s is damaged; it is not used", digest)
            return None
        return raw

    @staticmethod
    def _intact(path: Path, digest: str) -> bool:
        try:
            return hashlib.sha256(path.read_bytes()).hexdigest() == digest
        except OSError:
            return False

    def reclaim(self, in_use: Callable[[], set[str]]) -> list[str]:
        """Delete every copy neither ``in_use()`` nor claimed (and any half-written file); returns the digests
        removed. ``in_use`` runs under the store's lock so no deployment can record a copy meanwhile."""
        removed = []
        with self._lock:
            keep = in_use() | set(self._claims)
            for path in self.root.iterdir():
                digest = path.name[: -len(SUFFIX)] if path.name.endswith(SUFFIX) else None
                if digest is not None and DIGEST.match(digest) and digest in keep:
                    continue
                if path.name.endswith(".tmp") and path.name[1:65] in keep:
                    continue  # being written by a claimed deployment
                path.unlink(missing_ok=True)
                removed.append(digest or path.name)
        if removed:
            log.info("reclaimed %d artifact copies no endpoint uses", len(removed))
        return removed

    def digests(self) -> set[str]:
        return {p.name[: -len(SUFFIX)] for p in self.root.glob(f"*{SUFFIX}")}
