"""Start and stop an emulator server as a child process (used by tests, benchmarks and the launcher)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class EmulatorProcess:
    """``with EmulatorProcess(data_dir=...) as emu: boto3.client("s3", endpoint_url=emu.url)``."""

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        *,
        time_scale: float = 0.0,
        extra_args: list[str] | None = None,
        log_path: Path | None = None,
    ):
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.time_scale = time_scale
        self.extra_args = extra_args or []
        self.log_path = log_path or self.data_dir.parent / f"emulator-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> EmulatorProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")])}
        self._log = open(self.log_path, "ab")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "include.sagemaker_emulator",
                "--port",
                str(self.port),
                "--data-dir",
                str(self.data_dir),
                "--time-scale",
                str(self.time_scale),
                *self.extra_args,
            ],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the emulator exited with code {self.proc.returncode}; see {self.log_path}")
            try:
                self.health()
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the emulator did not answer on {self.url} within {timeout} s; see {self.log_path}")

    def health(self) -> dict:
        with urllib.request.urlopen(f"{self.url}/_emulator/health", timeout=2) as response:
            return json.loads(response.read())

    def kill(self) -> None:
        """kill -9 the server, as a crash would: no shutdown code runs."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.stop()

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if getattr(self, "_log", None) is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> EmulatorProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
