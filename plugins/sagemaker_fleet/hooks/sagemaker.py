"""SageMakerFleetHook: the provider's SageMakerHook plus the calls our fleet workflow needs and it lacks.

Every client (sagemaker, sagemaker-runtime, s3, logs, cloudwatch) is built from the same Airflow
connection, region, ``verify`` and botocore config, so an ``endpoint_url`` in the connection's extra
(the local emulator) applies to all of them. The provider's own ``s3_hook``/``logs_hook`` drop the
region and botocore config, which is why this hook builds its sibling clients itself.

Transient errors (throttling, 5xx, dropped connections) are retried by botocore itself: every client this
hook builds, sync or async, uses botocore's ``standard`` retry mode unless the connection or the caller's
botocore config chose one. The endpoint state sets and ``describe_endpoint_or_none`` live here, as the
provider keeps ``endpoint_non_terminal_states`` on its hook, and the package's own botocore waiters
(``waiters/sagemaker_fleet.json``) are served by :meth:`SageMakerFleetHook.get_waiter` next to the
provider's and botocore's.
"""

from __future__ import annotations

import datetime as dt
import inspect
import json
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path
from typing import Any

from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook
from botocore.config import Config
from botocore.exceptions import ClientError

from sagemaker_fleet.utils.s3 import parse_s3_uri

__all__ = ["DEFAULT_RETRIES", "FLEET_WAITERS_PATH", "JOB_CALLS", "JobCalls", "SageMakerFleetHook",
           "fleet_waiter_names", "is_not_found", "parse_s3_uri"]  # fmt: skip

TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"
PROCESSING_LOG_GROUP = "/aws/sagemaker/ProcessingJobs"
TRANSFORM_LOG_GROUP = "/aws/sagemaker/TransformJobs"
# botocore's standard mode: exponential backoff with jitter on throttling, 5xx and connection errors.
DEFAULT_RETRIES = {"mode": "standard", "max_attempts": 10}
# AWS publishes endpoint invocation metrics as 1-minute aggregates, 1-3 minutes after the requests.
AWS_METRICS_DELAY_SECONDS = 180.0
FLEET_WAITERS_PATH = Path(__file__).resolve().parents[1] / "waiters" / "sagemaker_fleet.json"
_CLIENTS: dict[tuple[Any, ...], Any] = {}
_CLIENTS_LOCK = threading.Lock()


def is_not_found(error: ClientError) -> bool:
    """SageMaker answers a missing resource with ValidationException, not a 404 code."""
    err = error.response.get("Error", {})
    code = err.get("Code", "")
    message = err.get("Message", "").lower()
    if code in {"ResourceNotFound", "ResourceNotFoundException", "NoSuchKey", "404", "NotFound"}:
        return True
    return code == "ValidationException" and (
        "could not find" in message or "not found" in message or "does not exist" in message
    )


@dataclass(frozen=True)
class JobCalls:
    """One job kind's SageMaker calls, spelled out (tests/unit/test_compose_and_iam.py matches the code's
    calls against the IAM policy by these names)."""

    title: str  # as messages name the kind: "Training job"
    name_key: str  # the request member naming one job: "TrainingJobName"
    status_key: str  # "TrainingJobStatus"
    create: str
    describe: str
    stop: str
    log_group: str


JOB_CALLS = {
    "training": JobCalls(
        "Training job",
        "TrainingJobName",
        "TrainingJobStatus",
        create="create_training_job",
        describe="describe_training_job",
        stop="stop_training_job",
        log_group=TRAINING_LOG_GROUP,
    ),
    "processing": JobCalls(
        "Processing job",
        "ProcessingJobName",
        "ProcessingJobStatus",
        create="create_processing_job",
        describe="describe_processing_job",
        stop="stop_processing_job",
        log_group=PROCESSING_LOG_GROUP,
    ),
    "transform": JobCalls(
        "Transform job",
        "TransformJobName",
        "TransformJobStatus",
        create="create_transform_job",
        describe="describe_transform_job",
        stop="stop_transform_job",
        log_group=TRANSFORM_LOG_GROUP,
    ),
}


@cache
def _fleet_waiter_model() -> dict[str, Any]:
    return json.loads(FLEET_WAITERS_PATH.read_text())


def fleet_waiter_names() -> list[str]:
    """The botocore waiters this package defines (``waiters/sagemaker_fleet.json``)."""
    return sorted(_fleet_waiter_model()["waiters"])


class SageMakerFleetHook(SageMakerHook):
    """SageMaker control plane, runtime, MME prefix listing and CloudWatch metrics from one connection.

    Accepts the same arguments as :class:`~airflow.providers.amazon.aws.hooks.sagemaker.SageMakerHook`
    (``aws_conn_id``, ``region_name``, ``verify``, ``config``).
    """

    training_terminal_states = {"Completed", "Failed", "Stopped"}
    # An endpoint in one of these is still changing: wait. The provider's endpoint_non_terminal_states.
    endpoint_transitional_states = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"})
    # Settled, but not serving what was asked (the provider's failed_states knows only "Failed").
    endpoint_failed_states = frozenset({"Failed", "UpdateRollbackFailed", "OutOfService"})

    # The provider names the calling operator in each client's user agent by walking ``inspect.stack()``,
    # which reads the source of every frame: ~0.1 s per client, paid by each task process. Same answer from
    # the frames alone.
    @staticmethod
    def _find_operator_class_name(target_function_name: str) -> str | None:
        frame = sys._getframe(1)
        while frame is not None and frame.f_code.co_name != target_function_name:
            frame = frame.f_back
        return None if frame is None else frame.f_locals["self"].__class__.__name__

    @staticmethod
    def _find_executor_class_name() -> str | None:
        frame = sys._getframe(1)
        while frame is not None:
            classes = [name for name, obj in frame.f_globals.items() if inspect.isclass(obj)]
            if "BaseExecutor" in classes:
                return classes[-1]
            frame = frame.f_back
        return None

    def _get_config(self, config: Config | None = None) -> Config:
        """The provider's botocore config plus botocore's standard retry mode, unless one was chosen."""
        merged = super()._get_config(config)
        if merged.retries is None:
            merged = merged.merge(Config(retries=dict(DEFAULT_RETRIES)))
        return merged

    def get_waiter(
        self,
        waiter_name: str,
        parameters: dict[str, str] | None = None,
        config_overrides: dict[str, Any] | None = None,
        deferrable: bool = False,
        client: Any = None,
    ) -> Any:
        """This package's waiters first (``waiters/sagemaker_fleet.json``), then the provider's and botocore's.

        ``parameters`` fill the Jinja placeholders of the waiter's acceptors, as for the provider's own
        custom waiters; ``deferrable=True`` with an aiobotocore ``client`` gives the async waiter.
        """
        if waiter_name not in fleet_waiter_names():
            return super().get_waiter(waiter_name, parameters, config_overrides, deferrable, client)
        from airflow.providers.amazon.aws.waiters.base_waiter import BaseBotoWaiter

        if deferrable and client is None:
            raise ValueError("client must be provided for a deferrable waiter.")
        config = json.loads(json.dumps(_fleet_waiter_model()))
        if config_overrides:
            config["waiters"][waiter_name].update(config_overrides)
        config = self._apply_parameters_value(config, waiter_name, parameters)
        return BaseBotoWaiter(client=client or self.conn, model_config=config, deferrable=deferrable).waiter(
            waiter_name
        )

    def describe_endpoint_or_none(self, endpoint_name: str) -> dict[str, Any] | None:
        """DescribeEndpoint; None when the endpoint does not exist."""
        try:
            return self.get_conn().describe_endpoint(EndpointName=endpoint_name)
        except ClientError as error:
            if is_not_found(error):
                return None
            raise

    # -- sibling clients from the same connection ------------------------------------------------------
    def client_for(self, service_name: str) -> Any:
        """A boto3 client for ``service_name`` with this hook's connection, region, verify and config.

        Shared by every hook of the process with the same connection, region, endpoint and verify (and no
        custom botocore config): a session and client cost 0.1-0.5 s to build and every task builds a new
        hook, which added seconds per location to a nightly run. boto3 clients are thread-safe, and one
        built from an assumed role keeps refreshing its credentials.
        """
        endpoint_url = self.conn_config.get_service_endpoint_url(service_name=service_name)
        key = (self.aws_conn_id, self.region_name, service_name, endpoint_url, str(self.verify))
        shareable = self._config is None
        with _CLIENTS_LOCK:
            client = _CLIENTS.get(key) if shareable else None
        if client is None:
            session = self.get_session(region_name=self.region_name)
            client = session.client(
                service_name, endpoint_url=endpoint_url, config=self._get_config(), verify=self.verify
            )
            if shareable:
                with _CLIENTS_LOCK:
                    client = _CLIENTS.setdefault(key, client)
        return client

    @cached_property
    def conn(self) -> Any:
        """The sagemaker client, from the shared cache (the provider's builds a new one per hook)."""
        return self.client_for(self.client_type)

    @cached_property
    def runtime_client(self) -> Any:
        return self.client_for("sagemaker-runtime")

    @cached_property
    def s3_client(self) -> Any:
        return self.client_for("s3")

    @cached_property
    def logs_client(self) -> Any:
        return self.client_for("logs")

    @cached_property
    def cloudwatch_client(self) -> Any:
        return self.client_for("cloudwatch")

    @property
    def endpoint_url(self) -> str | None:
        """The connection's SageMaker endpoint_url (set for the emulator, None on AWS)."""
        return self.conn_config.get_service_endpoint_url(service_name="sagemaker")

    # -- jobs (training, processing, transform) ------------------------------------------------------------
    def stop_job(self, job_type: str, name: str) -> None:
        """Ask SageMaker to stop the ``job_type`` job ``name``; a job that already finished is left alone."""
        calls = JOB_CALLS[job_type]
        try:
            getattr(self.get_conn(), calls.stop)(**{calls.name_key: name})
        except ClientError as error:
            message = error.response.get("Error", {}).get("Message", "")
            if error.response.get("Error", {}).get("Code") == "ValidationException" and "status" in message.lower():
                self.log.info("%s %s is not running, nothing to stop: %s", calls.title, name, message)
                return
            raise

    def describe_job_or_none(self, job_type: str, name: str) -> dict | None:
        """The ``job_type`` job ``name``'s description, or None when there is no such job."""
        calls = JOB_CALLS[job_type]
        try:
            return getattr(self.get_conn(), calls.describe)(**{calls.name_key: name})
        except ClientError as error:
            if is_not_found(error):
                return None
            raise

    def stop_training_job(self, name: str) -> None:
        self.stop_job("training", name)

    def describe_training_job_or_none(self, name: str) -> dict | None:
        return self.describe_job_or_none("training", name)

    def training_log_lines(self, job_name: str, *, limit: int = 10_000) -> Iterator[str]:
        """The job's CloudWatch log lines (all streams ``<job>/...``, in stream order)."""
        return self.job_log_lines(TRAINING_LOG_GROUP, job_name, limit=limit)

    def stop_processing_job(self, name: str) -> None:
        self.stop_job("processing", name)

    def describe_processing_job_or_none(self, name: str) -> dict | None:
        return self.describe_job_or_none("processing", name)

    def processing_log_lines(self, job_name: str, *, limit: int = 10_000) -> Iterator[str]:
        return self.job_log_lines(PROCESSING_LOG_GROUP, job_name, limit=limit)

    def stop_transform_job(self, name: str) -> None:
        self.stop_job("transform", name)

    def describe_transform_job_or_none(self, name: str) -> dict | None:
        return self.describe_job_or_none("transform", name)

    def transform_log_lines(self, job_name: str, *, limit: int = 10_000) -> Iterator[str]:
        return self.job_log_lines(TRANSFORM_LOG_GROUP, job_name, limit=limit)

    def job_log_lines(self, group: str, job_name: str, *, limit: int = 10_000) -> Iterator[str]:
        """A job's CloudWatch log lines in ``group`` (all streams ``<job>/...``, in stream order)."""
        streams: list[str] = []
        paginator = self.logs_client.get_paginator("describe_log_streams")
        try:
            for page in paginator.paginate(logGroupName=group, logStreamNamePrefix=f"{job_name}/"):
                streams.extend(s["logStreamName"] for s in page.get("logStreams", []))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return
            raise
        emitted = 0
        for stream in sorted(streams):
            kwargs: dict[str, Any] = {
                "logGroupName": group,
                "logStreamName": stream,
                "startFromHead": True,
            }
            while True:
                page = self.logs_client.get_log_events(**kwargs)
                for event in page.get("events", []):
                    yield f"[{stream}] {event['message'].rstrip()}"
                    emitted += 1
                    if emitted >= limit:
                        return
                token = page.get("nextForwardToken")
                if not page.get("events") or token == kwargs.get("nextToken"):
                    break
                kwargs["nextToken"] = token

    # -- endpoints, configs, models --------------------------------------------------------------------
    def _delete(self, call: str, **kwargs: Any) -> bool:
        try:
            getattr(self.get_conn(), call)(**kwargs)
        except ClientError as error:
            if is_not_found(error):
                self.log.info("%s %s: nothing to delete", call, kwargs)
                return False
            raise
        return True

    def delete_endpoint(self, name: str) -> bool:
        """Delete an endpoint; False when it did not exist."""
        return self._delete("delete_endpoint", EndpointName=name)

    def delete_endpoint_config(self, name: str) -> bool:
        """Delete an endpoint config; False when it did not exist."""
        return self._delete("delete_endpoint_config", EndpointConfigName=name)

    def delete_model(self, name: str) -> bool:  # type: ignore[override]
        """Delete a model; False when it did not exist (the provider's version raises)."""
        return self._delete("delete_model", ModelName=name)

    def update_weights(self, endpoint_name: str, weights: dict[str, float]) -> None:
        """UpdateEndpointWeightsAndCapacities with ``{variant: weight}`` (weights are cast to float)."""
        if not weights:
            raise ValueError("weights must name at least one variant")
        desired = []
        for variant, weight in weights.items():
            value = float(weight)
            if value < 0:
                raise ValueError(f"Weight of variant {variant!r} must be >= 0, got {value}")
            desired.append({"VariantName": variant, "DesiredWeight": value})
        if not any(d["DesiredWeight"] > 0 for d in desired):
            raise ValueError(f"At least one weight must be > 0, got {weights}")
        self.get_conn().update_endpoint_weights_and_capacities(
            EndpointName=endpoint_name, DesiredWeightsAndCapacities=desired
        )

    def _paginate(self, operation: str, result_key: str, name_contains: str | None) -> list[dict]:
        kwargs: dict[str, Any] = {"NameContains": name_contains} if name_contains else {}
        items: list[dict] = []
        for page in self.get_conn().get_paginator(operation).paginate(**kwargs):
            items.extend(page.get(result_key, []))
        return items

    def list_endpoints(self, name_contains: str | None = None) -> list[dict]:
        return self._paginate("list_endpoints", "Endpoints", name_contains)

    def list_models(self, name_contains: str | None = None) -> list[dict]:
        return self._paginate("list_models", "Models", name_contains)

    def list_endpoint_configs(self, name_contains: str | None = None) -> list[dict]:
        return self._paginate("list_endpoint_configs", "EndpointConfigs", name_contains)

    def list_training_jobs_named(self, name_contains: str) -> list[dict]:
        """All training-job summaries whose name contains ``name_contains`` (paginated; one call per page)."""
        return self._paginate("list_training_jobs", "TrainingJobSummaries", name_contains)

    # -- runtime ---------------------------------------------------------------------------------------
    def invoke_endpoint(
        self,
        endpoint_name: str,
        body: bytes | str,
        *,
        content_type: str = "text/csv",
        accept: str | None = None,
        target_model: str | None = None,
        target_variant: str | None = None,
    ) -> dict:
        """InvokeEndpoint; returns ``{"body": bytes, "content_type", "invoked_variant", "latency_ms"}``."""
        kwargs: dict[str, Any] = {
            "EndpointName": endpoint_name,
            "Body": body.encode("utf-8") if isinstance(body, str) else body,
            "ContentType": content_type,
        }
        if accept:
            kwargs["Accept"] = accept
        if target_model:
            kwargs["TargetModel"] = target_model
        if target_variant:
            kwargs["TargetVariant"] = target_variant
        started = time.perf_counter()
        response = self.runtime_client.invoke_endpoint(**kwargs)
        payload = response["Body"].read()
        return {
            "body": payload,
            "content_type": response.get("ContentType"),
            "invoked_variant": response.get("InvokedProductionVariant"),
            "latency_ms": (time.perf_counter() - started) * 1000.0,
        }

    # -- MME prefix ------------------------------------------------------------------------------------
    def list_mme_models(self, mme_prefix_uri: str) -> list[str]:
        """TargetModel names under an MME prefix: keys ending ``.tar.gz``, relative to the prefix, sorted."""
        bucket, prefix = parse_s3_uri(mme_prefix_uri)
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        keys: list[str] = []
        for page in self.s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys.extend(o["Key"][len(prefix) :] for o in page.get("Contents", []) if o["Key"].endswith(".tar.gz"))
        return sorted(keys)

    # -- CloudWatch alarms (deployment guardrails) ------------------------------------------------------
    def put_error_alarm(
        self, endpoint_name: str, variant_name: str, max_errors: float, tags: list | None = None
    ) -> str:
        """Create (or overwrite) the alarm a blue/green deployment rolls back on: the variant's
        ``Invocation5XXErrors`` summed over a minute reaching ``max_errors``. Returns the alarm's name."""
        name = f"sagemaker-fleet-{endpoint_name}-{variant_name}-5xx"[:255]
        kwargs: dict[str, Any] = {
            "AlarmName": name,
            "AlarmDescription": f"5XX errors of {endpoint_name}/{variant_name}: rolls a deployment back",
            "Namespace": "AWS/SageMaker",
            "MetricName": "Invocation5XXErrors",
            "Dimensions": [
                {"Name": "EndpointName", "Value": endpoint_name},
                {"Name": "VariantName", "Value": variant_name},
            ],
            "Statistic": "Sum",
            "Period": 60,
            "EvaluationPeriods": 1,
            "Threshold": float(max_errors),
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            # No traffic is no evidence of errors; the verified-config check still judges the outcome.
            "TreatMissingData": "notBreaching",
        }
        if tags:
            kwargs["Tags"] = tags
        self.cloudwatch_client.put_metric_alarm(**kwargs)
        return name

    # -- CloudWatch metrics ----------------------------------------------------------------------------
    def metrics_publish_delay_seconds(self) -> float:
        """How long after a request its ``AWS/SageMaker`` endpoint metrics are visible in CloudWatch.

        On AWS, 1-3 minutes (metrics are 1-minute aggregates, published late): ``AWS_METRICS_DELAY_SECONDS``.
        When the connection has an ``endpoint_url``, a backend that says otherwise is believed: the local
        emulator answers ``GET <endpoint_url>/_emulator/health`` with ``metrics_publish_delay_seconds`` (about
        2 s). Anything else behind an ``endpoint_url`` (a VPC endpoint, a proxy) gets the AWS figure.
        """
        import urllib.error
        import urllib.request

        endpoint_url = self.conn_config.get_service_endpoint_url(service_name="cloudwatch")
        if not endpoint_url or not endpoint_url.startswith(("http://", "https://")):
            return AWS_METRICS_DELAY_SECONDS
        try:
            with urllib.request.urlopen(f"{endpoint_url.rstrip('/')}/_emulator/health", timeout=5) as response:
                reported = json.loads(response.read()).get("metrics_publish_delay_seconds")
        except (OSError, ValueError, urllib.error.URLError, AttributeError):
            return AWS_METRICS_DELAY_SECONDS
        if isinstance(reported, int | float) and not isinstance(reported, bool) and 0 <= reported <= 3600:
            return float(reported)
        return AWS_METRICS_DELAY_SECONDS

    def get_metric_sum(
        self,
        endpoint_name: str,
        variant_name: str,
        metric_name: str,
        start: dt.datetime,
        end: dt.datetime,
        statistic: str = "Sum",
    ) -> float:
        """Aggregate of an ``AWS/SageMaker`` endpoint metric over [start, end) for one variant.

        Sum/SampleCount add up over periods, Maximum/Minimum take the extreme, Average is weighted by
        SampleCount. 0.0 when there are no datapoints (no traffic is not an error).
        """
        # CloudWatch compares whole seconds and refuses StartTime >= EndTime: a window is at least a second.
        end = max(end, start + dt.timedelta(seconds=1))
        seconds = max(60, int((end - start).total_seconds()))
        period = ((seconds + 59) // 60) * 60  # one period covering the window; must be a multiple of 60
        statistics = [statistic] if statistic in {"Sum", "SampleCount"} else [statistic, "SampleCount"]
        response = self.cloudwatch_client.get_metric_statistics(
            Namespace="AWS/SageMaker",
            MetricName=metric_name,
            Dimensions=[
                {"Name": "EndpointName", "Value": endpoint_name},
                {"Name": "VariantName", "Value": variant_name},
            ],
            StartTime=start,
            EndTime=end,
            Period=period,
            Statistics=statistics,
        )
        points = response.get("Datapoints", [])
        if not points:
            return 0.0
        values = [float(p[statistic]) for p in points if statistic in p]
        if statistic in {"Sum", "SampleCount"}:
            return float(sum(values))
        if statistic == "Maximum":
            return max(values)
        if statistic == "Minimum":
            return min(values)
        weights = [float(p.get("SampleCount", 1.0)) for p in points if statistic in p]
        total = sum(weights)
        return sum(v * w for v, w in zip(values, weights, strict=True)) / total if total else 0.0
