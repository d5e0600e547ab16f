"""The README's Jinja examples render a real date on a manual run without a logical date, where Airflow 3 sets
``ds_nodash``/``ts_nodash`` to nothing (a version of "" or a config name ending in "-" would be accepted)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from types import SimpleNamespace

import jinja2
import pytest
from airflow.sdk.definitions._internal.templater import FILTERS

README = Path(__file__).resolve().parents[2] / "README.md"
RUN_AFTER = dt.datetime(2026, 11, 23, 22, 15, 7, tzinfo=dt.UTC)
MANUAL = {"data_interval_end": None, "logical_date": None, "ds_nodash": None, "ts_nodash": None,
          "dag_run": SimpleNamespace(run_after=RUN_AFTER)}  # fmt: skip


def readme_templates() -> list[str]:
    return sorted(set(re.findall(r'"([^"\n]*\{\{[^"\n]*\}\}[^"\n]*)"', README.read_text())))


def render(template: str, context: dict) -> str:
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined)
    environment.filters.update(FILTERS)
    return environment.from_string(template).render(**context)


def test_the_readme_has_date_templates() -> None:
    assert any("run_after" in t for t in readme_templates())
    assert not [t for t in readme_templates() if re.search(r"\{\{\s*(ds_nodash|ts_nodash|ds|ts)\s*\}\}", t)]


@pytest.mark.parametrize("template", [t for t in readme_templates() if "run_after" in t])
def test_date_templates_render_a_date_on_a_manual_run(template: str) -> None:
    rendered = render(template, MANUAL)
    assert "20261123" in rendered or "2026-11-23" in rendered, (template, rendered)
    # A run with a logical date builds that date, as the DAG tasks do (sagemaker_fleet.run_settings).
    scheduled = {**MANUAL, "logical_date": dt.datetime(2026, 11, 24, 2, tzinfo=dt.UTC)}
    if "logical_date" in template:
        assert "20261124" in render(template, scheduled) or "2026-11-24" in render(template, scheduled)
