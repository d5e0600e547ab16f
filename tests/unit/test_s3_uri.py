"""sagemaker_fleet.utils.s3.parse_s3_uri: the package's one S3 address parser."""

from __future__ import annotations

import pytest

from sagemaker_fleet.utils.s3 import parse_s3_uri, s3_uri


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("s3://bucket-1/a/b.tar.gz", ("bucket-1", "a/b.tar.gz")),
        ("s3://bucket-1", ("bucket-1", "")),
        ("s3://bucket-1/prefix/", ("bucket-1", "prefix/")),
        ("https://bucket-1.s3.amazonaws.com/a/b", ("bucket-1", "a/b")),
        ("https://bucket-1.s3.us-east-1.amazonaws.com/a%20b/c", ("bucket-1", "a b/c")),
        ("https://my.dotted.bucket.s3.eu-west-1.amazonaws.com/k", ("my.dotted.bucket", "k")),
        ("https://bucket-1.s3-us-west-2.amazonaws.com/k", ("bucket-1", "k")),
        ("https://s3.amazonaws.com/bucket-1/k", ("bucket-1", "k")),
        ("https://s3.us-east-1.amazonaws.com/bucket-1/a/b", ("bucket-1", "a/b")),
        # The older dashed regional form, which the provider's parse_s3_url rejects.
        ("https://s3-us-west-2.amazonaws.com/bucket-1/a/b", ("bucket-1", "a/b")),
        ("https://s3.dualstack.us-east-1.amazonaws.com/bucket-1/k", ("bucket-1", "k")),
        ("https://bucket-1.s3.cn-north-1.amazonaws.com.cn/k", ("bucket-1", "k")),
    ],
)
def test_accepts_s3_and_https_forms(uri: str, expected: tuple[str, str]) -> None:
    assert parse_s3_uri(uri) == expected


@pytest.mark.parametrize(
    "uri",
    [
        "",
        "s3://",
        "s3:///key",
        "bucket/key",
        "http://bucket-1.s3.amazonaws.com/k",
        "https://example.com/bucket-1/k",
        "https://s3.amazonaws.com/",
        "https://bucket-1.s3.amazonaws.com.evil.example/k",
        "s3://-bad/k",
        None,
    ],
)
def test_rejects_anything_else_naming_the_input(uri: object) -> None:
    with pytest.raises(ValueError, match="Not an S3 URI"):
        parse_s3_uri(uri)  # type: ignore[arg-type]


def test_s3_uri_round_trips() -> None:
    assert parse_s3_uri(s3_uri("bucket-1", "/a/b")) == ("bucket-1", "a/b")
