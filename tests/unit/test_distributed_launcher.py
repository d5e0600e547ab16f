"""The pieces of ``make run-distributed`` (include/distributed.py) that need no server: the shared
settings file, the environment every Airflow process gets, and the checks of what the user passes in.
The whole stack runs in tests/distributed."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlparse

import pytest

from include import distributed, worker_identity


def test_every_shared_setting_reaches_the_airflow_processes_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = distributed.read_settings()
    for key in shared:
        monkeypatch.delenv(key, raising=False)
    postgres = SimpleNamespace(url="postgresql://airflow:pw@127.0.0.1:5442/airflow")
    redis = SimpleNamespace(url="redis://:pw@127.0.0.1:6389/0")
    env = distributed.distributed_env(shared, tmp_path / "airflow", "http://127.0.0.1:4576", 8090, postgres, redis)
    assert {key: env[key] for key in shared} == shared
    # make run's LocalExecutor is replaced by the file's executor, not merged with it.
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    for key in (
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
        "AIRFLOW__CELERY__BROKER_URL",
        "AIRFLOW__CELERY__RESULT_BACKEND",
    ):
        assert urlparse(env[key]).hostname == "127.0.0.1", key
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql+psycopg2://")
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:8090/execution/"
    assert env["AIRFLOW__CORE__HOSTNAME_CALLABLE"] == "include.worker_identity.hostname"
    # The JWT secret every component shares is generated, private.
    assert stat.S_IMODE((tmp_path / "airflow" / "jwt_secret").stat().st_mode) == 0o600


def test_the_environment_wins_over_the_shared_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER", "2")
    shared = distributed.read_settings()
    fake = SimpleNamespace(url="postgresql://a:b@127.0.0.1:1/airflow")
    env = distributed.distributed_env(shared, tmp_path / "airflow", "http://127.0.0.1:1", 2, fake, fake)
    assert env["AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER"] == "2"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("AIRFLOW__CELERY__BROKER_URL=redis://redis:6379/0\n", "names a host"),
        ("AIRFLOW__CORE__EXECUTOR=\n", "has no value"),
    ],
)
def test_a_settings_file_that_names_a_host_or_lacks_a_value_is_refused(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "airflow-distributed.env"
    path.write_text(content)
    with pytest.raises(SystemExit, match=message):
        distributed.read_settings(path)


def test_a_missing_settings_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="missing"):
        distributed.read_settings(tmp_path / "nowhere.env")


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("RUN_CONF", "{locations", "RUN_CONF is not JSON"),
        ("RUN_CONF", "[1, 2]", "RUN_CONF must be a JSON object"),
        ("POSTGRES_PORT", "54x2", "POSTGRES_PORT='54x2' is not a port"),
        ("REDIS_PORT", "70000", "REDIS_PORT='70000' is not a port"),
        ("WORKER_CONCURRENCY", "0", "WORKER_CONCURRENCY='0'"),
    ],
)
def test_bad_input_is_refused_with_its_name(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    check = {
        "RUN_CONF": distributed.run_conf,
        "WORKER_CONCURRENCY": distributed.worker_concurrency,
    }.get(variable, lambda: distributed.configured_port(variable))
    with pytest.raises(SystemExit, match=message):
        check()


def test_defaults_do_not_collide_with_make_run(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in distributed.DEFAULT_PORTS:
        monkeypatch.delenv(variable, raising=False)
    ports = {variable: distributed.configured_port(variable) for variable in distributed.DEFAULT_PORTS}
    assert len(set(ports.values())) == len(ports)
    assert not {8080, 4566, 5432, 6379} & set(ports.values()), ports
    assert distributed.run_conf() == {} or os.environ.get("RUN_CONF")


def test_workers_record_their_own_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_WORKER_NAME", "worker2@box")
    assert worker_identity.hostname() == "worker2@box"
    monkeypatch.delenv("AIRFLOW_WORKER_NAME")
    assert worker_identity.hostname()  # the machine's name, as Airflow's default
