"""SageMakerShiftTrafficOperator: move traffic between production variants in steps, with a guard.

Each step is an UpdateEndpointWeightsAndCapacities (in place, no new fleet), a wait until the endpoint is
InService with every CurrentWeight equal to its DesiredWeight, a bake, and a check of each variant's error
rate in CloudWatch over that step. A bad step puts the weights back to where they were when the task started,
so a failed shift never leaves users on a half-shifted endpoint.

A step is judged on evidence only: every variant that receives traffic must show Invocations in CloudWatch
for the step's window. CloudWatch publishes them late (1-3 minutes on AWS; the emulator says how long it
takes, see ``SageMakerFleetHook.metrics_publish_delay_seconds``), so the operator waits that long, then keeps
looking up to ``max_metrics_wait_seconds``; a step whose metrics never arrive fails. It never passes on
"no datapoints". Long waits (a bake or the metrics delay of a minute or more, without a probe) are deferred
to the triggerer instead of sleeping on a worker.
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
from sagemaker_fleet.utils.config import default_deferrable

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["SageMakerShiftTrafficOperator"]

ERROR_METRICS = ("Invocation4XXErrors", "Invocation5XXErrors")
# Waits at least this long are deferred (when deferrable and no probe runs); shorter ones sleep.
DEFER_AT_LEAST_SECONDS = 60.0
# With a probe, each variant that gets traffic must have answered this many requests before the bake ends.
MIN_PROBE_REQUESTS_PER_VARIANT = 5


class SageMakerShiftTrafficOperator(AwsBaseOperator[SageMakerFleetHook]):
    """Apply ``steps`` of variant weights one after another, baking and checking error rates in between.

    :param endpoint_name: the endpoint whose production variants get new weights
    :param steps: e.g. ``[{"Champion": 0.9, "Challenger": 0.1}, {"Champion": 0.5, "Challenger": 0.5}]``;
        a variant a step leaves out keeps its weight. Every step is validated before any is applied.
    :param bake_seconds: time each step serves traffic before its error rates are judged
    :param max_error_rate: (4XX + 5XX errors) / Invocations above which a variant fails the step
    :param metrics_delay_seconds: wait after the bake for CloudWatch to publish the step's metrics; None asks
        the backend (180 s on AWS, about 2 s on the emulator)
    :param max_metrics_wait_seconds: how long after that to keep looking for the step's datapoints before the
        step fails; None: 600 s on AWS, ten times the delay (at least 30 s) on the emulator
    :param probe_body: a request body the endpoint accepts; when given, the operator sends its own requests
        (no TargetVariant) during each bake, until every variant with weight > 0 answered a few of them, so
        the step has traffic to judge where no live traffic flows (tests, the emulator, a quiet hour)
    :param deferrable: defer long waits to the triggerer; defaults to ``[operators] default_deferrable``,
        True when unset
    :param max_wait_seconds: how long one weight update may take to become effective
    :param check_interval: seconds between DescribeEndpoint (and CloudWatch) calls

    Returns ``[{"step", "weights", "effective_weights", "window_start", "window_end", "metrics"}]`` where
    ``metrics`` maps each variant to its invocations, errors and error_rate (None without traffic).
    """

    aws_hook_class = SageMakerFleetHook
    template_fields: Sequence[str] = aws_template_fields(
        "endpoint_name", "steps", "bake_seconds", "max_error_rate", "probe_body"
    )
    template_fields_renderers = {"steps": "json"}
    operator_extra_links = (SageMakerEndpointLink(),)

    def __init__(
        self,
        *,
        endpoint_name: str,
        steps: list[dict[str, float]],
        bake_seconds: float = 0,
        max_error_rate: float = 0.05,
        metrics_delay_seconds: float | None = None,
        max_metrics_wait_seconds: float | None = None,
        probe_body: str | None = None,
        deferrable: bool = default_deferrable(),
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
        self.max_metrics_wait_seconds = max_metrics_wait_seconds
        self.probe_body = probe_body
        self.deferrable = deferrable
        self.max_wait_seconds = max_wait_seconds
        self.check_interval = check_interval

    def _numbers(self) -> tuple[float, float, float | None, float | None]:
        """Templated numbers arrive as strings; reject what is not a sensible number."""

        def number(name: str, value: Any, optional: bool = False) -> float | None:
            if value is None and optional:
                return None
            try:
                parsed = float(value)
            except (TypeError, ValueError):
                raise ValueError(f"{name} must be a number, got {value!r}") from None
            if not math.isfinite(parsed) or parsed < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
            return parsed

        bake = number("bake_seconds", self.bake_seconds)
        rate = number("max_error_rate", self.max_error_rate)
        delay = number("metrics_delay_seconds", self.metrics_delay_seconds, optional=True)
        bound = number("max_metrics_wait_seconds", self.max_metrics_wait_seconds, optional=True)
        if rate is None or not 0 <= rate <= 1:
            raise ValueError(f"max_error_rate must be within [0, 1], got {rate}")
        return bake, rate, delay, bound  # type: ignore[return-value]

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

    # -- the state machine: execute -> (bake, metrics) per step, deferring long waits -----------------------
    def execute(self, context: Context) -> list[dict[str, Any]]:
        bake, _, delay, bound = self._numbers()
        hook = self.hook
        SageMakerEndpointLink.persist_for(context, self, name=self.endpoint_name)
        description = hook.describe_endpoint_or_none(self.endpoint_name)
        outcome = endpoint_outcome(self.endpoint_name, description)
        if outcome is None or outcome["status"] != "success":
            state = outcome["message"] if outcome else f"it is {description['EndpointStatus']}"
            raise AirflowException(f"Cannot shift traffic on {self.endpoint_name}: {state}")
        original = {v["VariantName"]: float(v.get("CurrentWeight", 1.0)) for v in description["ProductionVariants"]}
        steps = self._validated_steps(original)
        if delay is None:
            delay = hook.metrics_publish_delay_seconds()
        if bound is None:
            bound = 600.0 if delay >= 60 else max(30.0, 10 * delay)
        self.log.info(
            "Endpoint %s weights before the shift: %s; CloudWatch metrics delay %.1f s, then up to %.0f s more",
            self.endpoint_name, original, delay, bound,
        )  # fmt: skip
        state = {
            "original": original,
            "steps": [[weights, effective] for weights, effective in steps],
            "step": 0,
            "applied": [],
            "bake": bake,
            "delay": delay,
            "bound": bound,
        }
        return self._guarded(context, state, self._start_step)

    def resume(self, context: Context, event: dict[str, Any] | None = None, state: dict | None = None) -> Any:
        """Back from a deferred wait: look at the step's metrics (or look again)."""
        if not state:
            raise AirflowException(f"Traffic shift on {self.endpoint_name} resumed without its state")
        return self._guarded(context, state, self._check_step)

    def _guarded(self, context: Context, state: dict, phase: Any) -> Any:
        from airflow.sdk.exceptions import TaskDeferred

        try:
            return phase(context, state)
        except TaskDeferred:
            raise  # the task waits in the triggerer; the shift goes on when it resumes
        except BaseException:
            self._restore(state["original"])
            raise

    def _start_step(self, context: Context, state: dict) -> Any:
        number = state["step"] + 1
        weights, _ = state["steps"][state["step"]]
        self.log.info("Step %d/%d: setting weights %s", number, len(state["steps"]), weights)
        state["window_start"] = dt.datetime.now(dt.UTC).isoformat()
        self._apply(weights)
        if self.probe_body:
            self._bake_with_probe(state, weights)
            return self._wait(context, state, state["delay"])
        return self._wait(context, state, state["bake"] + state["delay"])

    def _bake_with_probe(self, state: dict, weights: dict[str, float]) -> None:
        """Send requests during the bake until each variant that gets traffic answered a few (or time is up)."""
        from sagemaker_fleet.utils.endpoint_probe import EndpointProbe

        _, effective = state["steps"][state["step"]]
        serving = [variant for variant, weight in effective.items() if weight > 0]
        deadline = time.monotonic() + max(state["bake"], 0) + self.max_wait_seconds
        with EndpointProbe(self.hook.runtime_client, self.endpoint_name, self.probe_body) as probe:
            time.sleep(state["bake"])
            while time.monotonic() < deadline:
                counts = probe.summary()["variants"]
                if all(counts.get(v, 0) >= MIN_PROBE_REQUESTS_PER_VARIANT for v in serving):
                    break
                time.sleep(min(self.check_interval, 1.0))
            summary = probe.stop()
        self.log.info("Step %d probe: %s", state["step"] + 1, summary)

    def _wait(self, context: Context, state: dict, seconds: float) -> Any:
        """Wait ``seconds``, deferred when long and nothing on the worker must stay alive; then check."""
        if seconds <= 0:
            return self._check_step(context, state)
        if self.deferrable and seconds >= DEFER_AT_LEAST_SECONDS:
            self._defer_for(state, seconds)
        time.sleep(seconds)
        return self._check_step(context, state)

    def _defer_for(self, state: dict, seconds: float) -> None:
        from airflow.providers.standard.triggers.temporal import TimeDeltaTrigger

        self.log.info("Step %d: waiting %.0f s in the triggerer", state["step"] + 1, seconds)
        self.defer(
            trigger=TimeDeltaTrigger(dt.timedelta(seconds=seconds)),
            method_name="resume",
            kwargs={"state": state},
        )

    def _check_step(self, context: Context, state: dict) -> Any:
        number = state["step"] + 1
        weights, effective = state["steps"][state["step"]]
        start = dt.datetime.fromisoformat(state["window_start"])
        # On AWS the datapoints come a minute at a time: look once a minute (deferred), not every few seconds.
        pause = max(self.check_interval, DEFER_AT_LEAST_SECONDS if state["delay"] >= DEFER_AT_LEAST_SECONDS else 0)
        while True:
            end = dt.datetime.now(dt.UTC)
            metrics = self._metrics(list(state["original"]), start, end)
            # Evidence is any request CloudWatch counted for the variant, answered or failed.
            silent = [
                v for v, w in effective.items()
                if w > 0 and not any(metrics.get(v, {}).get(k) for k in ("invocations", "errors_4xx", "errors_5xx"))
            ]  # fmt: skip
            if not silent:
                break
            deadline = state.setdefault("metrics_deadline", (end + dt.timedelta(seconds=state["bound"])).isoformat())
            if end >= dt.datetime.fromisoformat(deadline):
                raise AirflowException(
                    f"Traffic shift on {self.endpoint_name} stopped at step {number} ({weights}): CloudWatch has no "
                    f"Invocations for {', '.join(silent)} between {start.isoformat()} and {end.isoformat()}, "
                    f"{state['delay']:.0f} + {state['bound']:.0f} s after the bake. A step without traffic cannot "
                    f"be judged (send traffic, or pass probe_body). Restoring the weights from before the shift: "
                    f"{state['original']}."
                )
            self.log.info("Step %d: no Invocations in CloudWatch yet for %s; looking again", number, silent)
            if self.deferrable and pause >= DEFER_AT_LEAST_SECONDS:
                self._defer_for(state, pause)
            time.sleep(pause)
        state.pop("metrics_deadline", None)
        for variant, figures in metrics.items():
            self.log.info(
                "Step %d: %s invocations=%d errors=%d error_rate=%s", number, variant,
                figures["invocations"], figures["errors_4xx"] + figures["errors_5xx"], figures["error_rate"],
            )  # fmt: skip
        max_rate = self._numbers()[1]
        bad = {v: m for v, m in metrics.items() if m["error_rate"] is not None and m["error_rate"] > max_rate}
        if bad:
            shown = ", ".join(
                f"{v}: {m['errors_4xx'] + m['errors_5xx']:.0f} errors in {m['invocations']:.0f} invocations "
                f"({m['error_rate']:.1%})"
                for v, m in bad.items()
            )
            raise AirflowException(
                f"Traffic shift on {self.endpoint_name} stopped at step {number} ({weights}): error rate above "
                f"{max_rate:.1%} for {shown}. Restoring the weights from before the shift: {state['original']}."
            )
        state["applied"].append(
            {
                "step": number,
                "weights": weights,
                "effective_weights": effective,
                "window_start": start.isoformat(),
                "window_end": end.isoformat(),
                "metrics": metrics,
            }
        )
        state["step"] += 1
        if state["step"] < len(state["steps"]):
            return self._start_step(context, state)
        return state["applied"]

    def _restore(self, original: dict[str, float]) -> None:
        try:
            self.log.warning("Restoring the weights of %s to %s", self.endpoint_name, original)
            self._apply(original)
        except Exception:
            self.log.exception("Could not restore the weights of %s to %s", self.endpoint_name, original)
