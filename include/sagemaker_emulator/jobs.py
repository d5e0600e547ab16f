"""What every job kind (training, processing, transform) shares: the runner that owns one watcher thread
per job, the worker pool that starts the job's process, and the log shipper that copies its output to
CloudWatch Logs.

A job kind subclasses :class:`JobRunner` and supplies ``_run(name, stop)``; the runner receives what it needs
(store, S3/Logs facade, faults, config, worker pool), never the whole emulator. Workers are either forked from
the pool's forkserver (built-in algorithms: xgboost and scikit-learn already imported) or spawned as a
command (users' scripts); either way they are watched the same way (:meth:`JobRunner.supervise`) and die with
the server (``lifeline``).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .lifeline import SERVER_PID_ENV, exit_with

log = logging.getLogger(__name__)

TERMINAL = {"Completed", "Failed", "Stopped"}
ACTIVE = ("InProgress", "Stopping")
# The forkserver warm-up waits at most this long for the serving plane to restore its endpoints.
RESTORE_WAIT_SECONDS = 30.0
# How often a watcher thread looks at its worker (exit, stop, MaxRuntime) and reads its log.
POLL_SECONDS = 0.02


class Stopped(Exception):
    """The job was stopped (StopXxxJob, or ``MaxRuntimeExceeded``) or the server is shutting down."""

    def __init__(self, secondary: str):
        super().__init__(secondary)
        self.secondary = secondary


class Failed(Exception):
    """The job fails with this reason (as FailureReason)."""


@dataclass(frozen=True)
class JobKind:
    store_kind: str  # "training-job"
    name_key: str  # "TrainingJobName"
    status_key: str  # "TrainingJobStatus"
    log_group: str  # "/aws/sagemaker/TrainingJobs"
    jobs_dir: str  # below the data dir, e.g. "training"
    interrupted_reason: str  # FailureReason of a job that was running when the emulator stopped


class Worker(Protocol):
    exitcode: int | None

    def join(self, timeout: float | None = None) -> None: ...
    def terminate(self) -> None: ...
    def kill(self) -> None: ...
    def is_alive(self) -> bool: ...


class CommandWorker:
    """A spawned command (a user's script) in its own process group, so a stop reaches whatever it started."""

    def __init__(self, process: subprocess.Popen[bytes]):
        self.process = process
        self.exitcode: int | None = None

    def join(self, timeout: float | None = None) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.exitcode = self.process.wait(timeout)

    def _signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, sig)

    def terminate(self) -> None:
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def is_alive(self) -> bool:
        return self.process.poll() is None


def _warm_up(server_pid: int) -> None:
    """Runs in a throwaway worker so the forkserver is started before the first job needs it."""
    exit_with(server_pid)


class WorkerPool:
    """Starts job workers: forked from a preloaded forkserver, or spawned as a command."""

    def __init__(self, preload: Sequence[str]):
        self._mp = multiprocessing.get_context("forkserver")
        # The forkserver inherits the environment: it learns whom to watch before it imports anything heavy.
        os.environ[SERVER_PID_ENV] = str(os.getpid())
        self._mp.set_forkserver_preload(["include.sagemaker_emulator.forkserver_lifeline", *preload])

    def warm(self, after: threading.Event | None = None) -> None:
        """Start the forkserver in the background (after ``after`` is set, e.g. endpoints restored)."""

        def warm() -> None:
            if after is not None:
                after.wait(RESTORE_WAIT_SECONDS)
            try:
                worker = self._mp.Process(target=_warm_up, args=(os.getpid(),))
                worker.start()
                worker.join()
            except Exception:
                log.exception("could not warm up the worker forkserver")

        threading.Thread(target=warm, name="forkserver-warmup", daemon=True).start()

    def fork(self, target: Callable[..., None], args: tuple[Any, ...]) -> Worker:
        worker = self._mp.Process(target=target, args=args, daemon=True)
        worker.start()
        return worker

    @staticmethod
    def spawn(argv: Sequence[str], *, env: dict[str, str], cwd: Path, log_path: Path) -> Worker:
        """Run ``argv`` with stdout and stderr into ``log_path``. ``setpriv --pdeathsig KILL`` makes the
        process (and what it execs) die with the server thread that started it, kill -9 included."""
        prefix = ["setpriv", "--pdeathsig", "KILL"] if shutil.which("setpriv") else []
        with open(log_path, "ab") as out:
            process = subprocess.Popen(
                [*prefix, *argv],
                env=env,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return CommandWorker(process)


def terminate(worker: Worker) -> None:
    # SIGTERM first, as SageMaker does, then kill what does not stop.
    worker.terminate()
    worker.join(2.0)
    if worker.is_alive():
        worker.kill()
        worker.join(1.0)


class LogShipper:
    """Collects a worker's log lines and ships them to CloudWatch Logs in batches."""

    def __init__(self, moto: Any, region: str, group: str, stream: str):
        self.moto = moto
        self.region = region
        self.group = group
        self.stream = stream
        self.lines: list[str] = []
        self._pending: list[tuple[int, str]] = []
        self._last_ship = time.monotonic()
        self._partial = b""

    def add(self, line: str) -> None:
        self.lines.append(line)
        self._pending.append((int(time.time() * 1000), line))

    def read(self, path: Path, offset: int) -> int:
        with open(path, "rb") as fh:
            fh.seek(offset)
            chunk = fh.read()
        if not chunk:
            return offset
        data = self._partial + chunk
        *complete, self._partial = data.split(b"\n")
        for raw in complete:
            self.add(raw.decode("utf-8", "replace"))
        return offset + len(chunk)

    def flush_partial(self) -> None:
        """The last line of a worker that ended without a newline."""
        if self._partial:
            self.add(self._partial.decode("utf-8", "replace"))
            self._partial = b""

    def ship_if_due(self) -> None:
        if self._pending and time.monotonic() - self._last_ship > 0.5:
            self.ship()

    def ship(self) -> None:
        if self._pending:
            batch, self._pending = self._pending, []
            self.moto.logs_put(self.region, self.group, self.stream, batch)
        self._last_ship = time.monotonic()


class JobRunner:
    """One watcher thread per job; subclasses implement ``_run(name, stop)`` and ``_interrupted(record)``."""

    kind: JobKind

    def __init__(self, *, store: Any, moto: Any, faults: Any, config: Any, pool: WorkerPool | None = None):
        self.store = store
        self.moto = moto
        self.faults = faults
        self.config = config
        self.pool = pool
        self._stop_events: dict[str, threading.Event] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()
        self._shutting_down = threading.Event()
        self.jobs_root = Path(config.data_dir) / self.kind.jobs_dir

    # -- lifecycle ------------------------------------------------------------------------------------------
    def start(self) -> None:
        self.recover()

    def recover(self) -> None:
        """Jobs that were running when the emulator stopped come back Failed, saying why, and every job
        directory goes: no job runs yet, so none is needed (a kill -9 leaves them behind)."""
        for record in self.store.list(self.kind.store_kind):
            if record[self.kind.status_key] in ACTIVE:
                self._interrupted(record[self.kind.name_key])
        if self.jobs_root.is_dir():
            for leftover in self.jobs_root.iterdir():
                if leftover.is_dir() and not leftover.is_symlink():
                    shutil.rmtree(leftover, ignore_errors=True)
                else:
                    leftover.unlink(missing_ok=True)
                log.info("removed the job directory %s left by the previous run", leftover)

    def shutdown(self, timeout: float = 5.0) -> None:
        self._shutting_down.set()
        with self._lock:
            events = list(self._stop_events.values())
            threads = list(self._threads.values())
        for event in events:
            event.set()
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    # -- jobs -------------------------------------------------------------------------------------------------
    def running(self) -> int:
        return sum(1 for j in self.store.list(self.kind.store_kind) if j[self.kind.status_key] in ACTIVE)

    def submit(self, name: str) -> None:
        stop = threading.Event()
        thread = threading.Thread(
            target=self._watch, args=(name, stop), name=f"{self.kind.jobs_dir}-{name}", daemon=True
        )
        with self._lock:
            self._stop_events[name] = stop
            self._threads[name] = thread
        thread.start()

    def signal_stop(self, name: str) -> None:
        with self._lock:
            event = self._stop_events.get(name)
        if event is not None:
            event.set()

    def _watch(self, name: str, stop: threading.Event) -> None:
        try:
            self._run(name, stop)
        finally:
            shutil.rmtree(self.jobs_root / name, ignore_errors=True)
            with self._lock:
                self._stop_events.pop(name, None)
                self._threads.pop(name, None)

    def _run(self, name: str, stop: threading.Event) -> None:
        raise NotImplementedError

    def _interrupted(self, name: str) -> None:
        raise NotImplementedError

    @staticmethod
    def wait(seconds: float, stop: threading.Event) -> None:
        if seconds > 0 and stop.wait(seconds):
            raise Stopped("Stopped")
        if stop.is_set():
            raise Stopped("Stopped")

    @staticmethod
    def supervise(
        worker: Worker,
        log_path: Path,
        logs: LogShipper,
        stop: threading.Event,
        started: float,
        max_runtime: float,
    ) -> int:
        """Wait for the worker while shipping its log; a stop or MaxRuntime terminates it (raising Stopped)."""
        _failed, exitcode = JobRunner.supervise_all({"worker": (worker, log_path, logs)}, stop, started, max_runtime)
        return exitcode

    @staticmethod
    def supervise_all(
        workers: dict[str, tuple[Worker, Path, LogShipper]],
        stop: threading.Event,
        started: float,
        max_runtime: float,
    ) -> tuple[str | None, int]:
        """Wait for a job's workers (name -> worker, its log file, its shipper) while shipping their logs.

        Returns (the first worker that failed, its exit code), or (None, 0) once all succeeded. A failure of
        one worker ends the others, as SageMaker stops the whole cluster; a stop or MaxRuntime terminates them
        all (raising Stopped).
        """
        offsets = dict.fromkeys(workers, 0)
        first, *others = [worker for worker, _path, _logs in workers.values()]
        try:
            while True:
                first.join(POLL_SECONDS)
                for other in others:
                    other.join(0)  # a CommandWorker learns its exit code only by joining
                for name, (_worker, log_path, logs) in workers.items():
                    offsets[name] = logs.read(log_path, offsets[name])
                failed = next((name for name, (w, _, _) in workers.items() if w.exitcode not in (None, 0)), None)
                if failed is not None:
                    exitcode = workers[failed][0].exitcode
                    assert exitcode is not None
                    return failed, exitcode
                if all(w.exitcode == 0 for w, _, _ in workers.values()):
                    return None, 0
                if stop.is_set():
                    raise Stopped("Stopped")
                if time.monotonic() - started > max_runtime:
                    raise Stopped("MaxRuntimeExceeded")
                for _worker, _path, logs in workers.values():
                    logs.ship_if_due()
        finally:
            for worker, _path, _logs in workers.values():
                if worker.exitcode is None:
                    terminate(worker)
            for name, (_worker, log_path, logs) in workers.items():
                logs.read(log_path, offsets[name])
