"""What the package's waiter triggers share: a wait given in seconds (not in attempts), and a first-poll delay.

A trigger that fires before the scheduler has recorded the deferral makes Airflow 3.3 kill the task
("Task killed!", a failed try; apache/airflow#71580). The operators describe once before deferring, so a
resource that is already done never defers; the triggers wait ``first_poll_delay`` before their first poll,
and that delay counts against ``timeout_seconds``.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

__all__ = ["FIRST_POLL_DELAY_SECONDS", "WaitWindow", "waiter_max_attempts"]

FIRST_POLL_DELAY_SECONDS = 5.0


def waiter_max_attempts(timeout_seconds: float, poll_interval: float) -> int:
    """Attempts a waiter needs to cover ``timeout_seconds`` at one describe per ``poll_interval``."""
    return max(1, math.ceil(timeout_seconds / poll_interval) + 1)


class WaitWindow:
    """Mixin for an ``AwsBaseWaiterTrigger``: the checked poll interval, timeout and first-poll delay.

    Call :meth:`set_wait_window` in ``__init__`` before ``super().__init__`` (it returns the waiter's
    ``waiter_max_attempts``), add :meth:`wait_window_fields` to ``serialize()``, and await
    :meth:`first_poll_delay_elapsed` at the start of ``run()``.
    """

    poll_interval: float
    timeout_seconds: float
    first_poll_delay: float
    aws_conn_id: str | None
    region_name: str | None
    verify: bool | str | None
    botocore_config: dict | None

    def set_wait_window(self, poll_interval: float, timeout_seconds: float, first_poll_delay: float) -> int:
        if not float(poll_interval) > 0:
            raise ValueError(f"poll_interval must be > 0, got {poll_interval}")
        if not float(timeout_seconds) > 0:
            raise ValueError(f"timeout_seconds must be > 0, got {timeout_seconds}")
        if not float(first_poll_delay) >= 0:
            raise ValueError(f"first_poll_delay must be >= 0, got {first_poll_delay}")
        self.poll_interval = float(poll_interval)
        self.timeout_seconds = float(timeout_seconds)
        # Never longer than the whole wait; the waiter still gets at least one attempt.
        self.first_poll_delay = min(float(first_poll_delay), self.timeout_seconds)
        return waiter_max_attempts(self.timeout_seconds - self.first_poll_delay, self.poll_interval)

    def wait_window_fields(self) -> dict[str, Any]:
        """The window and the AWS settings, as ``serialize()`` hands them back to ``__init__``."""
        return {
            "poll_interval": self.poll_interval,
            "timeout_seconds": self.timeout_seconds,
            "first_poll_delay": self.first_poll_delay,
            "aws_conn_id": self.aws_conn_id,
            "region_name": self.region_name,
            "verify": self.verify,
            "botocore_config": self.botocore_config,
        }

    async def first_poll_delay_elapsed(self) -> None:
        # Not before the scheduler has recorded the deferral (apache/airflow#71580).
        await asyncio.sleep(self.first_poll_delay)
