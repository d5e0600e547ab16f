"""A stack started like ``make run`` for the browser test, private to the session: the emulator and Airflow 3
(api-server with the UI, scheduler, dag-processor, triggerer; LocalExecutor on SQLite in a tmp AIRFLOW_HOME)
on free loopback ports, built with the scheduler suite's harness (``include/local_stack.py``: the launcher's
environment minus the nightly schedule, so no ten-location catch-up run competes with the one the test
triggers).
Chromium is Debian's (/usr/bin/chromium, installed by ``make test-ui``), driven by Playwright."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from include.sagemaker_emulator.process import EmulatorProcess
from tests.scheduler.conftest import AirflowStack

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = REPO / ".local" / "ui"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def ui_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowStack]:
    root = tmp_path_factory.mktemp("ui_stack")
    with (
        EmulatorProcess(data_dir=root / "emulator", log_path=root / "emulator.log") as emulator,
        AirflowStack(root, emulator) as stack,
    ):
        stack.start(["housing_mme_nightly"], pools={"sagemaker_training": 4})
        yield stack


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test-ui` installs Debian's chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(30_000)
    try:
        yield context.new_page()
    finally:
        context.close()
