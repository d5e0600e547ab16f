"""Shared fixtures. Unit tests need none of these; emulator and DAG tests start the emulator themselves."""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from include.sagemaker_emulator.process import EmulatorProcess

REGION = "us-east-1"
ROLE_ARN = "arn:aws:iam::123456789012:role/SageMakerExecution"

# Dummy credentials: the emulator accepts any signature. Set before boto3 or Airflow read them.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
os.environ.pop("AWS_PROFILE", None)


KINDS = ("unit", "emulator", "plugins", "dags", "scheduler", "chaos", "distributed", "ui", "package")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test with its kind, taken from its folder (tests/<kind>/...), so `-m unit` and the
    make targets select suites without a decorator on every test."""
    tests_dir = Path(__file__).resolve().parent
    for item in items:
        try:
            kind = Path(item.fspath).resolve().relative_to(tests_dir).parts[0]
        except ValueError:
            continue
        if kind in KINDS:
            item.add_marker(getattr(pytest.mark, kind))


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    """One emulator for the session on a free port; its URL becomes the default AWS endpoint and the
    ``aws_default`` Airflow connection's ``endpoint_url``."""
    data_dir = tmp_path_factory.mktemp("emulator") / "data"
    with EmulatorProcess(data_dir=data_dir) as emu:
        previous = {k: os.environ.get(k) for k in ("AWS_ENDPOINT_URL", "AIRFLOW_CONN_AWS_DEFAULT")}
        os.environ["AWS_ENDPOINT_URL"] = emu.url
        os.environ["AIRFLOW_CONN_AWS_DEFAULT"] = json.dumps(
            {"conn_type": "aws", "extra": {"endpoint_url": emu.url, "region_name": REGION}}
        )
        yield emu
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
def clear_faults(emulator: EmulatorProcess) -> Iterator[None]:
    yield
    request = urllib.request.Request(f"{emulator.url}/_emulator/faults", method="DELETE")
    urllib.request.urlopen(request, timeout=5).close()


def inject_fault(emulator: EmulatorProcess, fault: dict) -> dict:
    request = urllib.request.Request(
        f"{emulator.url}/_emulator/faults",
        data=json.dumps(fault).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def client(emulator: EmulatorProcess, service: str):
    import boto3

    return boto3.client(service, endpoint_url=emulator.url, region_name=REGION)


@pytest.fixture
def sm(emulator: EmulatorProcess):
    return client(emulator, "sagemaker")


@pytest.fixture
def s3(emulator: EmulatorProcess):
    return client(emulator, "s3")


@pytest.fixture
def runtime(emulator: EmulatorProcess):
    return client(emulator, "sagemaker-runtime")


@pytest.fixture(scope="session")
def project_root() -> Path:
    return Path(__file__).resolve().parents[1]
