"""Every kind of bad input gets AWS's kind of error, nothing is created, and the server keeps serving.

One table, one parametrised test: each case sends a request as raw HTTP (a fake SigV4 header naming the
``sagemaker`` service, so bytes boto3 would refuse to send reach the server as they are) and asserts the
HTTP status, the error code and a fragment of the message. After each case the health check must answer,
a control-plane call must still work, a refused Create* must have created nothing, and no file may have
appeared under the control-plane state.

The rule the emulator applies (include/sagemaker_emulator/shapes.py): a value of the wrong JSON type
(or not JSON, or NaN/Infinity) is a ``SerializationException``; a well-typed value that breaks a
constraint of botocore's SageMaker model is a ``ValidationException`` in AWS's wording.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import http.client
import json
import os
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import client
from tests.emulator.serving_helpers import (
    XGB_IMAGE,
    create_config,
    create_model,
    csv_row,
    deploy,
    ensure_bucket,
    upload_xgboost,
)

ROLE = "arn:aws:iam::123456789012:role/SageMakerExecution"
AUTH = (
    "AWS4-HMAC-SHA256 Credential=testing/20261201/us-east-1/sagemaker/aws4_request, "
    "SignedHeaders=host;x-amz-date;x-amz-target, Signature=" + "0" * 64
)
BUCKET = "bad-input"
MODEL = "bad-input-model"
MME_MODEL = "bad-input-mme-model"
CONFIG = "bad-input-config"
MME_CONFIG = "bad-input-mme-config"
ENDPOINT = "bad-input-endpoint"
MME_ENDPOINT = "bad-input-mme"
MODEL_ARN = f"arn:aws:sagemaker:us-east-1:123456789012:model/{MODEL}"
LIMIT = 1024 * 1024
SER = "SerializationException"
VAL = "ValidationException"
FAULT = "InvalidFaultSpec"

# -- valid requests the cases break one member at a time -------------------------------------------------
BASES: dict[str, dict[str, Any]] = {
    "CreateModel": {
        "ModelName": "bad-input-new-model",
        "ExecutionRoleArn": ROLE,
        "PrimaryContainer": {"Image": XGB_IMAGE, "ModelDataUrl": f"s3://{BUCKET}/single/model.tar.gz"},
    },
    "CreateEndpointConfig": {
        "EndpointConfigName": "bad-input-new-config",
        "ProductionVariants": [
            {
                "VariantName": "v1",
                "ModelName": MODEL,
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
                "InitialVariantWeight": 1.0,
            }
        ],
    },
    "CreateEndpoint": {"EndpointName": "bad-input-new-endpoint", "EndpointConfigName": CONFIG},
    "CreateTrainingJob": {
        "TrainingJobName": "bad-input-new-job",
        "AlgorithmSpecification": {"TrainingImage": XGB_IMAGE, "TrainingInputMode": "File"},
        "RoleArn": ROLE,
        "HyperParameters": {"num_round": "5", "objective": "reg:squarederror"},
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/single/"}},
            }
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/output/"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
    },
    "UpdateEndpoint": {
        "EndpointName": ENDPOINT,
        "EndpointConfigName": CONFIG,
        "DeploymentConfig": {
            "BlueGreenUpdatePolicy": {
                "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0}
            }
        },
    },
    "UpdateEndpointWeightsAndCapacities": {
        "EndpointName": ENDPOINT,
        "DesiredWeightsAndCapacities": [{"VariantName": "v1", "DesiredWeight": 1.0, "DesiredInstanceCount": 1}],
    },
    "ListModels": {"NameContains": "bad-input", "MaxResults": 10},
    "ListTrainingJobs": {"MaxResults": 10},
    "ListEndpoints": {"MaxResults": 10},
    "AddTags": {"ResourceArn": MODEL_ARN, "Tags": [{"Key": "team", "Value": "pricing"}]},
    "DeleteTags": {"ResourceArn": MODEL_ARN, "TagKeys": ["team"]},
    "ListTags": {"ResourceArn": MODEL_ARN},
    "DescribeModel": {"ModelName": MODEL},
}
# What a refused Create* must not have created: (kind for /_emulator/resources, name member).
CREATED = {
    "CreateModel": ("model", "ModelName"),
    "CreateEndpointConfig": ("endpoint-config", "EndpointConfigName"),
    "CreateEndpoint": ("endpoint", "EndpointName"),
    "CreateTrainingJob": ("training-job", "TrainingJobName"),
}


@dataclass
class Case:
    id: str
    kind: str  # control | raw | fault | invoke | size
    status: int
    code: str
    fragment: str | tuple[str, ...]
    operation: str = ""
    body: Any = None  # dict (sent as JSON), bytes (sent as they are), or a callable(context) -> either
    headers: dict[str, str] = field(default_factory=dict)


def with_value(operation: str, path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    """The operation's valid base request with the member at ``path`` replaced (or removed, for DELETE)."""
    body = copy.deepcopy(BASES[operation])
    node: Any = body
    for part in path[:-1]:
        node = node[part]
    if value is DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return body


DELETE = object()


def raw_with(operation: str, path: tuple[Any, ...], token: str) -> bytes:
    """The base request as JSON text with a bare token (NaN, Infinity, 1e999) at ``path``."""
    marker = "__TOKEN__"
    return json.dumps(with_value(operation, path, marker)).replace(f'"{marker}"', token).encode()


# -- 1. wrong JSON types: SerializationException naming the member, what was expected and what came -----
INTEGER_WRONG = [("1", "string"), ([1], "array"), ({"v": 1}, "object"), (True, "boolean"), (1.5, "not a whole")]
INTEGER_RANGE = [(2**31, "outside the range of an integer"), (-(2**31) - 1, "outside the range of an integer")]
FLOAT_WRONG = [("0.5", "string"), ("NaN", "string"), ([0.5], "array"), ({"w": 1}, "object"), (True, "boolean")]
STRING_WRONG = [(5, "number"), (True, "boolean"), (["a"], "array"), ({"a": 1}, "object")]
BOOLEAN_WRONG = [("true", "string"), (1, "number")]
LIST_WRONG = [("v1", "string"), ({"a": 1}, "object"), (5, "number")]
MAP_WRONG = [(["num_round"], "array"), ("num_round=5", "string"), (5, "number")]
STRUCT_WRONG = [([], "array"), ("x", "string"), (5, "number")]
TIMESTAMP_WRONG = [("yesterday", "string"), (True, "boolean"), ([], "array")]

WRONG_TYPES: list[tuple[str, tuple[Any, ...], str, list[tuple[Any, str]], str]] = [
    # operation, path, member as AWS names it, wrong values, what the message says was expected
    (
        "CreateEndpointConfig",
        ("ProductionVariants", 0, "InitialInstanceCount"),
        "productionVariants.1.member.initialInstanceCount",
        INTEGER_WRONG + INTEGER_RANGE,
        "whole number",
    ),
    (
        "CreateEndpointConfig",
        ("ProductionVariants", 0, "InitialVariantWeight"),
        "productionVariants.1.member.initialVariantWeight",
        FLOAT_WRONG,
        "a number",
    ),
    (
        "CreateEndpointConfig",
        ("ProductionVariants", 0, "VariantName"),
        "productionVariants.1.member.variantName",
        STRING_WRONG,
        "a JSON string",
    ),
    ("CreateEndpointConfig", ("ProductionVariants",), "productionVariants", LIST_WRONG, "a JSON array"),
    ("CreateEndpointConfig", ("ProductionVariants", 0), "productionVariants.1.member", STRUCT_WRONG, "a JSON object"),
    ("CreateEndpointConfig", ("EndpointConfigName",), "endpointConfigName", STRING_WRONG, "a JSON string"),
    (
        "CreateTrainingJob",
        ("ResourceConfig", "InstanceCount"),
        "resourceConfig.instanceCount",
        INTEGER_WRONG + INTEGER_RANGE,
        "whole number",
    ),
    (
        "CreateTrainingJob",
        ("ResourceConfig", "VolumeSizeInGB"),
        "resourceConfig.volumeSizeInGB",
        [("5", "string"), (5.5, "not a whole"), (True, "boolean")],
        "whole number",
    ),
    (
        "CreateTrainingJob",
        ("StoppingCondition", "MaxRuntimeInSeconds"),
        "stoppingCondition.maxRuntimeInSeconds",
        [("600", "string"), ([600], "array"), (600.5, "not a whole")],
        "whole number",
    ),
    ("CreateTrainingJob", ("HyperParameters",), "hyperParameters", MAP_WRONG, "a map"),
    (
        "CreateTrainingJob",
        ("HyperParameters", "num_round"),
        "hyperParameters.num_round.value",
        [(5, "number"), (True, "boolean"), (1.5, "number"), (["5"], "array")],
        "a JSON string",
    ),
    ("CreateTrainingJob", ("ResourceConfig",), "resourceConfig", STRUCT_WRONG, "a JSON object"),
    ("CreateTrainingJob", ("InputDataConfig",), "inputDataConfig", LIST_WRONG, "a JSON array"),
    ("CreateTrainingJob", ("EnableNetworkIsolation",), "enableNetworkIsolation", BOOLEAN_WRONG, "true or false"),
    ("CreateTrainingJob", ("TrainingJobName",), "trainingJobName", STRING_WRONG[:2], "a JSON string"),
    ("CreateModel", ("PrimaryContainer",), "primaryContainer", STRUCT_WRONG, "a JSON object"),
    ("CreateModel", ("ExecutionRoleArn",), "executionRoleArn", STRING_WRONG[:2], "a JSON string"),
    ("CreateModel", ("EnableNetworkIsolation",), "enableNetworkIsolation", BOOLEAN_WRONG, "true or false"),
    ("CreateModel", ("PrimaryContainer", "Image"), "primaryContainer.image", STRING_WRONG[2:], "a JSON string"),
    (
        "UpdateEndpointWeightsAndCapacities",
        ("DesiredWeightsAndCapacities", 0, "DesiredWeight"),
        "desiredWeightsAndCapacities.1.member.desiredWeight",
        FLOAT_WRONG,
        "a number",
    ),
    (
        "UpdateEndpointWeightsAndCapacities",
        ("DesiredWeightsAndCapacities", 0, "DesiredInstanceCount"),
        "desiredWeightsAndCapacities.1.member.desiredInstanceCount",
        [("2", "string"), (True, "boolean"), (1.5, "not a whole"), (2**31, "outside the range")],
        "whole number",
    ),
    (
        "UpdateEndpointWeightsAndCapacities",
        ("DesiredWeightsAndCapacities",),
        "desiredWeightsAndCapacities",
        LIST_WRONG[:2],
        "a JSON array",
    ),
    ("ListModels", ("MaxResults",), "maxResults", [("10", "string"), (True, "boolean"), (2.5, "not a whole")], "whole"),
    ("ListModels", ("CreationTimeAfter",), "creationTimeAfter", TIMESTAMP_WRONG, "seconds since the epoch"),
    ("ListModels", ("NameContains",), "nameContains", STRING_WRONG[:2], "a JSON string"),
    ("ListTrainingJobs", ("MaxResults",), "maxResults", [({"n": 1}, "object"), ("ten", "string")], "whole number"),
    ("AddTags", ("Tags",), "tags", LIST_WRONG[:2], "a JSON array"),
    ("AddTags", ("Tags", 0, "Key"), "tags.1.member.key", STRING_WRONG[:3], "a JSON string"),
    ("AddTags", ("ResourceArn",), "resourceArn", STRING_WRONG[:2], "a JSON string"),
    ("DeleteTags", ("TagKeys",), "tagKeys", [("team", "string"), ({"team": 1}, "object")], "a JSON array"),
    ("DeleteTags", ("TagKeys", 0), "tagKeys.1.member", [(7, "number"), (None, "null")], "a JSON string"),
    ("UpdateEndpoint", ("DeploymentConfig",), "deploymentConfig", STRUCT_WRONG[:2], "a JSON object"),
    (
        "UpdateEndpoint",
        ("DeploymentConfig", "BlueGreenUpdatePolicy", "TrafficRoutingConfiguration", "WaitIntervalInSeconds"),
        "deploymentConfig.blueGreenUpdatePolicy.trafficRoutingConfiguration.waitIntervalInSeconds",
        [("0", "string"), (0.25, "not a whole")],
        "whole number",
    ),
    ("UpdateEndpoint", ("RetainAllVariantProperties",), "retainAllVariantProperties", BOOLEAN_WRONG, "true or false"),
]


def wrong_type_cases() -> list[Case]:
    cases = []
    for operation, path, member, values, expected in WRONG_TYPES:
        for value, said in values:
            case_id = f"type-{operation}-{member}-{json.dumps(value)[:20]}"
            if value is None:
                # null inside a list is a missing member, not a type error: AWS says 'must not be null'.
                code, fragment = (
                    VAL,
                    (f"Value null at '{member}' failed to satisfy constraint: Member must not be null",),
                )
            else:
                code, fragment = SER, (f"Cannot deserialize the value at '{member}'", expected, said)
            cases.append(Case(case_id, "control", 400, code, fragment, operation, with_value(operation, path, value)))
    return cases


# -- 2. NaN, Infinity and overflowing numbers: refused as JSON, wherever they appear -----------------------
NON_FINITE = [
    (
        "CreateEndpointConfig",
        ("ProductionVariants", 0, "InitialVariantWeight"),
        ("NaN", "Infinity", "-Infinity", "1e999"),
    ),
    (
        "UpdateEndpointWeightsAndCapacities",
        ("DesiredWeightsAndCapacities", 0, "DesiredWeight"),
        ("NaN", "Infinity", "-Infinity", "1e999", "-1e400"),
    ),
    (
        "UpdateEndpointWeightsAndCapacities",
        ("DesiredWeightsAndCapacities", 0, "DesiredInstanceCount"),
        ("NaN", "1e999"),
    ),
    ("CreateTrainingJob", ("ResourceConfig", "InstanceCount"), ("NaN", "Infinity")),
    ("CreateTrainingJob", ("HyperParameters", "eta"), ("NaN",)),
    ("ListModels", ("MaxResults",), ("Infinity",)),
    ("ListModels", ("CreationTimeAfter",), ("NaN", "-Infinity")),
]


def non_finite_cases() -> list[Case]:
    cases = []
    for operation, path, tokens in NON_FINITE:
        for token in tokens:
            fragment = "too large to represent" if "e" in token else f"{token} is not a JSON number"
            cases.append(
                Case(
                    f"nonfinite-{operation}-{path[-1]}-{token}",
                    "control",
                    400,
                    SER,
                    fragment,
                    operation,
                    raw_with(operation, path, token),
                )
            )
    return cases


# -- 3. well-typed values that break the model's constraints: ValidationException, AWS's wording -----------
def constraint_cases() -> list[Case]:
    c = []

    def add(case_id: str, operation: str, path: tuple[Any, ...], value: Any, fragment: str) -> None:
        c.append(
            Case(f"constraint-{case_id}", "control", 400, VAL, fragment, operation, with_value(operation, path, value))
        )

    name_pattern = "Member must satisfy regular expression pattern: [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
    add(
        "job-underscore",
        "CreateTrainingJob",
        ("TrainingJobName",),
        "bad_name",
        f"Value 'bad_name' at 'trainingJobName' failed to satisfy constraint: {name_pattern}",
    )
    add(
        "job-too-long",
        "CreateTrainingJob",
        ("TrainingJobName",),
        "a" * 64,
        "Member must have length less than or equal to 63",
    )
    add("job-empty", "CreateTrainingJob", ("TrainingJobName",), "", "at 'trainingJobName' failed to satisfy constraint")
    add("job-dotdot", "CreateTrainingJob", ("TrainingJobName",), "../../etc", "regular expression pattern")
    add("config-leading-dash", "CreateEndpointConfig", ("EndpointConfigName",), "-x", name_pattern)
    add("config-slash", "CreateEndpointConfig", ("EndpointConfigName",), "a/b", name_pattern)
    add("model-trailing-dash", "CreateModel", ("ModelName",), "x-", "Value 'x-' at 'modelName'")
    add("model-nul", "CreateModel", ("ModelName",), "a\x00b", "at 'modelName' failed to satisfy constraint")
    add(
        "variant-dot",
        "CreateEndpointConfig",
        ("ProductionVariants", 0, "VariantName"),
        "a.b",
        "productionVariants.1.member.variantName",
    )
    add(
        "count-zero",
        "CreateEndpointConfig",
        ("ProductionVariants", 0, "InitialInstanceCount"),
        0,
        "Value '0' at 'productionVariants.1.member.initialInstanceCount' failed to satisfy constraint: Member must have value greater than or equal to 1",
    )
    add(
        "count-negative",
        "CreateEndpointConfig",
        ("ProductionVariants", 0, "InitialInstanceCount"),
        -3,
        "greater than or equal to 1",
    )
    add(
        "weight-negative",
        "CreateEndpointConfig",
        ("ProductionVariants", 0, "InitialVariantWeight"),
        -0.5,
        "Value '-0.5' at 'productionVariants.1.member.initialVariantWeight' failed to satisfy constraint: Member must have value greater than or equal to 0",
    )
    add(
        "desired-weight-negative",
        "UpdateEndpointWeightsAndCapacities",
        ("DesiredWeightsAndCapacities", 0, "DesiredWeight"),
        -1,
        "desiredWeightsAndCapacities.1.member.desiredWeight",
    )
    add(
        "desired-count-zero",
        "UpdateEndpointWeightsAndCapacities",
        ("DesiredWeightsAndCapacities", 0, "DesiredInstanceCount"),
        0,
        "greater than or equal to 1",
    )
    add(
        "desired-empty",
        "UpdateEndpointWeightsAndCapacities",
        ("DesiredWeightsAndCapacities",),
        [],
        "Member must have length greater than or equal to 1",
    )
    add(
        "variants-empty",
        "CreateEndpointConfig",
        ("ProductionVariants",),
        [],
        "at 'productionVariants' failed to satisfy constraint: Member must have length greater than or equal to 1",
    )
    add(
        "variants-eleven",
        "CreateEndpointConfig",
        ("ProductionVariants",),
        [dict(BASES["CreateEndpointConfig"]["ProductionVariants"][0], VariantName=f"v{i}") for i in range(11)],
        "Member must have length less than or equal to 10",
    )
    add(
        "instance-type",
        "CreateEndpointConfig",
        ("ProductionVariants", 0, "InstanceType"),
        "ml.fake.large",
        "Member must satisfy enum value set: [ml.t2.medium",
    )
    add(
        "input-mode",
        "CreateTrainingJob",
        ("AlgorithmSpecification", "TrainingInputMode"),
        "Stream",
        "Value 'Stream' at 'algorithmSpecification.trainingInputMode' failed to satisfy constraint: Member must satisfy enum value set",
    )
    add(
        "max-runtime-zero",
        "CreateTrainingJob",
        ("StoppingCondition", "MaxRuntimeInSeconds"),
        0,
        "stoppingCondition.maxRuntimeInSeconds",
    )
    add("volume-zero", "CreateTrainingJob", ("ResourceConfig", "VolumeSizeInGB"), 0, "resourceConfig.volumeSizeInGB")
    add(
        "hyperparameters-101",
        "CreateTrainingJob",
        ("HyperParameters",),
        {f"k{i}": "1" for i in range(101)},
        "at 'hyperParameters' failed to satisfy constraint: Member must have length less than or equal to 100",
    )
    add(
        "hyperparameter-value-long",
        "CreateTrainingJob",
        ("HyperParameters", "eta"),
        "1" * 2501,
        "hyperParameters.eta.value",
    )
    add(
        "channel-name",
        "CreateTrainingJob",
        ("InputDataConfig", 0, "ChannelName"),
        "../train",
        "inputDataConfig.1.member.channelName",
    )
    add(
        "role-arn",
        "CreateTrainingJob",
        ("RoleArn",),
        "not-an-arn-but-long-enough",
        "at 'roleArn' failed to satisfy constraint",
    )
    add(
        "s3-uri",
        "CreateTrainingJob",
        ("OutputDataConfig", "S3OutputPath"),
        "file:///etc/passwd",
        "outputDataConfig.s3OutputPath",
    )
    add(
        "max-results-zero",
        "ListModels",
        ("MaxResults",),
        0,
        "Value '0' at 'maxResults' failed to satisfy constraint: Member must have value greater than or equal to 1",
    )
    add("max-results-101", "ListModels", ("MaxResults",), 101, "Member must have value less than or equal to 100")
    add("sort-order", "ListModels", ("SortOrder",), "Up", "Member must satisfy enum value set: [Ascending, Descending]")
    add("sort-by", "ListModels", ("SortBy",), "Size", "Value 'Size' at 'sortBy'")
    add("name-contains", "ListModels", ("NameContains",), "a_b", "at 'nameContains' failed to satisfy constraint")
    add("status-equals", "ListEndpoints", ("StatusEquals",), "Sleeping", "at 'statusEquals'")
    add("list-tags-max-results", "ListTags", ("MaxResults",), 10, "Member must have value greater than or equal to 50")
    add(
        "tags-51",
        "AddTags",
        ("Tags",),
        [{"Key": f"k{i}", "Value": "v"} for i in range(51)],
        "at 'tags' failed to satisfy constraint: Member must have length less than or equal to 50",
    )
    add("tag-key-long", "AddTags", ("Tags", 0, "Key"), "k" * 129, "tags.1.member.key")
    add("tag-key-empty", "AddTags", ("Tags", 0, "Key"), "", "Member must have length greater than or equal to 1")
    add("tag-keys-empty", "DeleteTags", ("TagKeys",), [], "at 'tagKeys'")
    add(
        "resource-arn-pattern",
        "AddTags",
        ("ResourceArn",),
        "arn:aws:s3:::bucket",
        "at 'resourceArn' failed to satisfy constraint: Member must satisfy regular expression pattern",
    )
    add(
        "routing-type",
        "UpdateEndpoint",
        ("DeploymentConfig", "BlueGreenUpdatePolicy", "TrafficRoutingConfiguration", "Type"),
        "SOMETIMES",
        "trafficRoutingConfiguration.type",
    )
    add(
        "wait-interval",
        "UpdateEndpoint",
        ("DeploymentConfig", "BlueGreenUpdatePolicy", "TrafficRoutingConfiguration", "WaitIntervalInSeconds"),
        3601,
        "Member must have value less than or equal to 3600",
    )
    # Required members, absent or null.
    add("empty-container", "CreateModel", ("PrimaryContainer",), {}, "Value null at 'primaryContainer.image'")
    add(
        "required-model-name",
        "CreateModel",
        ("ModelName",),
        DELETE,
        "Value null at 'modelName' failed to satisfy constraint: Member must not be null",
    )
    add("required-model-name-null", "CreateModel", ("ModelName",), None, "Value null at 'modelName'")
    add(
        "required-variants",
        "CreateEndpointConfig",
        ("ProductionVariants",),
        DELETE,
        "Value null at 'productionVariants'",
    )
    add(
        "required-variant-name",
        "CreateEndpointConfig",
        ("ProductionVariants", 0, "VariantName"),
        DELETE,
        "Value null at 'productionVariants.1.member.variantName'",
    )
    add("required-resource-config", "CreateTrainingJob", ("ResourceConfig",), DELETE, "Value null at 'resourceConfig'")
    add(
        "required-desired",
        "UpdateEndpointWeightsAndCapacities",
        ("DesiredWeightsAndCapacities",),
        None,
        "Value null at 'desiredWeightsAndCapacities'",
    )
    add("required-tags", "AddTags", ("Tags",), DELETE, "Value null at 'tags'")
    add(
        "required-describe",
        "DescribeModel",
        ("ModelName",),
        DELETE,
        "1 validation error detected: Value null at 'modelName'",
    )
    # Several at once, counted and listed as AWS does.
    two = with_value("CreateTrainingJob", ("TrainingJobName",), "bad_name")
    two["AlgorithmSpecification"]["TrainingInputMode"] = "Stream"
    c.append(
        Case("constraint-two-errors", "control", 400, VAL, "2 validation errors detected: ", "CreateTrainingJob", two)
    )
    return c


# -- 4. bodies that are not a request at all ---------------------------------------------------------
def body_cases() -> list[Case]:
    def raw(case_id: str, body: bytes, fragment: str, operation: str = "ListModels", code: str = SER) -> Case:
        return Case(f"body-{case_id}", "control", 400, code, fragment, operation, body)

    return [
        raw("truncated", b'{"MaxResults": 10', "Request body is not valid JSON"),
        raw("garbage", b"MaxResults=10", "Request body is not valid JSON"),
        raw("array", b"[]", "must be a JSON object (the ListModels input structure), not a JSON array"),
        raw("string", b'"ListModels"', "not a JSON string"),
        raw("number", b"42", "not a JSON number"),
        raw("null", b"null", "not a JSON null"),
        raw("deep", b"[" * 200_000 + b"]" * 200_000, "nested too deeply"),
        raw("bad-utf8", b'{"NameContains": "\xff\xfe"}', "Request body is not valid JSON"),
        raw("nan-top", b"NaN", "NaN is not a JSON number"),
        raw("create-array", b'[{"ModelName": "x"}]', "not a JSON array", operation="CreateModel"),
        Case(
            "body-unknown-op",
            "control",
            400,
            "UnknownOperationException",
            "CreateNotebookInstance",
            "CreateNotebookInstance",
            {},
        ),
        Case("body-no-target", "control", 400, "UnknownOperationException", "Missing or unknown X-Amz-Target", "", {}),
    ]


# -- 5. bodies over the 1 MiB control-plane limit: 413, refused without reading them -----------------------
def size_cases() -> list[Case]:
    big_name = json.dumps({"ModelName": "bad-input-huge", "ExecutionRoleArn": ROLE, "Pad": "x" * LIMIT}).encode()
    return [
        Case(
            "size-declared",
            "size",
            413,
            VAL,
            f"Request body of {len(big_name)} bytes exceeds the {LIMIT} bytes",
            "CreateModel",
            big_name,
        ),
        Case(
            "size-chunked",
            "size",
            413,
            VAL,
            f"exceeds the {LIMIT} bytes (1 MiB)",
            "CreateModel",
            big_name,
            {"_chunked": "1"},
        ),
        Case("size-one-over", "size", 413, VAL, f"of {LIMIT + 1} bytes", "ListModels", b" " * (LIMIT - 1) + b"{}"),
        Case(
            "size-faults", "size", 413, "RequestEntityTooLarge", "request body exceeds", "_faults", b" " * (LIMIT + 5)
        ),
    ]


# -- 6. tags on resources that do not exist: ValidationException, nothing written --------------------------
def tag_cases() -> list[Case]:
    arns = {
        "missing-model": "arn:aws:sagemaker:us-east-1:123456789012:model/no-such-model",
        "missing-endpoint": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/no-such-endpoint",
        "missing-job": "arn:aws:sagemaker:us-east-1:123456789012:training-job/no-such-job",
        "missing-config": "arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/no-such-config",
        "other-region": f"arn:aws:sagemaker:eu-west-1:123456789012:model/{MODEL}",
        "other-account": f"arn:aws:sagemaker:us-east-1:210987654321:model/{MODEL}",
        "other-kind": "arn:aws:sagemaker:us-east-1:123456789012:notebook-instance/nb",
        "traversal": "arn:aws:sagemaker:us-east-1:123456789012:model/../../../../tmp/x",
    }
    cases = []
    for label, resource_arn in arns.items():
        for operation, extra in (
            ("AddTags", {"Tags": [{"Key": "team", "Value": "pricing"}]}),
            ("DeleteTags", {"TagKeys": ["team"]}),
            ("ListTags", {}),
        ):
            cases.append(
                Case(
                    f"tags-{operation}-{label}",
                    "control",
                    400,
                    VAL,
                    f"Resource {resource_arn} not found",
                    operation,
                    {"ResourceArn": resource_arn, **extra},
                )
            )
    return cases


# -- 7. NextTokens that were not issued for this listing: ValidationException -----------------------------
def _tampered_offset(context: dict[str, Any]) -> dict[str, Any]:
    encoded, _, signature = context["token"].rpartition(".")
    state = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    state["offset"] = 0
    forged = base64.urlsafe_b64encode(json.dumps(state, separators=(",", ":")).encode()).decode().rstrip("=")
    return {"NameContains": "bad-input", "MaxResults": 1, "NextToken": f"{forged}.{signature}"}


def token_cases() -> list[Case]:
    def case(
        case_id: str, body: Any, fragment: str = "Invalid pagination token", operation: str = "ListModels"
    ) -> Case:
        return Case(f"token-{case_id}", "control", 400, VAL, fragment, operation, body)

    return [
        case("garbage", {"NextToken": "garbage"}),
        case("old-style-offset", {"NextToken": base64.urlsafe_b64encode(b"1").decode()}),
        case("dots", {"NextToken": "..."}),
        case("unicode", {"NextToken": "\u00e9t\u00e9.\u00e9t\u00e9"}),
        case("forged-offset", _tampered_offset, "not issued by this service"),
        case(
            "wrong-signature",
            lambda ctx: {"NameContains": "bad-input", "MaxResults": 1, "NextToken": ctx["token"][:-4] + "0000"},
            "not issued by this service",
        ),
        case(
            "other-filters",
            lambda ctx: {"NameContains": "bad-input-mme", "MaxResults": 1, "NextToken": ctx["token"]},
            "continues a different listing",
        ),
        case(
            "other-operation",
            lambda ctx: {"NameContains": "bad-input", "MaxResults": 1, "NextToken": ctx["token"]},
            "continues a different listing",
            "ListEndpointConfigs",
        ),
        case("too-long", {"NextToken": "a" * 8193}, "Member must have length less than or equal to 8192"),
    ]


# -- 8. fault specs: checked when posted, 400 naming the field, nothing stored -----------------------------
def fault_cases() -> list[Case]:
    def spec(case_id: str, body: Any, fragment: str) -> Case:
        return Case(f"fault-{case_id}", "fault", 400, FAULT, fragment, "", body)

    model_error = {"type": "variant_model_error", "endpoint_name": ENDPOINT}
    latency = {"type": "variant_latency", "endpoint_name": ENDPOINT}
    return [
        spec("status-abc", {**model_error, "status_code": "abc"}, "status_code must be an integer HTTP error status"),
        spec("status-200", {**model_error, "status_code": 200}, "from 400 to 599, got 200"),
        spec("status-999", {**model_error, "status_code": 999}, "got 999"),
        spec("status-bool", {**model_error, "status_code": True}, "got True"),
        spec("status-float", {**model_error, "status_code": 500.5}, "got 500.5"),
        spec("latency-nan", json.dumps(latency)[:-1].encode() + b', "latency_ms": NaN}', "NaN is not a JSON number"),
        spec("latency-inf", json.dumps(latency)[:-1].encode() + b', "latency_ms": Infinity}', "Infinity is not a JSON"),
        spec("latency-neg-inf", json.dumps(latency)[:-1].encode() + b', "latency_ms": -Infinity}', "-Infinity is not"),
        spec("latency-overflow", json.dumps(latency)[:-1].encode() + b', "latency_ms": 1e999}', "too large"),
        spec("latency-negative", {**latency, "latency_ms": -1}, "latency_ms must be a number of milliseconds from 0"),
        spec("latency-string", {**latency, "latency_ms": "100"}, "got '100'"),
        spec("latency-huge", {**latency, "latency_ms": 60_001}, "from 0 to 60000"),
        spec("latency-bool", {**latency, "latency_ms": True}, "got True"),
        spec("latency-missing", latency, "needs latency_ms"),
        spec("latency-null", {**latency, "latency_ms": None}, "needs latency_ms"),
        spec("unknown-key", {**model_error, "colour": "red"}, "does not take ['colour']"),
        spec("unknown-type", {"type": "meteor"}, "unknown fault type 'meteor'"),
        spec("type-missing", {"count": 1}, "unknown fault type None"),
        spec("type-list", {"type": ["throttle"]}, "unknown fault type ['throttle']"),
        spec("count-zero", {"type": "throttle", "count": 0}, "count must be a positive integer"),
        spec("count-negative", {"type": "throttle", "count": -2}, "got -2"),
        spec("count-string", {"type": "throttle", "count": "1"}, "got '1'"),
        spec("count-bool", {"type": "throttle", "count": True}, "got True"),
        spec("count-float", {"type": "throttle", "count": 1.5}, "got 1.5"),
        spec(
            "operations-string",
            {"type": "throttle", "operations": "CreateModel"},
            "operations must be a non-empty list",
        ),
        spec("operations-empty", {"type": "throttle", "operations": []}, "operations must be a non-empty list"),
        spec("operations-number", {"type": "throttle", "operations": [1]}, "got [1]"),
        spec("operations-typo", {"type": "throttle", "operations": ["CreateModle"]}, "names no SageMaker operation"),
        spec("endpoint-missing", {"type": "variant_model_error"}, "needs endpoint_name"),
        spec("endpoint-number", {**model_error, "endpoint_name": 5}, "endpoint_name must be a non-empty string"),
        spec("name-contains-empty", {"type": "training_failure", "name_contains": ""}, "name_contains must be"),
        spec("processing-endpoint", {"type": "processing_failure", "endpoint_name": "e"}, "does not take"),
        spec("processing-reason-number", {"type": "processing_failure", "reason": 3}, "reason must be a non-empty"),
        spec("reason-list", {"type": "deployment_failure", "reason": ["x"]}, "reason must be a non-empty string"),
        spec("message-long", {**model_error, "message": "m" * 1025}, "at most 1024 characters"),
        spec("faults-empty", {"faults": []}, "at least one fault"),
        spec("faults-string", {"faults": "throttle"}, "at least one fault"),
        spec("faults-extra-key", {"faults": [{"type": "throttle"}], "also": 1}, "takes no other keys"),
        spec("faults-too-many", {"faults": [{"type": "throttle"}] * 101}, "at most 100 faults"),
        spec(
            "second-invalid", {"faults": [{"type": "throttle"}, {**model_error, "status_code": "abc"}]}, "status_code"
        ),
        spec("not-json", b"type=throttle", "not valid JSON"),
        spec("array-of-nothing", b"[]", "a fault must be a JSON object"),
        spec("null", b"null", "a fault must be a JSON object"),
        spec("number", b"7", "a fault must be a JSON object, got 7"),
    ]


# -- 9. runtime requests the endpoint cannot serve: the runtime's own errors ---------------------------
def invoke_cases() -> list[Case]:
    def invoke(case_id: str, endpoint: str, body: bytes, status: int, code: str, fragment: str, **headers: str) -> Case:
        return Case(f"invoke-{case_id}", "invoke", status, code, fragment, endpoint, body, headers)

    return [
        invoke(
            "unknown-endpoint-empty",
            "no-such-endpoint",
            b"",
            400,
            "ValidationError",
            "Endpoint no-such-endpoint of account 123456789012 not found",
        ),
        invoke(
            "target-on-single",
            ENDPOINT,
            b"1,2,3,4,5,6",
            400,
            "ValidationError",
            "is not a multi-model endpoint",
            **{"X-Amzn-SageMaker-Target-Model": "a.tar.gz"},
        ),
        invoke("mme-no-target", MME_ENDPOINT, b"1,2,3,4,5,6", 400, "ValidationError", "missing a target model header"),
        invoke(
            "mme-missing-target",
            MME_ENDPOINT,
            b"1,2,3,4,5,6",
            400,
            "ValidationError",
            "no object at",
            **{"X-Amzn-SageMaker-Target-Model": "nothing-here.tar.gz"},
        ),
        invoke(
            "not-csv",
            ENDPOINT,
            b"one,two",
            424,
            "ModelError",
            "Unable to evaluate payload provided",
            **{"Content-Type": "text/csv"},
        ),
        invoke(
            "unknown-variant",
            ENDPOINT,
            b"1,2,3,4,5,6",
            400,
            "ValidationError",
            "Variant nope not found",
            **{"X-Amzn-SageMaker-Target-Variant": "nope"},
        ),
    ]


CASES = [
    *wrong_type_cases(),
    *non_finite_cases(),
    *constraint_cases(),
    *body_cases(),
    *size_cases(),
    *tag_cases(),
    *token_cases(),
    *fault_cases(),
    *invoke_cases(),
]


# -- the server, its resources and the raw requests -------------------------------------------------------
def http_request(
    emulator: Any, method: str, path: str, body: bytes, headers: dict[str, str]
) -> tuple[int, dict, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", emulator.port, timeout=30)
    try:
        chunked = headers.pop("_chunked", None)
        if chunked:
            connection.putrequest(method, path)
            for key, value in {**headers, "Transfer-Encoding": "chunked"}.items():
                connection.putheader(key, value)
            connection.endheaders()
            try:
                for start in range(0, len(body), 65536):
                    piece = body[start : start + 65536]
                    connection.send(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                connection.send(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server answered before reading it all, as it should
        else:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def control_plane(emulator: Any, operation: str, body: bytes, **extra: str) -> tuple[int, dict, bytes]:
    headers = {"Authorization": AUTH, "Content-Type": "application/x-amz-json-1.1", **extra}
    if operation:
        headers["X-Amz-Target"] = f"SageMaker.{operation}"
    return http_request(emulator, "POST", "/", body, headers)


def state_files(data_dir: Path) -> set[str]:
    root = data_dir / "sagemaker"
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and not p.name.endswith(".tmp")}


@pytest.fixture(scope="module")
def context(emulator) -> dict[str, Any]:
    """Two InService endpoints (single-model and MME) on real xgboost artifacts, and a real NextToken."""
    sm, s3 = client(emulator, "sagemaker"), client(emulator, "s3")
    ensure_bucket(s3, BUCKET)
    single_url = upload_xgboost(s3, BUCKET, "single/model.tar.gz")
    upload_xgboost(s3, BUCKET, "mme/houses.tar.gz", seed=1)
    create_model(sm, MODEL, single_url)
    create_model(sm, MME_MODEL, f"s3://{BUCKET}/mme/", multi_model=True)
    create_config(sm, CONFIG, [("v1", MODEL, 1.0)])
    create_config(sm, MME_CONFIG, [("v1", MME_MODEL, 1.0)])
    assert deploy(sm, ENDPOINT, CONFIG)["EndpointStatus"] == "InService"
    assert deploy(sm, MME_ENDPOINT, MME_CONFIG)["EndpointStatus"] == "InService"
    first = sm.list_models(NameContains="bad-input", MaxResults=1)
    assert first["NextToken"], "two bad-input models must need two pages"
    return {"token": first["NextToken"]}


def error_code(case: Case, headers: dict[str, str], payload: bytes) -> tuple[str, str]:
    if case.kind == "invoke":
        document = json.loads(payload)
        return headers.get("x-amzn-errortype", "").split(":")[0], document.get("Message") or document.get("message", "")
    document = json.loads(payload)
    if case.kind == "fault" or case.operation == "_faults":
        return document.get("code", ""), document.get("error", "")
    return document.get("__type", ""), document.get("message", "")


def test_the_table_has_at_least_150_cases():
    assert len(CASES) >= 150, len(CASES)
    assert len({c.id for c in CASES}) == len(CASES), "case ids must be unique"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(emulator, sm, context, case: Case):
    before = state_files(emulator.data_dir)
    faults_before = json.loads(http_request(emulator, "GET", "/_emulator/faults", b"", {})[2])["faults"]
    body = case.body(context) if callable(case.body) else case.body
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = dict(case.headers)

    if case.kind == "fault" or case.operation == "_faults":
        status, response_headers, payload = http_request(emulator, "POST", "/_emulator/faults", raw, headers)
    elif case.kind == "invoke":
        headers = {"Authorization": AUTH, "Content-Type": "text/csv", **headers}
        status, response_headers, payload = http_request(
            emulator, "POST", f"/endpoints/{case.operation}/invocations", raw, headers
        )
    else:
        status, response_headers, payload = control_plane(emulator, case.operation, raw, **headers)

    code, message = error_code(case, response_headers, payload)
    assert status == case.status, (status, payload[:500])
    assert code == case.code, (code, message[:500])
    for fragment in case.fragment if isinstance(case.fragment, tuple) else (case.fragment,):
        assert fragment in message, (fragment, message[:800])

    # The server keeps serving, refused input changed nothing.
    assert emulator.health()
    assert MODEL in [m["ModelName"] for m in sm.list_models(NameContains="bad-input")["Models"]]
    if case.operation in CREATED and isinstance(body, dict):
        kind, member = CREATED[case.operation]
        name = body.get(member)
        if isinstance(name, str) and name:
            path = f"/_emulator/resources/{kind}/{urllib.parse.quote(name, safe='')}"
            status, _, _ = http_request(emulator, "GET", path, b"", {})
            assert status == 404, f"{case.operation} created {name} although it answered {case.code}"
    assert state_files(emulator.data_dir) == before, "a refused request wrote control-plane state"
    faults_after = json.loads(http_request(emulator, "GET", "/_emulator/faults", b"", {})[2])["faults"]
    assert faults_after == faults_before, "a refused fault spec was stored"


# -- what valid input at the edges does (not errors, so outside the table) --------------------------------
def test_a_body_just_under_the_limit_is_served(emulator, context):
    padding = LIMIT - len(b'{"NameContains": "bad-input", "Pad": ""}')
    body = json.dumps({"NameContains": "bad-input", "Pad": "x" * padding}).encode()
    assert len(body) <= LIMIT
    status, _, payload = control_plane(emulator, "ListModels", body)
    assert status == 200, payload[:300]
    assert MODEL in [m["ModelName"] for m in json.loads(payload)["Models"]]


def test_next_tokens_page_through_the_listing(sm, context):
    names, token, pages = [], None, 0
    while True:
        kwargs = {"NextToken": token} if token else {}
        page = sm.list_models(NameContains="bad-input", MaxResults=1, **kwargs)
        names += [m["ModelName"] for m in page["Models"]]
        pages += 1
        token = page.get("NextToken")
        if not token:
            break
    assert sorted(names) == sorted({MODEL, MME_MODEL}) and pages == 2


def test_integral_numbers_are_accepted_for_integer_members(emulator, context):
    # JSON has one number type: 10.0 is the integer 10, as AWS's deserialiser reads it.
    status, _, payload = control_plane(emulator, "ListModels", b'{"NameContains": "bad-input", "MaxResults": 10.0}')
    assert status == 200, payload
    assert len(json.loads(payload)["Models"]) == 2


@pytest.mark.parametrize(
    ("endpoint", "headers"),
    [
        (ENDPOINT, {"Content-Type": "text/csv"}),
        (ENDPOINT, {"Content-Type": "application/x-unknown", "Accept": "application/json"}),
        (MME_ENDPOINT, {"Content-Type": "text/csv", "X-Amzn-SageMaker-Target-Model": "houses.tar.gz"}),
    ],
    ids=["single-model", "single-model-any-content-type", "multi-model"],
)
def test_an_empty_invoke_body_is_answered_as_the_container_does(emulator, context, endpoint, headers):
    """The XGBoost containers answer an empty body with 204 No Content before looking at the content type;
    the emulator relays that as a successful InvokeEndpoint with an empty Body."""
    status, response_headers, payload = http_request(
        emulator, "POST", f"/endpoints/{endpoint}/invocations", b"", {"Authorization": AUTH, **headers}
    )
    assert status == 200 and payload == b""
    assert response_headers["x-amzn-invoked-production-variant"] == "v1"
    # and the same endpoint still predicts
    row = csv_row([1, 2, 3, 4, 5, 6]).encode()
    target = {k: v for k, v in headers.items() if k == "X-Amzn-SageMaker-Target-Model"}
    status, _, payload = http_request(
        emulator,
        "POST",
        f"/endpoints/{endpoint}/invocations",
        row,
        {"Authorization": AUTH, **target, "Content-Type": "text/csv"},
    )
    assert status == 200 and float(payload.decode().strip().strip("[]").split(",")[0]) > 0


# -- generated bad input: whatever a member holds, the answer is AWS's kind of error, never ours ------------
FUZZED_OPERATIONS = (
    "CreateModel",
    "CreateEndpointConfig",
    "CreateEndpoint",
    "CreateTrainingJob",
    "UpdateEndpoint",
    "UpdateEndpointWeightsAndCapacities",
    "ListModels",
    "ListTrainingJobs",
    "ListEndpoints",
    "AddTags",
    "DeleteTags",
    "ListTags",
    "DescribeModel",
)
FUZZ_TARGETS = {
    "CreateModel": {"ModelName": "fuzzed"},
    "CreateEndpointConfig": {"EndpointConfigName": "fuzzed"},
    "CreateEndpoint": {"EndpointName": "fuzzed", "EndpointConfigName": "no-such-config"},
    "CreateTrainingJob": {"TrainingJobName": "fuzzed"},
    "UpdateEndpoint": {"EndpointName": "fuzzed"},
    "UpdateEndpointWeightsAndCapacities": {"EndpointName": "fuzzed"},
}
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=80),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)


def member_paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    paths = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            paths += member_paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            paths += member_paths(value, (*prefix, index))
    return paths


@settings(
    max_examples=int(os.environ.get("BAD_INPUT_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_generated_bad_members_never_reach_a_handler_unchecked(emulator, context, data):
    operation = data.draw(st.sampled_from(FUZZED_OPERATIONS), label="operation")
    path = data.draw(st.sampled_from(member_paths(BASES[operation])), label="path")
    value = data.draw(JSON_VALUES, label="value")
    request = with_value(operation, path, value)
    # What a request that passes creates or changes stays away from the table's resources: fuzzed names,
    # an endpoint that does not exist, training channels with no objects (so no job ever starts).
    for member, harmless in FUZZ_TARGETS.get(operation, {}).items():
        if path[:1] != (member,):
            request[member] = harmless
    # NaN and Infinity go out as bare tokens; no channel of a fuzzed job points at objects.
    body = json.dumps(request).replace(f"s3://{BUCKET}/single/", f"s3://{BUCKET}/none/").encode()
    status, _, payload = control_plane(emulator, operation, body)
    code = json.loads(payload).get("__type") if status != 200 else None
    assert status == 200 or (status == 400 and code in (SER, VAL)), (operation, path, value, payload[:400])
    assert emulator.health()
