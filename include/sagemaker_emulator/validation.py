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


# Bucket names as S3 creates them today (3-63 of lower-case letters, digits, '.', '-'; letter/digit at both ends):
# what a virtual-hosted host name can carry.
_BUCKET = r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]"
# What an s3:// or path-style URI may name: also the legacy us-east-1 names (upper case, '_', up to 255), as
# SageMaker's own pattern ``^(https|s3)://([^/]+)/?(.*)$`` accepts them; S3 answers for a bucket that is not there.
_LEGACY_BUCKET = r"[A-Za-z0-9][A-Za-z0-9._\-]{0,254}"
# The S3 endpoint host names SageMaker accepts in https:// URIs: global, s3-<region> (legacy dash form) and
# s3.<region> (with optional dualstack), in the aws and aws-cn partitions.
_S3_HOST = r"s3(?:[.-](?:dualstack\.)?[a-z]{2}(?:-[a-z]+)+-\d)?\.amazonaws\.com(?:\.cn)?"
_PATH_STYLE = re.compile(rf"(?P<host>{_S3_HOST})/(?P<bucket>[^/]+)(?:/(?P<key>.*))?", re.DOTALL)
_VIRTUAL_HOSTED = re.compile(rf"(?P<bucket>{_BUCKET})\.(?P<host>{_S3_HOST})(?:/(?P<key>.*))?", re.DOTALL)
_S3_SCHEME = re.compile(r"(?P<bucket>[^/]+)(?:/(?P<key>.*))?", re.DOTALL)


def split_s3_uri(uri: Any, member: str = "S3Uri") -> tuple[str, str]:
    """(bucket, key or prefix) of any S3 URI form SageMaker accepts, or a ValidationException naming it.

    Forms: ``s3://b/k``; path-style ``https://s3.amazonaws.com/b/k``, ``https://s3-<region>.amazonaws.com/b/k``,
    ``https://s3.<region>.amazonaws.com/b/k``; virtual-hosted ``https://b.s3.amazonaws.com/k`` and its
    ``s3-<region>`` / ``s3.<region>`` variants. This is the emulator's one server-side parser (the emulator
    imports nothing from plugins/, whose client-side parser is separate).
    """
    expected = (
        "Expected s3://<bucket>/<prefix>, https://s3.<region>.amazonaws.com/<bucket>/<prefix> (also s3-<region> and "
        "s3.amazonaws.com) or https://<bucket>.s3.<region>.amazonaws.com/<prefix>."
    )
    if not isinstance(uri, str) or not uri:
        raise validation_error(f"Invalid S3 URI {uri!r} in {member}. {expected}")
    scheme, sep, rest = uri.partition("://")
    match = None
    if sep and scheme == "s3":
        match = _S3_SCHEME.fullmatch(rest)
    elif sep and scheme == "https":
        match = _PATH_STYLE.fullmatch(rest) or _VIRTUAL_HOSTED.fullmatch(rest)
    if match is None:
        raise validation_error(f"Invalid S3 URI {uri!r} in {member}. {expected}")
    bucket, key = match.group("bucket"), match.group("key") or ""
    if not re.fullmatch(_LEGACY_BUCKET, bucket):
        raise validation_error(
            f"Invalid S3 URI {uri!r} in {member}: {bucket!r} is not a bucket name (letters, digits, '.', '_' or '-', "
            "starting with a letter or digit)."
        )
    return bucket, key


def canonical_s3_uri(uri: str, member: str = "S3Uri") -> str:
    """The ``s3://bucket/key`` form of any accepted URI (what SageMaker reports back, e.g. S3ModelArtifacts)."""
    bucket, key = split_s3_uri(uri, member)
    return f"s3://{bucket}/{key}"


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
