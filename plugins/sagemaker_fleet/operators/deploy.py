"""SageMakerDeployEndpointOperator: create or update an endpoint to a new endpoint config, wait, and verify.

Better than the provider's ``SageMakerEndpointOperator`` on the points that bite in production: models and
configs that already exist with the same definition are reused (a retry or backfill does not fail), a
different definition under the same name is an error (never silently reused), the wait is in seconds,
and success means DescribeEndpoint reports the *requested* config InService (a silent rollback fails).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.operators.base_aws import AwsBaseOperator
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from airflow.providers.common.compat.sdk import AirflowException

from sagemaker_fleet.hooks.sagemaker import SageMakerFleetHook, is_not_found
from sagemaker_fleet.links.sagemaker import SageMakerEndpointLink
from sagemaker_fleet.triggers.endpoint import (
    EndpointStateTrigger,
    endpoint_outcome,
    wait_for_endpoint,
)
from sagemaker_fleet.utils.config import default_deferrable
from sagemaker_fleet.utils.tags import merge_tags, run_tags

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = [
    "SUPERSEDES_TAG",
    "SageMakerDeployEndpointOperator",
    "SageMakerProbedDeployEndpointOperator",
    "cast_numbers",
    "definition_differences",
]

# Recorded on each config this operator creates, so a retry that finds the endpoint already on it can
# still report (and clean up) the config it replaced.
SUPERSEDES_TAG = "sagemaker-fleet:supersedes"

# Jinja renders strings; SageMaker rejects "1" for an integer and "0.5" for a float.
INT_KEYS = frozenset(
    {
        "InitialInstanceCount",
        "DesiredInstanceCount",
        "VolumeSizeInGB",
        "ModelDataDownloadTimeoutInSeconds",
        "ContainerStartupHealthCheckTimeoutInSeconds",
        "MemorySizeInMB",
        "MaxConcurrency",
        "ProvisionedConcurrency",
        "WaitIntervalInSeconds",
        "TerminationWaitInSeconds",
        "MaximumExecutionTimeoutInSeconds",
        "Value",
        "InitialSamplingPercentage",
    }
)
FLOAT_KEYS = frozenset({"InitialVariantWeight", "DesiredWeight"})


def _to_int(key: str, value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{key} must be an integer, got {value!r}")
    number = float(value)
    if not number.is_integer():
        raise ValueError(f"{key} must be an integer, got {value!r}")
    return int(number)


def cast_numbers(value: Any, key: str = "") -> Any:
    """A copy of a request with the known integer and float fields cast from rendered strings."""
    if isinstance(value, dict):
        # Tag values are strings even when they look like numbers ("Value" is also CanarySize's count).
        return {k: v if k == "Tags" else cast_numbers(v, k) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [cast_numbers(v, key) for v in value]
    if value is None:
        return None
    try:
        if key in INT_KEYS:
            return _to_int(key, value)
        if key in FLOAT_KEYS:
            number = float(value)
            if isinstance(value, bool) or not math.isfinite(number):
                raise ValueError
            return number
    except (TypeError, ValueError):
        raise ValueError(f"{key} must be a number, got {value!r}") from None
    return value


def definition_differences(requested: Any, existing: Any, path: str = "") -> list[str]:
    """Where ``existing`` (a Describe* answer) disagrees with ``requested`` (a Create* request).

    Only what the request states is compared: Describe* adds ARNs, times and defaults. Tags are not part
    of the definition (they cannot be read back from Describe*).
    """
    if isinstance(requested, dict):
        if not isinstance(existing, dict):
            return [f"{path or 'request'}: {existing!r} != {requested!r}"]
        differences: list[str] = []
        for key, value in requested.items():
            if key == "Tags":
                continue
            sub = f"{path}.{key}" if path else key
            if key not in existing:
                if value not in (None, {}, [], ""):
                    differences.append(f"{sub}: missing on the existing resource, requested {value!r}")
                continue
            differences.extend(definition_differences(value, existing[key], sub))
        return differences
    if isinstance(requested, list | tuple):
        if not isinstance(existing, list | tuple) or len(existing) != len(requested):
            return [f"{path}: {existing!r} != {requested!r}"]
        return [d for i, (r, e) in enumerate(zip(requested, existing, strict=True)) for d in
                definition_differences(r, e, f"{path}[{i}]")]  # fmt: skip
    if isinstance(requested, int | float) and isinstance(existing, int | float) and not isinstance(requested, bool):
        return [] if float(requested) == float(existing) else [f"{path}: {existing!r} != {requested!r}"]
    return [] if requested == existing else [f"{path}: {existing!r} != {requested!r}"]


class SageMakerDeployEndpointOperator(AwsBaseOperator[SageMakerFleetHook]):
    """Create or update ``endpoint_name`` so it runs ``endpoint_config``, and prove that it does.

    :param endpoint_name: the endpoint to create or update (the name stays the same across runs)
    :param endpoint_config: a CreateEndpointConfig request; use a new name for each deployment (configs in
        use are never edited). An existing config with the same definition is reused, a different one fails.
    :param models: CreateModel requests for the models the config names (same reuse rule)
    :param deployment_config: UpdateEndpoint ``DeploymentConfig`` (blue/green or rolling, auto-rollback alarms)
    :param delete_superseded_configs: after success delete the config the endpoint ran before (never the
        one in use)
    :param deferrable: wait in the triggerer (no worker slot) instead of polling on the worker; defaults to
        ``[operators] default_deferrable``, True when unset
    :param check_interval: seconds between DescribeEndpoint calls
    :param max_wait_seconds: how long the create or update may take, in seconds
    :param rollback_on_5xx_errors: with a blue/green ``deployment_config``: create a CloudWatch alarm per variant
        of the new config on ``Invocation5XXErrors`` (summed over a minute) reaching this many, and add them to
        ``AutoRollbackConfiguration``, so SageMaker itself rolls the update back; the task then fails on the
        verified-config check
    :param tags: tags for what this task creates (models, config, endpoint) besides the requests' own ``Tags``
        and the automatic ``airflow:dag_id``/``airflow:run_id``; set at creation, never changed on a resource
        that already exists (a shared model keeps the tags of the run that created it)

    Returns ``{"endpoint_name", "endpoint_config_name", "previous_endpoint_config_name", "operation",
    "deleted_endpoint_configs"}`` where operation is ``create``, ``update`` or ``noop``.
    """

    aws_hook_class = SageMakerFleetHook
    template_fields: Sequence[str] = aws_template_fields(
        "endpoint_name", "endpoint_config", "models", "deployment_config", "tags"
    )
    template_fields_renderers = {"endpoint_config": "json", "models": "json", "deployment_config": "json"}
    operator_extra_links = (SageMakerEndpointLink(),)
    ui_color = "#f0eee4"

    def __init__(
        self,
        *,
        endpoint_name: str,
        endpoint_config: dict,
        models: list[dict] | None = None,
        deployment_config: dict | None = None,
        delete_superseded_configs: bool = False,
        deferrable: bool = default_deferrable(),
        check_interval: float = 5,
        max_wait_seconds: int = 3600,
        tags: dict[str, str] | None = None,
        rollback_on_5xx_errors: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.tags = tags
        self.rollback_on_5xx_errors = rollback_on_5xx_errors
        if check_interval <= 0:
            raise ValueError(f"check_interval must be > 0, got {check_interval}")
        if max_wait_seconds <= 0:
            raise ValueError(f"max_wait_seconds must be > 0 seconds, got {max_wait_seconds}")
        self.endpoint_name = endpoint_name
        self.endpoint_config = endpoint_config
        self.models = models
        self.deployment_config = deployment_config
        self.delete_superseded_configs = delete_superseded_configs
        self.deferrable = deferrable
        self.check_interval = check_interval
        self.max_wait_seconds = max_wait_seconds

    # -- validation ---------------------------------------------------------------------------------
    def _checked_requests(self) -> tuple[dict, list[dict], dict | None]:
        """Rendered requests with numbers cast; every problem reported before anything is created."""
        from sagemaker_fleet.utils.ab_statistics import validate_weights
        from sagemaker_fleet.utils.naming import is_valid_sagemaker_name

        problems: list[str] = []
        if not is_valid_sagemaker_name(self.endpoint_name):
            problems.append(f"endpoint_name {self.endpoint_name!r} is not a valid SageMaker name")
        if not isinstance(self.endpoint_config, dict):
            raise ValueError(
                f"endpoint_config must be a CreateEndpointConfig request (dict), got {self.endpoint_config!r}"
            )
        if self.models is not None and not (
            isinstance(self.models, list | tuple) and all(isinstance(m, dict) for m in self.models)
        ):
            raise ValueError(f"models must be a list of CreateModel requests, got {self.models!r}")
        config = cast_numbers(self.endpoint_config)
        models = [cast_numbers(m) for m in (self.models or [])]
        deployment = cast_numbers(self.deployment_config) if self.deployment_config else None
        config_name = config.get("EndpointConfigName")
        if not is_valid_sagemaker_name(config_name):
            problems.append(f"EndpointConfigName {config_name!r} is not a valid SageMaker name")
        variants = config.get("ProductionVariants")
        if not isinstance(variants, list) or not variants:
            problems.append("endpoint_config needs a non-empty ProductionVariants list")
            variants = []
        names = [v.get("VariantName") for v in variants if isinstance(v, dict)]
        if len(set(names)) != len(names):
            problems.append(f"VariantName values must be unique, got {names}")
        for index, variant in enumerate(variants):
            if not isinstance(variant, dict) or not variant.get("ModelName"):
                problems.append(f"ProductionVariants[{index}] needs a VariantName and a ModelName")
        weights = {
            v["VariantName"]: v.get("InitialVariantWeight", 1.0)
            for v in variants
            if isinstance(v, dict) and v.get("VariantName")
        }
        if weights:
            try:
                validate_weights(weights)
            except ValueError as error:
                problems.append(str(error))
        for model in models:
            if not is_valid_sagemaker_name(model.get("ModelName")):
                problems.append(f"ModelName {model.get('ModelName')!r} is not a valid SageMaker name")
        if problems:
            raise ValueError(f"Cannot deploy {self.endpoint_name}: " + "; ".join(problems))
        return config, models, deployment

    # -- idempotent create --------------------------------------------------------------------------
    def _describe_or_none(self, call: str, **kwargs: Any) -> dict | None:
        from botocore.exceptions import ClientError

        try:
            return getattr(self.hook.get_conn(), call)(**kwargs)
        except ClientError as error:
            if is_not_found(error):
                return None
            raise

    def _ensure(self, kind: str, name: str, request: dict, describe: str, create: str, name_key: str) -> bool:
        """Create the resource, or reuse an identical existing one; True when it was created."""
        existing = self._describe_or_none(describe, **{name_key: name})
        if existing is None:
            self.log.info("Creating %s %s", kind, name)
            getattr(self.hook.get_conn(), create)(**request)
            return True
        differences = definition_differences(request, existing)
        if differences:
            raise AirflowException(
                f"{kind} {name} already exists with a different definition ({'; '.join(differences[:5])}). "
                f"Give the new {kind} a new name; an existing {kind} is never changed or silently reused."
            )
        self.log.info("Reusing the existing %s %s (same definition)", kind, name)
        return False

    def _config_tag(self, config_name: str) -> str | None:
        """The config this one superseded, from the tag written when it was created."""
        description = self._describe_or_none("describe_endpoint_config", EndpointConfigName=config_name)
        if not description:
            return None
        tags = self.hook.get_conn().list_tags(ResourceArn=description["EndpointConfigArn"]).get("Tags", [])
        return next((t["Value"] for t in tags if t.get("Key") == SUPERSEDES_TAG), None) or None

    # -- execute ------------------------------------------------------------------------------------
    def execute(self, context: Context) -> dict[str, Any]:
        config, models, deployment = self._checked_requests()
        config_name = config["EndpointConfigName"]
        hook = self.hook
        SageMakerEndpointLink.persist_for(context, self, name=self.endpoint_name)
        requested_models = {m["ModelName"] for m in models}
        referenced = sorted({v["ModelName"] for v in config["ProductionVariants"]} - requested_models)
        missing = [name for name in referenced if self._describe_or_none("describe_model", ModelName=name) is None]
        if missing:
            raise ValueError(f"endpoint_config names model(s) {missing} that neither exist nor are in models")

        endpoint = hook.describe_endpoint_or_none(self.endpoint_name)
        if endpoint and endpoint.get("EndpointStatus") == "Failed":
            raise AirflowException(
                f"Endpoint {self.endpoint_name} is Failed ({endpoint.get('FailureReason') or 'no reason given'}); "
                "SageMaker only allows deleting a Failed endpoint. Delete it, then deploy again."
            )
        pending = ((endpoint or {}).get("PendingDeploymentSummary") or {}).get("EndpointConfigName")
        if (
            endpoint
            and endpoint.get("EndpointStatus") in {"Creating", "Updating"}
            and config_name
            in (
                pending,
                endpoint.get("EndpointConfigName"),
            )
        ):
            # A previous try of this task started this very deployment: wait for it instead of starting another.
            operation = "create" if endpoint["EndpointStatus"] == "Creating" else "update"
            previous = None if operation == "create" else endpoint.get("EndpointConfigName")
            if previous == config_name:
                previous = self._config_tag(config_name)
            self.log.info("Endpoint %s is already %s to %s; re-attaching", self.endpoint_name, operation, config_name)
            return self._wait(context, config_name, previous, operation)
        if endpoint and endpoint.get("EndpointStatus") in {"Creating", "Updating", "SystemUpdating", "RollingBack",
                                                           "Deleting"}:  # fmt: skip
            self.log.info("Endpoint %s is %s; waiting for it to settle first", self.endpoint_name,
                          endpoint["EndpointStatus"])  # fmt: skip
            wait_for_endpoint(
                hook.describe_endpoint_or_none,
                self.endpoint_name,
                poll_interval=self.check_interval,
                timeout_seconds=self.max_wait_seconds,
                log=self.log,
            )
            endpoint = hook.describe_endpoint_or_none(self.endpoint_name)

        if (
            endpoint
            and endpoint.get("EndpointConfigName") == config_name
            and endpoint.get("EndpointStatus") == "InService"
        ):
            previous = self._config_tag(config_name)
            self.log.info("Endpoint %s already runs %s and is InService: nothing to deploy", self.endpoint_name,
                          config_name)  # fmt: skip
            result = self._result(config_name, previous, "noop")
            return self._finish(result)

        previous = endpoint.get("EndpointConfigName") if endpoint else None
        created_by = run_tags(context, self.tags)
        models = [{**model, "Tags": merge_tags(model.get("Tags"), created_by)} for model in models]
        config = {**config, "Tags": merge_tags(config.get("Tags"), created_by)}
        for model in models:
            self._ensure("model", model["ModelName"], model, "describe_model", "create_model", "ModelName")
        if previous and previous != config_name:
            tags = [t for t in config.get("Tags", []) if t.get("Key") != SUPERSEDES_TAG]
            config = {**config, "Tags": [*tags, {"Key": SUPERSEDES_TAG, "Value": previous}]}
        self._ensure(
            "endpoint config", config_name, config, "describe_endpoint_config", "create_endpoint_config",
            "EndpointConfigName",
        )  # fmt: skip

        conn = hook.get_conn()
        if endpoint is None:
            self.log.info("Creating endpoint %s on %s", self.endpoint_name, config_name)
            try:
                conn.create_endpoint(EndpointName=self.endpoint_name, EndpointConfigName=config_name, Tags=created_by)
            except Exception as error:
                # Two tries racing: the other created it first; re-attach through the normal path.
                if "already existing" not in str(error):
                    raise
                self.log.info("Endpoint %s was created concurrently: %s", self.endpoint_name, error)
            operation = "create"
        else:
            self.log.info("Updating endpoint %s from %s to %s", self.endpoint_name, previous, config_name)
            kwargs: dict[str, Any] = {"EndpointName": self.endpoint_name, "EndpointConfigName": config_name}
            if deployment:
                kwargs["DeploymentConfig"] = self._with_rollback_alarms(deployment, config, created_by)
            conn.update_endpoint(**kwargs)
            operation = "update"
        return self._wait(context, config_name, previous, operation)

    def _with_rollback_alarms(self, deployment: dict, config: dict, tags: list) -> dict:
        if self.rollback_on_5xx_errors is None:
            return deployment
        threshold = float(self.rollback_on_5xx_errors)
        if not math.isfinite(threshold) or threshold < 1:
            raise ValueError(f"rollback_on_5xx_errors must be a number >= 1, got {self.rollback_on_5xx_errors!r}")
        if "BlueGreenUpdatePolicy" not in deployment:
            raise ValueError("rollback_on_5xx_errors needs a deployment_config with a BlueGreenUpdatePolicy")
        rollback = dict(deployment.get("AutoRollbackConfiguration") or {})
        alarms = list(rollback.get("Alarms") or [])
        for variant in config["ProductionVariants"]:
            name = self.hook.put_error_alarm(self.endpoint_name, variant["VariantName"], threshold, tags)
            if all(a.get("AlarmName") != name for a in alarms):
                alarms.append({"AlarmName": name})
            self.log.info("Deployment rolls back when alarm %s goes into ALARM", name)
        return {**deployment, "AutoRollbackConfiguration": {**rollback, "Alarms": alarms}}

    def _result(self, config_name: str, previous: str | None, operation: str) -> dict[str, Any]:
        return {
            "endpoint_name": self.endpoint_name,
            "endpoint_config_name": config_name,
            "previous_endpoint_config_name": previous,
            "operation": operation,
            "deleted_endpoint_configs": [],
        }

    def _wait(self, context: Context, config_name: str, previous: str | None, operation: str) -> dict[str, Any]:
        result = self._result(config_name, previous, operation)
        hook = self.hook
        outcome = endpoint_outcome(self.endpoint_name, hook.describe_endpoint_or_none(self.endpoint_name), config_name)
        if outcome is None and self.deferrable:
            self.defer(
                trigger=EndpointStateTrigger(
                    self.endpoint_name,
                    expected_config_name=config_name,
                    poll_interval=self.check_interval,
                    timeout_seconds=self.max_wait_seconds,
                    aws_conn_id=self.aws_conn_id,
                    region_name=self.region_name,
                    verify=self.verify,
                    botocore_config=self.botocore_config,
                ),
                method_name="execute_complete",
                kwargs={"result": result},
                # The trigger reports its own timeout; this only catches a triggerer that never answers.
                timeout=dt.timedelta(seconds=self.max_wait_seconds + 120),
            )
        if outcome is None:
            outcome = wait_for_endpoint(
                hook.describe_endpoint_or_none,
                self.endpoint_name,
                expected_config_name=config_name,
                poll_interval=self.check_interval,
                timeout_seconds=self.max_wait_seconds,
                log=self.log,
            )
        return self.execute_complete(context, outcome, result)

    def execute_complete(
        self, context: Context, event: dict[str, Any] | None = None, result: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        if not event:
            raise AirflowException(f"Deployment of {self.endpoint_name}: no trigger event received")
        if not result:
            # Resumed without the kwargs given to defer() (dag.test() passes only the event): rebuild the
            # result from the rendered request and the config's own record of what it superseded.
            config_name = self.endpoint_config["EndpointConfigName"]
            result = self._result(config_name, self._config_tag(config_name), "update")
        config_name = result["endpoint_config_name"]
        if event.get("status") != "success":
            raise AirflowException(
                f"Deployment of {config_name} to {self.endpoint_name} failed: {event.get('message')}"
            )
        # Never trust the event alone: look the endpoint up again by name.
        verified = endpoint_outcome(
            self.endpoint_name, self.hook.describe_endpoint_or_none(self.endpoint_name), config_name
        )
        if not verified or verified["status"] != "success":
            message = verified["message"] if verified else "the endpoint is changing again"
            raise AirflowException(f"Deployment of {config_name} to {self.endpoint_name} not verified: {message}")
        self.log.info("Verified: endpoint %s is InService on %s (%s)", self.endpoint_name, config_name,
                      result["operation"])  # fmt: skip
        return self._finish(result)

    def _finish(self, result: dict[str, Any]) -> dict[str, Any]:
        previous = result["previous_endpoint_config_name"]
        if self.delete_superseded_configs and previous and previous != result["endpoint_config_name"]:
            current = (self.hook.describe_endpoint_or_none(self.endpoint_name) or {}).get("EndpointConfigName")
            if current == previous:
                self.log.warning("Not deleting %s: endpoint %s still uses it", previous, self.endpoint_name)
            elif self.hook.delete_endpoint_config(previous):
                self.log.info("Deleted superseded endpoint config %s", previous)
                result = {**result, "deleted_endpoint_configs": [previous]}
        return result


class SageMakerProbedDeployEndpointOperator(SageMakerDeployEndpointOperator):
    """The deploy operator with a probe: a thread invokes the endpoint with ``probe_body`` before, during and
    after the update, and the task fails if a single request failed, even when the update succeeded.

    It waits on the worker instead of deferring: the probe must live as long as the update does.
    Returns the deploy result plus ``probe`` (requests and failures before, during and after the update).
    """

    template_fields = (*SageMakerDeployEndpointOperator.template_fields, "probe_body")

    def __init__(self, *, probe_body: str, **kwargs: Any) -> None:
        kwargs["deferrable"] = False
        super().__init__(**kwargs)
        if not probe_body:
            raise ValueError("probe_body must be a payload the endpoint accepts (e.g. one CSV row)")
        self.probe_body = probe_body

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowFailException

        from sagemaker_fleet.utils.endpoint_probe import EndpointProbe

        # CSV, as the built-in algorithms take it.
        with EndpointProbe(self.hook.runtime_client, self.endpoint_name, self.probe_body) as probe:
            probe.mark("update_started")
            result = super().execute(context)
            probe.mark("update_done")
            summary = probe.stop()
        self.log.info("Probe of %s: %s", self.endpoint_name, summary)
        if summary["failed"]:
            raise AirflowFailException(
                f"{summary['failed']} of {summary['requests']} probe requests failed while {self.endpoint_name} "
                f"was updated to {result['endpoint_config_name']}: {summary['errors'][:3]}"
            )
        return {**result, "probe": summary}
