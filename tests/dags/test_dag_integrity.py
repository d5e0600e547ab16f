"""Every DAG in dags/: imports cleanly, carries owner/retries/tags, no catchup, parses without heavy imports.

Parse time is a speed figure, measured by ``bench/bench_parse.py`` (``parse.max_dag_parse_s``), not asserted
here: a timed assertion flakes on a loaded 2-core machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.dags.conftest import REPO

DAG_FILES = sorted(p for p in (REPO / "dags").glob("*.py") if not p.name.startswith("_"))
HEAVY_MODULES = ("pandas", "xgboost", "sklearn", "sagemaker", "scipy", "matplotlib")

# Parses one DAG file in a fresh interpreter (Airflow itself already imported, as in the dag-processor)
# and reports its DAGs' settings, the parse time and which heavy modules the parse pulled in.
_PROBE = r"""
import json, sys, time
import airflow.sdk  # noqa: F401  (the dag-processor has Airflow loaded before it parses a file)
from airflow.dag_processing.dagbag import DagBag

heavy = sys.argv[2].split(",")
already = {m for m in heavy if m in sys.modules}
started = time.perf_counter()
bag = DagBag(dag_folder=sys.argv[1])
seconds = time.perf_counter() - started
dags = {}
for dag_id, dag in bag.dags.items():
    dags[dag_id] = {
        "tags": sorted(dag.tags or []),
        "catchup": dag.catchup,
        "owners": sorted({t.owner for t in dag.tasks}),
        "retries": sorted({t.retries for t in dag.tasks}),
        "has_doc": bool(dag.doc_md),
        "description": dag.description,
        "params": {
            name: {
                "title": dag.params.get_param(name).schema.get("title"),
                "description": dag.params.get_param(name).description,
                "section": dag.params.get_param(name).schema.get("section"),
                "type": dag.params.get_param(name).schema.get("type"),
            }
            for name in dag.params
        },
    }
print("@@PROBE@@" + json.dumps({
    "errors": {k: str(v) for k, v in bag.import_errors.items()},
    "dags": dags,
    "seconds": seconds,
    "heavy": sorted(m for m in heavy if m in sys.modules and m not in already),
}))
"""


@pytest.fixture(scope="module")
def probes(airflow_home: dict[str, str]) -> dict[str, dict]:
    results = {}
    for path in DAG_FILES:
        process = subprocess.run(
            [sys.executable, "-c", _PROBE, str(path), ",".join(HEAVY_MODULES)],
            env={**os.environ, **airflow_home},
            capture_output=True,
            text=True,
            timeout=120,
            cwd=REPO,
        )
        line = next((x for x in process.stdout.splitlines() if x.startswith("@@PROBE@@")), None)
        assert line, f"parsing {path.name} crashed:\n{process.stdout[-3000:]}\n{process.stderr[-3000:]}"
        results[path.name] = json.loads(line.removeprefix("@@PROBE@@"))
    return results


def test_there_are_dags() -> None:
    assert DAG_FILES, "no DAG files in dags/"


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_dag_file_imports_and_follows_the_rules(path: Path, probes: dict[str, dict]) -> None:
    probe = probes[path.name]
    assert probe["errors"] == {}, f"import errors: {probe['errors']}"
    assert probe["dags"], f"{path.name} defines no DAG"
    assert path.stem in probe["dags"], "the file name must be the dag_id"
    for dag_id, dag in probe["dags"].items():
        assert dag["tags"], f"{dag_id} has no tags"
        assert dag["catchup"] is False, f"{dag_id} must set catchup=False"
        assert dag["has_doc"], f"{dag_id} has no doc_md"
        assert all(owner and owner.lower() != "airflow" for owner in dag["owners"]), f"{dag_id}: set an owner"
        assert min(dag["retries"]) >= 1, f"{dag_id}: every task needs retries >= 1, got {dag['retries']}"


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_dag_file_parses_without_heavy_imports(path: Path, probes: dict[str, dict]) -> None:
    probe = probes[path.name]
    assert probe["heavy"] == [], f"{path.name} imports {probe['heavy']} at parse time; import them inside tasks"


# The trigger forms of the housing DAGs guide a person (issue 14): a card text, and for every Param a title,
# a description and a section; fields outside the core section are optional (they accept null = default).
GUIDED_DAGS = {"housing_mme_nightly.py", "housing_ab_rollout.py"}
SECTIONS = {"Core", "Advanced", "Testing only"}


@pytest.mark.parametrize("path", [p for p in DAG_FILES if p.name in GUIDED_DAGS], ids=lambda p: p.name)
def test_trigger_form_guides(path: Path, probes: dict[str, dict]) -> None:
    for dag_id, dag in probes[path.name]["dags"].items():
        assert dag["description"] and len(dag["description"]) > 30, f"{dag_id} needs a description for its card"
        assert dag["params"], f"{dag_id} has no Params"
        for name, param in dag["params"].items():
            assert param["title"], f"{dag_id}.{name} has no title"
            assert param["description"] and len(param["description"]) > 20, f"{dag_id}.{name} has no description"
            assert param["section"] in SECTIONS, f"{dag_id}.{name}: section {param['section']!r}"
            optional = isinstance(param["type"], list) and "null" in param["type"]
            assert optional == (param["section"] != "Core"), f"{dag_id}.{name}: only core fields are required"
