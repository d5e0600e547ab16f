"""EndpointStateTrigger: waits in the triggerer until a SageMaker endpoint settles, and says whether it settled
on the endpoint config that was asked for.

botocore's ``endpoint_in_service`` waiter (and so the provider's trigger and sensor) calls an update that
SageMaker rolled back a success, because the endpoint is InService again, on the *old* config. Here success
means InService *and* ``EndpointConfigName`` equal to the expected config. The decision lives in
:func:`endpoint_outcome` so the deferrable and the polling paths of every operator judge alike.

As in ``sagemaker_fleet.triggers.training``, boto3 calls run in a thread (``asyncio.to_thread``): the project does not
install aiobotocore, and the connection's ``endpoint_url`` (the emulator) applies exactly as on a worker.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from airflow.triggers.base import TriggerEvent

from sagemaker_fleet.triggers.training import PollingAwsTrigger, backoff_delays

__all__ = [
    "FAILED_ENDPOINT_STATES",
    "TRANSITIONAL_ENDPOINT_STATES",
    "EndpointStateTrigger",
    "describe_endpoint_or_none",
    "endpoint_outcome",
    "wait_for_endpoint",
]

TRANSITIONAL_ENDPOINT_STATES = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"})
FAILED_ENDPOINT_STATES = frozenset({"Failed", "UpdateRollbackFailed", "OutOfService"})
# Transient describe errors (throttling, a network blip) are retried this many times in a row.
MAX_CONSECUTIVE_ERRORS = 5


def describe_endpoint_or_none(hook: Any, endpoint_name: str) -> dict[str, Any] | None:
    """DescribeEndpoint through a SageMaker hook; None when the endpoint does not exist."""
    from botocore.exceptions import ClientError

    from sagemaker_fleet.hooks.sagemaker import is_not_found

    try:
        return hook.get_conn().describe_endpoint(EndpointName=endpoint_name)
    except ClientError as error:
        if is_not_found(error):
            return None
        raise


def endpoint_outcome(
    endpoint_name: str, description: dict[str, Any] | None, expected_config_name: str | None = None
) -> dict[str, Any] | None:
    """The event for a DescribeEndpoint answer, or None while the endpoint is still changing.

    ``description`` None means the endpoint does not exist (an ``error``: there is nothing to wait for).
    """
    if description is None:
        return {
            "status": "error",
            "endpoint_name": endpoint_name,
            "endpoint_status": None,
            "endpoint_config_name": None,
            "failure_reason": None,
            "message": f"Endpoint {endpoint_name} does not exist",
        }
    status = description.get("EndpointStatus")
    if status in TRANSITIONAL_ENDPOINT_STATES:
        return None
    config = description.get("EndpointConfigName")
    reason = description.get("FailureReason")
    event: dict[str, Any] = {
        "endpoint_name": endpoint_name,
        "endpoint_status": status,
        "endpoint_config_name": config,
        "failure_reason": reason,
    }
    if status == "InService" and (expected_config_name is None or config == expected_config_name):
        return {**event, "status": "success", "message": f"Endpoint {endpoint_name} is InService on {config}"}
    if status == "InService":
        # SageMaker rolled the update back: the endpoint serves, but not what was deployed.
        because = f": {reason}" if reason else " (no FailureReason given)"
        message = (
            f"Endpoint {endpoint_name} is InService on {config}, not on the requested {expected_config_name}; "
            f"the update was rolled back{because}"
        )
        return {**event, "status": "failed", "message": message}
    because = f": {reason}" if reason else " (no FailureReason given)"
    return {**event, "status": "failed", "message": f"Endpoint {endpoint_name} is {status} on {config}{because}"}


def wait_for_endpoint(
    describe: Callable[[str], dict[str, Any] | None],
    endpoint_name: str,
    *,
    expected_config_name: str | None = None,
    poll_interval: float = 5.0,
    timeout_seconds: float = 3600,
    log: Any = None,
) -> dict[str, Any]:
    """Blocking twin of the trigger for operators that do not defer; returns the same event dict."""
    deadline = time.monotonic() + timeout_seconds
    last_status = None
    delays = backoff_delays(poll_interval)
    while True:
        description = describe(endpoint_name)
        outcome = endpoint_outcome(endpoint_name, description, expected_config_name)
        if outcome is not None:
            return outcome
        status = (description or {}).get("EndpointStatus")
        if log is not None and status != last_status:
            log.info("Endpoint %s is %s", endpoint_name, status)
        last_status = status
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return {
                "status": "timeout",
                "endpoint_name": endpoint_name,
                "endpoint_status": status,
                "endpoint_config_name": (description or {}).get("EndpointConfigName"),
                "failure_reason": None,
                "message": f"Endpoint {endpoint_name} still {status} after {timeout_seconds:.0f} s",
            }
        time.sleep(min(next(delays), remaining))


class EndpointStateTrigger(PollingAwsTrigger):
    """Poll DescribeEndpoint until the endpoint leaves Creating/Updating/SystemUpdating/RollingBack/Deleting.

    Yields one ``TriggerEvent`` with ``status`` ``success`` (InService on the expected config), ``failed``
    (Failed, UpdateRollbackFailed, OutOfService, or InService on another config: a silent rollback),
    ``timeout`` or ``error``, plus ``endpoint_name``, ``endpoint_status``, ``endpoint_config_name``,
    ``failure_reason`` and ``message``.

    :param endpoint_name: the endpoint to watch
    :param expected_config_name: the config the endpoint must end on; None accepts any InService config
    :param poll_interval: seconds between DescribeEndpoint calls
    :param timeout_seconds: give up (status ``timeout``) after this many seconds
    :param aws_conn_id, region_name, verify, botocore_config: the operator's AWS settings, so the deferred
        half talks to the same account, region and endpoint URL as the worker half
    """

    def __init__(
        self,
        endpoint_name: str,
        *,
        expected_config_name: str | None = None,
        poll_interval: float = 5.0,
        timeout_seconds: float = 3600,
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
        self.endpoint_name = endpoint_name
        self.expected_config_name = expected_config_name

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return self._serialized(endpoint_name=self.endpoint_name, expected_config_name=self.expected_config_name)

    def _event(self, status: str, message: str, description: dict[str, Any] | None = None) -> TriggerEvent:
        description = description or {}
        return TriggerEvent(
            {
                "status": status,
                "endpoint_name": self.endpoint_name,
                "endpoint_status": description.get("EndpointStatus"),
                "endpoint_config_name": description.get("EndpointConfigName"),
                "failure_reason": description.get("FailureReason"),
                "message": message,
            }
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        hook = await asyncio.to_thread(self.hook)
        deadline = time.monotonic() + self.timeout_seconds
        errors = 0
        last_status: str | None = None
        description: dict[str, Any] | None = {}
        delays = backoff_delays(self.poll_interval)
        while True:
            try:
                description = await asyncio.to_thread(describe_endpoint_or_none, hook, self.endpoint_name)
                errors = 0
                outcome = endpoint_outcome(self.endpoint_name, description, self.expected_config_name)
                if outcome is not None:
                    yield TriggerEvent(outcome)
                    return
                status = (description or {}).get("EndpointStatus")
                if status != last_status:
                    self.log.info("Endpoint %s is %s", self.endpoint_name, status)
                    last_status = status
            except Exception as error:  # throttling or network: retry a few times before giving up
                errors += 1
                self.log.warning("DescribeEndpoint %s failed (%d in a row): %s", self.endpoint_name, errors, error)
                if errors >= MAX_CONSECUTIVE_ERRORS:
                    yield self._event("error", f"DescribeEndpoint kept failing: {error}")
                    return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                yield self._event(
                    "timeout",
                    f"Endpoint {self.endpoint_name} still {last_status} after {self.timeout_seconds:.0f} s",
                    description,
                )
                return
            await asyncio.sleep(min(next(delays), remaining))
