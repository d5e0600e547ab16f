"""The SageMaker control plane (awsJson1_1): the request context, listing, tags, models and endpoint
configurations. The operation table that names every handler is ``operations.py``; job operations live in
``training_operations.py`` and ``processing_operations.py``, endpoint operations in ``serving/endpoints.py``."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import constraint_error, validation_error
from .store import public
from .validation import MODEL_NAME, arn, check_max_results, check_name, check_role, require, split_s3_uri

if TYPE_CHECKING:
    from .emulator import Emulator


@dataclass(frozen=True)
class RequestContext:
    emulator: Emulator
    region: str
    operation: str


Handler = Callable[[RequestContext, dict[str, Any]], dict[str, Any]]


def now() -> float:
    return time.time()


# -- listing ------------------------------------------------------------------------------------------
def list_page(
    records: list[dict[str, Any]],
    body: dict[str, Any],
    *,
    name_key: str,
    status_key: str | None = None,
    sort_keys: dict[str, str] | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """Filter (NameContains, StatusEquals, Creation/LastModifiedTime ranges), sort and page like SageMaker.

    SortBy names map to record keys through ``sort_keys`` (default: Name, CreationTime, Status); the default
    order is CreationTime descending, as the real List* calls answer.
    """
    max_results = check_max_results(body)
    sort_keys = sort_keys or {"Name": name_key, "CreationTime": "CreationTime", "Status": status_key or name_key}
    if body.get("NameContains"):
        needle = body["NameContains"].lower()
        records = [r for r in records if needle in r[name_key].lower()]
    if body.get("StatusEquals") and status_key:
        records = [r for r in records if r.get(status_key) == body["StatusEquals"]]
    for field, key, keep in (
        ("CreationTimeAfter", "CreationTime", lambda v, t: v > t),
        ("CreationTimeBefore", "CreationTime", lambda v, t: v < t),
        ("LastModifiedTimeAfter", "LastModifiedTime", lambda v, t: v > t),
        ("LastModifiedTimeBefore", "LastModifiedTime", lambda v, t: v < t),
    ):
        if body.get(field) is not None:
            bound = float(body[field])
            records = [r for r in records if keep(float(r.get(key, r["CreationTime"])), bound)]
    sort_by = body.get("SortBy", "CreationTime")
    if sort_by not in sort_keys:
        raise constraint_error(sort_by, "sortBy", f"Member must satisfy enum value set: {sorted(sort_keys)}")
    order = body.get("SortOrder", "Descending")
    if order not in ("Ascending", "Descending"):
        raise constraint_error(order, "sortOrder", "Member must satisfy enum value set: [Ascending, Descending]")
    records.sort(key=lambda r: (r.get(sort_keys[sort_by]) or "", r[name_key]), reverse=order == "Descending")
    listing = _listing_digest(name_key, body)
    start = _token_offset(body["NextToken"], listing) if body.get("NextToken") else 0
    page = records[start : start + max_results]
    more = start + max_results < len(records)
    token = _make_token(start + max_results, listing) if more else None
    return page, token


# Tokens are opaque and tamper-evident: an HMAC (key made at start, so tokens do not outlive the process,
# as AWS's expire) over the offset and a digest of the listing they continue (kind, filters, sort).
_TOKEN_KEY = secrets.token_bytes(32)
_PAGING_KEYS = ("NextToken", "MaxResults")


def _listing_digest(name_key: str, body: dict[str, Any]) -> str:
    query = {k: v for k, v in body.items() if k not in _PAGING_KEYS}
    raw = json.dumps([name_key, query], sort_keys=True, default=str).encode()
    return hashlib.sha256(raw).hexdigest()[:16]


def _sign(payload: bytes) -> str:
    return hmac.new(_TOKEN_KEY, payload, hashlib.sha256).hexdigest()[:32]


def _make_token(offset: int, listing: str) -> str:
    payload = json.dumps({"offset": offset, "listing": listing}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(payload).decode().rstrip("=") + "." + _sign(payload)


def _token_offset(token: str, listing: str) -> int:
    encoded, _, signature = token.rpartition(".")
    try:
        payload = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    except ValueError:
        payload = b""
    if not payload or not hmac.compare_digest(signature, _sign(payload)):
        raise validation_error(
            "Invalid pagination token: it was not issued by this service (or the emulator restarted since). "
            "Start the listing again without NextToken."
        )
    state = json.loads(payload)
    if state["listing"] != listing:
        raise validation_error(
            "Invalid pagination token: it continues a different listing (other operation, filters or sort). "
            "Pass the same parameters as the call that returned it."
        )
    return int(state["offset"])


def paged(result_key: str, items: list[dict[str, Any]], token: str | None) -> dict[str, Any]:
    answer: dict[str, Any] = {result_key: items}
    if token:
        answer["NextToken"] = token
    return answer


# -- tags ---------------------------------------------------------------------------------------------
TAGGABLE_KINDS = ("training-job", "processing-job", "transform-job", "model", "endpoint-config", "endpoint")


def check_tags(tags: Any) -> list[dict[str, str]]:
    if tags is None:
        return []
    if not isinstance(tags, list) or len(tags) > 50:
        raise constraint_error(tags, "tags", "Member must have length less than or equal to 50")
    for tag in tags:
        if not isinstance(tag, dict) or not tag.get("Key"):
            raise constraint_error(tag, "tags.member.key", "Member must not be null")
    return [{"Key": t["Key"], "Value": t.get("Value", "")} for t in tags]


def save_tags(ctx: RequestContext, resource_arn: str, tags: list[dict[str, str]]) -> None:
    store = ctx.emulator.store
    with store.locked():
        current = {t["Key"]: t["Value"] for t in (store.get("tags", resource_arn) or {}).get("Tags", [])}
        current.update({t["Key"]: t["Value"] for t in tags})
        store.put("tags", resource_arn, {"Tags": [{"Key": k, "Value": v} for k, v in current.items()]})


def _resource_for_arn(ctx: RequestContext, resource_arn: str) -> dict[str, Any] | None:
    """The resource an ARN names in this account and region, or None (nothing is created for the others)."""
    try:
        kind, name = resource_arn.split(":", 5)[5].split("/", 1)
    except (IndexError, ValueError):
        return None
    if kind not in TAGGABLE_KINDS or arn(ctx.region, kind, name) != resource_arn.lower():
        return None
    return ctx.emulator.store.get(kind, name)


def _tagged_resource(ctx: RequestContext, resource_arn: str) -> None:
    # AWS answers a ValidationException for an ARN that names no resource (a deleted one included).
    if _resource_for_arn(ctx, resource_arn) is None:
        raise validation_error(f"Resource {resource_arn} not found")


def add_tags(ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
    resource_arn = require(body, "ResourceArn")
    tags = check_tags(require(body, "Tags"))
    _tagged_resource(ctx, resource_arn)
    save_tags(ctx, resource_arn, tags)
    return {"Tags": tags}


def list_tags(ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
    resource_arn = require(body, "ResourceArn")
    _tagged_resource(ctx, resource_arn)
    tags = (ctx.emulator.store.get("tags", resource_arn) or {}).get("Tags", [])
    return {"Tags": tags}


def delete_tags(ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
    resource_arn = require(body, "ResourceArn")
    keys = set(require(body, "TagKeys"))
    _tagged_resource(ctx, resource_arn)
    store = ctx.emulator.store
    with store.locked():
        tags = (store.get("tags", resource_arn) or {}).get("Tags", [])
        kept = [t for t in tags if t["Key"] not in keys]
        if len(kept) != len(tags):
            store.put("tags", resource_arn, {"Tags": kept})
    return {}


# -- models -------------------------------------------------------------------------------------------
def _check_container(ctx: RequestContext, container: dict[str, Any], member: str) -> dict[str, Any]:
    from .algorithms import UnsupportedImageError, algorithm_for_image
    from .serving.script_mode import script_source

    image = container.get("Image")
    if not image:
        raise constraint_error(None, f"{member}.image", "Member must not be null")
    mode = container.get("Mode", "SingleModel")
    if script_source({**container, "Mode": mode}, member) is None:  # script mode: the scikit-learn images
        try:
            algorithm_for_image(image)
        except UnsupportedImageError as exc:
            raise validation_error(f"Requested image {image} not found. {exc}") from exc
    if mode not in ("SingleModel", "MultiModel"):
        raise constraint_error(mode, f"{member}.mode", "Member must satisfy enum value set: [SingleModel, MultiModel]")
    data_url = container.get("ModelDataUrl")
    if mode == "MultiModel" and not data_url:
        raise validation_error("ModelDataUrl is required for a container in MultiModel mode.")
    if data_url:
        split_s3_uri(data_url, f"{member}.modelDataUrl")
    return {**container, "Mode": mode}


def create_model(ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
    name = check_name(body.get("ModelName"), "modelName", MODEL_NAME)
    if body.get("ExecutionRoleArn") is not None:
        check_role(body["ExecutionRoleArn"], "executionRoleArn")
    containers = body.get("Containers")
    primary = body.get("PrimaryContainer")
    if primary is None and not containers:
        raise validation_error("Either PrimaryContainer or Containers must be specified.")
    if primary is not None and containers:
        raise validation_error("PrimaryContainer and Containers cannot both be specified.")
    if containers and len(containers) > 1:
        raise validation_error(
            "The local emulator serves one container per model (inference pipelines are not emulated)."
        )
    container = _check_container(ctx, primary if primary is not None else containers[0], "primaryContainer")
    tags = check_tags(body.get("Tags"))
    model_arn = arn(ctx.region, "model", name)
    store = ctx.emulator.store
    with store.locked():
        if store.get("model", name) is not None:
            raise validation_error(f'Cannot create already existing model "{model_arn}".')
        record = {
            "ModelName": name,
            "ModelArn": model_arn,
            "CreationTime": now(),
            "EnableNetworkIsolation": bool(body.get("EnableNetworkIsolation", False)),
        }
        if primary is not None:
            record["PrimaryContainer"] = container
        else:
            record["Containers"] = [container]
        for optional in ("ExecutionRoleArn", "VpcConfig", "InferenceExecutionConfig"):
            if body.get(optional) is not None:
                record[optional] = body[optional]
        store.put("model", name, record)
    if tags:
        save_tags(ctx, model_arn, tags)
    return {"ModelArn": model_arn}


def get_model(ctx: RequestContext, name: str) -> dict[str, Any]:
    record = ctx.emulator.store.get("model", name)
    if record is None:
        raise validation_error(f'Could not find model "{arn(ctx.region, "model", name)}".')
    return record


def describe_model(ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
    return public(get_model(ctx, require(body, "ModelName")))


def delete_model(ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
    name = require(body, "ModelName")
    get_model(ctx, name)
    ctx.emulator.store.delete("model", name)
    return {}


def list_models(ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
    page, token = list_page(ctx.emulator.store.list("model"), body, name_key="ModelName")
    items = [{k: r[k] for k in ("ModelName", "ModelArn", "CreationTime")} for r in page]
    return paged("Models", items, token)


# -- endpoint configurations ----------------------------------------------------------------------------
def _check_variant(ctx: RequestContext, variant: Any, index: int) -> dict[str, Any]:
    member = f"productionVariants.{index}.member"
    if not isinstance(variant, dict):
        raise constraint_error(variant, member, "Member must not be null")
    check_name(variant.get("VariantName"), f"{member}.variantName")
    model_name = check_name(variant.get("ModelName"), f"{member}.modelName", MODEL_NAME)
    get_model(ctx, model_name)
    checked = dict(variant)
    if "ServerlessConfig" not in variant:
        count = variant.get("InitialInstanceCount")
        if not isinstance(count, int) or count < 1:
            raise constraint_error(
                count, f"{member}.initialInstanceCount", "Member must have value greater than or equal to 1"
            )
        if not variant.get("InstanceType"):
            raise validation_error(
                f"Either InstanceType or ServerlessConfig must be specified for variant {variant['VariantName']}."
            )
    weight = variant.get("InitialVariantWeight", 1.0)
    if not isinstance(weight, int | float) or weight < 0:
        raise constraint_error(
            weight, f"{member}.initialVariantWeight", "Member must have value greater than or equal to 0"
        )
    checked["InitialVariantWeight"] = float(weight)
    return checked


def create_endpoint_config(ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
    name = check_name(body.get("EndpointConfigName"), "endpointConfigName")
    variants = body.get("ProductionVariants")
    if not isinstance(variants, list) or not 1 <= len(variants) <= 10:
        raise constraint_error(variants, "productionVariants", "Member must have length between 1 and 10")
    checked = [_check_variant(ctx, v, i + 1) for i, v in enumerate(variants)]
    names = [v["VariantName"].lower() for v in checked]
    if len(set(names)) != len(names):
        raise validation_error("The production variant names in the endpoint configuration must be unique.")
    tags = check_tags(body.get("Tags"))
    config_arn = arn(ctx.region, "endpoint-config", name)
    store = ctx.emulator.store
    with store.locked():
        if store.get("endpoint-config", name) is not None:
            raise validation_error(f'Cannot create already existing endpoint configuration "{config_arn}".')
        record = {
            "EndpointConfigName": name,
            "EndpointConfigArn": config_arn,
            "ProductionVariants": checked,
            "CreationTime": now(),
        }
        for optional in ("DataCaptureConfig", "KmsKeyId", "AsyncInferenceConfig", "ShadowProductionVariants"):
            if body.get(optional) is not None:
                record[optional] = body[optional]
        store.put("endpoint-config", name, record)
    if tags:
        save_tags(ctx, config_arn, tags)
    return {"EndpointConfigArn": config_arn}


def get_endpoint_config(ctx: RequestContext, name: str) -> dict[str, Any]:
    record = ctx.emulator.store.get("endpoint-config", name)
    if record is None:
        config_arn = arn(ctx.region, "endpoint-config", name)
        raise validation_error(f'Could not find endpoint configuration "{config_arn}".')
    return record


def describe_endpoint_config(ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
    return public(get_endpoint_config(ctx, require(body, "EndpointConfigName")))


def delete_endpoint_config(ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
    name = require(body, "EndpointConfigName")
    get_endpoint_config(ctx, name)
    ctx.emulator.store.delete("endpoint-config", name)
    return {}


def list_endpoint_configs(ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
    page, token = list_page(ctx.emulator.store.list("endpoint-config"), body, name_key="EndpointConfigName")
    items = [{k: r[k] for k in ("EndpointConfigName", "EndpointConfigArn", "CreationTime")} for r in page]
    return paged("EndpointConfigs", items, token)


HANDLERS: dict[str, Handler] = {
    "AddTags": add_tags,
    "ListTags": list_tags,
    "DeleteTags": delete_tags,
    "CreateModel": create_model,
    "DescribeModel": describe_model,
    "DeleteModel": delete_model,
    "ListModels": list_models,
    "CreateEndpointConfig": create_endpoint_config,
    "DescribeEndpointConfig": describe_endpoint_config,
    "DeleteEndpointConfig": delete_endpoint_config,
    "ListEndpointConfigs": list_endpoint_configs,
}
