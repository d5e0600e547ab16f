"""SageMakerRetrySafeJobOperator: the base of the package's job operators (training, processing, transform).

The provider's job operators rename a job whose name exists (``-<epoch>``), so a retried or cleared task
starts a second job. Here the caller picks a deterministic base name (from dag_id, location and run date,
say) and the operator decides from what SageMaker already has:

========================  ===================================================
newest attempt            what execute does
========================  ===================================================
none                      create ``<base>``
InProgress / Stopping     re-attach: defer (or poll) on that job
Completed                 return it at once, no new job
Failed / Stopped          create the next attempt ``<base>-r1``, ``-r2``, ...
========================  ===================================================

Deferrable by default: the job is described once more before deferring and returned at once when it already
ended (apache/airflow#71580); the trigger waits in seconds, not attempts, and its ``on_kill`` stops the job,
as the operator's own ``on_kill`` does when the task is killed while polling on the worker. ``print_log``
copies the job's CloudWatch lines into the task log once the job has ended.

A subclass names its kind (``job_type``, the name and status keys, link and trigger) and supplies
``prepare_config`` (validate and cast the rendered request) and ``result`` (what a Completed job returns).
"""

from __future__ import annotations

import datetime as dt
import time
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.exceptions import AirflowException
from airflow.providers.amazon.aws.operators.base_aws import AwsBaseOperator
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields

from sagemaker_fleet.hooks.sagemaker import JOB_CALLS, SageMakerFleetHook
from sagemaker_fleet.utils.config import default_deferrable
from sagemaker_fleet.utils.tags import merge_tags, run_tags

if TYPE_CHECKING:
    from airflow.sdk import Context

    from sagemaker_fleet.links.sagemaker import _SageMakerResourceLink
    from sagemaker_fleet.triggers.jobs import SageMakerJobTrigger

__all__ = ["MAX_ATTEMPTS", "MAX_NAME_LENGTH", "NON_TERMINAL", "SageMakerRetrySafeJobOperator", "attempt_name"]

MAX_NAME_LENGTH = 63
MAX_ATTEMPTS = 99
# inline_wait_seconds: the first pause between describes and the longest one.
INLINE_FIRST_PAUSE_SECONDS = 0.1
INLINE_MAX_PAUSE_SECONDS = 1.0
NON_TERMINAL = {"InProgress", "Stopping"}


def attempt_name(base: str, attempt: int) -> str:
    """``base`` for attempt 0, else ``<base>-r<attempt>`` with the base cut so the whole fits 63 chars."""
    if attempt == 0:
        return base
    suffix = f"-r{attempt}"
    return base[: MAX_NAME_LENGTH - len(suffix)].rstrip("-") + suffix


def cast_int_fields(prepared: dict, fields: tuple[tuple[str, ...], ...]) -> None:
    """Cast the integer members a Jinja template renders as strings (each a path of keys), in place."""
    for *path, member in fields:
        block: Any = prepared
        for key in path:
            block = block.get(key) if isinstance(block, dict) else None
        if isinstance(block, dict) and block.get(member) is not None:
            try:
                block[member] = int(str(block[member]).strip())
            except ValueError:
                where = "".join(f"[{k!r}]" for k in (*path, member))
                raise ValueError(f"config{where} must be an integer, got {block[member]!r}") from None


class SageMakerRetrySafeJobOperator(AwsBaseOperator[SageMakerFleetHook]):
    """Start (or re-attach to) a SageMaker job under a deterministic name and wait for it.

    :param config: the whole Create*Job request (templated, JSON-rendered); its job name is the
        deterministic base name, at most 63 characters
    :param deferrable: wait in the triggerer (no worker slot held) instead of polling on the worker;
        defaults to ``[operators] default_deferrable``, True when unset
    :param check_interval: seconds between status checks
    :param max_wait_seconds: fail the task (the job keeps running; a retry re-attaches) after this long
    :param print_log: log the job's CloudWatch lines once it has ended
    :param tags: tags for the job besides the request's own ``Tags`` and the automatic ``airflow:dag_id`` and
        ``airflow:run_id`` (e.g. ``{"location": "Chicago_IL"}``)
    :param inline_wait_seconds: deferrable only: watch the job on the worker this long before deferring
        (0, the default, looks once); for short jobs, which end before a deferral round trip would
    """

    job_type: ClassVar[str]  # "training", "processing", "transform"
    name_key: ClassVar[str]  # "TrainingJobName"
    status_key: ClassVar[str]  # "TrainingJobStatus"
    job_link: ClassVar[type[_SageMakerResourceLink]]

    aws_hook_class = SageMakerFleetHook
    template_fields = aws_template_fields("config", "tags")
    template_fields_renderers = {"config": "json"}

    def __init__(
        self,
        *,
        config: dict,
        deferrable: bool = default_deferrable(),
        check_interval: float = 5,
        max_wait_seconds: int = 6 * 3600,
        print_log: bool = True,
        tags: dict[str, str] | None = None,
        inline_wait_seconds: float = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if float(check_interval) <= 0:
            raise ValueError(f"check_interval must be > 0, got {check_interval}")
        if float(inline_wait_seconds) < 0:
            raise ValueError(f"inline_wait_seconds must be >= 0, got {inline_wait_seconds}")
        if int(max_wait_seconds) <= 0:
            raise ValueError(f"max_wait_seconds must be > 0, got {max_wait_seconds}")
        self.config = config
        self.tags = tags
        self.deferrable = deferrable
        self.check_interval = float(check_interval)
        self.max_wait_seconds = int(max_wait_seconds)
        self.print_log = print_log
        # Deferrable: how long to watch the job on the worker before deferring. A deferral costs a trip through
        # the triggerer and the scheduler (seconds to tens of seconds on a busy scheduler) during which the
        # task keeps its pool slot; a job that ends sooner (a warm pool, a small job) is cheaper to wait for here.
        self.inline_wait_seconds = float(inline_wait_seconds)
        self._job_name: str | None = None

    # -- what a kind supplies ----------------------------------------------------------------------------
    @property
    def title(self) -> str:
        """``Training job``, as messages name the kind."""
        return JOB_CALLS[self.job_type].title

    def prepare_config(self, config: Any) -> dict:
        """A checked copy of the rendered request; ValueError (before any call) when it is unusable."""
        raise NotImplementedError

    def result(self, description: dict) -> dict:
        """What the task returns (JSON-safe) for the Completed job ``description``."""
        raise NotImplementedError

    def trigger(self, job_name: str) -> SageMakerJobTrigger:
        raise NotImplementedError

    def warn_if_config_differs(self, description: dict, config: dict) -> None:
        """An existing job was found under the name: say so if it was started with another request."""

    def log_progress(self, description: dict) -> None:
        """Called with each description while polling on the worker."""

    def log_finished(self, description: dict) -> None:
        """Called once with the final description, before the CloudWatch lines."""

    # -- the kind's calls ------------------------------------------------------------------------------
    def describe_or_none(self, job_name: str) -> dict | None:
        return getattr(self.hook, f"describe_{self.job_type}_job_or_none")(job_name)

    def describe(self, job_name: str) -> dict:
        # The provider hook's describe_<kind>_job (a plain describe call; the training one also prints logs
        # when asked, which the operator does itself at the end).
        return getattr(self.hook, JOB_CALLS[self.job_type].describe)(job_name)

    def log_lines(self, job_name: str) -> Any:
        return getattr(self.hook, f"{self.job_type}_log_lines")(job_name)

    # -- deciding ----------------------------------------------------------------------------------------
    def find_latest_attempt(self, base: str) -> tuple[int, dict | None]:
        """The newest existing attempt of ``base`` and its description, or ``(0, None)`` when none exists.

        Describes by exact name (one call per attempt) instead of paginating List*Jobs, which gets
        throttled in accounts with many jobs (apache/airflow #16299).
        """
        found: tuple[int, dict | None] = (0, None)
        for attempt in range(MAX_ATTEMPTS + 1):
            description = self.describe_or_none(attempt_name(base, attempt))
            if description is None:
                return found
            found = (attempt, description)
        raise AirflowException(f"{base} already has {MAX_ATTEMPTS} failed attempts; refusing to start another")

    def execute(self, context: Context) -> dict:
        config = self.prepare_config(self.config)
        # Set at creation only: a re-attached or returned job keeps the tags of the try that created it.
        config["Tags"] = merge_tags(config.get("Tags"), run_tags(context, self.tags))
        base = config[self.name_key]
        attempt, description = self.find_latest_attempt(base)
        status = description[self.status_key] if description else None
        if description is None:
            job_name = self._create(config, base)
        elif status in NON_TERMINAL:
            job_name = description[self.name_key]
            self.log.info("Re-attaching to %s %s (%s); no new job is started", self.title.lower(), job_name, status)
            self.warn_if_config_differs(description, config)
        elif status == "Completed":
            job_name = description[self.name_key]
            self.log.info("%s %s already Completed; returning it without starting a new job", self.title, job_name)
            self.warn_if_config_differs(description, config)
        else:
            job_name = attempt_name(base, attempt + 1)
            self.log.warning(
                "Newest attempt %s ended %s (%s); starting attempt %s",
                description[self.name_key],
                status,
                description.get("FailureReason", "no reason given"),
                job_name,
            )
            job_name = self._create(config, job_name)

        self._job_name = job_name
        self.job_link.persist_for(context, self, name=job_name)
        if status == "Completed":
            return self._finish(job_name)
        if self.deferrable:
            # Look once more before deferring (or watch for ``inline_wait_seconds``): a job that already ended
            # returns here, without a trigger that could fire before the scheduler has recorded the deferral
            # (apache/airflow#71580).
            if self._ended_within(job_name, self.inline_wait_seconds):
                return self._finish(job_name)
            self.defer(
                trigger=self.trigger(job_name),
                method_name="execute_complete",
                # A backstop only: the trigger reports its own timeout with a clearer message.
                timeout=dt.timedelta(seconds=self.max_wait_seconds + 5 * self.check_interval + 60),
            )
        return self._wait(job_name)

    def _ended_within(self, job_name: str, seconds: float) -> bool:
        """Whether the job is in a terminal state now or becomes so within ``seconds``.

        Polled 0.1 s after the first look, then twice as long each time up to a second: a job that ends in
        half a second is seen within a tenth of that, and a 15 s window costs about 20 describes.
        """
        deadline = time.monotonic() + seconds
        pause = INLINE_FIRST_PAUSE_SECONDS
        while True:
            latest = self.describe_or_none(job_name)
            if latest is not None and latest[self.status_key] not in NON_TERMINAL:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(pause, left))
            pause = min(pause * 2, INLINE_MAX_PAUSE_SECONDS)

    def _create(self, config: dict, job_name: str) -> str:
        self.log.info("Creating %s %s", self.title.lower(), job_name)
        client = self.hook.get_conn()
        try:
            getattr(client, JOB_CALLS[self.job_type].create)(**{**config, self.name_key: job_name})
        except client.exceptions.ResourceInUse:
            # Another try of this task (a zombie, a concurrent clear) created it a moment ago: attach to it.
            self.log.warning("%s %s was created concurrently; attaching to it", self.title, job_name)
        return job_name

    def trigger_settings(self) -> dict[str, Any]:
        """The keyword arguments every job trigger takes from this operator."""
        return {
            "poll_interval": self.check_interval,
            "timeout_seconds": self.max_wait_seconds,
            "aws_conn_id": self.aws_conn_id,
            "region_name": self.region_name,
            "verify": self.verify,
            "botocore_config": self.botocore_config,
        }

    # -- waiting -----------------------------------------------------------------------------------------
    def _wait(self, job_name: str) -> dict:
        deadline = time.monotonic() + self.max_wait_seconds
        while True:
            description = self.describe(job_name)
            self.log_progress(description)
            if description[self.status_key] not in NON_TERMINAL:
                return self._finish(job_name)
            if time.monotonic() >= deadline:
                raise AirflowException(
                    f"{self.title} {job_name} still {description[self.status_key]} after {self.max_wait_seconds} s; "
                    "it keeps running and a retry of this task re-attaches to it"
                )
            time.sleep(self.check_interval)

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict:
        if not event or "job_name" not in event:
            raise AirflowException(f"{self.job_type.capitalize()} trigger returned no usable event: {event!r}")
        job_name = event["job_name"]
        self._job_name = job_name
        if event.get("status") == "success":
            return self._finish(job_name)
        # Re-describe: the event is a summary, the job's own FailureReason is the truth.
        description = self.describe_or_none(job_name) or {}
        self._log_job(job_name, description)
        raise AirflowException(
            f"{self.title} {job_name} {event.get('status')}: {event.get('message')}" + _reasons(description)
        )

    # -- finishing ---------------------------------------------------------------------------------------
    def _finish(self, job_name: str) -> dict:
        description = self.describe(job_name)
        self._log_job(job_name, description)
        status = description[self.status_key]
        if status != "Completed":
            raise AirflowException(
                f"{self.title} {job_name} ended {status}: "
                f"{description.get('FailureReason', 'no FailureReason given')}"
                + (f" (ExitMessage: {description['ExitMessage']})" if description.get("ExitMessage") else "")
            )
        return self.result(description)

    def _log_job(self, job_name: str, description: dict) -> None:
        self.log_finished(description)
        if self.print_log:
            # The triggerer cannot stream logs into the task log, so they are printed once at the end.
            try:
                for line in self.log_lines(job_name):
                    self.log.info("%s", line)
            except Exception as error:  # the logs are a convenience; never fail a finished job for them
                self.log.warning("Could not read CloudWatch logs of %s: %s", job_name, error)

    def on_kill(self) -> None:
        """The task was killed while waiting on the worker: stop the job so it does not run on unowned."""
        if self._job_name:
            self.log.info("Stopping %s %s", self.title.lower(), self._job_name)
            getattr(self.hook, f"stop_{self.job_type}_job")(self._job_name)


def _reasons(description: dict) -> str:
    reasons = [f"{key}: {description[key]}" for key in ("FailureReason", "ExitMessage") if description.get(key)]
    return f" ({'; '.join(reasons)})" if reasons else ""
