"""SageMakerABEvaluationOperator: measure two production variants on the same labelled rows and decide.

Every row goes to both variants (``TargetVariant``), so the per-row losses are paired and the paired
test in ``sagemaker_fleet.utils.ab_statistics`` is valid. Separately, un-targeted requests check that the endpoint
routes traffic by the configured weights, judged on the CloudWatch ``Invocations`` of each variant.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.operators.base_aws import AwsBaseOperator
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from airflow.providers.common.compat.sdk import AirflowException

from sagemaker_fleet.hooks.sagemaker import SageMakerFleetHook, parse_s3_uri
from sagemaker_fleet.links.sagemaker import S3ReportLink, SageMakerEndpointLink

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["SageMakerABEvaluationOperator", "parse_predictions"]


def parse_predictions(body: bytes, content_type: str | None, *, prefer_label: bool = False) -> list[float]:
    """Predictions from an InvokeEndpoint answer, by its content type.

    Linear Learner answers ``{"predictions": [{"score": ..}]}`` (JSON or JSON lines), XGBoost CSV (or a JSON
    list when asked). ``prefer_label`` takes ``predicted_label`` when present (classification accuracy).
    """
    media = (content_type or "").split(";")[0].strip().lower()
    text = body.decode("utf-8").strip()

    def value(item: Any) -> float:
        if isinstance(item, dict):
            key = "predicted_label" if prefer_label and "predicted_label" in item else "score"
            if key not in item:
                raise ValueError(f"prediction object without a score: {item!r}")
            item = item[key]
        if isinstance(item, list):  # multiclass scores: the most likely class
            return float(max(range(len(item)), key=item.__getitem__))
        return float(item)

    if media in ("application/json", "json"):
        payload = json.loads(text)
        items = payload.get("predictions", []) if isinstance(payload, dict) else payload
        return [value(item) for item in (items if isinstance(items, list) else [items])]
    if media in ("application/jsonlines", "application/json-lines", "jsonlines"):
        return [value(json.loads(line)) for line in text.splitlines() if line.strip()]
    # text/csv and anything unlabelled: numbers separated by commas or newlines
    return [float(part) for part in text.replace("\n", ",").split(",") if part.strip()]


class SageMakerABEvaluationOperator(AwsBaseOperator[SageMakerFleetHook]):
    """Compare two variants of ``endpoint_name`` on labelled rows; check the traffic split; write a report.

    :param endpoint_name: the endpoint with both production variants
    :param variants: role -> VariantName, e.g. ``{"champion": "Champion", "challenger": "Challenger"}``
        (the champion is the ``champion`` key, or the first one)
    :param evaluation_data: S3 URI of headerless label-first CSV (a file, or a prefix whose CSV files are read)
    :param rows: how many rows to send to each variant, and how many un-targeted requests to send
    :param metric: ``rmse``, ``mae`` or ``accuracy``
    :param min_improvement: relative improvement the challenger needs to win
    :param confidence: confidence level of the paired test
    :param report_prefix: S3 URI prefix for ``decision.json`` and ``decision.png``
    :param expected_weights: variant -> weight the traffic split must match; None uses the endpoint's
        current weights
    :param traffic_tolerance: allowed absolute difference between observed and expected traffic shares
    :param metrics_wait_seconds: how long to wait for CloudWatch to count the un-targeted requests
        (minutes on AWS; about a second on the emulator)

    Returns the JSON decision of ``compare_variants`` plus ``variants``, ``winner_variant``,
    ``loser_variant``, ``traffic`` and ``report_uris``. Fails (after writing the report) when the traffic
    split is off.
    """

    aws_hook_class = SageMakerFleetHook
    template_fields: Sequence[str] = aws_template_fields(
        "endpoint_name", "variants", "evaluation_data", "rows", "metric", "min_improvement", "confidence",
        "report_prefix", "expected_weights", "traffic_tolerance",
    )  # fmt: skip
    template_fields_renderers = {"variants": "json", "expected_weights": "json"}
    operator_extra_links = (SageMakerEndpointLink(), S3ReportLink())

    def __init__(
        self,
        *,
        endpoint_name: str,
        variants: dict[str, str],
        evaluation_data: str,
        report_prefix: str,
        rows: int = 200,
        metric: str = "rmse",
        min_improvement: float = 0.0,
        confidence: float = 0.95,
        expected_weights: dict[str, float] | None = None,
        traffic_tolerance: float = 0.15,
        metrics_wait_seconds: float = 300,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.endpoint_name = endpoint_name
        self.variants = variants
        self.evaluation_data = evaluation_data
        self.report_prefix = report_prefix
        self.rows = rows
        self.metric = metric
        self.min_improvement = min_improvement
        self.confidence = confidence
        self.expected_weights = expected_weights
        self.traffic_tolerance = traffic_tolerance
        self.metrics_wait_seconds = metrics_wait_seconds

    # -- inputs -------------------------------------------------------------------------------------
    def _roles(self, known: list[str]) -> list[tuple[str, str]]:
        if not isinstance(self.variants, dict) or len(self.variants) != 2:
            raise ValueError(f"variants must map exactly two roles to VariantNames, got {self.variants!r}")
        roles = list(self.variants)
        if "champion" in roles and "challenger" in roles:
            roles = ["champion", "challenger"]
        pairs = [(role, self.variants[role]) for role in roles]
        unknown = [variant for _, variant in pairs if variant not in known]
        if unknown:
            raise ValueError(f"Variant(s) {unknown} are not on endpoint {self.endpoint_name} (it has {known})")
        if pairs[0][1] == pairs[1][1]:
            raise ValueError(f"Both roles name the same variant {pairs[0][1]!r}")
        return pairs

    def _read_csv(self) -> str:
        bucket, key = parse_s3_uri(self.evaluation_data)
        s3 = self.hook.s3_client
        if key and not key.endswith("/"):
            return s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
        keys: list[str] = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key):
            keys.extend(o["Key"] for o in page.get("Contents", []) if o["Key"].endswith(".csv"))
        if not keys:
            raise ValueError(f"No .csv objects under {self.evaluation_data}")
        return "".join(s3.get_object(Bucket=bucket, Key=k)["Body"].read().decode("utf-8") for k in sorted(keys))

    # -- measurements -------------------------------------------------------------------------------
    def _predict(self, body: str, variant: str | None) -> tuple[float, float, str | None]:
        answer = self.hook.invoke_endpoint(self.endpoint_name, body, target_variant=variant)
        predictions = parse_predictions(answer["body"], answer["content_type"], prefer_label=self.metric == "accuracy")
        if len(predictions) != 1:
            raise AirflowException(f"Expected one prediction from {variant or 'the endpoint'}, got {predictions!r}")
        return predictions[0], answer["latency_ms"], answer["invoked_variant"]

    def _traffic(self, bodies: list[str], weights: dict[str, float], count: int) -> dict[str, Any]:
        from sagemaker_fleet.utils.ab_statistics import traffic_share_check

        start = dt.datetime.now(dt.UTC)
        counted: dict[str, int] = dict.fromkeys(weights, 0)
        for index in range(count):
            _, _, invoked = self._predict(bodies[index % len(bodies)], None)
            if invoked in counted:
                counted[invoked] += 1
        # CloudWatch publishes with a delay: wait until it has counted every request sent (or give up).
        deadline = time.monotonic() + self.metrics_wait_seconds
        while True:
            end = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
            observed = {
                variant: self.hook.get_metric_sum(self.endpoint_name, variant, "Invocations", start, end)
                for variant in weights
            }
            if sum(observed.values()) >= count or time.monotonic() >= deadline:
                break
            time.sleep(min(1.0, self.metrics_wait_seconds))
        check = traffic_share_check(observed, weights, float(self.traffic_tolerance))
        check.update(
            source="cloudwatch:AWS/SageMaker Invocations",
            requests_sent=count,
            counted_from_responses=counted,
            window_start=start.isoformat(),
            window_end=end.isoformat(),
        )
        return check

    # -- execute ------------------------------------------------------------------------------------
    def execute(self, context: Context) -> dict[str, Any]:
        import numpy as np

        from sagemaker_fleet.utils.ab_statistics import compare_variants, validate_weights
        from sagemaker_fleet.utils.metrics import parse_label_first_csv
        from sagemaker_fleet.utils.reports import render_ab_chart_png, summary_table

        hook = self.hook
        SageMakerEndpointLink.persist_for(context, self, name=self.endpoint_name)
        rows = int(self.rows)
        if rows < 1:
            raise ValueError(f"rows must be >= 1, got {self.rows!r}")
        report_bucket, report_key = parse_s3_uri(self.report_prefix)
        description = hook.describe_endpoint_or_none(self.endpoint_name)
        if description is None or description.get("EndpointStatus") != "InService":
            state = description.get("EndpointStatus") if description else "missing"
            raise AirflowException(f"Endpoint {self.endpoint_name} is {state}; it must be InService to evaluate")
        current = {v["VariantName"]: float(v.get("CurrentWeight", 1.0)) for v in description["ProductionVariants"]}
        pairs = self._roles(list(current))
        weights = validate_weights(self.expected_weights if self.expected_weights is not None else current, current)

        features, labels = parse_label_first_csv(self._read_csv())
        features, labels = features[:rows], labels[:rows]
        bodies = [",".join(repr(float(v)) for v in row) for row in features]
        self.log.info("Evaluating %s on %d labelled rows from %s", pairs, len(bodies), self.evaluation_data)

        # Traffic first, so the targeted requests below cannot count towards the split.
        traffic = self._traffic(bodies, weights, rows)

        predictions: dict[str, list[float]] = {variant: [] for _, variant in pairs}
        latencies: dict[str, list[float]] = {variant: [] for _, variant in pairs}
        for body in bodies:
            for _, variant in pairs:  # interleaved, so drift in the endpoint hits both variants alike
                value, latency, invoked = self._predict(body, variant)
                if invoked and invoked != variant:
                    raise AirflowException(f"TargetVariant {variant} was answered by {invoked}")
                predictions[variant].append(value)
                latencies[variant].append(latency)
        (role_a, variant_a), (role_b, variant_b) = pairs
        decision = compare_variants(
            np.asarray(labels),
            predictions[variant_a],
            predictions[variant_b],
            latency_a_ms=latencies[variant_a],
            latency_b_ms=latencies[variant_b],
            metric=self.metric,
            min_improvement=float(self.min_improvement),
            confidence=float(self.confidence),
            names=(role_a, role_b),
        )
        prefix = report_key.rstrip("/")
        report_uris = {
            name: f"s3://{report_bucket}/{prefix + '/' if prefix else ''}{name}"
            for name in ("decision.json", "decision.png")
        }
        decision.update(
            endpoint_name=self.endpoint_name,
            evaluation_data=self.evaluation_data,
            variants=dict(self.variants),
            winner_variant=self.variants[decision["winner"]],
            loser_variant=self.variants[decision["loser"]],
            traffic=traffic,
            report_uris=report_uris,
        )
        s3 = hook.s3_client
        for name, body, content_type in (
            ("decision.json", json.dumps(decision, indent=2).encode(), "application/json"),
            ("decision.png", render_ab_chart_png(decision), "image/png"),
        ):
            _, key = parse_s3_uri(report_uris[name])
            s3.put_object(Bucket=report_bucket, Key=key, Body=body, ContentType=content_type)
        S3ReportLink.persist_report(context, hook, bucket=report_bucket, prefix=f"{prefix}/" if prefix else "")

        table_rows = [
            {
                "role": role,
                "variant": variant,
                **{
                    k: decision["per_variant"][role].get(k) for k in ("rmse", "mae", "latency_p50_ms", "latency_p95_ms")
                },
                "expected_share": traffic["per_variant"].get(variant, {}).get("expected_share"),
                "observed_share": traffic["per_variant"].get(variant, {}).get("observed_share"),
            }
            for role, variant in pairs
        ]
        columns = ["role", "variant", "rmse", "mae", "latency_p50_ms", "latency_p95_ms", "expected_share",
                   "observed_share"]  # fmt: skip
        self.log.info("A/B evaluation of %s:\n%s", self.endpoint_name, summary_table(table_rows, columns))
        self.log.info("Decision: %s", decision["reason"])
        self.log.info("Traffic: %s", traffic["reason"])
        self.log.info("Report: %s", report_uris)
        if not traffic["ok"]:
            raise AirflowException(f"Traffic split of {self.endpoint_name} is off: {traffic['reason']}")
        return decision
