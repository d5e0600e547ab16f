"""Image URIs of SageMaker's built-in algorithm and scikit-learn images, without importing the SageMaker SDK.

``sagemaker.core.image_uris.retrieve`` answers from JSON files shipped inside sagemaker-core
(``sagemaker/core/image_uri_config/<framework>.json``), but importing it pulls in most of the SDK
(~1.5-2.5 s and ~40 MB per process), which every DAG run paid in its first task. :func:`image_uri` reads the
same JSON files directly (located with ``find_spec``, which does not execute the package) and applies the
same rules for the frameworks listed in :data:`FAST_FRAMEWORKS`, so the URI is exactly what the SDK returns
(tests/unit/test_sagemaker_images.py checks the equality). Any other framework, or an argument this module
does not model, is passed to the SDK itself.
"""

from __future__ import annotations

import functools
import importlib.util
import json
from pathlib import Path
from typing import Any

__all__ = ["FAST_FRAMEWORKS", "framework_versions", "image_uri"]

# Built-in algorithms and the scikit-learn/XGBoost framework images: plain "<repository>:<tag>" configs,
# which the SDK resolves without framework-specific code paths (no Neuron, HuggingFace or CUDA tags).
FAST_FRAMEWORKS = frozenset(
    {
        "xgboost",
        "sklearn",
        "linear-learner",
        "kmeans",
        "pca",
        "factorization-machines",
        "knn",
        "randomcutforest",
        "ntm",
        "lda",
        "ipinsights",
        "object2vec",
        "blazingtext",
    }
)
_SCOPE_DEFAULTS_TO_TRAINING = {"xgboost", "sklearn"}  # the SDK's _get_final_image_scope
_SDK_TEMPLATE = "{registry}.dkr.{hostname}/{repository}"


@functools.lru_cache(maxsize=1)
def _config_dir() -> Path:
    spec = importlib.util.find_spec("sagemaker")
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / "core" / "image_uri_config"
        if candidate.is_dir():
            return candidate
    raise ModuleNotFoundError("sagemaker-core is not installed: its image_uri_config directory was not found")


@functools.lru_cache(maxsize=32)
def _config(framework: str) -> dict[str, Any]:
    return json.loads((_config_dir() / f"{framework}.json").read_text())


@functools.lru_cache(maxsize=64)
def _ecr_hostname(region: str) -> str:
    import botocore.loaders
    import botocore.regions

    resolver = botocore.regions.EndpointResolver(botocore.loaders.create_loader().load_data("endpoints"))
    endpoint = resolver.construct_endpoint("ecr", region)
    if region == "il-central-1" and not endpoint:  # as the SDK does
        endpoint = {"hostname": f"ecr.{region}.amazonaws.com"}
    if not endpoint:
        raise ValueError(f"Unsupported region: {region}")
    return endpoint["hostname"]


def _unsupported(what: str, value: Any, options: Any) -> ValueError:
    return ValueError(f"Unsupported {what}: {value}. Supported {what}(s): {', '.join(options)}.")


def _scoped_config(framework: str, image_scope: str | None) -> dict[str, Any]:
    config = _config(framework)
    scopes = config.get("scope", list(config))
    if len(scopes) == 1:
        image_scope = scopes[0]
    if not image_scope and "scope" in config and set(scopes) == {"training", "inference"}:
        image_scope = scopes[0]
    if image_scope not in scopes:
        raise _unsupported("image scope", image_scope, scopes)
    return config if "scope" in config else config[image_scope]


def _latest_version(framework: str, image_scope: str | None) -> str | None:
    from packaging.version import Version

    config = _config(framework)
    latest = (config.get(image_scope) or {}).get("version_aliases", {}).get("latest") if image_scope else None
    if latest:
        return latest
    versions = list((config if "versions" in config else config.get(image_scope) or {}).get("versions", {}))
    if len(versions) == 1:
        return versions[0]
    if not versions or "latest" in (versions[0], versions[-1]):
        return None
    return versions[0] if Version(versions[0]) >= Version(versions[-1]) else versions[-1]


def image_uri(
    framework: str,
    region: str,
    version: str | None = None,
    image_scope: str | None = None,
    py_version: str | None = None,
    instance_type: str | None = None,
) -> str:
    """The ECR URI ``sagemaker.core.image_uris.retrieve`` returns for the same arguments.

    Raises ValueError, as the SDK does, for a framework version, scope, Python version or region the
    image does not exist for.
    """
    if framework not in FAST_FRAMEWORKS or instance_type is not None:
        # Instance types select Graviton, GPU or Neuron images: the SDK's own rules decide those.
        from sagemaker.core import image_uris

        return image_uris.retrieve(
            framework, region, version=version, image_scope=image_scope, py_version=py_version,
            instance_type=instance_type,
        )  # fmt: skip
    requested_scope = image_scope  # the SDK looks up the latest version with the scope as given
    if image_scope is None and framework in _SCOPE_DEFAULTS_TO_TRAINING:
        image_scope = "training"
    config = _scoped_config(framework, image_scope)
    available = list(config["versions"])
    aliases = config.get("version_aliases", {})
    if len(available) == 1 and version not in aliases:
        version = available[0]
    else:
        version = version or _latest_version(framework, requested_scope)
        if version not in available and version not in aliases:
            raise _unsupported(f"{framework} version", version, available + list(aliases))
    version_config = config["versions"][aliases.get(version, version)]

    py_versions = version_config.get("py_versions")
    if py_versions:
        if py_version is None and len(py_versions) == 1:
            py_version = py_versions[0]
        elif py_version not in py_versions:
            raise _unsupported("Python version", py_version, py_versions)
    else:
        py_version = None
    registries = version_config["registries"]
    if region not in registries:
        raise _unsupported("region", region, registries)

    processors = config.get("processors") or version_config.get("processors") or []
    if len(processors) > 1:
        raise ValueError("Empty SageMaker instance type: this image needs one to choose its processor.")
    processor = processors[0] if processors else None
    tag_prefix = version_config.get("tag_prefix", version)
    tag = "-".join(part for part in (tag_prefix, processor, py_version) if part)
    repository = version_config["repository"] + (f":{tag}" if tag else "")
    return _SDK_TEMPLATE.format(registry=registries[region], hostname=_ecr_hostname(region), repository=repository)


def framework_versions(framework: str, image_scope: str = "training") -> list[str]:
    """The versions sagemaker-core's image config lists for a framework and scope, in its order."""
    config = _config(framework)
    scoped = config if "versions" in config else config.get(image_scope) or {}
    return list(scoped.get("versions", {}))
