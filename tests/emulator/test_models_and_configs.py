"""Models, endpoint configurations and tags on the emulator, with plain boto3."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from tests.emulator.helpers import ROLE_ARN, unique, xgboost_image


def create_model(sm, name: str, mode: str = "SingleModel", data_url: str = "s3://bucket-x/model.tar.gz") -> str:
    return sm.create_model(
        ModelName=name,
        ExecutionRoleArn=ROLE_ARN,
        PrimaryContainer={"Image": xgboost_image(), "ModelDataUrl": data_url, "Mode": mode},
    )["ModelArn"]


def test_model_lifecycle_and_aws_messages(sm):
    name = unique("model")
    arn = create_model(sm, name)
    assert arn == f"arn:aws:sagemaker:us-east-1:123456789012:model/{name}"
    described = sm.describe_model(ModelName=name)
    assert described["PrimaryContainer"]["Mode"] == "SingleModel"
    assert described["ExecutionRoleArn"] == ROLE_ARN
    with pytest.raises(ClientError, match=f'Cannot create already existing model "{arn}"'):
        create_model(sm, name)
    assert name in [m["ModelName"] for m in sm.list_models(NameContains=name)["Models"]]
    sm.delete_model(ModelName=name)
    with pytest.raises(ClientError, match=f'Could not find model "{arn}"') as raised:
        sm.describe_model(ModelName=name)
    assert raised.value.response["Error"]["Code"] == "ValidationException"


def test_multi_model_container_round_trips(sm):
    name = unique("mme")
    create_model(sm, name, mode="MultiModel", data_url="s3://bucket-x/mme/")
    assert sm.describe_model(ModelName=name)["PrimaryContainer"] == {
        "Image": xgboost_image(),
        "ModelDataUrl": "s3://bucket-x/mme/",
        "Mode": "MultiModel",
    }


def test_model_name_rules(sm):
    for bad in ("Chicago_IL", "-leading", "trailing-"):
        with pytest.raises(ClientError, match="regular expression pattern"):
            create_model(sm, bad)


def test_endpoint_config_lifecycle(sm):
    model = unique("m")
    create_model(sm, model)
    name = unique("cfg")
    variants = [
        {
            "VariantName": "Champion",
            "ModelName": model,
            "InitialInstanceCount": 1,
            "InstanceType": "ml.m5.large",
            "InitialVariantWeight": 1,
        },
        {"VariantName": "Challenger", "ModelName": model, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"},
    ]
    arn = sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=variants)["EndpointConfigArn"]
    described = sm.describe_endpoint_config(EndpointConfigName=name)
    assert [v["InitialVariantWeight"] for v in described["ProductionVariants"]] == [1.0, 1.0]
    with pytest.raises(ClientError, match=f'Cannot create already existing endpoint configuration "{arn}"'):
        sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=variants)
    assert [c["EndpointConfigName"] for c in sm.list_endpoint_configs(NameContains=name)["EndpointConfigs"]] == [name]
    sm.delete_endpoint_config(EndpointConfigName=name)
    with pytest.raises(ClientError, match="Could not find endpoint configuration"):
        sm.describe_endpoint_config(EndpointConfigName=name)


def test_endpoint_config_refuses_missing_models_and_bad_variants(sm):
    with pytest.raises(ClientError, match='Could not find model "arn:aws:sagemaker:us-east-1:123456789012:model/nope"'):
        sm.create_endpoint_config(
            EndpointConfigName=unique("cfg"),
            ProductionVariants=[
                {"VariantName": "A", "ModelName": "nope", "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}
            ],
        )
    model = unique("m")
    create_model(sm, model)
    with pytest.raises(ClientError, match="must be unique"):
        sm.create_endpoint_config(
            EndpointConfigName=unique("cfg"),
            ProductionVariants=[
                {"VariantName": "A", "ModelName": model, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"},
                {"VariantName": "A", "ModelName": model, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"},
            ],
        )


def test_tags_on_models(sm):
    name = unique("tagged")
    arn = create_model(sm, name)
    sm.add_tags(ResourceArn=arn, Tags=[{"Key": "location", "Value": "Chicago_IL"}])
    assert sm.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "location", "Value": "Chicago_IL"}]
    sm.delete_tags(ResourceArn=arn, TagKeys=["location"])
    assert sm.list_tags(ResourceArn=arn)["Tags"] == []
