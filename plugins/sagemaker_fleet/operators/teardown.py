"""SageMakerTeardownOperator: put an endpoint back on its previous config, then delete what a run created.

Meant for ``trigger_rule="all_done"`` teardown tasks, so it must be safe to run after any failure and any
number of times: whatever is already gone is fine, and nothing an endpoint still uses is deleted
(SageMaker itself lets you delete the config or model of a live endpoint, which breaks its next update).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.operators.base_aws import AwsBaseOperator
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from airflow.providers.common.compat.sdk import AirflowException

from sagemaker_fleet.hooks.sagemaker import SageMakerFleetHook, is_not_found
from sagemaker_fleet.triggers.endpoint import (
    endpoint_outcome,
    wait_for_endpoint,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["SageMakerTeardownOperator"]


class SageMakerTeardownOperator(AwsBaseOperator[SageMakerFleetHook]):
    """Restore an endpoint (optional), then delete endpoints, endpoint configs and models; idempotent.

    :param endpoints: endpoints to delete
    :param endpoint_configs: endpoint configs to delete (skipped while an endpoint uses them)
    :param models: models to delete (skipped while a config in use names them)
    :param restore_endpoint: ``{"endpoint_name", "endpoint_config_name"}``: first return that endpoint to
        that config (UpdateEndpoint, wait, verify) if it runs another one
    :param max_wait_seconds: how long the restore (or an in-progress change before a delete) may take
    :param check_interval: seconds between DescribeEndpoint calls

    Returns ``{"restored": {...} | None, "deleted": {...}, "missing": {...}, "kept_in_use": {...}}``.
    A failed restore fails the task, after the deletions that were safe.
    """

    aws_hook_class = SageMakerFleetHook
    template_fields: Sequence[str] = aws_template_fields("endpoints", "endpoint_configs", "models", "restore_endpoint")
    template_fields_renderers = {"restore_endpoint": "json"}

    def __init__(
        self,
        *,
        endpoints: Sequence[str] = (),
        endpoint_configs: Sequence[str] = (),
        models: Sequence[str] = (),
        restore_endpoint: dict | None = None,
        max_wait_seconds: float = 3600,
        check_interval: float = 5,
        trigger_rule: str = "all_done",
        **kwargs: Any,
    ) -> None:
        super().__init__(trigger_rule=trigger_rule, **kwargs)
        self.endpoints = endpoints
        self.endpoint_configs = endpoint_configs
        self.models = models
        self.restore_endpoint = restore_endpoint
        self.max_wait_seconds = max_wait_seconds
        self.check_interval = check_interval

    @staticmethod
    def _names(value: Any, what: str) -> list[str]:
        """Templated lists may render as None or a single string; drop empties and duplicates, keep order."""
        if value is None or value == "":
            return []
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list | tuple | set):
            raise ValueError(f"{what} must be a list of names, got {value!r}")
        return list(dict.fromkeys(str(v) for v in value if v))

    def _wait(self, endpoint: str, expected: str | None = None) -> dict[str, Any]:
        return wait_for_endpoint(
            self.hook.describe_endpoint_or_none,
            endpoint,
            expected_config_name=expected,
            poll_interval=self.check_interval,
            timeout_seconds=self.max_wait_seconds,
            log=self.log,
        )

    def _restore(self, endpoint: str, config: str) -> dict[str, Any]:
        description = self.hook.describe_endpoint_or_none(endpoint)
        if description is None:
            return {"endpoint_name": endpoint, "endpoint_config_name": config, "action": "missing", "ok": False,
                    "message": f"Endpoint {endpoint} does not exist; nothing to restore"}  # fmt: skip
        if description.get("EndpointStatus") in SageMakerFleetHook.endpoint_transitional_states:
            self.log.info("Endpoint %s is %s; waiting before the restore", endpoint, description["EndpointStatus"])
            self._wait(endpoint)
            description = self.hook.describe_endpoint_or_none(endpoint) or {}
        outcome = endpoint_outcome(endpoint, description, config)
        if outcome and outcome["status"] == "success":
            self.log.info("Endpoint %s already runs %s: nothing to restore", endpoint, config)
            return {"endpoint_name": endpoint, "endpoint_config_name": config, "action": "none", "ok": True,
                    "message": outcome["message"]}  # fmt: skip
        self.log.warning("Restoring endpoint %s from %s to %s", endpoint, description.get("EndpointConfigName"), config)
        self.hook.get_conn().update_endpoint(EndpointName=endpoint, EndpointConfigName=config)
        outcome = self._wait(endpoint, config)
        return {
            "endpoint_name": endpoint,
            "endpoint_config_name": config,
            "previous_endpoint_config_name": description.get("EndpointConfigName"),
            "action": "update",
            "ok": outcome["status"] == "success",
            "message": outcome["message"],
        }

    def _in_use(self, deleting: set[str]) -> tuple[set[str], set[str]]:
        """Configs (current and pending) of every endpoint that stays, and the models those configs name."""
        conn = self.hook.get_conn()
        configs: set[str] = set()
        for summary in self.hook.list_endpoints():
            name = summary["EndpointName"]
            if name in deleting:
                continue
            description = self.hook.describe_endpoint_or_none(name) or {}
            configs.add(description.get("EndpointConfigName") or "")
            configs.add((description.get("PendingDeploymentSummary") or {}).get("EndpointConfigName") or "")
        configs.discard("")
        models: set[str] = set()
        for config in configs:
            try:
                variants = conn.describe_endpoint_config(EndpointConfigName=config).get("ProductionVariants", [])
            except Exception as error:
                from botocore.exceptions import ClientError

                if isinstance(error, ClientError) and is_not_found(error):
                    continue
                raise
            models.update(v["ModelName"] for v in variants if v.get("ModelName"))
        return configs, models

    def execute(self, context: Context) -> dict[str, Any]:
        endpoints = self._names(self.endpoints, "endpoints")
        configs = self._names(self.endpoint_configs, "endpoint_configs")
        models = self._names(self.models, "models")
        restore = self.restore_endpoint or None
        if isinstance(restore, dict) and restore.get("endpoint_config_name") in (None, "", "None"):
            # A first deployment has no previous config; the rendered template then says None: nothing to restore.
            self.log.info("No previous endpoint config for %s: nothing to restore", restore.get("endpoint_name"))
            restore = None
        if restore is not None and not (
            isinstance(restore, dict) and restore.get("endpoint_name") and restore.get("endpoint_config_name")
        ):
            raise ValueError(f"restore_endpoint needs endpoint_name and endpoint_config_name, got {restore!r}")

        restored = None
        if restore:
            if restore["endpoint_name"] in endpoints:
                # Deleting an endpoint that should be restored would contradict the request: keep it.
                self.log.warning("Not deleting endpoint %s: it is to be restored", restore["endpoint_name"])
                endpoints.remove(restore["endpoint_name"])
            restored = self._restore(restore["endpoint_name"], restore["endpoint_config_name"])

        deleted: dict[str, list[str]] = {"endpoints": [], "endpoint_configs": [], "models": []}
        missing: dict[str, list[str]] = {"endpoints": [], "endpoint_configs": [], "models": []}
        kept: dict[str, list[str]] = {"endpoint_configs": [], "models": []}
        for endpoint in endpoints:
            description = self.hook.describe_endpoint_or_none(endpoint)
            if description is None:
                missing["endpoints"].append(endpoint)
                continue
            if description.get("EndpointStatus") == "Deleting":
                deleted["endpoints"].append(endpoint)  # an earlier try already asked
                continue
            if description.get("EndpointStatus") in SageMakerFleetHook.endpoint_transitional_states:
                self._wait(endpoint)  # SageMaker refuses to delete an endpoint that is being created or updated
            (deleted if self.hook.delete_endpoint(endpoint) else missing)["endpoints"].append(endpoint)

        configs_in_use, models_in_use = self._in_use(set(endpoints)) if configs or models else (set(), set())
        for config in configs:
            if config in configs_in_use:
                kept["endpoint_configs"].append(config)
            elif self.hook.delete_endpoint_config(config):
                deleted["endpoint_configs"].append(config)
            else:
                missing["endpoint_configs"].append(config)
        for model in models:
            if model in models_in_use:
                kept["models"].append(model)
            elif self.hook.delete_model(model):
                deleted["models"].append(model)
            else:
                missing["models"].append(model)

        result = {"restored": restored, "deleted": deleted, "missing": missing, "kept_in_use": kept}
        self.log.info("Teardown: deleted %s; already gone %s; kept (in use) %s", deleted, missing, kept)
        if restored and not restored["ok"]:
            raise AirflowException(f"Could not restore endpoint {restored['endpoint_name']}: {restored['message']}")
        return result
