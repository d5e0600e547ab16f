"""SageMakerShiftTrafficOperator: move traffic between production variants in steps, with a guard.

Each step is an UpdateEndpointWeightsAndCapacities (in place, no new fleet), a wait until the endpoint is
InService with every CurrentWeight equal to its DesiredWeight, a bake, and a check of each variant's
error rate in CloudWatch over that step. A bad step puts the weights back to where they were when the
task started, so a failed shift never leaves users on a half-shifted endpoint.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.operators.base_aws import AwsBaseOperator
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from airflow.providers.common.compat.sdk import AirflowException

from sagemaker_fleet.hooks.sagemaker import SageMakerFleetHook
from sagemaker_fleet.links.sagemaker import SageMakerEndpointLink
from sagemaker_fleet.triggers.endpoint import endpoint_outcome, wait_for_endpoint

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["SageMakerShiftTrafficOperator"]

ERROR_METRICS = ("Invocation4XXErrors", "Invocation5XXErrors")


class SageMakerShiftTrafficOperator(AwsBaseOperator[SageMakerFleetHook]):
    """Apply ``steps`` of variant weights one after another, baking and checking error rates in between.

    :param endpoint_name: the endpoint whose production variants get new weights
    :param steps: e.g. ``[{"Champion": 0.9, "Challenger": 0.1}, {"Champion": 0.5, "Challenger": 0.5}]``;
        a variant a step leaves out keeps its weight. Every step is validated before any is applied.
    :param bake_seconds: time each step serves traffic before its error rates are judged
    :param max_error_rate: (4XX + 5XX errors) / Invocations above which a variant fails the step
    :param metrics_delay_seconds: extra wait after the bake for CloudWatch to publish the step's metrics
        (about 60-180 s on AWS; the emulator publishes within a second)
    :param max_wait_seconds: how long one weight update may take to become effective
    :param check_interval: seconds between DescribeEndpoint calls

    Returns ``[{"step", "weights", "effective_weights", "window_start", "window_end", "metrics"}]`` where
    ``metrics`` maps each variant to its invocations, errors and error_rate (None without traffic).
    """

    aws_hook_class = SageMakerFleetHook
    template_fields: Sequence[str] = aws_template_fields("endpoint_name", "steps", "bake_seconds", "max_error_rate")
    template_fields_renderers = {"steps": "json"}
    operator_extra_links = (SageMakerEndpointLink(),)

    def __init__(
        self,
        *,
        endpoint_name: str,
        steps: list[dict[str, float]],
        bake_seconds: float = 0,
        max_error_rate: float = 0.05,
        metrics_delay_seconds: float = 1.5,
        max_wait_seconds: float = 1800,
        check_interval: float = 5,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if check_interval <= 0 or max_wait_seconds <= 0:
            raise ValueError("check_interval and max_wait_seconds must be > 0")
        self.endpoint_name = endpoint_name
        self.steps = steps
        self.bake_seconds = bake_seconds
        self.max_error_rate = max_error_rate
        self.metrics_delay_seconds = metrics_delay_seconds
        self.max_wait_seconds = max_wait_seconds
        self.check_interval = check_interval

    def _numbers(self) -> tuple[float, float, float]:
        """Templated numbers arrive as strings; reject what is not a sensible number."""
        try:
            bake, rate, delay = float(self.bake_seconds), float(self.max_error_rate), float(self.metrics_delay_seconds)
        except (TypeError, ValueError):
            raise ValueError("bake_seconds, max_error_rate and metrics_delay_seconds must be numbers") from None
        if not (math.isfinite(bake) and bake >= 0 and math.isfinite(delay) and delay >= 0):
            raise ValueError(f"bake_seconds and metrics_delay_seconds must be >= 0, got {bake} and {delay}")
        if not 0 <= rate <= 1:
            raise ValueError(f"max_error_rate must be within [0, 1], got {rate}")
        return bake, rate, delay

    def _validated_steps(self, current: dict[str, float]) -> list[tuple[dict[str, float], dict[str, float]]]:
        """(requested, effective) weights per step; every problem of every step in one error."""
        from sagemaker_fleet.utils.ab_statistics import validate_weights

        if not isinstance(self.steps, list | tuple) or not self.steps:
            raise ValueError(f"steps must be a non-empty list of {{variant: weight}} dicts, got {self.steps!r}")
        problems: list[str] = []
        checked: list[tuple[dict[str, float], dict[str, float]]] = []
        effective = dict(current)
        for number, step in enumerate(self.steps, start=1):
            if not isinstance(step, dict) or not step:
                problems.append(f"step {number} is not a non-empty {{variant: weight}} dict: {step!r}")
                continue
            # Judged on the weights the endpoint will have: a step may set one variant to 0 while others serve.
            try:
                merged = validate_weights({**effective, **step}, known_variants=list(current))
            except ValueError as error:
                problems.append(f"step {number}: {error}")
                continue
            effective = merged
            checked.append(({name: merged[name] for name in step}, dict(merged)))
        if problems:
            raise ValueError(f"Invalid traffic steps for {self.endpoint_name}: " + "; ".join(problems))
        return checked

    def _apply(self, weights: dict[str, float]) -> None:
        self.hook.update_weights(self.endpoint_name, weights)
        deadline = time.monotonic() + self.max_wait_seconds
        while True:
            outcome = wait_for_endpoint(
                self.hook.describe_endpoint_or_none,
                self.endpoint_name,
                poll_interval=self.check_interval,
                timeout_seconds=max(1.0, deadline - time.monotonic()),
                log=self.log,
            )
            if outcome["status"] != "success":
                raise AirflowException(f"Weights update of {self.endpoint_name} did not settle: {outcome['message']}")
            variants = self.hook.describe_endpoint_or_none(self.endpoint_name)["ProductionVariants"]
            lagging = {
                v["VariantName"]: (v.get("CurrentWeight"), v.get("DesiredWeight"))
                for v in variants
                if v["VariantName"] in weights
                and not math.isclose(v.get("CurrentWeight", -1), weights[v["VariantName"]])
            }
            if not lagging:
                return
            if time.monotonic() > deadline:
                raise AirflowException(f"Weights of {self.endpoint_name} not effective (current, desired): {lagging}")
            time.sleep(self.check_interval)

    def _metrics(self, variants: list[str], start: dt.datetime, end: dt.datetime) -> dict[str, dict[str, Any]]:
        metrics: dict[str, dict[str, Any]] = {}
        for variant in variants:
            figures = {
                name: self.hook.get_metric_sum(self.endpoint_name, variant, name, start, end)
                for name in ("Invocations", *ERROR_METRICS)
            }
            errors = sum(figures[name] for name in ERROR_METRICS)
            # Whether Invocations counts failed requests is not documented; never divide by less than the errors.
            total = max(figures["Invocations"], errors)
            metrics[variant] = {
                "invocations": figures["Invocations"],
                "errors_4xx": figures["Invocation4XXErrors"],
                "errors_5xx": figures["Invocation5XXErrors"],
                "error_rate": errors / total if total else None,
            }
        return metrics

    def execute(self, context: Context) -> list[dict[str, Any]]:
        bake, max_rate, delay = self._numbers()
        hook = self.hook
        SageMakerEndpointLink.persist(
            context, name=self.endpoint_name, region_name=hook.conn_region_name, endpoint_url=hook.endpoint_url
        )
        description = hook.describe_endpoint_or_none(self.endpoint_name)
        outcome = endpoint_outcome(self.endpoint_name, description)
        if outcome is None or outcome["status"] != "success":
            state = outcome["message"] if outcome else f"it is {description['EndpointStatus']}"
            raise AirflowException(f"Cannot shift traffic on {self.endpoint_name}: {state}")
        original = {v["VariantName"]: float(v.get("CurrentWeight", 1.0)) for v in description["ProductionVariants"]}
        steps = self._validated_steps(original)
        self.log.info("Endpoint %s weights before the shift: %s", self.endpoint_name, original)

        applied: list[dict[str, Any]] = []
        try:
            for number, (weights, effective) in enumerate(steps, start=1):
                start = dt.datetime.now(dt.UTC)
                self.log.info("Step %d/%d: setting weights %s", number, len(steps), weights)
                self._apply(weights)
                if bake:
                    self.log.info("Step %d: baking %.1f s", number, bake)
                    time.sleep(bake)
                if delay:
                    time.sleep(delay)
                end = dt.datetime.now(dt.UTC)
                metrics = self._metrics(list(original), start, end)
                record = {
                    "step": number,
                    "weights": weights,
                    "effective_weights": effective,
                    "window_start": start.isoformat(),
                    "window_end": end.isoformat(),
                    "metrics": metrics,
                }
                applied.append(record)
                for variant, figures in metrics.items():
                    self.log.info(
                        "Step %d: %s invocations=%d errors=%d error_rate=%s", number, variant,
                        figures["invocations"], figures["errors_4xx"] + figures["errors_5xx"], figures["error_rate"],
                    )  # fmt: skip
                bad = {v: m for v, m in metrics.items() if m["error_rate"] is not None and m["error_rate"] > max_rate}
                if bad:
                    shown = ", ".join(
                        f"{v}: {m['errors_4xx'] + m['errors_5xx']:.0f} errors in {m['invocations']:.0f} invocations "
                        f"({m['error_rate']:.1%})"
                        for v, m in bad.items()
                    )
                    raise AirflowException(
                        f"Traffic shift on {self.endpoint_name} stopped at step {number} ({weights}): error rate above "
                        f"{max_rate:.1%} for {shown}. Restoring the weights from before the shift: {original}."
                    )
        except BaseException:
            self._restore(original)
            raise
        return applied

    def _restore(self, original: dict[str, float]) -> None:
        try:
            self.log.warning("Restoring the weights of %s to %s", self.endpoint_name, original)
            self._apply(original)
        except Exception:
            self.log.exception("Could not restore the weights of %s to %s", self.endpoint_name, original)
