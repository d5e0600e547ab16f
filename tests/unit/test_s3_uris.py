"""The emulator's one server-side S3 URI parser: every form SageMaker accepts, and clear refusals."""

from __future__ import annotations

import pytest

from include.sagemaker_emulator.errors import AwsError
from include.sagemaker_emulator.validation import canonical_s3_uri, split_s3_uri


@pytest.mark.parametrize(
    ("uri", "bucket", "key"),
    [
        ("s3://my-bucket/sagemaker/train/", "my-bucket", "sagemaker/train/"),
        ("s3://my-bucket", "my-bucket", ""),
        ("https://s3.amazonaws.com/my-bucket/a/b", "my-bucket", "a/b"),
        ("https://s3-us-east-1.amazonaws.com/my-bucket/sagemaker/DEMO/train/", "my-bucket", "sagemaker/DEMO/train/"),
        ("https://s3.eu-west-1.amazonaws.com/my-bucket/k", "my-bucket", "k"),
        ("https://s3.dualstack.us-west-2.amazonaws.com/my-bucket/k", "my-bucket", "k"),
        ("https://s3.cn-north-1.amazonaws.com.cn/my-bucket/k", "my-bucket", "k"),
        ("https://my-bucket.s3.amazonaws.com/a/b/", "my-bucket", "a/b/"),
        ("https://my.dotted.bucket.s3-us-west-2.amazonaws.com/k", "my.dotted.bucket", "k"),
        ("https://my-bucket.s3.ap-southeast-2.amazonaws.com/k", "my-bucket", "k"),
        ("https://my-bucket.s3.us-east-1.amazonaws.com", "my-bucket", ""),
        ("s3://x/y", "x", "y"),  # SageMaker's own pattern accepts any bucket-like name; S3 answers later
        ("s3://Legacy_Bucket/k", "Legacy_Bucket", "k"),
    ],
)
def test_every_form_names_its_bucket_and_key(uri: str, bucket: str, key: str) -> None:
    assert split_s3_uri(uri) == (bucket, key)
    assert canonical_s3_uri(uri) == f"s3://{bucket}/{key}"


@pytest.mark.parametrize(
    ("uri", "why"),
    [
        ("", "Expected s3://"),
        (None, "Expected s3://"),
        ("my-bucket/key", "Expected s3://"),
        ("s3:///key", "Expected s3://"),
        ("http://s3.amazonaws.com/my-bucket/k", "Expected s3://"),  # SageMaker takes https only
        ("https://example.com/my-bucket/k", "Expected s3://"),
        ("https://s3.amazonaws.com/", "Expected s3://"),
        ("https://s3.amazonaws.com.evil.example/my-bucket/k", "Expected s3://"),
        ("s3://my bucket/k", "is not a bucket name"),
        ("https://s3.amazonaws.com/-bucket/k", "is not a bucket name"),
        ("s3://b%2Fc/k", "is not a bucket name"),
        ("https://My_Bucket.s3.amazonaws.com/k", "Expected s3://"),  # not a host name S3 serves
    ],
)
def test_bad_uris_are_refused_naming_the_member(uri, why: str) -> None:
    with pytest.raises(AwsError) as info:
        split_s3_uri(uri, "OutputDataConfig.S3OutputPath")
    assert info.value.code == "ValidationException"
    assert "OutputDataConfig.S3OutputPath" in info.value.message and why in info.value.message
