"""include.digits.pipeline without Airflow or SageMaker: Params, names, requests, the notebook's parsing and
error rate, the report's figures."""

from __future__ import annotations

import datetime as dt

import pytest

from include.digits import pipeline

SETTINGS = {"bucket": "sagemaker-fleet-local", "role_arn": "arn:aws:iam::123456789012:role/SageMakerExecution"}
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.0-1-cpu-py3"


def plan(**params):
    return pipeline.build_plan(
        params, SETTINGS, dt.date(2026, 11, 23), dag_id="digits_xgboost_multiclass", run_id="manual__1", image_uri=IMAGE
    )


def test_every_bad_param_is_named_at_once() -> None:
    with pytest.raises(pipeline.InvalidParamsError) as error:
        pipeline.validate_params(
            {"image_version": "1.7-1", "num_round": 0, "batch_size": True, "training_instance_type": "big", "x": 1}
        )
    message = str(error.value)
    for name in ("image_version", "num_round", "batch_size", "training_instance_type", "unknown parameter(s) ['x']"):
        assert name in message
    assert "comma-joined" in message


def test_names_are_deterministic_and_valid() -> None:
    first, again = plan(), plan()
    assert first == again
    assert first["prefix"].startswith("digits-xgb-20261123-")
    assert first["distributed_job_name"] == first["prefix"] + "-distrib"
    assert pipeline.run_resources(first) == {
        "endpoints": [first["prefix"] + "-endpoint"],
        "endpoint_configs": [first["prefix"] + "-config"],
        "models": [first["prefix"] + "-distrib-mod"],
    }
    with pytest.raises(ValueError, match="XGBoost image"):
        pipeline.build_plan({}, SETTINGS, "2026-11-23", dag_id="d", run_id="r", image_uri="linear-learner:1")


def test_training_requests_are_the_notebooks() -> None:
    p = plan(num_round=12)
    single, distributed = pipeline.training_request(p, "single"), pipeline.training_request(p, "distributed")
    assert single["ResourceConfig"]["InstanceCount"] == 1 and distributed["ResourceConfig"]["InstanceCount"] == 2
    for request, distribution in ((single, "FullyReplicated"), (distributed, "ShardedByS3Key")):
        assert [c["ChannelName"] for c in request["InputDataConfig"]] == ["train", "validation"]
        assert {c["DataSource"]["S3DataSource"]["S3DataDistributionType"] for c in request["InputDataConfig"]} == {
            distribution
        }
        assert {c["ContentType"] for c in request["InputDataConfig"]} == {"libsvm"}
        assert request["HyperParameters"]["objective"] == "multi:softmax"
        assert request["HyperParameters"]["num_class"] == "10" and request["HyperParameters"]["num_round"] == "12"
    assert single["OutputDataConfig"]["S3OutputPath"].endswith("/xgboost-single/")
    assert distributed["OutputDataConfig"]["S3OutputPath"].endswith("/xgboost-distributed/")
    transform = pipeline.transform_request(p)
    assert transform["ModelName"] == p["model_name"] and transform["TransformInput"]["SplitType"] == "Line"
    assert transform["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"] == p["channels"]["test"]


def test_scoring_batches_and_parses_like_the_notebook() -> None:
    lines = [f"{i % 10} 1:{i} 2:0" for i in range(250)]
    sent = []

    def invoke(body: str) -> str:
        sent.append(body)
        return ",".join(line.split(" ")[0] + ".0" for line in body.split("\n"))

    scoring = pipeline.score_endpoint(invoke, lines, 100)
    assert sent[0] == lines[0] and [len(b.split("\n")) for b in sent[1:]] == [100, 100, 50]
    assert scoring["requests"] == 3 and scoring["predictions"] == scoring["labels"]
    error, confusions = pipeline.error_rate(scoring["predictions"], scoring["labels"])
    assert error == 0.0 and [confusions[d][d] for d in range(10)] == [25] * 10

    with pytest.raises(ValueError, match="rows 0..99: the answer is not comma-joined"):
        pipeline.score_endpoint(lambda body: "1.0" if "\n" not in body else "1.0\n2.0", lines, 100)


def test_error_rate_counts_predicted_rows_against_actual_columns() -> None:
    error, confusions = pipeline.error_rate([1, 1, 2, 3], [1, 2, 2, 3])
    assert error == 25.0
    assert confusions[1][2] == 1 and confusions[2][1] == 0 and confusions[1][1] == 1
    with pytest.raises(ValueError, match="outside the classes"):
        pipeline.error_rate([11.0], [1.0])
