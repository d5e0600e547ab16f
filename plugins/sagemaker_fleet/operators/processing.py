"""SageMakerRetrySafeProcessingOperator: a processing job per task that a retry never duplicates.

The provider's ``SageMakerProcessingOperator`` renames a job whose name exists (``-<epoch>``), so a retried or
cleared task starts a second job, writing its outputs again. Here the caller picks a deterministic base name
and the operator decides from what SageMaker already has, as the training operator does:

========================  ===================================================
newest attempt            what execute does
========================  ===================================================
none                      create ``<base>``
InProgress / Stopping     re-attach: defer (or poll) on that job
Completed                 return it at once, no new job
Failed / Stopped          create the next attempt ``<base>-r1``, ``-r2``, ...
========================  ===================================================
"""

from __future__ import annotations

import copy
import datetime as dt
import time
from typing import TYPE_CHECKING, Any

from airflow.exceptions import AirflowException
from airflow.providers.amazon.aws.operators.base_aws import AwsBaseOperator
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields

from sagemaker_fleet.hooks.sagemaker import SageMakerFleetHook
from sagemaker_fleet.links.sagemaker import SageMakerProcessingJobLink
from sagemaker_fleet.operators.training import MAX_ATTEMPTS, NON_TERMINAL, attempt_name
from sagemaker_fleet.utils.config import default_deferrable
from sagemaker_fleet.utils.naming import is_valid_sagemaker_name
from sagemaker_fleet.utils.tags import merge_tags, run_tags

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["SageMakerRetrySafeProcessingOperator", "prepare_processing_config"]

# CreateProcessingJob integer members a Jinja template renders as strings.
_INT_FIELDS = (
    ("ProcessingResources", "ClusterConfig", "InstanceCount"),
    ("ProcessingResources", "ClusterConfig", "VolumeSizeInGB"),
    ("StoppingCondition", "MaxRuntimeInSeconds"),
)


def prepare_processing_config(config: Any) -> dict:
    """Copy of a rendered CreateProcessingJob request with templated numbers cast; ValueError when unusable."""
    if not isinstance(config, dict):
        raise ValueError(f"config must be a CreateProcessingJob request (a dict), got {type(config).__name__}")
    prepared = copy.deepcopy(config)
    name = prepared.get("ProcessingJobName")
    if not is_valid_sagemaker_name(name):
        raise ValueError(
            "config['ProcessingJobName'] must be a valid SageMaker name ([a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}), "
            f"got {name!r}"
        )
    for missing in ("AppSpecification", "RoleArn", "ProcessingResources"):
        if missing not in prepared:
            raise ValueError(f"config is missing {missing!r} (a CreateProcessingJob request needs it)")
    for *path, member in _INT_FIELDS:
        block: Any = prepared
        for key in path:
            block = block.get(key) if isinstance(block, dict) else None
        if isinstance(block, dict) and block.get(member) is not None:
            try:
                block[member] = int(str(block[member]).strip())
            except ValueError:
                where = "".join(f"[{k!r}]" for k in (*path, member))
                raise ValueError(f"config{where} must be an integer, got {block[member]!r}") from None
    environment = prepared.get("Environment")
    if environment is not None:
        if not isinstance(environment, dict):
            raise ValueError("config['Environment'] must be a dict")
        prepared["Environment"] = {str(k): str(v) for k, v in environment.items()}
    return prepared


class SageMakerRetrySafeProcessingOperator(AwsBaseOperator[SageMakerFleetHook]):
    """Start (or re-attach to) a SageMaker processing job under a deterministic name and wait for it.

    :param config: a whole CreateProcessingJob request (templated, JSON-rendered); its ``ProcessingJobName``
        is the deterministic base name, at most 63 characters
    :param deferrable: wait in the triggerer (the provider's ``SageMakerTrigger``) instead of polling on the
        worker; defaults to ``[operators] default_deferrable``, True when unset
    :param check_interval: seconds between status checks
    :param max_wait_seconds: fail the task (the job keeps running; a retry re-attaches) after this long
    :param print_log: log the job's CloudWatch lines at the end
    :param tags: tags for the job besides the request's own ``Tags`` and ``airflow:dag_id``/``airflow:run_id``

    Returns ``{"job_name", "status", "outputs": {OutputName: S3Uri}, "exit_message"}``.
    """

    aws_hook_class = SageMakerFleetHook
    template_fields = aws_template_fields("config", "tags")
    template_fields_renderers = {"config": "json"}
    operator_extra_links = (SageMakerProcessingJobLink(),)
    ui_color = "#eef0e4"

    def __init__(
        self,
        *,
        config: dict,
        deferrable: bool = default_deferrable(),
        check_interval: float = 5,
        max_wait_seconds: int = 6 * 3600,
        print_log: bool = True,
        tags: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if float(check_interval) <= 0:
            raise ValueError(f"check_interval must be > 0, got {check_interval}")
        if int(max_wait_seconds) <= 0:
            raise ValueError(f"max_wait_seconds must be > 0, got {max_wait_seconds}")
        self.config = config
        self.tags = tags
        self.deferrable = deferrable
        self.check_interval = float(check_interval)
        self.max_wait_seconds = int(max_wait_seconds)
        self.print_log = print_log
        self._job_name: str | None = None

    def find_latest_attempt(self, base: str) -> tuple[int, dict | None]:
        """The newest existing attempt of ``base`` and its description, or ``(0, None)`` when none exists."""
        found: tuple[int, dict | None] = (0, None)
        for attempt in range(MAX_ATTEMPTS + 1):
            description = self.hook.describe_processing_job_or_none(attempt_name(base, attempt))
            if description is None:
                return found
            found = (attempt, description)
        raise AirflowException(f"{base} already has {MAX_ATTEMPTS} failed attempts; refusing to start another")

    def execute(self, context: Context) -> dict:
        config = prepare_processing_config(self.config)
        config["Tags"] = merge_tags(config.get("Tags"), run_tags(context, self.tags))
        base = config["ProcessingJobName"]
        attempt, description = self.find_latest_attempt(base)
        status = description["ProcessingJobStatus"] if description else None
        if description is None:
            job_name = self._create(config, base)
        elif status in NON_TERMINAL:
            job_name = description["ProcessingJobName"]
            self.log.info("Re-attaching to processing job %s (%s); no new job is started", job_name, status)
        elif status == "Completed":
            job_name = description["ProcessingJobName"]
            self.log.info("Processing job %s already Completed; returning it without starting a new job", job_name)
        else:
            job_name = attempt_name(base, attempt + 1)
            self.log.warning(
                "Newest attempt %s ended %s (%s); starting attempt %s",
                description["ProcessingJobName"],
                status,
                description.get("FailureReason", "no reason given"),
                job_name,
            )
            job_name = self._create(config, job_name)

        self._job_name = job_name
        SageMakerProcessingJobLink.persist_for(context, self, name=job_name)
        if status == "Completed":
            return self._finish(job_name)
        if self.deferrable:
            self._defer(job_name)
        return self._wait(job_name)

    def _create(self, config: dict, job_name: str) -> str:
        self.log.info("Creating processing job %s", job_name)
        client = self.hook.get_conn()
        try:
            client.create_processing_job(**{**config, "ProcessingJobName": job_name})
        except client.exceptions.ResourceInUse:
            # Another try of this task (a zombie, a concurrent clear) created it a moment ago: attach to it.
            self.log.warning("Processing job %s was created concurrently; attaching to it", job_name)
        return job_name

    def _defer(self, job_name: str) -> None:
        from airflow.providers.amazon.aws.triggers.sagemaker import SageMakerTrigger

        delay = max(1, round(self.check_interval))
        self.defer(
            trigger=SageMakerTrigger(
                job_name=job_name,
                job_type="processing",
                waiter_delay=delay,
                waiter_max_attempts=max(1, self.max_wait_seconds // delay),
                aws_conn_id=self.aws_conn_id,
                region_name=self.region_name,
                verify=self.verify,
                botocore_config=self.botocore_config,
            ),
            method_name="execute_complete",
            timeout=dt.timedelta(seconds=self.max_wait_seconds + 5 * delay + 60),
        )

    def _wait(self, job_name: str) -> dict:
        deadline = time.monotonic() + self.max_wait_seconds
        while True:
            description = self.hook.describe_processing_job(job_name)
            if description["ProcessingJobStatus"] not in NON_TERMINAL:
                return self._finish(job_name)
            if time.monotonic() >= deadline:
                raise AirflowException(
                    f"Processing job {job_name} still {description['ProcessingJobStatus']} after "
                    f"{self.max_wait_seconds} s; it keeps running and a retry of this task re-attaches to it"
                )
            time.sleep(self.check_interval)

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict:
        if not event or "job_name" not in event:
            raise AirflowException(f"Processing trigger returned no usable event: {event!r}")
        self._job_name = event["job_name"]
        # The event is a summary; the job's own description (status, FailureReason, ExitMessage) decides.
        return self._finish(event["job_name"])

    def _finish(self, job_name: str) -> dict:
        description = self.hook.describe_processing_job(job_name)
        if self.print_log:
            try:
                for line in self.hook.processing_log_lines(job_name):
                    self.log.info("%s", line)
            except Exception as error:  # the logs are a convenience; never fail a finished job for them
                self.log.warning("Could not read CloudWatch logs of %s: %s", job_name, error)
        status = description["ProcessingJobStatus"]
        if status != "Completed":
            raise AirflowException(
                f"Processing job {job_name} ended {status}: "
                f"{description.get('FailureReason', 'no FailureReason given')}"
                + (f" (ExitMessage: {description['ExitMessage']})" if description.get("ExitMessage") else "")
            )
        outputs = (description.get("ProcessingOutputConfig") or {}).get("Outputs") or []
        return {
            "job_name": job_name,
            "status": status,
            "outputs": {o["OutputName"]: o["S3Output"]["S3Uri"] for o in outputs if o.get("S3Output")},
            "exit_message": description.get("ExitMessage"),
        }

    def on_kill(self) -> None:
        """The task was killed while waiting on the worker: stop the job so it does not run on unowned."""
        if self._job_name:
            self.log.info("Stopping processing job %s", self._job_name)
            self.hook.stop_processing_job(self._job_name)
