"""sagemaker_fleet installs and imports on its own: a fresh venv with only Airflow and the Amazon provider (the
verified async set), then ``pip install ./plugins``. Every module imports, the waiter JSON ships, and
``airflow providers list`` shows the package with its extra links.

This downloads Airflow and the provider from the package index, so it is not part of ``make test`` or CI:
run it with ``make test-package`` (``pytest -m package``).
"""

from __future__ import annotations

import json
import os
import subprocess
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# The same pins as requirements.txt: Airflow, the provider with aiobotocore, and the botocore they agree on.
BASE = [
    "apache-airflow==3.3.2",
    "apache-airflow-providers-amazon[aiobotocore]==9.39.0",
    "aiobotocore==3.10.0",
    "boto3==1.43.117",
    "botocore==1.43.117",
]
IMPORT_EVERY_MODULE = """
import importlib, json, pkgutil, sagemaker_fleet
names = sorted(m.name for m in pkgutil.walk_packages(sagemaker_fleet.__path__, "sagemaker_fleet."))
for name in names:
    importlib.import_module(name)
from sagemaker_fleet.hooks.sagemaker import FLEET_WAITERS_PATH, fleet_waiter_names
print(json.dumps({"modules": names, "file": sagemaker_fleet.__file__, "waiters": fleet_waiter_names()}))
"""


def run(command: list[str], env: dict[str, str], cwd: Path, timeout: float = 1800) -> str:
    result = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("fresh")
    venv.EnvBuilder(with_pip=True).create(root / "venv")
    python = root / "venv" / "bin" / "python"
    # Nothing of the project's checkout on the path: the installed copy must stand alone.
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    env.update(AIRFLOW_HOME=str(root / "airflow_home"), AIRFLOW__CORE__LOAD_EXAMPLES="False")
    run([str(python), "-m", "pip", "install", "--quiet", *BASE], env, root)
    run([str(python), "-m", "pip", "install", "--quiet", str(REPO / "plugins")], env, root)
    return python, env


def test_installs_without_the_projects_requirements(fresh_venv) -> None:
    python, env = fresh_venv
    installed = run([str(python), "-m", "pip", "list", "--format", "json"], env, python.parents[2])
    names = {p["name"].lower() for p in json.loads(installed)}
    assert "airflow-provider-sagemaker-fleet" in names
    # None of the project's own heavy dependencies came along.
    assert not names & {"xgboost", "xgboost-cpu", "pandas", "scikit-learn", "moto", "sagemaker-core"}
    run([str(python), "-m", "pip", "check"], env, python.parents[2])


def test_every_module_imports_from_the_installed_copy(fresh_venv) -> None:
    python, env = fresh_venv
    report = json.loads(run([str(python), "-c", IMPORT_EVERY_MODULE], env, python.parents[2]).strip().splitlines()[-1])
    assert "site-packages" in report["file"], report["file"]
    expected = {f"sagemaker_fleet.{p.relative_to(REPO / 'plugins' / 'sagemaker_fleet').with_suffix('').as_posix()}"
                .replace("/", ".").removesuffix(".__init__")
                for p in (REPO / "plugins" / "sagemaker_fleet").rglob("*.py") if p.name != "__init__.py"}  # fmt: skip
    assert expected <= set(report["modules"]), expected - set(report["modules"])
    assert report["waiters"] == ["EndpointInServiceOnConfig", "EndpointSettled"]


def test_airflow_providers_list_shows_it_with_its_links(fresh_venv) -> None:
    python, env = fresh_venv
    airflow = str(python.with_name("airflow"))
    providers = json.loads(run([airflow, "providers", "list", "--output", "json"], env, python.parents[2]))
    ours = [p for p in providers if p["package_name"] == "airflow-provider-sagemaker-fleet"]
    assert ours and ours[0]["version"] == "0.1.0", providers
    links = run([airflow, "providers", "links", "--output", "json"], env, python.parents[2])
    assert "sagemaker_fleet.links.sagemaker.SageMakerTrainingJobLink" in links
    assert "sagemaker_fleet.links.sagemaker.MMERegistryRecordLink" in links
