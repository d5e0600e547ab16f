"""Hostile and unlucky path-like strings for the property tests of issue 12, and the file-tree check.

Segments mix what a traversal needs (``..``, absolute starts, encoded dots, backslashes, NUL), overlong
names (more than 255 bytes) and ordinary ones; a path has at most 12 segments, so at most 12 ``..``.
Tests put the data dir at least 14 levels below a sandbox, so a broken guard would write inside the
sandbox, where :func:`tree` sees it, rather than somewhere else on the machine.
"""

from __future__ import annotations

import os
import posixpath
import tempfile
from pathlib import Path

from hypothesis import strategies as st

NASTY_SEGMENTS = [
    "..",
    ".",
    "",
    "%2e%2e",
    "%2E%2E",
    "..%2f",
    "%2e%2e%2f..",
    "..\\",
    "..\\..\\tmp",
    "\\",
    "~",
    "tmp",
    "etc",
    "x.csv",
    "a\x00b",
    "\x00",
    "..\x00",
    " ",
    ".hidden",
    "_meta",
    "é",
    "模型",
    "moto-state.pickle",
    "sagemaker",
    "training",
    "x" * 255,
    "y" * 256,
    "é" * 130,  # 260 bytes in UTF-8, 130 characters
]

# Characters that matter to paths and encodings, plus a few ordinary and non-ASCII ones. No lone
# surrogates: they cannot travel in an HTTP request, so no key or header holds one.
PATH_CHARACTERS = list("./\\%2eEfF\x00 ~:*?_-ab\t\né模") + ["\u202e", "\U0001f600"]
segments = st.one_of(
    st.sampled_from(NASTY_SEGMENTS),
    st.text(alphabet=st.sampled_from(PATH_CHARACTERS), max_size=12),
    st.integers(min_value=240, max_value=300).map(lambda n: "é" * (n // 2) if n % 2 else "a" * n),
)
relative_paths = st.lists(segments, max_size=12).map("/".join)
# Absolute forms too: a leading "/" after a prefix, or a whole key that starts at the root.
path_like = st.one_of(relative_paths, relative_paths.map(lambda p: "/" + p))


def climbs_out(relative: str) -> bool:
    """Independent oracle: does ``relative`` (below some directory) name something above that directory?"""
    stripped = relative.lstrip("/")
    if not stripped:
        return False
    normalised = posixpath.normpath(stripped)
    return normalised == ".." or normalised.startswith("../")


def tree(root: Path, skip: Path | None = None) -> set[str]:
    """Every path (files, directories, links) below ``root``, except the subtree ``skip``."""
    found = set()
    for folder, dirs, files in os.walk(root):
        if skip is not None and Path(folder) == skip:
            dirs[:] = []
            continue
        for name in dirs + files:
            path = Path(folder) / name
            if skip is not None and path == skip:
                continue
            found.add(str(path.relative_to(root)))
    return found


def sandbox_dir() -> Path:
    """A fresh directory on tmpfs when there is one: the property tests create and remove thousands of
    directories, which costs milliseconds each on an overlay file system."""
    shm = Path("/dev/shm")
    base = shm if shm.is_dir() and os.access(shm, os.W_OK) else None
    return Path(tempfile.mkdtemp(prefix="path-safety-", dir=base))
