"""Endpoint control-plane operations (awsJson1_1), with AWS's messages. The status transitions themselves
run in ``ServingPlane`` deployment threads; these handlers validate, write the record and start them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..control_plane import (
    Handler,
    RequestContext,
    check_tags,
    get_endpoint_config,
    list_page,
    now,
    paged,
    save_tags,
)
from ..errors import constraint_error, validation_error
from ..store import public
from ..validation import arn, check_name, require

if TYPE_CHECKING:
    from .plane import ServingPlane

IN_PROGRESS = ("Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting")
ROUTING_TYPES = ("ALL_AT_ONCE", "CANARY", "LINEAR")
RETAINABLE = ("DesiredInstanceCount", "DesiredWeight", "DataCaptureConfig")


def _plane(ctx: RequestContext) -> ServingPlane:
    return ctx.emulator.serving


def get_endpoint(ctx: RequestContext, name: str) -> dict[str, Any]:
    record = ctx.emulator.store.get("endpoint", name)
    if record is None:
        raise validation_error(f'Could not find endpoint "{arn(ctx.region, "endpoint", name)}".')
    return record


def check_deployment_config(config: Any) -> dict[str, Any] | None:
    if config is None:
        return None
    if not isinstance(config, dict):
        raise constraint_error(config, "deploymentConfig", "Member must be a structure")
    blue_green = config.get("BlueGreenUpdatePolicy")
    if blue_green is not None:
        routing = require(blue_green, "TrafficRoutingConfiguration")
        kind = routing.get("Type")
        if kind not in ROUTING_TYPES:
            raise constraint_error(
                kind,
                "deploymentConfig.blueGreenUpdatePolicy.trafficRoutingConfiguration.type",
                f"Member must satisfy enum value set: [{', '.join(ROUTING_TYPES)}]",
            )
        wait = routing.get("WaitIntervalInSeconds", 0)
        if not isinstance(wait, int) or not 0 <= wait <= 3600:
            raise constraint_error(
                wait,
                "deploymentConfig.blueGreenUpdatePolicy.trafficRoutingConfiguration.waitIntervalInSeconds",
                "Member must have value between 0 and 3600",
            )
        size_key = {"CANARY": "CanarySize", "LINEAR": "LinearStepSize"}.get(kind)
        if size_key:
            size = routing.get(size_key)
            if not isinstance(size, dict) or size.get("Type") not in ("INSTANCE_COUNT", "CAPACITY_PERCENT"):
                raise validation_error(
                    f"{size_key} with Type INSTANCE_COUNT or CAPACITY_PERCENT is required for {kind}."
                )
            if not isinstance(size.get("Value"), int) or size["Value"] < 1:
                raise constraint_error(size.get("Value"), f"{size_key}.value", "Member must have value >= 1")
        termination = blue_green.get("TerminationWaitInSeconds", 0)
        if not isinstance(termination, int) or not 0 <= termination <= 3600:
            raise constraint_error(
                termination,
                "deploymentConfig.blueGreenUpdatePolicy.terminationWaitInSeconds",
                "Member must have value between 0 and 3600",
            )
    alarms = (config.get("AutoRollbackConfiguration") or {}).get("Alarms")
    if alarms is not None and (
        not isinstance(alarms, list) or not 1 <= len(alarms) <= 10 or not all(a.get("AlarmName") for a in alarms)
    ):
        raise constraint_error(
            alarms, "deploymentConfig.autoRollbackConfiguration.alarms", "Member must have length between 1 and 10"
        )
    return config


def create_endpoint(ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
    name = check_name(body.get("EndpointName"), "endpointName")
    config_name = check_name(body.get("EndpointConfigName"), "endpointConfigName")
    config = get_endpoint_config(ctx, config_name)
    deployment = check_deployment_config(body.get("DeploymentConfig"))
    tags = check_tags(body.get("Tags"))
    endpoint_arn = arn(ctx.region, "endpoint", name)
    store = ctx.emulator.store
    with store.locked():
        if store.get("endpoint", name) is not None:
            raise validation_error(f'Cannot create already existing endpoint "{endpoint_arn}".')
        created = now()
        record: dict[str, Any] = {
            "EndpointName": name,
            "EndpointArn": endpoint_arn,
            "EndpointConfigName": config["EndpointConfigName"],
            "ProductionVariants": _plane(ctx).pending_variants(config, "Creating", created),
            "EndpointStatus": "Creating",
            "CreationTime": created,
            "LastModifiedTime": created,
            "_region": ctx.region,
            # What to load, captured now: deleting the config or model later does not change it (as on AWS).
            "_deploying": _plane(ctx).deployment_spec(config),
        }
        if config.get("DataCaptureConfig"):
            record["DataCaptureConfig"] = {**config["DataCaptureConfig"], "CaptureStatus": "Started"}
        if deployment:
            record["_create_deployment_config"] = deployment
        store.put("endpoint", name, record)
    if tags:
        save_tags(ctx, endpoint_arn, tags)
    _plane(ctx).begin_create(name)
    return {"EndpointArn": endpoint_arn}


def describe_endpoint(ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
    return public(get_endpoint(ctx, require(body, "EndpointName")))


def list_endpoints(ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
    page, token = list_page(
        ctx.emulator.store.list("endpoint"), body, name_key="EndpointName", status_key="EndpointStatus"
    )
    keys = ("EndpointName", "EndpointArn", "CreationTime", "LastModifiedTime", "EndpointStatus")
    return paged("Endpoints", [{k: r[k] for k in keys} for r in page], token)


def _check_updatable(ctx: RequestContext, record: dict[str, Any]) -> None:
    status = record["EndpointStatus"]
    if status in IN_PROGRESS:
        raise validation_error(f'Cannot update in-progress endpoint "{record["EndpointArn"]}".')
    if status == "Failed":
        # Only DeleteEndpoint is allowed on a Failed endpoint (wording chosen by the emulator).
        raise validation_error(
            f'Cannot update failed endpoint "{record["EndpointArn"]}". Delete it and create it again.'
        )


def update_endpoint(ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
    name = require(body, "EndpointName")
    config_name = check_name(body.get("EndpointConfigName"), "endpointConfigName")
    deployment = check_deployment_config(body.get("DeploymentConfig"))
    excluded = body.get("ExcludeRetainedVariantProperties") or []
    for item in excluded:
        if not isinstance(item, dict) or item.get("VariantPropertyType") not in RETAINABLE:
            raise constraint_error(
                item,
                "excludeRetainedVariantProperties.member.variantPropertyType",
                f"Member must satisfy enum value set: [{', '.join(RETAINABLE)}]",
            )
    store = ctx.emulator.store
    with store.locked():
        record = get_endpoint(ctx, name)
        _check_updatable(ctx, record)
        config = get_endpoint_config(ctx, config_name)
        if deployment is None and body.get("RetainDeploymentConfig"):
            deployment = record.get("LastDeploymentConfig")
        started = now()
        pending = {
            "kind": "update",
            "EndpointConfigName": config["EndpointConfigName"],
            "DeploymentConfig": deployment,
            "RetainAllVariantProperties": bool(body.get("RetainAllVariantProperties")),
            "ExcludeRetainedVariantProperties": [e["VariantPropertyType"] for e in excluded],
            "Variants": _plane(ctx).deployment_spec(config),
        }

        def mark(r: dict[str, Any]) -> None:
            r["EndpointStatus"] = "Updating"
            r["LastModifiedTime"] = started
            r.pop("FailureReason", None)
            r["_pending"] = pending
            r["PendingDeploymentSummary"] = {
                "EndpointConfigName": config["EndpointConfigName"],
                "ProductionVariants": _plane(ctx).pending_variants(config, "Creating", started),
                "StartTime": started,
            }

        store.update("endpoint", name, mark)
    _plane(ctx).begin_update(record["EndpointName"])
    return {"EndpointArn": record["EndpointArn"]}


def update_weights(ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
    name = require(body, "EndpointName")
    desired = require(body, "DesiredWeightsAndCapacities")
    if not isinstance(desired, list) or not 1 <= len(desired) <= 10:
        raise constraint_error(desired, "desiredWeightsAndCapacities", "Member must have length between 1 and 10")
    store = ctx.emulator.store
    with store.locked():
        record = get_endpoint(ctx, name)
        _check_updatable(ctx, record)
        variants = {v["VariantName"]: v for v in record["ProductionVariants"]}
        missing = [d.get("VariantName") for d in desired if d.get("VariantName") not in variants]
        if missing:
            raise validation_error(
                f'The variant(s) "[{", ".join(map(str, missing))}]" are not present in endpoint "{record["EndpointArn"]}".'
            )
        changes: dict[str, dict[str, Any]] = {}
        for i, item in enumerate(desired, 1):
            change: dict[str, Any] = {}
            if "DesiredWeight" in item:
                weight = item["DesiredWeight"]
                if not isinstance(weight, int | float) or weight < 0:
                    raise constraint_error(
                        weight,
                        f"desiredWeightsAndCapacities.{i}.member.desiredWeight",
                        "Member must have value greater than or equal to 0",
                    )
                change["DesiredWeight"] = float(weight)
            if "DesiredInstanceCount" in item:
                count = item["DesiredInstanceCount"]
                if not isinstance(count, int) or count < 1:
                    raise constraint_error(
                        count,
                        f"desiredWeightsAndCapacities.{i}.member.desiredInstanceCount",
                        "Member must have value greater than or equal to 1",
                    )
                change["DesiredInstanceCount"] = count
            if not change:
                raise validation_error(
                    f"Either DesiredWeight or DesiredInstanceCount must be specified for variant {item['VariantName']}."
                )
            changes[item["VariantName"]] = change
        weights = {n: changes.get(n, {}).get("DesiredWeight", v.get("DesiredWeight", 1.0)) for n, v in variants.items()}
        if all(w == 0 for w in weights.values()):
            # The emulator refuses a table that would route nothing (AWS's wording unknown).
            raise validation_error(
                f'At least one variant of endpoint "{record["EndpointArn"]}" must keep a DesiredWeight greater than 0.'
            )
        started = now()

        def mark(r: dict[str, Any]) -> None:
            r["EndpointStatus"] = "Updating"
            r["LastModifiedTime"] = started
            r["_pending"] = {"kind": "weights"}
            for v in r["ProductionVariants"]:
                v.update(changes.get(v["VariantName"], {}))

        store.update("endpoint", name, mark)
    _plane(ctx).begin_weights(record["EndpointName"])
    return {"EndpointArn": record["EndpointArn"]}


def delete_endpoint(ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
    name = require(body, "EndpointName")
    store = ctx.emulator.store
    with store.locked():
        record = get_endpoint(ctx, name)
        if record["EndpointStatus"] in IN_PROGRESS:
            raise validation_error(f'Cannot update in-progress endpoint "{record["EndpointArn"]}".')

        def mark(r: dict[str, Any]) -> None:
            r["EndpointStatus"] = "Deleting"
            r["LastModifiedTime"] = now()

        store.update("endpoint", name, mark)
    _plane(ctx).begin_delete(record["EndpointName"])
    return {}


HANDLERS: dict[str, Handler] = {
    "CreateEndpoint": create_endpoint,
    "DescribeEndpoint": describe_endpoint,
    "ListEndpoints": list_endpoints,
    "UpdateEndpoint": update_endpoint,
    "UpdateEndpointWeightsAndCapacities": update_weights,
    "DeleteEndpoint": delete_endpoint,
}
