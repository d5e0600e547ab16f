"""SageMakerRetrySafeTrainingOperator: a training job per task that a retry never duplicates.

The provider's ``SageMakerTrainingOperator`` renames a job whose name exists (``-<epoch>``), so a retried or
cleared task starts a second job and the model path moves. Here the caller picks a deterministic base name
(from dag_id, location and run date, say) and the operator decides from what SageMaker already has:

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
from sagemaker_fleet.links.sagemaker import SageMakerTrainingJobLink
from sagemaker_fleet.utils.config import default_deferrable
from sagemaker_fleet.utils.tags import merge_tags, run_tags

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["SageMakerRetrySafeTrainingOperator", "attempt_name"]

MAX_NAME_LENGTH = 63
MAX_ATTEMPTS = 99
NON_TERMINAL = {"InProgress", "Stopping"}
# CreateTrainingJob integer members a Jinja template renders as strings.
_INT_FIELDS = (
    ("ResourceConfig", "InstanceCount"),
    ("ResourceConfig", "VolumeSizeInGB"),
    ("StoppingCondition", "MaxRuntimeInSeconds"),
    ("StoppingCondition", "MaxWaitTimeInSeconds"),
    ("StoppingCondition", "MaxPendingTimeInSeconds"),
)


def attempt_name(base: str, attempt: int) -> str:
    """``base`` for attempt 0, else ``<base>-r<attempt>`` with the base cut so the whole fits 63 chars."""
    if attempt == 0:
        return base
    suffix = f"-r{attempt}"
    return base[: MAX_NAME_LENGTH - len(suffix)].rstrip("-") + suffix


def _is_valid_name(name: object) -> bool:
    from sagemaker_fleet.utils.naming import is_valid_sagemaker_name

    return is_valid_sagemaker_name(name)


def prepare_training_config(config: Any) -> dict:
    """Copy of a rendered CreateTrainingJob request with templated numbers cast; ValueError when unusable."""
    if not isinstance(config, dict):
        raise ValueError(f"config must be a CreateTrainingJob request (a dict), got {type(config).__name__}")
    prepared = copy.deepcopy(config)
    name = prepared.get("TrainingJobName")
    if not _is_valid_name(name):
        raise ValueError(
            f"config['TrainingJobName'] must be a valid SageMaker name ([a-zA-Z0-9](-*[a-zA-Z0-9]){{0,62}}), got {name!r}"
        )
    for missing in ("AlgorithmSpecification", "RoleArn", "OutputDataConfig", "ResourceConfig", "StoppingCondition"):
        if missing not in prepared:
            raise ValueError(f"config is missing {missing!r} (a CreateTrainingJob request needs it)")
    for section, member in _INT_FIELDS:
        block = prepared.get(section)
        if isinstance(block, dict) and member in block and block[member] is not None:
            try:
                block[member] = int(str(block[member]).strip())
            except ValueError:
                raise ValueError(f"config[{section!r}][{member!r}] must be an integer, got {block[member]!r}") from None
    hyperparameters = prepared.get("HyperParameters")
    if hyperparameters is not None:
        if not isinstance(hyperparameters, dict):
            raise ValueError("config['HyperParameters'] must be a dict")
        # SageMaker takes only strings; a native-rendered bool must read as the containers expect.
        prepared["HyperParameters"] = {
            str(k): (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in hyperparameters.items()
        }
    return prepared


def _fmt_time(value: Any) -> str:
    return value.isoformat(timespec="seconds") if isinstance(value, dt.datetime) else str(value)


class SageMakerRetrySafeTrainingOperator(AwsBaseOperator[SageMakerFleetHook]):
    """Start (or re-attach to) a SageMaker training job under a deterministic name and wait for it.

    :param config: a whole CreateTrainingJob request (templated, JSON-rendered); its ``TrainingJobName``
        is the deterministic base name, at most 63 characters
    :param deferrable: wait in the triggerer (no worker slot held) instead of polling on the worker;
        defaults to ``[operators] default_deferrable``, True when unset
    :param check_interval: seconds between status checks
    :param max_wait_seconds: fail the task (the job keeps running; a retry re-attaches) after this long
    :param print_log: log the job's CloudWatch lines at completion
    :param tags: tags for the job besides the request's own ``Tags`` and the automatic ``airflow:dag_id`` and
        ``airflow:run_id`` (e.g. ``{"location": "Chicago_IL"}``)

    Returns ``{"job_name", "model_artifact", "metrics", "status", "billable_seconds"}``.

    Example::

        SageMakerRetrySafeTrainingOperator.partial(task_id="train", pool="sagemaker_training").expand(
            config=build_configs.output
        )
    """

    aws_hook_class = SageMakerFleetHook
    template_fields = aws_template_fields("config", "tags")
    template_fields_renderers = {"config": "json"}
    operator_extra_links = (SageMakerTrainingJobLink(),)
    ui_color = "#f0eee4"

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
        self.tags = tags
        if float(check_interval) <= 0:
            raise ValueError(f"check_interval must be > 0, got {check_interval}")
        if int(max_wait_seconds) <= 0:
            raise ValueError(f"max_wait_seconds must be > 0, got {max_wait_seconds}")
        self.config = config
        self.deferrable = deferrable
        self.check_interval = float(check_interval)
        self.max_wait_seconds = int(max_wait_seconds)
        self.print_log = print_log
        self._job_name: str | None = None

    # -- deciding ----------------------------------------------------------------------------------------
    def find_latest_attempt(self, base: str) -> tuple[int, dict | None]:
        """The newest existing attempt of ``base`` and its description, or ``(0, None)`` when none exists.

        Describes by exact name (one call per attempt) instead of paginating ListTrainingJobs, which gets
        throttled in accounts with many jobs (apache/airflow #16299).
        """
        found: tuple[int, dict | None] = (0, None)
        for attempt in range(MAX_ATTEMPTS + 1):
            description = self.hook.describe_training_job_or_none(attempt_name(base, attempt))
            if description is None:
                return found
            found = (attempt, description)
        raise AirflowException(f"{base} already has {MAX_ATTEMPTS} failed attempts; refusing to start another")

    def execute(self, context: Context) -> dict:
        config = prepare_training_config(self.config)
        # Set at creation only: a re-attached or returned job keeps the tags of the try that created it.
        config["Tags"] = merge_tags(config.get("Tags"), run_tags(context, self.tags))
        base = config["TrainingJobName"]
        attempt, description = self.find_latest_attempt(base)
        status = description["TrainingJobStatus"] if description else None
        if description is None:
            job_name = self._create(config, base)
        elif status in NON_TERMINAL:
            job_name = description["TrainingJobName"]
            self.log.info("Re-attaching to training job %s (%s); no new job is started", job_name, status)
            self._warn_if_config_differs(description, config)
        elif status == "Completed":
            job_name = description["TrainingJobName"]
            self.log.info("Training job %s already Completed; returning it without starting a new job", job_name)
            self._warn_if_config_differs(description, config)
        else:
            job_name = attempt_name(base, attempt + 1)
            self.log.warning(
                "Newest attempt %s ended %s (%s); starting attempt %s",
                description["TrainingJobName"],
                status,
                description.get("FailureReason", "no reason given"),
                job_name,
            )
            job_name = self._create(config, job_name)

        self._job_name = job_name
        SageMakerTrainingJobLink.persist_for(context, self, name=job_name)
        if status == "Completed":
            return self._finish(job_name)
        if self.deferrable:
            # Look once more before deferring: a job that already ended returns here, without a trigger that
            # could fire before the scheduler has recorded the deferral (apache/airflow#71580).
            latest = self.hook.describe_training_job_or_none(job_name)
            if latest is not None and latest["TrainingJobStatus"] not in NON_TERMINAL:
                return self._finish(job_name)
            self._defer(job_name)
        return self._wait(job_name)

    def _create(self, config: dict, job_name: str) -> str:
        request = {**config, "TrainingJobName": job_name}
        self.log.info("Creating training job %s", job_name)
        try:
            self.hook.get_conn().create_training_job(**request)
        except self.hook.get_conn().exceptions.ResourceInUse:
            # Another try of this task (a zombie, a concurrent clear) created it a moment ago: attach to it.
            self.log.warning("Training job %s was created concurrently; attaching to it", job_name)
        return job_name

    def _warn_if_config_differs(self, description: dict, config: dict) -> None:
        existing = description.get("HyperParameters") or {}
        wanted = config.get("HyperParameters") or {}
        changed = {k for k in set(existing) | set(wanted) if existing.get(k) != wanted.get(k)}
        if changed:
            self.log.warning(
                "Job %s was started with other hyperparameters (%s differ); the deterministic name wins. "
                "Use a new base name to train with the new values.",
                description["TrainingJobName"],
                sorted(changed),
            )

    # -- waiting -----------------------------------------------------------------------------------------
    def _defer(self, job_name: str) -> None:
        from sagemaker_fleet.triggers.training import TrainingJobTrigger

        self.defer(
            trigger=TrainingJobTrigger(
                job_name,
                poll_interval=self.check_interval,
                timeout_seconds=self.max_wait_seconds,
                aws_conn_id=self.aws_conn_id,
                region_name=self.region_name,
                verify=self.verify,
                botocore_config=self.botocore_config,
            ),
            method_name="execute_complete",
            # A backstop only: the trigger reports its own timeout with a clearer message.
            timeout=dt.timedelta(seconds=self.max_wait_seconds + 5 * self.check_interval + 60),
        )

    def _wait(self, job_name: str) -> dict:
        deadline = time.monotonic() + self.max_wait_seconds
        seen = 0
        while True:
            description = self.hook.describe_training_job(job_name)
            transitions = description.get("SecondaryStatusTransitions", [])
            for transition in transitions[seen:]:
                self.log.info("%s: %s - %s", job_name, transition["Status"], transition.get("StatusMessage", ""))
            seen = len(transitions)
            if description["TrainingJobStatus"] not in NON_TERMINAL:
                return self._finish(job_name)
            if time.monotonic() >= deadline:
                raise AirflowException(
                    f"Training job {job_name} still {description['TrainingJobStatus']} after {self.max_wait_seconds} s; "
                    "it keeps running and a retry of this task re-attaches to it"
                )
            time.sleep(self.check_interval)

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict:
        if not event or "job_name" not in event:
            raise AirflowException(f"Training trigger returned no usable event: {event!r}")
        job_name = event["job_name"]
        self._job_name = job_name
        if event.get("status") == "success":
            return self._finish(job_name)
        # Re-describe: the event is a summary, the job's own FailureReason is the truth.
        description = self.hook.describe_training_job_or_none(job_name) or {}
        self._log_job(job_name, description)
        reason = description.get("FailureReason")
        raise AirflowException(
            f"Training job {job_name} {event.get('status')}: {event.get('message')}"
            + (f" (FailureReason: {reason})" if reason else "")
        )

    # -- finishing ---------------------------------------------------------------------------------------
    def _finish(self, job_name: str) -> dict:
        description = self.hook.describe_training_job(job_name)
        self._log_job(job_name, description)
        status = description["TrainingJobStatus"]
        if status != "Completed":
            raise AirflowException(
                f"Training job {job_name} ended {status}: {description.get('FailureReason', 'no FailureReason given')}"
            )
        metrics = {m["MetricName"]: float(m["Value"]) for m in description.get("FinalMetricDataList", [])}
        billable = description.get("BillableTimeInSeconds")
        if billable is None and description.get("TrainingStartTime") and description.get("TrainingEndTime"):
            billable = self.hook.count_billable_seconds(
                description["TrainingStartTime"],
                description["TrainingEndTime"],
                int(description.get("ResourceConfig", {}).get("InstanceCount", 1)),
            )
        return {
            "job_name": job_name,
            "model_artifact": description["ModelArtifacts"]["S3ModelArtifacts"],
            "metrics": metrics,
            "status": status,
            "billable_seconds": int(billable) if billable is not None else None,
        }

    def _log_job(self, job_name: str, description: dict) -> None:
        for transition in description.get("SecondaryStatusTransitions", []):
            self.log.info(
                "%s %s: %s - %s",
                job_name,
                _fmt_time(transition.get("StartTime", "")),
                transition["Status"],
                transition.get("StatusMessage", ""),
            )
        for metric in description.get("FinalMetricDataList", []):
            self.log.info("%s final metric %s = %s", job_name, metric["MetricName"], metric["Value"])
        if self.print_log:
            # The triggerer cannot stream logs into the task log, so they are printed once at the end.
            try:
                for line in self.hook.training_log_lines(job_name):
                    self.log.info("%s", line)
            except Exception as error:  # the logs are a convenience; never fail a finished job for them
                self.log.warning("Could not read CloudWatch logs of %s: %s", job_name, error)

    def on_kill(self) -> None:
        """The task was killed while waiting on the worker: stop the job so it does not run on unowned."""
        if self._job_name:
            self.log.info("Stopping training job %s", self._job_name)
            self.hook.stop_training_job(self._job_name)
