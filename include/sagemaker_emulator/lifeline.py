"""Make a worker process end when the emulator server ends, however it ends (kill -9 included).

Training workers are forked by multiprocessing's forkserver, not by the server, so a parent-death signal
would follow the forkserver, which itself lives as long as any worker holds its pipe. Instead each worker
watches the server's pid: a pidfd (Linux >= 5.3) becomes readable the moment the process exits; elsewhere
the worker polls. Once the workers are gone, the forkserver and the resource tracker see their pipes
close and exit by themselves; the forkserver also watches the server from its first import on
(``forkserver_lifeline``), as it would not notice before its preloading is over.
"""

from __future__ import annotations

import os
import select
import threading
import time

# The server's pid, for processes started without it as an argument (the forkserver).
SERVER_PID_ENV = "SAGEMAKER_EMULATOR_SERVER_PID"
# The exit code of a worker that ended because the server was gone (EX_SOFTWARE).
ORPHANED_EXIT_CODE = 70
POLL_SECONDS = 0.25


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else (the pid was reused): our server is gone
        return False
    return True


def _watch(pid: int, pidfd: int | None) -> None:
    if pidfd is not None:
        select.select([pidfd], [], [])
    else:
        while _alive(pid):
            time.sleep(POLL_SECONDS)
    os._exit(ORPHANED_EXIT_CODE)


def exit_with(pid: int) -> None:
    """End this process as soon as process ``pid`` has ended (a daemon thread watches it)."""
    pidfd: int | None = None
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        os._exit(ORPHANED_EXIT_CODE)
    except (AttributeError, OSError):  # no pidfd on this platform: poll instead
        pidfd = None
    if pidfd is None and not _alive(pid):
        os._exit(ORPHANED_EXIT_CODE)
    threading.Thread(target=_watch, args=(pid, pidfd), name="lifeline", daemon=True).start()
