"""Server-side validation with AWS's own messages (botocore checks only required/type/min client-side)."""

from __future__ import annotations

import re
from typing import Any

from .config import ACCOUNT_ID
from .errors import AwsError, constraint_error, validation_error

# Endpoint, endpoint config, training job and variant names.
RESOURCE_NAME = r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
MODEL_NAME = r"^[a-zA-Z0-9]([\-a-zA-Z0-9]*[a-zA-Z0-9])?"
ROLE_ARN = r"^arn:aws[a-z\-]*:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+$"
S3_URI = r"^(https|s3)://([^/]+)/?(.*)$"
_COMPILED = {p: re.compile(p + ("" if p.endswith("$") else "$")) for p in (RESOURCE_NAME, MODEL_NAME, ROLE_ARN)}


def check_name(value: Any, member: str, pattern: str = RESOURCE_NAME, max_length: int = 63) -> str:
    if not isinstance(value, str) or not value:
        raise constraint_error(value, member, "Member must not be null")
    if len(value) > max_length:
        raise constraint_error(value, member, f"Member must have length less than or equal to {max_length}")
    if not _COMPILED[pattern].fullmatch(value):  # not match(): '$' also matches before a trailing newline
        raise constraint_error(value, member, f"Member must satisfy regular expression pattern: {pattern}")
    return value


def check_role(value: Any, member: str = "roleArn") -> str:
    if not isinstance(value, str) or not _COMPILED[ROLE_ARN].fullmatch(value):
        raise constraint_error(value, member, f"Member must satisfy regular expression pattern: {ROLE_ARN}")
    return value


def require(body: dict[str, Any], *path: str) -> Any:
    """The value at ``path`` in the request, or AWS's 'must not be null' error naming it."""
    node: Any = body
    for depth, part in enumerate(path):
        if not isinstance(node, dict) or node.get(part) in (None, ""):
            member = ".".join(p[0].lower() + p[1:] for p in path[: depth + 1])
            raise constraint_error(None, member, "Member must not be null")
        node = node[part]
    return node


def split_s3_uri(uri: str) -> tuple[str, str]:
    match = re.match(S3_URI, uri or "")
    if not match:
        raise validation_error(f"Invalid S3 URI: {uri!r}. Expected s3://bucket/prefix.")
    return match.group(2), match.group(3)


def arn(region: str, kind: str, name: str) -> str:
    # SageMaker lower-cases the resource name inside ARNs.
    return f"arn:aws:sagemaker:{region}:{ACCOUNT_ID}:{kind}/{name.lower()}"


def check_max_results(body: dict[str, Any]) -> int:
    value = body.get("MaxResults", 10)
    if not isinstance(value, int) or not 1 <= value <= 100:
        raise constraint_error(value, "maxResults", "Member must have value less than or equal to 100")
    return value


def unknown_operation(operation: str) -> AwsError:
    return AwsError(
        "UnknownOperationException",
        f"The local SageMaker emulator does not implement the operation {operation!r}. "
        "See the README's emulator API coverage.",
    )
