"""The Boston preset of housing_ab_rollout without Airflow or SageMaker: Params, plan, the notebook's split,
transform requests and scores, shift steps by variant name, model creation that a retry reuses."""

from __future__ import annotations

import io

import pytest
from botocore.exceptions import ClientError

from include.housing import ab_rollout, boston
from include.housing.params import InvalidParamsError, hyperparameters_for_sagemaker, validate_ab_params

SETTINGS = {"bucket": "bucket", "role_arn": "arn:aws:iam::123456789012:role/R", "raw_source": "synthetic"}
IMAGES = {"xgboost": "img/sagemaker-xgboost:1.0-1-cpu-py3", "linear-learner": "img/linear-learner:1"}
RUN_ID = "manual__2026-11-25T10:00:00+00:00"


def plan(**params):
    return ab_rollout.build_plan(
        params, SETTINGS, "2026-11-25", dag_id="housing_ab_rollout", run_id=RUN_ID, image_uris=IMAGES
    )


def test_preset_is_the_notebook_exactly_and_replaces_the_forms_models() -> None:
    # The form sends its own champion/challenger too: the preset wins over them.
    params = validate_ab_params({"preset": "boston-notebook", "champion": {"algorithm": "linear-learner"}})
    assert params["dataset"] == "boston"
    assert hyperparameters_for_sagemaker(params["champion"]["hyperparameters"]) == {
        "max_depth": "5", "eta": "0.2", "gamma": "4", "min_child_weight": "6", "subsample": "0.8",
        "objective": "reg:linear", "early_stopping_rounds": "10", "num_round": "200",
    }  # fmt: skip
    assert params["challenger"] == {
        "algorithm": "linear-learner",
        "hyperparameters": {"feature_dim": 13, "predictor_type": "regressor", "mini_batch_size": 200},
    }
    assert params["variant_names"] == {"champion": "XGB-Model", "challenger": "Linear-Model"}
    assert params["initial_weights"] == {"champion": 1.0, "challenger": 1.0}
    assert ab_rollout.algorithm_images({"preset": "boston-notebook"})["xgboost"] == ("xgboost", "1.0-1")
    assert ab_rollout.algorithm_images({})["xgboost"] == ("xgboost", "1.7-1")


def test_bad_preset_dataset_and_flag_are_named() -> None:
    with pytest.raises(InvalidParamsError) as error:
        validate_ab_params({"preset": "mnist", "dataset": "iris", "batch_transform": "maybe"})
    text = str(error.value)
    assert "preset: 'mnist'" in text and "dataset: 'iris'" in text and "batch_transform" in text


def test_boston_plan_uses_the_whole_test_split_and_the_variant_names() -> None:
    p = plan(preset="boston-notebook", evaluation_rows=50)
    assert p["dataset"] == "boston" and p["location"] == "Boston_MA"
    assert p["evaluation_rows"] == 167 == boston.split_sizes()["test"]
    assert p["variants"] == {"champion": "XGB-Model", "challenger": "Linear-Model"}
    assert p["expected_weights"] == {"XGB-Model": 1.0, "Linear-Model": 1.0}
    assert p["probe_row"] == boston.features_csv(boston.load().head(1)).strip()
    assert ab_rollout.shift_steps_for(p, "challenger") == [{"Linear-Model": 1.0, "XGB-Model": 0.0}]
    spec = ab_rollout.ab_endpoint_spec(p, {"champion": "s3://b/x.tar.gz", "challenger": "s3://b/y.tar.gz"})
    assert [v["VariantName"] for v in spec["endpoint_config"]["ProductionVariants"]] == ["XGB-Model", "Linear-Model"]
    winner = ab_rollout.winner_endpoint_spec(p, "champion")
    assert [v["VariantName"] for v in winner["endpoint_config"]["ProductionVariants"]] == ["XGB-Model"]
    request = ab_rollout.transform_request(p, "challenger")
    assert request["ModelName"] == p["roles"]["challenger"]["model_name"]
    assert request["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"] == p["transform_input_uri"]
    assert request["TransformOutput"]["S3OutputPath"].endswith("/transform-output/challenger/")
    # The synthetic default keeps its role-named variants.
    assert plan()["variants"] == {"champion": "champion", "challenger": "challenger"}


def test_notebook_split_is_seeded_and_label_first() -> None:
    frame = boston.load()
    first, again = boston.notebook_split(frame, 0), boston.notebook_split(frame, 0)
    assert all(first[name].equals(again[name]) for name in first)
    assert {name: len(part) for name, part in first.items()} == boston.split_sizes()
    assert not set(first["test"].index) & set(first["train"].index)
    row = boston.label_first_csv(first["test"].head(1)).strip().split(",")
    assert len(row) == 14 and float(row[0]) == first["test"]["medv"].iloc[0]
    assert len(boston.features_csv(first["test"].head(1)).strip().split(",")) == 13


class FakeS3:
    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects

    def get_object(self, Bucket: str, Key: str) -> dict:
        return {"Body": io.BytesIO(self.objects[f"s3://{Bucket}/{Key}"])}


def test_transform_scores_read_comma_joined_and_line_answers() -> None:
    p = plan(preset="boston-notebook")
    data = {"test_uri": "s3://bucket/t/test.csv"}
    outputs = {
        # sagemaker-xgboost 1.0-1: each mini-batch comma-joined, batches on lines; Linear Learner: one per line.
        "champion": b"21.0,30.0\n12.0\n",
        "challenger": b"20.0\n31.0\n10.0\n",
    }
    objects = {data["test_uri"]: b"20.0,1,2\n30.0,1,2\n10.0,1,2\n"}
    for role, body in outputs.items():
        objects[p["roles"][role]["transform_output"] + "test.csv.out"] = body
    scores = ab_rollout.transform_scores(FakeS3(objects), p, data)
    assert scores["champion"]["mae"] == pytest.approx(1.0)
    assert scores["champion"]["rmse"] == pytest.approx(((1 + 0 + 4) / 3) ** 0.5)
    assert scores["challenger"]["rmse"] == pytest.approx((1 / 3) ** 0.5)
    assert scores["challenger"]["variant"] == "Linear-Model" and scores["challenger"]["rows"] == 3
    objects[p["roles"]["challenger"]["transform_output"] + "test.csv.out"] = b"20.0\n31.0\n"
    with pytest.raises(ValueError, match="2 predictions for 3 test rows"):
        ab_rollout.transform_scores(FakeS3(objects), p, data)
    assert (
        ab_rollout.transform_scores(FakeS3(objects), plan(preset="boston-notebook", batch_transform=False), data) == {}
    )


class FakeSageMaker:
    def __init__(self) -> None:
        self.models: dict[str, dict] = {}

    def describe_model(self, ModelName: str) -> dict:
        if ModelName not in self.models:
            raise ClientError(
                {"Error": {"Code": "ValidationException", "Message": f"Could not find model {ModelName}"}},
                "DescribeModel",
            )
        return self.models[ModelName]

    def create_model(self, **request) -> dict:
        self.models[request["ModelName"]] = request
        return {}


def test_ensure_models_creates_then_reuses_and_refuses_a_different_definition() -> None:
    p = plan(preset="boston-notebook")
    models = ab_rollout.ab_endpoint_spec(p, {"champion": "s3://b/x.tar.gz", "challenger": "s3://b/y.tar.gz"})["models"]
    sm = FakeSageMaker()
    assert set(ab_rollout.ensure_models(sm, models).values()) == {"created"}
    assert set(ab_rollout.ensure_models(sm, models).values()) == {"reused"}  # a retry
    other = ab_rollout.ab_endpoint_spec(p, {"champion": "s3://b/z.tar.gz", "challenger": "s3://b/y.tar.gz"})["models"]
    with pytest.raises(ValueError, match="already exists with image"):
        ab_rollout.ensure_models(sm, other)
