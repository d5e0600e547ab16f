"""Where client-chosen strings become file names: every such place goes through this module.

The guarantee (issue 12): no request, S3 key, resource name or archive member makes the server write a
file outside its data dir. Two kinds of names reach the disk:

* **S3 keys staged into a training channel** (:func:`channel_file`). The key's part after the channel's
  prefix is kept as the file's path below ``input/data/<channel>/`` when it can be: empty and ``.``
  segments are dropped and ``..`` goes up one level, as a shell would. A key that climbs above its channel
  (``p/train/../../x.csv``) is refused with :class:`KeyEscapesChannel`, and the job fails with
  ``ClientError:`` naming it. A segment that cannot be a file name here (a NUL, more than 255 bytes, not
  encodable) is stored under a name derived from it, ``s3key-<sha256 of the segment, 40 hex>``, never
  under the segment itself.
* **Control-plane record files** (:func:`record_file_stem`). The file name is the lower-cased name,
  percent-encoded so it can hold no ``/``, NUL or ``%`` of its own, or ``sha256-<hex>`` when that would be
  longer than 200 bytes (tags are keyed by ARN, which may be up to 256 characters of anything).

Model archives are the third way in; :mod:`.serving.runtime` extracts them with a filter that refuses
links, devices and members outside the scratch directory.
"""

from __future__ import annotations

import hashlib
import os
import urllib.parse
from pathlib import Path

# Linux's NAME_MAX; longer segments get a derived name.
MAX_SEGMENT_BYTES = 255
# Comfortably below PATH_MAX (4096) once the data dir's own path is added in front.
MAX_PATH_BYTES = 3800
MAX_RECORD_STEM = 200


class KeyEscapesChannel(ValueError):
    """An S3 key whose path below its channel's prefix climbs out of the channel directory."""

    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


def derived_name(text: str) -> str:
    """A file name standing for ``text`` when ``text`` itself cannot be one (stable, no collisions in practice)."""
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    return f"s3key-{digest[:40]}"


def _file_segment(segment: str) -> str:
    if "\x00" in segment:
        return derived_name(segment)
    try:
        encoded = os.fsencode(segment)
    except UnicodeEncodeError:  # lone surrogates the file system encoding cannot write
        return derived_name(segment)
    return segment if len(encoded) <= MAX_SEGMENT_BYTES else derived_name(segment)


def channel_file(key: str, prefix: str) -> Path:
    """Where the object ``key`` (listed under the channel's S3 ``prefix``) goes, relative to the channel dir.

    Raises KeyEscapesChannel when the key climbs above the channel.
    """
    relative = key[len(prefix) :] if key.startswith(prefix) else key
    parts: list[str] = []
    for segment in relative.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if not parts:
                raise KeyEscapesChannel(key)
            parts.pop()
            continue
        parts.append(_file_segment(segment))
    if not parts:
        # The object is the prefix itself (S3Uri naming one object) or folds back onto the channel
        # directory ("a/.."): keep its own last name, as the container sees a single file.
        last = key.rstrip("/").rsplit("/", 1)[-1]
        parts = [_file_segment(last) if last not in ("", ".", "..") else derived_name(key)]
    path = Path(*parts)
    if len(os.fsencode(str(path))) > MAX_PATH_BYTES:
        path = Path(derived_name(key))
    return path


def inside(root: Path, path: Path) -> bool:
    """True when ``path`` (following any symlinks that exist) is ``root`` or lies below it."""
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    return real == real_root or real.startswith(real_root + os.sep)


def record_file_stem(name: str) -> str:
    """The file name (without ``.json``) of a control-plane record; names are case-insensitive."""
    stem = urllib.parse.quote(name.lower(), safe="", errors="surrogatepass")
    if len(stem) > MAX_RECORD_STEM:
        stem = "sha256-" + hashlib.sha256(stem.encode()).hexdigest()
    return stem
