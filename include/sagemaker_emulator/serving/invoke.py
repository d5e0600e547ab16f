"""InvokeEndpoint: picks the variant from the routing table, runs its predictor, answers AWS's errors and
records the invocation metrics. The routing tables are the ones the deployments maintain (``Deployments.routes``)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from typing import Any

from ..algorithms import ModelInvocationError
from ..config import ACCOUNT_ID
from ..faults import FaultRegistry
from .runtime import MissingModelData, Route, Variant
from .telemetry import Telemetry

log = logging.getLogger(__name__)

MAX_BODY = 6291456
INLINE_BODY = 65536  # larger payloads are predicted in a thread so the event loop keeps serving
ERROR_NAMESPACE = ":http://internal.amazon.com/coral/com.amazon.sagemaker/"
_ERROR_TYPES = {code: code + ERROR_NAMESPACE for code in ("ValidationError", "ModelError")}


def _json_error(code: str, status: int, payload: dict[str, Any], variant: str | None) -> tuple[int, dict, bytes]:
    headers = {
        "content-type": "application/json",
        "x-amzn-ErrorType": _ERROR_TYPES.get(code, code + ERROR_NAMESPACE),
        "x-amzn-RequestId": str(uuid.uuid4()),
    }
    if variant:
        headers["x-Amzn-Invoked-Production-Variant"] = variant
    return status, headers, json.dumps(payload).encode()


def validation(message: str, error_code: str = "VALIDATION_ERROR", variant: str | None = None) -> tuple:
    return _json_error("ValidationError", 400, {"ErrorCode": error_code, "Message": message}, variant)


class Invoker:
    """Answers InvokeEndpoint from ``routes`` (endpoint name, lower case -> Route), a dict shared with the
    deployments, which replace its entries whole."""

    def __init__(self, routes: dict[str, Route], faults: FaultRegistry, telemetry: Telemetry):
        self.routes = routes
        self.faults = faults
        self.telemetry = telemetry

    async def invoke(
        self, region: str, endpoint_name: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        started = time.perf_counter()
        route = self.routes.get(endpoint_name.lower())
        if route is None:
            return validation(f"Endpoint {endpoint_name} of account {ACCOUNT_ID} not found.", "NO_SUCH_ENDPOINT")
        target_variant = headers.get("x-amzn-sagemaker-target-variant")
        if target_variant:
            variant = route.named(target_variant)
            if variant is None:
                return validation(
                    f"Variant {target_variant} not found for endpoint {endpoint_name} of account {ACCOUNT_ID}. "
                    f"Variants: {', '.join(route.variant_names())}.",
                    "NO_SUCH_VARIANT",
                )
        else:
            variant = route.pick()
            if variant is None:
                return validation(
                    f"Endpoint {endpoint_name} has no production variant with a weight greater than 0; set one with "
                    "UpdateEndpointWeightsAndCapacities or name a TargetVariant.",
                    "NO_VARIANT_WITH_WEIGHT",
                )
        name = variant.name
        if len(body) > MAX_BODY:
            self._count_4xx(variant)
            return validation(
                "1 validation error detected: Value at 'body' failed to satisfy constraint: Member must have length "
                f"less than or equal to {MAX_BODY}",
                variant=name,
            )
        target = headers.get("x-amzn-sagemaker-target-model")
        cache_metrics: tuple[tuple[str, float], ...] = ()
        if variant.multi_model:
            if not target:
                self._count_4xx(variant)
                return validation(
                    f"Endpoint {endpoint_name} is a multi-model endpoint and the request is missing a target model "
                    "header (X-Amzn-SageMaker-Target-Model); name the model to invoke with TargetModel.",
                    "TARGET_MODEL_HEADER_MISSING",
                    name,
                )
            cache = variant.cache
            assert cache is not None
            predictor = cache.get(target)
            if predictor is not None:
                cache_metrics = (("ModelCacheHit", 1.0), ("LoadedModelCount", float(len(cache.models))))
            else:
                if len(target) > 1024 or not target.isprintable() or target[0].isspace():
                    self._count_4xx(variant)
                    return validation(
                        "1 validation error detected: Value at 'targetModel' failed to satisfy constraint: Member "
                        "must satisfy regular expression pattern: \\A\\S[\\p{Print}]*\\z",
                        variant=name,
                    )
                wait_started = time.perf_counter()
                try:
                    predictor = await cache.load(target, variant.load_target)
                except MissingModelData as exc:
                    self._count_4xx(variant)
                    self.telemetry.log(
                        variant.region, variant.endpoint, variant.log_stream, f"Model {target} not found at {exc.url}"
                    )
                    return validation(
                        f'Failed to download model data for target model "{target}" of endpoint {endpoint_name}: '
                        f'there is no object at "{exc.url}". Please ensure that the object exists under the '
                        "ModelDataUrl prefix and that the role passed to CreateModel has permissions to download it.",
                        "MODEL_DATA_NOT_FOUND",
                        name,
                    )
                except ModelInvocationError as exc:
                    return self._model_error(variant, endpoint_name, exc.status_code, exc.message)
                waited = (time.perf_counter() - wait_started) * 1e6
                cache_metrics = (
                    ("ModelCacheHit", 0.0),
                    ("LoadedModelCount", float(len(cache.models))),
                    ("ModelLoadingWaitTime", waited),
                )
        else:
            if target:
                self._count_4xx(variant)
                return validation(
                    f"Endpoint {endpoint_name} is not a multi-model endpoint and does not support target model header.",
                    "TARGET_MODEL_HEADER_NOT_SUPPORTED",
                    name,
                )
            predictor = variant.predictor
            assert predictor is not None

        model_started = time.perf_counter()
        faults = self.faults
        if faults.has("variant_latency"):
            fault = faults.take("variant_latency", endpoint_name=variant.endpoint, variant_name=name)
            if fault is not None:
                await asyncio.sleep(float(fault["latency_ms"]) / 1000.0)
        if faults.has("variant_model_error"):
            fault = faults.take("variant_model_error", endpoint_name=variant.endpoint, variant_name=name)
            if fault is not None:
                return self._model_error(
                    variant,
                    endpoint_name,
                    int(fault.get("status_code") or 500),
                    fault.get("message") or "Injected fault: the model container failed to answer.",
                )
        content_type, accept = headers.get("content-type"), headers.get("accept")
        try:
            if len(body) <= INLINE_BODY and predictor.inline:
                out, out_type = predictor.invoke(body, content_type, accept, variant.multi_model)
            else:
                out, out_type = await asyncio.to_thread(
                    predictor.invoke, body, content_type, accept, variant.multi_model
                )
        except ModelInvocationError as exc:
            return self._model_error(variant, endpoint_name, exc.status_code, exc.message)
        except Exception as exc:  # a crash inside the container is the container's 500, never ours
            log.exception("predictor of %s/%s failed", endpoint_name, name)
            return self._model_error(variant, endpoint_name, 500, f"Internal error in the model server: {exc!r}")
        finished = time.perf_counter()
        model_us = (finished - model_started) * 1e6
        self.telemetry.record(
            variant.dims,
            (
                ("Invocations", 1.0),
                ("Invocation4XXErrors", 0.0),
                ("Invocation5XXErrors", 0.0),
                ("ModelLatency", model_us),
                ("OverheadLatency", (finished - started) * 1e6 - model_us),
                *cache_metrics,
            ),
        )
        return 200, {"content-type": out_type, "x-Amzn-Invoked-Production-Variant": name}, out

    def _count_4xx(self, variant: Variant) -> None:
        self.telemetry.record(
            variant.dims, (("Invocations", 1.0), ("Invocation4XXErrors", 1.0), ("Invocation5XXErrors", 0.0))
        )

    def _model_error(self, variant: Variant, endpoint_name: str, status: int, message: str) -> tuple:
        kind = "client" if 400 <= status < 500 else "server"
        region = variant.region
        group = f"/aws/sagemaker/Endpoints/{variant.endpoint}"
        self.telemetry.record(
            variant.dims,
            (
                ("Invocations", 1.0),
                ("Invocation4XXErrors", 1.0 if kind == "client" else 0.0),
                ("Invocation5XXErrors", 0.0 if kind == "client" else 1.0),
            ),
        )
        self.telemetry.log(region, variant.endpoint, variant.log_stream, f"{status} {message}")
        payload = {
            "ErrorCode": "CLIENT_ERROR_FROM_MODEL" if kind == "client" else "SERVER_ERROR_FROM_MODEL",
            "Message": (
                f'Received {kind} error ({status}) from primary with message "{message}". See '
                f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#logEventViewer:group="
                f"{group} in account {ACCOUNT_ID} for more information."
            ),
            "OriginalStatusCode": status,
            "OriginalMessage": message,
            "LogStreamArn": f"arn:aws:logs:{region}:{ACCOUNT_ID}:log-group:{group}",
        }
        return _json_error("ModelError", 424, payload, variant.name)
