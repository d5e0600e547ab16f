"""include.sagemaker_images.image_uri answers exactly what sagemaker.core.image_uris.retrieve does, cheaply."""

from __future__ import annotations

import subprocess
import sys

import pytest
from sagemaker.core import image_uris

from include.sagemaker_images import image_uri

# The images the DAGs, the emulator and their tests use, in the regions that differ in account and DNS.
IMAGES = [
    ("xgboost", "1.7-1"),
    ("xgboost", "1.0-1"),
    ("xgboost", "0.90-2"),
    ("xgboost", "1"),
    ("xgboost", None),
    ("linear-learner", None),
    ("sklearn", "1.2-1"),
    ("sklearn", "1.0-1"),
    ("sklearn", "0.23-1"),
    ("kmeans", None),
]
REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2", "cn-north-1", "us-gov-west-1", "il-central-1"]


@pytest.mark.parametrize("region", REGIONS)
@pytest.mark.parametrize(("framework", "version"), IMAGES)
def test_same_uri_as_the_sdk(framework: str, version: str | None, region: str) -> None:
    kwargs = {"version": version} if version else {}
    try:
        expected = image_uris.retrieve(framework, region=region, **kwargs)
    except ValueError:  # e.g. no xgboost:1 in il-central-1, no "latest" xgboost: ours refuses too
        with pytest.raises(ValueError, match="Unsupported"):
            image_uri(framework, region=region, **kwargs)
        return
    assert image_uri(framework, region=region, **kwargs) == expected


@pytest.mark.parametrize("scope", ["training", "inference"])
def test_same_uri_for_each_scope(scope: str) -> None:
    for framework, version in (("xgboost", "1.7-1"), ("sklearn", "1.2-1"), ("linear-learner", None)):
        expected = image_uris.retrieve(framework, region="us-west-2", version=version, image_scope=scope)
        assert image_uri(framework, "us-west-2", version=version, image_scope=scope) == expected


def test_known_uris_spelled_out() -> None:
    # Independent of the SDK: what the AWS documentation lists for us-east-1.
    assert image_uri("xgboost", "us-east-1", "1.7-1") == (
        "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
    )
    assert image_uri("xgboost", "us-east-1", "1.0-1") == (
        "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.0-1-cpu-py3"
    )
    assert image_uri("linear-learner", "us-east-1") == "382416733822.dkr.ecr.us-east-1.amazonaws.com/linear-learner:1"


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"framework": "xgboost", "region": "us-east-1", "version": "9.9-9"}, "xgboost version: 9.9-9"),
        ({"framework": "xgboost", "region": "mars-north-1", "version": "1.7-1"}, "region: mars-north-1"),
        ({"framework": "xgboost", "region": "us-east-1", "version": "1.7-1", "image_scope": "eia"}, "image scope"),
        ({"framework": "sklearn", "region": "us-east-1", "version": "1.2-1", "py_version": "py2"}, "Python version"),
    ],
)
def test_bad_arguments_fail_like_the_sdk(kwargs: dict, words: str) -> None:
    with pytest.raises(ValueError, match="Unsupported") as ours:
        image_uri(**kwargs)
    assert words in str(ours.value)
    with pytest.raises(ValueError):
        image_uris.retrieve(**kwargs)


def test_other_frameworks_and_instance_types_go_to_the_sdk() -> None:
    pytorch = {"version": "2.1", "py_version": "py310", "instance_type": "ml.m5.xlarge", "image_scope": "training"}
    assert image_uri("pytorch", "us-east-1", **pytorch) == image_uris.retrieve("pytorch", "us-east-1", **pytorch)
    graviton = {"version": "1.5-1", "instance_type": "ml.c7g.xlarge", "image_scope": "inference"}
    expected = image_uris.retrieve("xgboost", "us-east-1", **graviton)
    assert expected.endswith(":1.5-1-arm64")
    assert image_uri("xgboost", "us-east-1", **graviton) == expected


def test_the_sdk_is_not_imported() -> None:
    code = (
        "import sys; from include.sagemaker_images import image_uri; "
        "print(image_uri('xgboost', 'us-east-1', '1.7-1')); "
        "print(sorted(m for m in sys.modules if m.startswith('sagemaker.core')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    assert out == ["683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1", "[]"]
