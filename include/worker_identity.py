"""The host name Airflow records for a task instance (``[core] hostname_callable``).

``make run-distributed`` runs two Celery workers on one machine: with Airflow's default (the machine's
FQDN) both would record the same name and nobody could tell which worker ran a task. Each worker's
environment names it in ``AIRFLOW_WORKER_NAME`` (``worker1@<host>``, its Celery hostname); every other
process falls back to the FQDN, as Airflow does.
"""

from __future__ import annotations

import os
import socket


def hostname() -> str:
    return os.environ.get("AIRFLOW_WORKER_NAME") or socket.getfqdn()
