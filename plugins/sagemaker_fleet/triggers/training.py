"""TrainingJobTrigger: waits in the triggerer for a SageMaker training job to reach a terminal state.

The provider's ``SageMakerTrigger`` needs aiobotocore (``get_async_conn``), which this project does not
install; the boto3 calls here run in a thread (``asyncio.to_thread``) instead, so the triggerer's event
loop never blocks and the connection's ``endpoint_url`` (the emulator) applies exactly as on a worker.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

__all__ = ["PollingAwsTrigger", "TrainingJobTrigger", "backoff_delays"]

DEFAULT_TIMEOUT_SECONDS = 6 * 3600
FIRST_POLL_SECONDS = 0.25
# Transient describe errors (throttling, a blip in the network) are retried this many times in a row.
MAX_CONSECUTIVE_ERRORS = 5


def backoff_delays(poll_interval: float) -> Iterator[float]:
    """Seconds to wait before each next poll: soon, then doubling up to ``poll_interval``. Short jobs and
    emulator endpoints finish in seconds; on AWS this costs a few extra describes per wait."""
    delay = min(FIRST_POLL_SECONDS, poll_interval)
    while True:
        yield delay
        delay = min(delay * 2, poll_interval)


class PollingAwsTrigger(BaseTrigger):
    """What our triggers share: the AWS settings that must survive serialization (so the deferred half talks
    to the same account, region and endpoint URL as the worker half), the hook, and the poll schedule."""

    def __init__(
        self,
        *,
        poll_interval: float,
        timeout_seconds: float,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        verify: bool | str | None = None,
        botocore_config: dict | None = None,
    ) -> None:
        super().__init__()
        if poll_interval <= 0:
            raise ValueError(f"poll_interval must be > 0, got {poll_interval}")
        if timeout_seconds <= 0:
            raise ValueError(f"timeout_seconds must be > 0, got {timeout_seconds}")
        self.poll_interval = float(poll_interval)
        self.timeout_seconds = float(timeout_seconds)
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self.verify = verify
        self.botocore_config = botocore_config

    def _serialized(self, **own: Any) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                **own,
                "poll_interval": self.poll_interval,
                "timeout_seconds": self.timeout_seconds,
                "aws_conn_id": self.aws_conn_id,
                "region_name": self.region_name,
                "verify": self.verify,
                "botocore_config": self.botocore_config,
            },
        )

    def hook(self) -> Any:
        from sagemaker_fleet.hooks.sagemaker import SageMakerFleetHook

        return SageMakerFleetHook(
            aws_conn_id=self.aws_conn_id,
            region_name=self.region_name,
            verify=self.verify,
            config=self.botocore_config,
        )


class TrainingJobTrigger(PollingAwsTrigger):
    """Poll DescribeTrainingJob until the job is Completed, Failed or Stopped.

    Yields exactly one ``TriggerEvent({"status", "job_name", "message"})`` where status is one of
    ``success``, ``failed``, ``stopped``, ``timeout`` or ``error``. The operator re-describes the job by
    name on resume, so the event carries only what is needed to decide.

    :param job_name: the training job to wait for
    :param poll_interval: seconds between DescribeTrainingJob calls
    :param timeout_seconds: give up (status ``timeout``) after this many seconds; the job keeps running
    :param aws_conn_id, region_name, verify, botocore_config: same meaning as on the operator, kept so the
        deferred half talks to the same account, region and endpoint as the worker half
    """

    def __init__(
        self,
        job_name: str,
        *,
        poll_interval: float = 5.0,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        verify: bool | str | None = None,
        botocore_config: dict | None = None,
    ) -> None:
        super().__init__(
            poll_interval=poll_interval,
            timeout_seconds=timeout_seconds,
            aws_conn_id=aws_conn_id,
            region_name=region_name,
            verify=verify,
            botocore_config=botocore_config,
        )
        self.job_name = job_name

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return self._serialized(job_name=self.job_name)

    def _event(self, status: str, message: str) -> TriggerEvent:
        return TriggerEvent({"status": status, "job_name": self.job_name, "message": message})

    async def run(self) -> AsyncIterator[TriggerEvent]:
        hook = await asyncio.to_thread(self.hook)
        deadline = time.monotonic() + self.timeout_seconds
        errors = 0
        last_secondary: str | None = None
        delays = backoff_delays(self.poll_interval)
        while True:
            try:
                description = await asyncio.to_thread(hook.describe_training_job_or_none, self.job_name)
                errors = 0
            except Exception as error:  # throttling or network: retry a few times before giving up
                errors += 1
                self.log.warning("DescribeTrainingJob %s failed (%d in a row): %s", self.job_name, errors, error)
                if errors >= MAX_CONSECUTIVE_ERRORS:
                    yield self._event("error", f"DescribeTrainingJob kept failing: {error}")
                    return
                description = {}
            if description is None:
                yield self._event("error", f"Training job {self.job_name} does not exist")
                return
            status = description.get("TrainingJobStatus")
            secondary = description.get("SecondaryStatus")
            if secondary and secondary != last_secondary:
                self.log.info("Training job %s: %s / %s", self.job_name, status, secondary)
                last_secondary = secondary
            if status == "Completed":
                yield self._event("success", f"Training job {self.job_name} completed")
                return
            if status == "Failed":
                reason = description.get("FailureReason", "no FailureReason given")
                yield self._event("failed", f"Training job {self.job_name} failed: {reason}")
                return
            if status == "Stopped":
                yield self._event("stopped", f"Training job {self.job_name} was stopped")
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                yield self._event(
                    "timeout",
                    f"Training job {self.job_name} still {status} after {self.timeout_seconds:.0f} s "
                    "(it keeps running; a retry of the task re-attaches to it)",
                )
                return
            await asyncio.sleep(min(next(delays), remaining))

    async def on_kill(self) -> None:
        """The user killed the deferred task (mark failed/success, clear): stop the job too."""
        hook = await asyncio.to_thread(self.hook)
        await asyncio.to_thread(hook.stop_training_job, self.job_name)
        self.log.info("Asked SageMaker to stop training job %s", self.job_name)
