"""SageMakerEndpointStateSensor: wait for an endpoint to settle, deferring to EndpointStateTrigger.

The provider's ``SageMakerEndpointSensor`` cannot defer and counts ``UpdateRollbackFailed`` and an
update that was rolled back (InService on the old config) as success; this sensor fails on both.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.sensors.base_aws import AwsBaseSensor
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from airflow.providers.common.compat.sdk import AirflowException

from sagemaker_fleet.hooks.sagemaker import SageMakerFleetHook
from sagemaker_fleet.links.sagemaker import SageMakerEndpointLink
from sagemaker_fleet.triggers.endpoint import EndpointStateTrigger, endpoint_outcome
from sagemaker_fleet.utils.config import default_deferrable

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["SageMakerEndpointStateSensor"]


class SageMakerEndpointStateSensor(AwsBaseSensor[SageMakerFleetHook]):
    """Succeed when ``endpoint_name`` is InService (on ``expected_config_name`` when given).

    ``Failed``, ``UpdateRollbackFailed``, ``OutOfService`` and InService on another config (a silent
    rollback) fail the task with the endpoint's FailureReason; a missing endpoint fails too.

    :param endpoint_name: the endpoint to watch
    :param expected_config_name: the config the endpoint must run; None accepts any
    :param deferrable: wait in the triggerer, holding no worker slot; defaults to
        ``[operators] default_deferrable``, True when unset
    :param poll_interval: seconds between DescribeEndpoint calls
    :param timeout: seconds before the sensor gives up
    """

    aws_hook_class = SageMakerFleetHook
    template_fields: Sequence[str] = aws_template_fields("endpoint_name", "expected_config_name")
    template_fields_renderers: dict[str, str] = {}
    operator_extra_links = (SageMakerEndpointLink(),)

    def __init__(
        self,
        *,
        endpoint_name: str,
        expected_config_name: str | None = None,
        deferrable: bool = default_deferrable(),
        poll_interval: float = 5,
        timeout: float = 3600,
        **kwargs: Any,
    ) -> None:
        if poll_interval <= 0:
            raise ValueError(f"poll_interval must be > 0, got {poll_interval}")
        super().__init__(poke_interval=poll_interval, timeout=timeout, **kwargs)
        self.endpoint_name = endpoint_name
        self.expected_config_name = expected_config_name
        self.deferrable = deferrable
        self.poll_interval = poll_interval

    def execute(self, context: Context) -> Any:
        SageMakerEndpointLink.persist_for(context, self, name=self.endpoint_name)
        if not self.deferrable:
            return super().execute(context)
        # Already settled: answer now instead of a round trip through the triggerer.
        if self.poke(context):
            return None
        self.defer(
            trigger=EndpointStateTrigger(
                self.endpoint_name,
                expected_config_name=self.expected_config_name,
                poll_interval=self.poll_interval,
                timeout_seconds=float(self.timeout),
                aws_conn_id=self.aws_conn_id,
                region_name=self.region_name,
                verify=self.verify,
                botocore_config=self.botocore_config,
            ),
            method_name="execute_complete",
            timeout=dt.timedelta(seconds=float(self.timeout) + 60),
        )
        return None

    def poke(self, context: Context) -> bool:
        description = self.hook.describe_endpoint_or_none(self.endpoint_name)
        outcome = endpoint_outcome(self.endpoint_name, description, self.expected_config_name)
        if outcome is None:
            self.log.info("Endpoint %s is %s", self.endpoint_name, (description or {}).get("EndpointStatus"))
            return False
        if outcome["status"] != "success":
            raise AirflowException(outcome["message"])
        self.log.info("%s", outcome["message"])
        return True

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> None:
        if not event:
            raise AirflowException(f"Endpoint {self.endpoint_name}: no trigger event received")
        if event.get("status") != "success":
            raise AirflowException(f"Endpoint {self.endpoint_name}: {event.get('message')}")
        # Re-check by name: the endpoint may have changed since the trigger fired.
        if not self.poke(context):
            raise AirflowException(f"Endpoint {self.endpoint_name} is changing again after the trigger fired")
        self.log.info("Endpoint %s is %s", self.endpoint_name, event.get("message"))
