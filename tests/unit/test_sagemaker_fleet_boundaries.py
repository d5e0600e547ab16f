"""sagemaker_fleet is a self-contained package: it imports nothing from include/ or dags/, and its utils stay
cheap to import (include.housing and DAG files import them at parse time)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGE = REPO_ROOT / "plugins" / "sagemaker_fleet"
FORBIDDEN_ROOTS = {"include", "dags", "tests", "bench"}


def imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    """Every module an ``import``/``from ... import`` names, at any depth (lazy imports in functions too)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def forbidden_imports(source: str, filename: str) -> list[str]:
    tree = ast.parse(source, filename=filename)
    return [
        f"{filename}:{line}: import of {module}"
        for line, module in imported_modules(tree)
        if module.split(".")[0] in FORBIDDEN_ROOTS
    ]


def test_the_check_catches_top_level_and_lazy_imports() -> None:
    source = "import include.housing\ndef f():\n    from dags.x import y\n    import json\n"
    assert forbidden_imports(source, "m.py") == ["m.py:1: import of include.housing", "m.py:3: import of dags.x"]


def test_sagemaker_fleet_imports_nothing_from_include_or_dags() -> None:
    files = sorted(PACKAGE.rglob("*.py")) + [REPO_ROOT / "plugins" / "sagemaker_fleet_plugin.py"]
    assert len(files) > 20, "the package's modules were not found"
    problems = [p for f in files for p in forbidden_imports(f.read_text(), str(f.relative_to(REPO_ROOT)))]
    assert problems == [], "sagemaker_fleet must stay installable on its own:\n" + "\n".join(problems)


@pytest.mark.parametrize("module", ["naming", "s3", "metrics", "ab_statistics", "reports", "endpoint_probe"])
def test_utils_import_without_airflow_or_heavy_libraries(module: str) -> None:
    heavy = ("numpy", "pandas", "scipy", "matplotlib", "airflow", "boto3", "botocore")
    check = (
        f"import sys; import sagemaker_fleet.utils.{module}; print(','.join(m for m in {heavy!r} if m in sys.modules))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "plugins")}
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True, env=env)
    assert result.stdout.strip() == "", f"sagemaker_fleet.utils.{module} imports {result.stdout.strip()}"


def test_get_provider_info_imports_nothing_of_airflow() -> None:
    # The providers manager calls it while Airflow's configuration is being built: an Airflow import there is
    # a circular import (airflow providers list fails).
    check = (
        "import sys, json; from sagemaker_fleet.get_provider_info import get_provider_info; info = get_provider_info(); "
        "print(json.dumps([sorted(m for m in sys.modules if m.split('.')[0] in ('airflow', 'boto3', 'botocore')), "
        "info['package-name'], info['extra-links']]))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "plugins")}
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True, env=env)
    imported, name, links = json.loads(result.stdout)
    assert imported == [] and name == "airflow-provider-sagemaker-fleet"
    assert len(links) == 7 and all(link.startswith("sagemaker_fleet.links.sagemaker.") for link in links)
