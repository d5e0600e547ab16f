"""A stack started like ``make run`` for the browser test, private to the session: the emulator and Airflow 3
(api-server with the UI, scheduler, dag-processor, triggerer; LocalExecutor on SQLite in a tmp AIRFLOW_HOME)
on free loopback ports, built with the scheduler suite's harness (the same environment as the launcher's,
minus the nightly schedule, so no ten-location catch-up run competes with the one the test triggers).
Chromium is Debian's (/usr/bin/chromium, installed by ``make test-ui``), driven by Playwright."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from include.sagemaker_emulator.process import EmulatorProcess, free_port
from tests.scheduler.conftest import AIRFLOW, COMPONENTS, USERNAME, AirflowStack, _airflow_env, _wait

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
    home, logs = root / "airflow", root / "logs"
    home.mkdir()
    logs.mkdir()
    password = secrets.token_urlsafe(12)
    password_file = home / "passwords.json"
    password_file.write_text(json.dumps({USERNAME: password}))
    with EmulatorProcess(data_dir=root / "emulator", log_path=logs / "emulator.log") as emulator:
        api_port = free_port()
        env = _airflow_env(home, api_port, emulator.url, password_file)
        stack = AirflowStack(env=env, api_url=f"http://127.0.0.1:{api_port}", emulator=emulator, logs=logs,
                             password=password)  # fmt: skip
        try:
            stack.cli("db", "migrate", timeout=600)
            stack.cli("pools", "set", "sagemaker_training", "4", "SageMaker training-job quota", "--include-deferred")
            for name in COMPONENTS:
                stack.start(name, [AIRFLOW, name])
            _wait("the api-server", lambda: stack.get("/api/v2/version"), 240, stack)
            _wait("housing_mme_nightly to be parsed", lambda: stack.get("/api/v2/dags/housing_mme_nightly"), 240, stack)
            yield stack
        finally:
            stack.stop()


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
