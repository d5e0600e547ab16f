"""SageMaker deployment guardrails as an UpdateEndpoint ``DeploymentConfig``: blue/green with LINEAR or CANARY
traffic shifting, baked with alarm-based auto-rollback."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["blue_green_deployment_config"]

TRAFFIC_TYPES = ("ALL_AT_ONCE", "CANARY", "LINEAR")


def blue_green_deployment_config(
    *,
    traffic: str = "LINEAR",
    step_percent: int = 50,
    wait_seconds: int = 60,
    termination_wait_seconds: int = 0,
    max_execution_seconds: int | None = None,
    alarms: Sequence[str] = (),
) -> dict[str, Any]:
    """A ``DeploymentConfig`` for UpdateEndpoint.

    :param traffic: ``LINEAR`` (``step_percent`` of the new fleet per step), ``CANARY`` (``step_percent`` first,
        then the rest) or ``ALL_AT_ONCE``
    :param wait_seconds: the bake after each shift, while the alarms are watched (0-3600)
    :param alarms: CloudWatch alarm names; any in ALARM during the bake rolls the update back
    """
    if traffic not in TRAFFIC_TYPES:
        raise ValueError(f"traffic must be one of {TRAFFIC_TYPES}, got {traffic!r}")
    if not 1 <= int(step_percent) <= 99 and traffic != "ALL_AT_ONCE":
        raise ValueError(f"step_percent must be within 1-99 for {traffic}, got {step_percent!r}")
    if not 0 <= int(wait_seconds) <= 3600:
        raise ValueError(f"wait_seconds must be within 0-3600, got {wait_seconds!r}")
    if not 0 <= int(termination_wait_seconds) <= 3600:
        raise ValueError(f"termination_wait_seconds must be within 0-3600, got {termination_wait_seconds!r}")
    if len(alarms) > 10:
        raise ValueError(f"SageMaker takes at most 10 rollback alarms, got {len(alarms)}")
    routing: dict[str, Any] = {"Type": traffic, "WaitIntervalInSeconds": int(wait_seconds)}
    if traffic == "CANARY":
        routing["CanarySize"] = {"Type": "CAPACITY_PERCENT", "Value": int(step_percent)}
    elif traffic == "LINEAR":
        routing["LinearStepSize"] = {"Type": "CAPACITY_PERCENT", "Value": int(step_percent)}
    policy: dict[str, Any] = {
        "TrafficRoutingConfiguration": routing,
        "TerminationWaitInSeconds": int(termination_wait_seconds),
    }
    if max_execution_seconds is not None:
        policy["MaximumExecutionTimeoutInSeconds"] = int(max_execution_seconds)
    config: dict[str, Any] = {"BlueGreenUpdatePolicy": policy}
    if alarms:
        config["AutoRollbackConfiguration"] = {"Alarms": [{"AlarmName": name} for name in alarms]}
    return config
