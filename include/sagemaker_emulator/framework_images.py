"""The scikit-learn framework images, which run users' code: processing jobs, script-mode training and serving.

One list of versions, read from sagemaker-core's image config (``include/sagemaker_images.py``, without
importing the SDK), so a version AWS adds is accepted everywhere at once.
"""

from __future__ import annotations

import functools
import re

# Used only when sagemaker-core's image config cannot be read (the package is a pinned dependency).
SKLEARN_VERSIONS_FALLBACK = ("0.20.0", "0.23-1", "1.0-1", "1.2-1", "1.4-2", "1.4-2-py312", "1.9-0")


@functools.lru_cache(maxsize=1)
def sklearn_versions() -> tuple[str, ...]:
    """Every scikit-learn training image version in sagemaker-core's image config."""
    try:
        from include.sagemaker_images import framework_versions

        return tuple(framework_versions("sklearn", "training"))
    except (ModuleNotFoundError, OSError, ValueError):
        return SKLEARN_VERSIONS_FALLBACK


@functools.lru_cache(maxsize=1)
def _sklearn_image() -> re.Pattern[str]:
    # Longest first, so 1.4-2-py312 is not read as 1.4-2 followed by a suffix.
    versions = "|".join(re.escape(v) for v in sorted(sklearn_versions(), key=len, reverse=True))
    return re.compile(r"(^|/)sagemaker-scikit-learn:(?P<version>" + versions + r")(-arm64)?(-cpu-py3)?$")


def sklearn_image_version(image: str | None) -> str | None:
    """The version of a scikit-learn image URI (``...sagemaker-scikit-learn:1.2-1-cpu-py3`` -> ``1.2-1``)."""
    match = _sklearn_image().search(image or "")
    return match.group("version") if match else None
