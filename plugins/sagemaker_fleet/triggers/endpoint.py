"""EndpointStateTrigger: waits in the triggerer until a SageMaker endpoint settles, and says whether it settled
on the endpoint config that was asked for.

botocore's ``endpoint_in_service`` waiter (and so the provider's trigger and sensor) calls an update that
SageMaker rolled back a success, because the endpoint is InService again, on the *old* config. Here the wait
is the package's own botocore waiter ``EndpointInServiceOnConfig`` (``waiters/sagemaker_fleet.json``), whose
acceptors require InService *and* ``EndpointConfigName`` equal to the requested config, run by the provider's
``AwsBaseWaiterTrigger`` machinery with aiobotocore (throttling is retried by the provider's wait loop and by
botocore's retry mode). The event is then judged by :func:`endpoint_outcome`, so the deferrable and the
polling paths of every operator decide alike.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from airflow.providers.amazon.aws.exceptions import WaiterMaxAttemptsError, WaiterTerminalFailure
from airflow.providers.amazon.aws.triggers.base import AwsBaseWaiterTrigger
from airflow.providers.amazon.aws.utils.waiter_with_logging import async_wait
from airflow.providers.common.compat.sdk import AirflowException
from airflow.triggers.base import TriggerEvent

from sagemaker_fleet.hooks.sagemaker import SageMakerFleetHook
from sagemaker_fleet.triggers.base import FIRST_POLL_DELAY_SECONDS, WaitWindow, waiter_max_attempts
from sagemaker_fleet.utils.naming import is_valid_sagemaker_name

# FIRST_POLL_DELAY_SECONDS and waiter_max_attempts live in triggers/base.py; kept importable from here.
__all__ = [
    "FIRST_POLL_DELAY_SECONDS",
    "EndpointStateTrigger",
    "endpoint_outcome",
    "wait_for_endpoint",
    "waiter_max_attempts",
]

FIRST_POLL_SECONDS = 0.25


def backoff_delays(poll_interval: float):
    """Seconds to wait before each next poll: soon, then doubling up to ``poll_interval``."""
    delay = min(FIRST_POLL_SECONDS, poll_interval)
    while True:
        yield delay
        delay = min(delay * 2, poll_interval)


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
    if status in SageMakerFleetHook.endpoint_transitional_states:
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


class EndpointStateTrigger(WaitWindow, AwsBaseWaiterTrigger):
    """Wait until an endpoint leaves Creating/Updating/SystemUpdating/RollingBack/Deleting.

    Yields one ``TriggerEvent`` with ``status`` ``success`` (InService on the expected config), ``failed``
    (Failed, UpdateRollbackFailed, OutOfService, or InService on another config: a silent rollback),
    ``timeout`` or ``error`` (the endpoint does not exist, or DescribeEndpoint kept failing), plus
    ``endpoint_name``, ``endpoint_status``, ``endpoint_config_name``, ``failure_reason`` and ``message``.

    :param endpoint_name: the endpoint to watch
    :param expected_config_name: the config the endpoint must end on; None accepts any InService config
    :param poll_interval: seconds between DescribeEndpoint calls
    :param timeout_seconds: give up (status ``timeout``) after this many seconds
    :param first_poll_delay: seconds before the first DescribeEndpoint (counted in ``timeout_seconds``)
    :param aws_conn_id, region_name, verify, botocore_config: the operator's AWS settings, so the deferred
        half talks to the same account, region and endpoint URL as the worker half
    """

    aws_hook_class = SageMakerFleetHook

    def __init__(
        self,
        endpoint_name: str,
        *,
        expected_config_name: str | None = None,
        poll_interval: float = 5.0,
        timeout_seconds: float = 3600,
        first_poll_delay: float = FIRST_POLL_DELAY_SECONDS,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        verify: bool | str | None = None,
        botocore_config: dict | None = None,
    ) -> None:
        # The name is put into the waiter's JMESPath acceptors: only a valid SageMaker name may go there.
        if expected_config_name is not None and not is_valid_sagemaker_name(expected_config_name):
            raise ValueError(f"expected_config_name {expected_config_name!r} is not a valid SageMaker name")
        attempts = self.set_wait_window(poll_interval, timeout_seconds, first_poll_delay)
        self.endpoint_name = endpoint_name
        self.expected_config_name = expected_config_name
        super().__init__(
            serialized_fields={"endpoint_name": endpoint_name, "expected_config_name": expected_config_name},
            waiter_name="EndpointInServiceOnConfig" if expected_config_name else "EndpointSettled",
            waiter_args={"EndpointName": endpoint_name},
            failure_message=f"Endpoint {endpoint_name} did not settle on {expected_config_name or 'a config'}",
            status_message=f"Endpoint {endpoint_name} is still changing",
            status_queries=["EndpointStatus", "EndpointConfigName"],
            return_key="endpoint_name",
            return_value=endpoint_name,
            waiter_delay=self.poll_interval,  # type: ignore[arg-type]  # asyncio.sleep takes floats
            waiter_max_attempts=attempts,
            aws_conn_id=aws_conn_id,
            region_name=region_name,
            verify=verify,
            botocore_config=botocore_config,
        )

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "endpoint_name": self.endpoint_name,
                "expected_config_name": self.expected_config_name,
                **self.wait_window_fields(),
            },
        )

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
        await self.first_poll_delay_elapsed()
        hook = self.hook()
        async with await hook.get_async_conn() as client:
            parameters = {"endpoint_config_name": self.expected_config_name} if self.expected_config_name else None
            waiter = hook.get_waiter(self.waiter_name, parameters=parameters, deferrable=True, client=client)
            try:
                await async_wait(
                    waiter, self.waiter_delay, self.attempts, self.waiter_args, self.failure_message,
                    self.status_message, self.status_queries,
                )  # fmt: skip
            except WaiterTerminalFailure as error:
                response = error.last_response or {}
                if "Error" in response:  # the error acceptor: DescribeEndpoint said ValidationException
                    message = response["Error"].get("Message") or "not found"
                    yield self._event("error", f"Endpoint {self.endpoint_name} does not exist ({message})")
                    return
                yield TriggerEvent(self._judged(response))
                return
            except WaiterMaxAttemptsError:
                last = await self._describe(client)
                yield self._event(
                    "timeout",
                    f"Endpoint {self.endpoint_name} still {last.get('EndpointStatus')} after "
                    f"{self.timeout_seconds:.0f} s",
                    last,
                )
                return
            except AirflowException as error:  # an error the wait loop does not retry
                yield self._event("error", f"DescribeEndpoint {self.endpoint_name} failed: {error}")
                return
            # The waiter's success acceptor matched; judge the same answer the operators judge.
            yield TriggerEvent(self._judged(await self._describe(client)))

    async def _describe(self, client: Any) -> dict[str, Any]:
        try:
            return await client.describe_endpoint(EndpointName=self.endpoint_name)
        except Exception as error:  # only used to enrich an event; the waiter already decided
            self.log.warning("DescribeEndpoint %s failed: %s", self.endpoint_name, error)
            return {}

    def _judged(self, description: dict[str, Any]) -> dict[str, Any]:
        outcome = endpoint_outcome(self.endpoint_name, description, self.expected_config_name)
        if outcome is None:  # changing again since the waiter's last answer
            return {
                "status": "error",
                "endpoint_name": self.endpoint_name,
                "endpoint_status": description.get("EndpointStatus"),
                "endpoint_config_name": description.get("EndpointConfigName"),
                "failure_reason": description.get("FailureReason"),
                "message": f"Endpoint {self.endpoint_name} started changing again after it settled",
            }
        return outcome
