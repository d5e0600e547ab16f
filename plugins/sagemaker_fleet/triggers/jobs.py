"""SageMakerJobTrigger: the provider's ``SageMakerTrigger`` for one kind of job, plus what it lacks.

The wait itself is the provider's: its ``TrainingJobComplete`` / ``ProcessingJobComplete`` /
``TransformJobComplete`` botocore waiter run by ``AwsBaseWaiterTrigger`` with aiobotocore in the triggerer,
throttling retried by the provider's wait loop and by botocore's standard retry mode
(:class:`~sagemaker_fleet.hooks.sagemaker.SageMakerFleetHook`). Added here:

- ``on_kill``: a user who marks the deferred task failed or success, or clears it, also stops the job
  (Airflow 3.3 calls ``BaseTrigger.on_kill`` only for such user actions, never on a triggerer restart);
- a first-poll delay (``first_poll_delay``), so a fast job cannot fire the trigger before the scheduler has
  recorded the deferral (apache/airflow#71580: the task is then killed and retried);
- the wait is given in seconds (``timeout_seconds``), not as a number of attempts;
- a timeout says that the job keeps running and that a retry re-attaches to it.

One subclass per kind (``TrainingJobTrigger`` in ``triggers/training.py``, ``ProcessingJobTrigger`` and
``TransformJobTrigger`` here) fixes ``job_type``, so a serialized trigger names its kind by its class path.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, ClassVar

from airflow.providers.amazon.aws.exceptions import WaiterMaxAttemptsError
from airflow.providers.amazon.aws.triggers.sagemaker import SageMakerTrigger
from airflow.triggers.base import TriggerEvent

from sagemaker_fleet.hooks.sagemaker import JOB_CALLS, SageMakerFleetHook
from sagemaker_fleet.triggers.base import FIRST_POLL_DELAY_SECONDS, WaitWindow

__all__ = ["DEFAULT_TIMEOUT_SECONDS", "ProcessingJobTrigger", "SageMakerJobTrigger", "TransformJobTrigger"]

DEFAULT_TIMEOUT_SECONDS = 6 * 3600


class SageMakerJobTrigger(WaitWindow, SageMakerTrigger):
    """Wait until a job is Completed, Failed or Stopped.

    Yields exactly one ``TriggerEvent`` with ``status`` ``success``, ``failed`` (with the job's
    FailureReason), ``stopped``, ``timeout`` or ``error`` (the job does not exist, or the describe call
    failed with an error that is not retried) and ``job_name``. The operator re-describes the job by name
    on resume, so the event carries only what is needed to decide.

    :param job_name: the job to wait for
    :param poll_interval: seconds between describe calls
    :param timeout_seconds: give up (status ``timeout``) after this many seconds; the job keeps running
    :param first_poll_delay: seconds before the first describe call (counted in ``timeout_seconds``)
    :param aws_conn_id, region_name, verify, botocore_config: same meaning as on the operator, kept so the
        deferred half talks to the same account, region and endpoint as the worker half
    """

    job_type: ClassVar[str]  # "training", "processing" or "transform", as SageMakerTrigger names them

    def __init__(
        self,
        job_name: str,
        *,
        poll_interval: float = 5.0,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        first_poll_delay: float = FIRST_POLL_DELAY_SECONDS,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        verify: bool | str | None = None,
        botocore_config: dict | None = None,
    ) -> None:
        attempts = self.set_wait_window(poll_interval, timeout_seconds, first_poll_delay)
        super().__init__(
            job_name=job_name,
            job_type=self.job_type,
            waiter_delay=self.poll_interval,  # type: ignore[arg-type]  # asyncio.sleep takes floats
            waiter_max_attempts=attempts,
            aws_conn_id=aws_conn_id,
            region_name=region_name,
            verify=verify,
            botocore_config=botocore_config,
        )

    @property
    def title(self) -> str:
        return JOB_CALLS[self.job_type].title

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {"job_name": self.job_name, **self.wait_window_fields()},
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        await self.first_poll_delay_elapsed()
        async for event in super().run():
            yield event

    def hook(self) -> SageMakerFleetHook:
        # The fleet hook: the provider's SageMakerHook with botocore's standard retry mode by default.
        return SageMakerFleetHook(**self._hook_parameters)

    def _event_from_exception(self, error: Exception) -> TriggerEvent:
        if isinstance(error, WaiterMaxAttemptsError):
            return TriggerEvent(
                {
                    "status": "timeout",
                    "job_name": self.job_name,
                    "message": f"{self.title} {self.job_name} still running after {self.timeout_seconds:.0f} s "
                    "(it keeps running; a retry of the task re-attaches to it)",
                }
            )
        return super()._event_from_exception(error)  # type: ignore[arg-type]

    async def on_kill(self) -> None:
        """The user killed the deferred task (mark failed/success, clear): stop the job too."""
        from botocore.exceptions import ClientError

        hook = self.hook()
        calls = JOB_CALLS[self.job_type]
        async with await hook.get_async_conn() as client:
            try:
                await getattr(client, calls.stop)(**{calls.name_key: self.job_name})
            except ClientError as error:
                # Stopping a job that already ended is a ValidationException; nothing is left to stop.
                if error.response.get("Error", {}).get("Code") != "ValidationException":
                    raise
                self.log.info("%s %s was not running: %s", self.title, self.job_name, error)
                return
        self.log.info("Asked SageMaker to stop %s %s", self.title.lower(), self.job_name)


class ProcessingJobTrigger(SageMakerJobTrigger):
    """Wait until a processing job is Completed, Failed or Stopped (see :class:`SageMakerJobTrigger`)."""

    job_type = "processing"


class TransformJobTrigger(SageMakerJobTrigger):
    """Wait until a transform job is Completed, Failed or Stopped (see :class:`SageMakerJobTrigger`)."""

    job_type = "transform"
