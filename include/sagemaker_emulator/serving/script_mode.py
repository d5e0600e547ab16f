"""Script-mode serving: a scikit-learn image whose model names the user's inference script.

CreateModel gives ``PrimaryContainer.Image`` = a ``sagemaker-scikit-learn`` image, ``ModelDataUrl`` = the
model.tar.gz (the contents of SM_MODEL_DIR) and ``Environment`` with ``SAGEMAKER_PROGRAM`` (the script) and
``SAGEMAKER_SUBMIT_DIRECTORY`` (the S3 URI of a sourcedir.tar.gz, or ``/opt/ml/model/code`` when the SDK
repacked the code into model.tar.gz under ``code/``; absent means the same).

The user's module is imported only in serving worker processes (:mod:`.script_worker`), never in the server.
Each worker is spawned as a command with the emulator's interpreter, talks to the server over its own Unix
socket pair, calls ``model_fn`` once, and dies with the server (lifeline). :class:`ScriptModePredictor` is a
:class:`~..algorithms.Predictor` whose ``invoke`` sends the request to an idle worker; a worker that dies is
replaced, and ``close`` (endpoint deleted or replaced by an update, server shutdown) stops them all.
"""

from __future__ import annotations

import contextlib
import logging
import os
import posixpath
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..algorithms import ModelInvocationError, Predictor
from ..errors import validation_error
from ..framework_images import sklearn_image_version
from ..validation import split_s3_uri
from .runtime import extract_archive
from .script_worker import recv_message, send_message

log = logging.getLogger(__name__)

WORKER_SCRIPT = Path(__file__).with_name("script_worker.py")
PROJECT_ROOT = Path(__file__).resolve().parents[3]
CODE_IN_MODEL = "/opt/ml/model/code"
# The container's defaults (sagemaker-containers' ServingEnv).
DEFAULT_TIMEOUT_SECONDS = 60.0
# One worker per variant by default (the container starts one per CPU; this machine's CPUs are shared by
# every endpoint); SAGEMAKER_MODEL_SERVER_WORKERS asks for more, up to MAX_WORKERS.
MAX_WORKERS = 4
RESTART_ATTEMPTS = 3
# How long close() lets requests in flight finish before the workers are stopped.
CLOSE_GRACE_SECONDS = 2.0

# Every predictor that may still own workers, so the server's shutdown stops them all.
_LIVE: weakref.WeakSet[ScriptModePredictor] = weakref.WeakSet()


def is_script_image(image: str | None) -> bool:
    return sklearn_image_version(image) is not None


@dataclass(frozen=True)
class ScriptSource:
    program: str
    submit_directory: str | None  # an s3:// URI, or None when the code is in model.tar.gz under code/
    environment: dict[str, str]


def script_source(container: dict[str, Any], member: str = "PrimaryContainer") -> ScriptSource | None:
    """The script-mode settings of a model container; None for other images. Raises ValidationException
    naming the field when the settings cannot be served."""
    if not is_script_image(container.get("Image")):
        return None
    environment = {str(k): str(v) for k, v in (container.get("Environment") or {}).items()}
    image = container.get("Image")
    if container.get("Mode") == "MultiModel":
        raise validation_error(
            f"{member}.Mode MultiModel is not supported with the scikit-learn image {image} by the local emulator: "
            "script-mode models are served from single-model endpoints (one model.tar.gz per model)."
        )
    if not container.get("ModelDataUrl"):
        raise validation_error(
            f"{member}.ModelDataUrl is required for the scikit-learn image {image}: model_fn(model_dir) loads the "
            "model from the extracted model.tar.gz."
        )
    program = environment.get("SAGEMAKER_PROGRAM", "").strip()
    if not program:
        raise validation_error(
            f"{member}.Environment.SAGEMAKER_PROGRAM is required for the scikit-learn image {image}: name the "
            "inference script that defines model_fn (e.g. inference.py), as the SageMaker SDK's entry_point does."
        )
    normal = posixpath.normpath(program)
    if program.startswith("/") or normal.startswith("..") or "\x00" in program or not normal.endswith(".py"):
        raise validation_error(
            f"{member}.Environment.SAGEMAKER_PROGRAM {program!r} is not valid: it must be the relative path of a "
            ".py file inside the source directory."
        )
    submit = environment.get("SAGEMAKER_SUBMIT_DIRECTORY", "").strip() or None
    if submit is not None and submit.rstrip("/") == CODE_IN_MODEL:
        submit = None
    if submit is not None:
        if not submit.startswith("s3://"):
            raise validation_error(
                f"{member}.Environment.SAGEMAKER_SUBMIT_DIRECTORY {submit!r} is not valid: give the S3 URI of a "
                f"sourcedir.tar.gz, or {CODE_IN_MODEL} (or nothing) for code packed into model.tar.gz under code/."
            )
        split_s3_uri(submit, f"{member}.Environment.SAGEMAKER_SUBMIT_DIRECTORY")
    return ScriptSource(program=normal, submit_directory=submit, environment=environment)


# ------------------------------------------------------------------------------------------------- workers
class WorkerFailed(Exception):
    """A worker could not load the model (import error, no model_fn, model_fn raised, exited)."""

    def __init__(self, message: str, trace: str = ""):
        super().__init__(message)
        self.message = message
        self.trace = trace


class WorkerGone(Exception):
    """The worker's socket closed mid-request: the process died."""


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "no exit status"
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"signal {signal.Signals(-code).name}"
        return f"signal {-code}"
    return f"exit code {code}"


class _Worker:
    """One serving worker process and the server's end of its socket pair."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path, on_line: Callable[[str], None]):
        server_end, worker_end = socket.socketpair()
        try:
            self.process = subprocess.Popen(
                [*argv[:1], str(WORKER_SCRIPT), "--socket-fd", str(worker_end.fileno()), *argv[1:]],
                env=env,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                pass_fds=(worker_end.fileno(),),
                start_new_session=True,  # its own process group: stopping it reaches what it started
            )
        except BaseException:
            server_end.close()
            raise
        finally:
            worker_end.close()
        self.sock = server_end
        self.pid = self.process.pid
        self.dead = False
        self.replaced = False
        self._pump = threading.Thread(target=self._read_output, args=(on_line,), name=f"sklearn-worker-{self.pid}")
        self._pump.daemon = True
        self.on_exit: Callable[[_Worker], None] | None = None
        self._pump.start()

    def _read_output(self, on_line: Callable[[str], None]) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            on_line(raw.decode("utf-8", "replace").rstrip("\n"))
        self.process.wait()
        self.dead = True
        if self.on_exit is not None:
            self.on_exit(self)

    def wait_ready(self, timeout: float) -> None:
        self.sock.settimeout(timeout)
        try:
            meta, body = recv_message(self.sock)
        except TimeoutError:
            self.stop()
            raise WorkerFailed(f"the worker did not load the model within {timeout:.0f} s") from None
        except (EOFError, OSError):
            self.process.wait(5)
            raise WorkerFailed(f"the worker exited with {_describe_exit(self.process.returncode)}") from None
        if meta.get("status") != "ready":
            self.stop()
            raise WorkerFailed(
                str(meta.get("message") or "the worker failed to start"), body.decode("utf-8", "replace")
            )
        self.sock.settimeout(None)

    def request(self, meta: dict[str, Any], body: bytes, timeout: float) -> tuple[dict[str, Any], bytes]:
        self.sock.settimeout(timeout)
        try:
            send_message(self.sock, meta, body)
            return recv_message(self.sock)
        except TimeoutError:
            self.stop()
            raise
        except (EOFError, OSError) as exc:
            raise WorkerGone(str(exc)) from None

    def exit_description(self) -> str:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(2)
        return _describe_exit(self.process.returncode)

    def stop(self) -> None:
        # Closing our end tells an idle worker to exit; a busy or stuck one gets SIGTERM, then SIGKILL.
        with contextlib.suppress(OSError):
            self.sock.close()
        try:
            self.process.wait(1.0)
        except subprocess.TimeoutExpired:
            for sig, wait in ((signal.SIGTERM, 2.0), (signal.SIGKILL, 2.0)):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.process.pid, sig)
                try:
                    self.process.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue


class ScriptModePredictor(Predictor):
    """The user's inference script behind the Predictor interface, run by serving worker processes."""

    algorithm = "sklearn"
    inline = False

    def __init__(
        self,
        *,
        program: str,
        code_dir: Path,
        model_dir: Path,
        env: dict[str, str],
        log_line: Callable[[str], None],
        workdir: Path | None = None,
        workers: int = 1,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
    ):
        self.program = program
        self.code_dir = code_dir
        self.model_dir = model_dir
        self.env = env
        self.log_line = log_line
        self.workdir = workdir  # removed on close when given
        self.worker_count = max(1, min(MAX_WORKERS, workers))
        self.timeout = timeout
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._workers: set[_Worker] = set()
        self._restarting = 0
        self._lock = threading.Lock()
        self._closed = False
        _LIVE.add(self)

    # -- workers ------------------------------------------------------------------------------------------------
    def start(self) -> ScriptModePredictor:
        """Start the workers and wait until each has loaded the model; ModelInvocationError (500) if not."""
        try:
            for _ in range(self.worker_count):
                self._idle.put(self._spawn_ready())
        except WorkerFailed as exc:
            self.close()
            detail = f"\n{exc.trace}" if exc.trace else ""
            raise ModelInvocationError(
                500, f"Failed to load the model with {self.program}: {exc.message}{detail}"
            ) from None
        return self

    @property
    def pids(self) -> list[int]:
        with self._lock:
            return sorted(w.pid for w in self._workers if not w.dead)

    def _spawn_ready(self) -> _Worker:
        argv = [
            sys.executable,
            "--server-pid",
            str(os.getpid()),
            "--code-dir",
            str(self.code_dir),
            "--program",
            self.program,
            "--model-dir",
            str(self.model_dir),
        ]
        worker = _Worker(argv, self.env, self.code_dir, self.log_line)
        with self._lock:
            self._workers.add(worker)
        worker.on_exit = self._exited
        try:
            worker.wait_ready(self.timeout)
        except WorkerFailed:
            with self._lock:
                self._workers.discard(worker)
            raise
        return worker

    def _exited(self, worker: _Worker) -> None:
        """A worker process ended (its output closed): replace it unless we are closing or stopped it."""
        if not self._closed and not worker.replaced:
            self._replace(worker, f"Worker {worker.pid} exited with {worker.exit_description()}")

    def _replace(self, dead: _Worker, why: str) -> None:
        with self._lock:
            if dead.replaced or self._closed:
                return
            dead.replaced = True
            self._workers.discard(dead)
            self._restarting += 1
        dead.stop()
        self.log_line(f"{why}; starting a new worker")
        threading.Thread(target=self._restart, name="sklearn-worker-restart", daemon=True).start()

    def _restart(self) -> None:
        try:
            for attempt in range(1, RESTART_ATTEMPTS + 1):
                if self._closed:
                    return
                try:
                    worker = self._spawn_ready()
                except WorkerFailed as exc:
                    self.log_line(f"Worker restart {attempt}/{RESTART_ATTEMPTS} failed: {exc.message}\n{exc.trace}")
                    time.sleep(0.5 * attempt)
                    continue
                with self._lock:
                    closed = self._closed
                if closed:
                    worker.replaced = True
                    worker.stop()
                else:
                    self._idle.put(worker)
                return
            self.log_line(f"Gave up restarting the worker after {RESTART_ATTEMPTS} attempts")
        finally:
            with self._lock:
                self._restarting -= 1

    def _take(self) -> _Worker:
        deadline = time.monotonic() + self.timeout
        while True:
            with self._lock:
                healthy = any(not w.dead for w in self._workers) or self._restarting > 0
            if self._closed or not healthy:
                raise ModelInvocationError(500, f"No model server worker for {self.program} is running.")
            try:
                worker = self._idle.get(timeout=min(0.5, max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                if time.monotonic() >= deadline:
                    raise ModelInvocationError(
                        500, f"No model server worker became free within {self.timeout:.0f} s."
                    ) from None
                continue
            if not worker.dead:
                return worker
            self._replace(worker, f"Worker {worker.pid} exited with {worker.exit_description()}")

    # -- Predictor ---------------------------------------------------------------------------------------------
    def invoke(self, body: bytes, content_type: str | None, accept: str | None, multi_model: bool) -> tuple[bytes, str]:
        worker = self._take()
        try:
            meta, out = worker.request({"content_type": content_type, "accept": accept}, body, self.timeout)
        except WorkerGone:
            why = f"Worker {worker.pid} exited with {worker.exit_description()} while handling a request"
            self._replace(worker, why)
            raise ModelInvocationError(500, f"{why}; it is being restarted.") from None
        except TimeoutError:
            self._replace(worker, f"Worker {worker.pid} did not answer within {self.timeout:.0f} s and was stopped")
            raise ModelInvocationError(500, f"The model did not answer within {self.timeout:.0f} s.") from None
        self._idle.put(worker)
        status = int(meta.get("status", 500))
        if status != 200:
            raise ModelInvocationError(status, out.decode("utf-8", "replace"))
        return out, str(meta.get("content_type") or accept or "application/json")

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            workers = set(self._workers)
        # Let requests in flight finish: a busy worker comes back to the idle queue when it answers.
        deadline = time.monotonic() + CLOSE_GRACE_SECONDS
        returned: set[_Worker] = set()
        while returned < {w for w in workers if not w.dead} and time.monotonic() < deadline:
            with contextlib.suppress(queue.Empty):
                returned.add(self._idle.get(timeout=0.05))
        for worker in workers:
            worker.replaced = True
            worker.stop()
        with self._lock:
            self._workers.clear()
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
        _LIVE.discard(self)


def close_all() -> None:
    """Stop every script-mode worker of this server (its shutdown)."""
    for predictor in list(_LIVE):
        predictor.close()


# ------------------------------------------------------------------------------------------------- building
def worker_environment(
    source: ScriptSource,
    *,
    region: str,
    model_dir: Path,
    home: Path,
    batch: bool = False,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """The serving container's environment: its defaults, the model's Environment, then ``extra``."""
    env = {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "TRUE",
        "PYTHONDONTWRITEBYTECODE": "TRUE",
        "HOME": str(home),
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "SAGEMAKER_REGION": region,
        "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
        "SAGEMAKER_BIND_TO_PORT": "8080",
        "SAGEMAKER_MODEL_SERVER_TIMEOUT": str(int(DEFAULT_TIMEOUT_SECONDS)),
        "SAGEMAKER_MODEL_SERVER_WORKERS": "1",
        "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "application/json",
        "SM_MODEL_DIR": str(model_dir),
        **source.environment,
        **(extra or {}),
    }
    if batch:
        env["SAGEMAKER_BATCH"] = "true"
    # The worker imports the lifeline from the project; the user's own PYTHONPATH comes after it.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def _setting(env: dict[str, str], name: str, default: float) -> float:
    try:
        return float(env.get(name) or default)
    except ValueError:
        return default


def start_predictor(
    source: ScriptSource,
    *,
    workdir: Path,
    model_dir: Path,
    code_raw: bytes | None,
    log_line: Callable[[str], None],
    region: str,
    batch: bool = False,
    extra_env: dict[str, str] | None = None,
    owns_workdir: bool = True,
) -> ScriptModePredictor:
    """Unpack the code (sourcedir.tar.gz bytes, or ``model_dir/code`` when None) into ``workdir`` and start the
    workers. Raises ModelInvocationError (500) naming what is wrong; ``workdir`` is removed on failure and,
    when ``owns_workdir``, on close."""
    try:
        if code_raw is not None:
            code_dir = workdir / "code"
            code_dir.mkdir(parents=True, exist_ok=True)
            extract_archive(code_raw, code_dir, source.submit_directory or "sourcedir.tar.gz")
        else:
            code_dir = model_dir / "code"
        where = source.submit_directory or "model.tar.gz under code/"
        if not (code_dir / source.program).is_file():
            raise ModelInvocationError(
                500, f"SAGEMAKER_PROGRAM {source.program} was not found in the source directory ({where})."
            )
        env = worker_environment(source, region=region, model_dir=model_dir, home=workdir, batch=batch, extra=extra_env)
        predictor = ScriptModePredictor(
            program=source.program,
            code_dir=code_dir,
            model_dir=model_dir,
            env=env,
            log_line=log_line,
            workdir=workdir if owns_workdir else None,
            workers=int(_setting(env, "SAGEMAKER_MODEL_SERVER_WORKERS", 1)),
            timeout=_setting(env, "SAGEMAKER_MODEL_SERVER_TIMEOUT", DEFAULT_TIMEOUT_SECONDS),
        )
        return predictor.start()
    except BaseException:
        if owns_workdir:
            shutil.rmtree(workdir, ignore_errors=True)
        raise


def new_workdir(root: Path) -> Path:
    workdir = root / uuid.uuid4().hex
    workdir.mkdir(parents=True)
    return workdir
