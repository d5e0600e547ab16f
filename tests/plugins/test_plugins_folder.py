"""sagemaker_fleet loads from Airflow's plugins folder as it is in this repository, and from an MWAA-style
plugins.zip (``sagemaker_fleet/``, ``sagemaker_fleet_plugin.py`` and ``.airflowignore`` at the zip's root)
unpacked into an empty plugins folder, with nothing of the checkout on the Python path. The ``.airflowignore``
keeps Airflow's loader from running the package's files as top-level modules (``sagemaker``, ``training``...)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PLUGINS = REPO / "plugins"
CHECK = """
import json, sys
from airflow.plugins_manager import get_plugin_info
info = get_plugin_info()
import sagemaker_fleet
# The loader runs plugin files as top-level modules: none of the package's modules may be one
# (hooks/sagemaker.py would hide the SageMaker SDK, whose image_uris the DAGs use).
from sagemaker.core import image_uris
shadowed = sorted(n for n, m in sys.modules.items() if "." not in n and n != "sagemaker_fleet" and "sagemaker_fleet/" in str(getattr(m, "__file__", "")))
print(json.dumps({"plugins": info, "file": sagemaker_fleet.__file__, "shadowed": shadowed}, default=str))
"""


def build_plugins_zip(target: Path) -> Path:
    """The zip MWAA takes: the package and the plugin module at its root (no plugins/ folder inside)."""
    archive = target / "plugins.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(PLUGINS / "sagemaker_fleet_plugin.py", "sagemaker_fleet_plugin.py")
        zf.write(PLUGINS / ".airflowignore", ".airflowignore")
        for path in sorted((PLUGINS / "sagemaker_fleet").rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                zf.write(path, path.relative_to(PLUGINS).as_posix())
    return archive


def loaded_plugins(plugins_folder: Path, home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(AIRFLOW_HOME=str(home), AIRFLOW__CORE__PLUGINS_FOLDER=str(plugins_folder),
               AIRFLOW__CORE__LOAD_EXAMPLES="False")  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-c", CHECK], env=env, cwd=home, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def plugin_links(report: dict) -> list[str]:
    (ours,) = [p for p in report["plugins"] if p["name"] == "sagemaker_fleet"]
    return sorted(str(link) for link in ours["operator_extra_links"])


@pytest.mark.parametrize("layout", ["repository", "unpacked plugins.zip"])
def test_loads_from_the_plugins_folder(layout: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    if layout == "repository":
        folder = PLUGINS
    else:
        folder = tmp_path / "plugins"
        folder.mkdir()
        with zipfile.ZipFile(build_plugins_zip(tmp_path)) as zf:
            zf.extractall(folder)
    report = loaded_plugins(folder, home)
    assert Path(report["file"]).is_relative_to(folder), report["file"]
    assert report["shadowed"] == [], f"package modules loaded as top-level plugin modules: {report['shadowed']}"
    links = plugin_links(report)
    assert len(links) == 7 and any("SageMakerProcessingJobLink" in link for link in links), links
    assert any("S3ReportLink" in link for link in links), links
