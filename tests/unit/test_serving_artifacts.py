"""The private artifact copies endpoints keep: content-addressed, checked when read, reclaimed when unused."""

from __future__ import annotations

import hashlib

import pytest

from include.sagemaker_emulator.serving.artifacts import ArtifactStore


def test_copies_are_named_by_content_and_kept_once(tmp_path):
    store = ArtifactStore(tmp_path / "artifacts")
    first = store.keep(b"model bytes")
    assert first == hashlib.sha256(b"model bytes").hexdigest()
    assert store.keep(b"model bytes") == first
    assert [p.name for p in (tmp_path / "artifacts").iterdir()] == [f"{first}.tar.gz"]
    assert store.read(first) == b"model bytes"


def test_a_damaged_or_missing_copy_reads_as_none(tmp_path):
    store = ArtifactStore(tmp_path / "artifacts")
    digest = store.keep(b"model bytes")
    (tmp_path / "artifacts" / f"{digest}.tar.gz").write_bytes(b"model byte")  # torn
    assert store.read(digest) is None
    assert store.read("0" * 64) is None
    # A name that is not a digest never becomes a path.
    assert store.read("../../etc/passwd") is None
    with pytest.raises(ValueError, match="not an artifact digest"):
        store._path("../x")
    # Keeping the same bytes again repairs the copy.
    assert store.keep(b"model bytes") == digest and store.read(digest) == b"model bytes"


def test_reclaim_spares_what_is_in_use_or_claimed(tmp_path):
    store = ArtifactStore(tmp_path / "artifacts")
    used, claimed, unused = (store.keep(body) for body in (b"used", b"claimed", b"unused"))
    store.release([used, unused])  # `claimed` stays claimed, as by a deployment in progress
    (tmp_path / "artifacts" / ".half-written.tmp").write_bytes(b"x")
    (tmp_path / "artifacts" / "stray-file").write_bytes(b"x")
    removed = store.reclaim(lambda: {used})
    assert set(removed) == {unused, ".half-written.tmp", "stray-file"}
    assert store.digests() == {used, claimed}
    store.release([claimed])
    assert store.reclaim(lambda: {used}) == [claimed]
    assert store.digests() == {used}


def test_fsync_mode_keeps_and_reads_the_same(tmp_path):
    store = ArtifactStore(tmp_path / "artifacts", fsync=True)
    digest = store.keep(b"flushed to the disk")
    assert store.read(digest) == b"flushed to the disk"
    assert not [p for p in (tmp_path / "artifacts").iterdir() if p.name.endswith(".tmp")]
