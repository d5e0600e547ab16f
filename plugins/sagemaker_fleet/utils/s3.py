"""The package's one S3 address parser, and the helpers built on it.

Accepts what users paste: ``s3://bucket/key`` and the HTTPS object URLs the console and SDKs print,
virtual-hosted (``https://bucket.s3.us-east-1.amazonaws.com/key``, ``https://bucket.s3.amazonaws.com/key``)
and path-style (``https://s3.us-east-1.amazonaws.com/bucket/key``, the older dashed
``https://s3-us-west-2.amazonaws.com/bucket/key``, which the provider's ``parse_s3_url`` rejects).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote, urlparse

__all__ = ["ensure_bucket", "parse_s3_uri", "s3_uri"]

# Bucket names, including the legacy us-east-1 ones (upper case, underscores, up to 255 characters).
_BUCKET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")
# s3.amazonaws.com, s3.<region>.amazonaws.com, s3-<region>.amazonaws.com, s3.dualstack.<region>...,
# and the China partition's amazonaws.com.cn.
_S3_HOST_PART = r"s3(?:[.-](?:dualstack\.)?[a-z0-9-]+)?\.amazonaws\.com(?:\.cn)?"
_S3_HOST = re.compile(rf"^{_S3_HOST_PART}$")
_VIRTUAL_HOST = re.compile(rf"^(?P<bucket>[a-z0-9][a-z0-9.-]*?)\.{_S3_HOST_PART}$")


def _checked(bucket: str, key: str, uri: str) -> tuple[str, str]:
    if not _BUCKET.match(bucket) or ".." in bucket:
        raise ValueError(f"Not an S3 URI: {uri!r} ({bucket!r} is not a valid bucket name)")
    return bucket, key


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``(bucket, key)`` of an ``s3://`` URI or an S3 HTTPS URL; ValueError naming the input otherwise.

    The key may be empty (a bucket or a prefix). Percent-escapes in HTTPS URLs are decoded, since that is
    how S3 writes keys with spaces or unicode into them; ``s3://`` URIs are taken literally.
    """
    if not isinstance(uri, str) or not uri.strip():
        raise ValueError(f"Not an S3 URI: {uri!r} (expected s3://bucket/key or an https:// S3 URL)")
    parsed = urlparse(uri.strip())
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise ValueError(f"Not an S3 URI: {uri!r} (no bucket after s3://)")
        return _checked(parsed.netloc, parsed.path.lstrip("/"), uri)
    if parsed.scheme == "https" and parsed.hostname:
        host = parsed.hostname.lower()
        path = unquote(parsed.path.lstrip("/"))
        if _S3_HOST.match(host):  # path-style: the bucket is the first path segment
            bucket, _, key = path.partition("/")
            if not bucket:
                raise ValueError(f"Not an S3 URI: {uri!r} (a path-style URL needs /bucket/ after the host)")
            return _checked(bucket, key, uri)
        virtual = _VIRTUAL_HOST.match(host)
        if virtual:  # virtual-hosted: bucket.s3[.region].amazonaws.com (the bucket may contain dots)
            return _checked(virtual.group("bucket"), path, uri)
    raise ValueError(f"Not an S3 URI: {uri!r} (expected s3://bucket/key or an https:// S3 URL)")


def s3_uri(bucket: str, key: str) -> str:
    """``s3://bucket/key``."""
    return f"s3://{bucket}/{key.lstrip('/')}"


def ensure_bucket(s3: Any, bucket: str, region: str | None) -> bool:
    """Create ``bucket`` unless it exists; True when it was created."""
    from botocore.exceptions import ClientError

    try:
        s3.head_bucket(Bucket=bucket)
        return False
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
            raise
    kwargs: dict[str, Any] = {"Bucket": bucket}
    if region and region != "us-east-1":  # us-east-1 refuses an explicit LocationConstraint
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    try:
        s3.create_bucket(**kwargs)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
            raise
        return False
    return True
