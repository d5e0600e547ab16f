"""What keeps acknowledged writes on disk: an append-only journal of signed records, signed snapshots,
a readers-writer lock between mutations and snapshots, and the quarantine for damaged files.

Every file that is unpickled is signed with HMAC-SHA256 under a random key made at first start
(``<data_dir>/moto/snapshot.key``, mode 0600). A file no API can have written verifies; anything else
(a torn tail, a flipped bit, a file dropped in from outside) fails the check and is set aside in
``<data_dir>/quarantine/`` without being unpickled.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# Journal frame: payload length (u32, big-endian), HMAC-SHA256 of the payload, payload.
FRAME_HEADER = struct.Struct(">I32s")
MAX_RECORD_BYTES = 1 << 31
SNAPSHOT_MAGIC = b"SMEMU-SNAPSHOT-1\n"
DURABILITY_MODES = ("fsync", "write", "off")


class Quarantine:
    """Damaged files moved aside (never deleted) so a start goes on; listed in ``/_emulator/health``."""

    def __init__(self, data_dir: Path):
        self.data_dir = Path(data_dir)
        self.folder = self.data_dir / "quarantine"
        self._lock = threading.Lock()
        self.entries: list[dict[str, Any]] = []

    def _target(self, name: str) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%S")
        candidate = self.folder / f"{stamp}-{name}"
        n = 1
        while candidate.exists():
            candidate = self.folder / f"{stamp}-{n}-{name}"
            n += 1
        return candidate

    def _note(self, source: Path, target: Path, reason: str, held: str) -> None:
        try:
            shown = str(source.relative_to(self.data_dir))
        except ValueError:
            shown = str(source)
        entry = {"file": shown, "moved_to": str(target.relative_to(self.data_dir)), "reason": reason, "held": held}
        with self._lock:
            self.entries.append(entry)
        log.warning("quarantined %s (%s); it held: %s; moved to %s", shown, reason, held, target)

    def move(self, path: Path, reason: str, held: str) -> Path:
        """Rename ``path`` into the quarantine folder."""
        flat = str(path.relative_to(self.data_dir) if path.is_relative_to(self.data_dir) else path.name)
        target = self._target(flat.replace(os.sep, "__"))
        os.replace(path, target)
        self._note(path, target, reason, held)
        return target

    def keep_bytes(self, source: Path, data: bytes, reason: str, held: str, suffix: str = "tail") -> Path:
        """Save a damaged part of a file (e.g. a torn journal tail) that is cut off the original."""
        flat = str(source.relative_to(self.data_dir)).replace(os.sep, "__")
        target = self._target(f"{flat}.{suffix}")
        target.write_bytes(data)
        self._note(source, target, reason, held)
        return target

    def listing(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(e) for e in self.entries]


def describe_bytes(data: bytes, limit: int = 120) -> str:
    """A short, log-safe preview of what a damaged file held."""
    preview = data[:limit].decode("utf-8", errors="replace").replace("\n", "\\n")
    return f"{len(data)} bytes: {preview!r}{'...' if len(data) > limit else ''}"


def load_or_create_key(path: Path, quarantine: Quarantine) -> bytes:
    """The signing key: 32 random bytes in a 0600 file, created once (O_EXCL, so two starts can't race).
    A damaged key file is quarantined and replaced (what it signed then fails to verify and is set aside)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    while True:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            key = path.read_bytes()
            if len(key) == 32:
                return key
            quarantine.move(path, f"signing key of {len(key)} bytes, not 32", describe_bytes(key, limit=0))
            continue
        key = secrets.token_bytes(32)
        try:
            os.write(fd, key)
            os.fsync(fd)
        finally:
            os.close(fd)
        return key


def sign(key: bytes, payload: bytes) -> bytes:
    return hmac.new(key, payload, hashlib.sha256).digest()


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_signed_snapshot(path: Path, key: bytes, generation: int, payload: bytes, *, fsync: bool) -> None:
    """``SNAPSHOT_MAGIC``, generation (u64), HMAC over both and the payload, payload; tmp file + rename."""
    head = SNAPSHOT_MAGIC + struct.pack(">Q", generation)
    mac = hmac.new(key, head, hashlib.sha256)
    mac.update(payload)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(head)
        fh.write(mac.digest())
        fh.write(payload)
        if fsync:
            fh.flush()
            os.fsync(fh.fileno())
    os.replace(tmp, path)
    if fsync:
        fsync_dir(path.parent)


class SnapshotInvalid(ValueError):
    """A snapshot that is torn, not ours, or altered."""


def read_signed_snapshot(path: Path, key: bytes, generation: int) -> bytes:
    """The verified payload of a snapshot; SnapshotInvalid (nothing unpickled) if anything doesn't match."""
    data = path.read_bytes()
    head = SNAPSHOT_MAGIC + struct.pack(">Q", generation)
    if not data.startswith(SNAPSHOT_MAGIC):
        raise SnapshotInvalid("not an emulator snapshot (wrong header)")
    if data[: len(head)] != head:
        raise SnapshotInvalid("snapshot generation does not match its file name")
    mac, payload = data[len(head) : len(head) + 32], data[len(head) + 32 :]
    if len(mac) != 32:
        raise SnapshotInvalid("truncated before its signature")
    expected = hmac.new(key, head, hashlib.sha256)
    expected.update(payload)
    if not hmac.compare_digest(mac, expected.digest()):
        raise SnapshotInvalid("signature does not match (torn, altered or signed with another key)")
    return payload


class Journal:
    """An append-only file of signed records, written with one ``os.write`` on an O_APPEND fd each.

    ``append`` returns once the record is in the OS (survives kill -9). With ``fsync=True``, ``sync`` makes
    it survive power loss too, as a group commit: one fsync covers every record appended before it.
    """

    def __init__(self, path: Path, key: bytes, *, fsync: bool):
        self.path = path
        self.key = key
        self.fsync = fsync
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self.size = os.fstat(self._fd).st_size
        self._append_lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._written = 0
        self._synced = 0
        if fsync:
            fsync_dir(path.parent)

    def append(self, payload: bytes) -> int:
        """Write one record; returns its sequence number (for ``sync``)."""
        if len(payload) >= MAX_RECORD_BYTES:
            raise ValueError(f"journal record of {len(payload)} bytes is too large")
        frame = FRAME_HEADER.pack(len(payload), sign(self.key, payload)) + payload
        with self._append_lock:
            view = memoryview(frame)
            while view:  # a regular file takes it in one write; loop anyway rather than assume
                written = os.write(self._fd, view)
                view = view[written:]
            self.size += len(frame)
            self._written += 1
            return self._written

    def sync(self, sequence: int) -> None:
        if not self.fsync:
            return
        with self._sync_lock:
            if self._synced >= sequence or self._fd < 0:
                return  # another thread's fsync (or the fsync at close) already covered it
            target = self._written
            os.fsync(self._fd)
            self._synced = target

    def close(self) -> None:
        with self._sync_lock, self._append_lock:
            if self._fd < 0:
                return
            if self.fsync:
                os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1
            self._synced = self._written


def read_journal(path: Path, key: bytes, quarantine: Quarantine) -> Iterator[bytes]:
    """Yield each verified record's payload; the first bad frame and everything after it is set aside
    (a torn tail after a crash, never acknowledged) and cut off the file, so later appends stay readable."""
    data = path.read_bytes()
    offset = 0
    while offset < len(data):
        reason = None
        if len(data) - offset < FRAME_HEADER.size:
            reason = "torn record header"
        else:
            length, mac = FRAME_HEADER.unpack_from(data, offset)
            start = offset + FRAME_HEADER.size
            payload = data[start : start + length]
            if len(payload) < length:
                reason = f"torn record ({len(payload)} of {length} bytes)"
            elif not hmac.compare_digest(mac, sign(key, payload)):
                reason = "record signature does not match (corrupt or altered)"
        if reason is not None:
            tail = data[offset:]
            quarantine.keep_bytes(path, tail, f"{reason} at byte {offset}", describe_bytes(tail))
            with open(path, "r+b") as fh:
                fh.truncate(offset)
            return
        yield payload
        offset = start + length


class SharedExclusiveLock:
    """Many mutations at once (shared), or one snapshot (exclusive); a waiting snapshot is not starved."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._shared = 0
        self._exclusive = False
        self._exclusive_waiting = 0

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            while self._exclusive or self._exclusive_waiting:
                self._cond.wait()
            self._shared += 1
        try:
            yield
        finally:
            with self._cond:
                self._shared -= 1
                if not self._shared:
                    self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:
            self._exclusive_waiting += 1
            while self._exclusive or self._shared:
                self._cond.wait()
            self._exclusive_waiting -= 1
            self._exclusive = True
        try:
            yield
        finally:
            with self._cond:
                self._exclusive = False
                self._cond.notify_all()
