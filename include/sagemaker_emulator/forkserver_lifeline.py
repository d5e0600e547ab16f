"""The first module the training forkserver imports (its preload list): from then on the forkserver exits
with the emulator server, even while it is still importing xgboost and scikit-learn, which takes seconds
on a busy machine and during which it would not notice the server is gone."""

from __future__ import annotations

import atexit
import os

from .lifeline import SERVER_PID_ENV, exit_with

_server_pid = os.environ.get(SERVER_PID_ENV)
if _server_pid and _server_pid.isdigit() and int(_server_pid) != os.getpid():
    exit_with(int(_server_pid))

# When the server goes, the forkserver's own loop also ends (its pipe closes) and Python would tear down
# xgboost, scikit-learn and numpy module by module, seconds on a busy machine: skip that. Its workers
# never run this (they leave through os._exit), and it runs before multiprocessing's own exit hook, which
# has nothing to do in the forkserver.
atexit.register(os._exit, 0)
