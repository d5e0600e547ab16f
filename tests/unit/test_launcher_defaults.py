"""``make run``'s secure defaults (include/launcher.py): secret files private from their first byte, a
generated UI password instead of admin/admin, loopback binds unless asked otherwise. The full launcher is
checked by hand (README, "What is local-only"); these pin the pieces it is built from."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from include import launcher


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def airflow_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "airflow"
    home.mkdir()
    monkeypatch.setattr(launcher, "AIRFLOW_HOME", home)
    return home


@pytest.fixture
def open_umask():
    """The most permissive umask: a file that comes out 0600 anyway was created 0600, not chmod-ed."""
    previous = os.umask(0)
    yield
    os.umask(previous)


def test_a_new_secret_file_is_created_0600(tmp_path: Path, open_umask: None) -> None:
    path = tmp_path / "jwt_secret"
    assert launcher.private_file(path, "s3cret") == "s3cret"
    assert path.read_text() == "s3cret"
    assert mode(path) == 0o600


def test_an_existing_secret_is_kept_and_tightened(tmp_path: Path, open_umask: None) -> None:
    path = tmp_path / "jwt_secret"
    path.write_text("from an older run")
    path.chmod(0o644)
    assert launcher.private_file(path, "new") == "from an older run"
    assert mode(path) == 0o600


def test_ui_password_is_random_private_and_stable(
    airflow_home: Path, open_umask: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = launcher.ui_password()
    passwords = airflow_home / "passwords.json"
    assert mode(passwords) == 0o600
    assert json.loads(passwords.read_text()) == {"admin": first}
    assert first != "admin" and len(first) >= 16
    assert launcher.ui_password() == first, "a second make run keeps the login"
    other_home = airflow_home.parent / "other"
    other_home.mkdir()
    monkeypatch.setattr(launcher, "AIRFLOW_HOME", other_home)
    assert launcher.ui_password() != first, "each checkout gets its own password"


@pytest.mark.parametrize("old", ['{"admin": "admin"}', "not json", '{"someone": "x"}', "[]"])
def test_the_old_known_password_or_a_broken_file_is_replaced(airflow_home: Path, open_umask: None, old: str) -> None:
    passwords = airflow_home / "passwords.json"
    passwords.write_text(old)
    passwords.chmod(0o644)
    password = launcher.ui_password()
    assert password != "admin"
    assert json.loads(passwords.read_text()) == {"admin": password}
    assert mode(passwords) == 0o600
    assert [p.name for p in airflow_home.iterdir()] == ["passwords.json"], "no scratch file left behind"


def test_airflow_env_binds_loopback_and_keeps_secrets_private(
    airflow_home: Path, monkeypatch: pytest.MonkeyPatch, open_umask: None
) -> None:
    monkeypatch.setattr(launcher, "LOCAL", airflow_home.parent)
    (airflow_home / "airflow.cfg").write_text("[core]\nfernet_key = abc\n")
    env = launcher.airflow_env("http://127.0.0.1:4566", "127.0.0.1", 8080)
    assert env["AIRFLOW__API__HOST"] == "127.0.0.1"
    assert env["AIRFLOW__API__BASE_URL"] == "http://127.0.0.1:8080"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:8080/execution/"
    assert env["AIRFLOW__API_AUTH__JWT_SECRET"] == (airflow_home / "jwt_secret").read_text()
    assert len(env["AIRFLOW__API_AUTH__JWT_SECRET"]) >= 32
    assert mode(airflow_home / "jwt_secret") == 0o600
    assert mode(airflow_home / "airflow.cfg") == 0o600
    assert mode(airflow_home) == 0o700
    monkeypatch.delenv("AIRFLOW__API__BASE_URL", raising=False)
    opened = launcher.airflow_env("http://127.0.0.1:4566", "0.0.0.0", 8080)
    assert opened["AIRFLOW__API__HOST"] == "0.0.0.0"
    assert opened["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:8080/execution/"
    assert "AIRFLOW__API__BASE_URL" not in opened, "opened up, the UI's links must follow the address used"


def test_bind_host_defaults_to_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_HOST", raising=False)
    assert launcher.bind_host("AIRFLOW_HOST") == "127.0.0.1"
    monkeypatch.setenv("AIRFLOW_HOST", "")
    assert launcher.bind_host("AIRFLOW_HOST") == "127.0.0.1"
    monkeypatch.setenv("AIRFLOW_HOST", "0.0.0.0")
    assert launcher.bind_host("AIRFLOW_HOST") == "0.0.0.0"
    assert not launcher.is_loopback("0.0.0.0") and launcher.is_loopback("127.0.0.1") and launcher.is_loopback("::1")


def test_bind_host_rejects_what_is_not_an_address(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMULATOR_HOST", "0.0.0.0; rm -rf /")
    with pytest.raises(SystemExit, match="EMULATOR_HOST="):
        launcher.bind_host("EMULATOR_HOST")


@pytest.mark.parametrize(
    ("host", "expected"),
    [("127.0.0.1", "127.0.0.1"), ("0.0.0.0", "127.0.0.1"), ("::", "[::1]"), ("192.168.1.7", "192.168.1.7")],
)
def test_a_wildcard_bind_is_reached_on_loopback(host: str, expected: str) -> None:
    assert launcher.url_host(host) == expected


# -- one run per make run (issue 14) ----------------------------------------------------------------------
NOW = launcher.dt.datetime(2026, 12, 2, 1, 30, tzinfo=launcher.dt.UTC)


@pytest.mark.parametrize(
    ("dag", "due"),
    [
        ({"is_paused": False, "next_dagrun_run_after": "2026-12-01T02:00:00Z"}, True),  # unpaused: catch-up run
        ({"is_paused": False, "next_dagrun_run_after": "2026-12-02T01:30:00+00:00"}, True),
        ({"is_paused": False, "next_dagrun_run_after": "2026-12-02T02:00:00Z"}, False),  # tonight, not now
        ({"is_paused": True, "next_dagrun_run_after": "2026-12-01T02:00:00Z"}, False),
        ({"is_paused": False, "next_dagrun_run_after": None}, False),
    ],
)
def test_a_scheduled_run_is_due_only_when_its_time_has_come(dag: dict, due: bool) -> None:
    assert launcher.scheduled_run_is_due(dag, NOW) is due


class FakeApi:
    """The REST calls the_one_run makes, answered from memory; records what it posts."""

    def __init__(self, runs: list[str], dag: dict, scheduler_creates: str | None = None) -> None:
        self.runs, self.dag, self.scheduler_creates, self.posted = list(runs), dag, scheduler_creates, []

    def get(self, path: str) -> dict:
        if path.endswith("/dagRuns?limit=1000"):
            if self.scheduler_creates and self.scheduler_creates not in self.runs:
                self.runs.append(self.scheduler_creates)  # the scheduler's loop, one poll later
                return {"dag_runs": [{"dag_run_id": run} for run in self.runs[:-1]]}
            return {"dag_runs": [{"dag_run_id": run} for run in self.runs]}
        return self.dag

    def post(self, path: str, body: dict) -> dict:
        self.posted.append((path, body))
        return {"dag_run_id": "manual__now"}


class NoStack:
    def check(self) -> None:
        pass


def test_the_schedulers_due_run_is_followed_and_none_is_triggered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(launcher.time, "sleep", lambda _seconds: None)
    dag = {"is_paused": False, "next_dagrun_run_after": "2000-01-01T02:00:00Z"}
    api = FakeApi(["manual__old"], dag, scheduler_creates="scheduled__2026-12-01T02:00:00+00:00")
    assert launcher.the_one_run(api, {"manual__old"}, NoStack()) == "scheduled__2026-12-01T02:00:00+00:00"
    assert api.posted == []


def test_a_run_is_triggered_when_the_scheduler_has_none_due() -> None:
    dag = {"is_paused": False, "next_dagrun_run_after": "2999-01-01T02:00:00Z"}
    api = FakeApi(["scheduled__old"], dag)
    assert launcher.the_one_run(api, {"scheduled__old"}, NoStack()) == "manual__now"
    assert [path for path, _ in api.posted] == ["/api/v2/dags/housing_mme_nightly/dagRuns"]
