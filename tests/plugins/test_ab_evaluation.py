"""SageMakerABEvaluationOperator: two real xgboost models behind one endpoint (25 rounds vs 1 round),
the better one picked by a paired test, traffic shares from CloudWatch, the report in S3; edge paths."""

from __future__ import annotations

import json
from unittest import mock

import pytest
from airflow.exceptions import AirflowException

from sagemaker_fleet.operators.ab_evaluation import SageMakerABEvaluationOperator, parse_predictions
from tests.plugins.endpoint_helpers import BUCKET, dataset, deploy_direct, ensure_bucket, label_first_csv, unique

ROLES = {"champion": "Champion", "challenger": "Challenger"}


@pytest.fixture(scope="module")
def evaluation_uri(emulator, s3) -> str:
    x, y = dataset(200, seed=99)  # rows the models never saw
    key = f"evaluation/{unique('rows')}/test.csv"
    ensure_bucket(s3)
    s3.put_object(Bucket=BUCKET, Key=key, Body=label_first_csv(x, y).encode())
    return f"s3://{BUCKET}/{key}"


def operator(endpoint: str, evaluation: str, **kwargs) -> SageMakerABEvaluationOperator:
    kwargs.setdefault("variants", ROLES)
    kwargs.setdefault("report_prefix", f"s3://{BUCKET}/reports/{endpoint}")
    kwargs.setdefault("metrics_wait_seconds", 15)
    kwargs.setdefault("rows", 200)
    return SageMakerABEvaluationOperator(task_id="evaluate", endpoint_name=endpoint, evaluation_data=evaluation,
                                         **kwargs)  # fmt: skip


def test_picks_the_truly_better_model_and_reports_traffic_shares(emulator, sm, s3, evaluation_uri):
    endpoint = unique("ep-ab")
    # The challenger (25 rounds) is much better than the champion (1 round).
    deploy_direct(sm, s3, endpoint, {"Champion": 1, "Challenger": 25})
    decision = operator(endpoint, evaluation_uri, min_improvement=0.1).execute(context={})

    assert decision["winner"] == "challenger" and decision["winner_variant"] == "Challenger"
    assert decision["loser_variant"] == "Champion" and decision["significant"] and decision["p_value"] < 0.05
    assert decision["sample_size"] == 200 and decision["effect"] > 0.1
    per = decision["per_variant"]
    assert per["challenger"]["rmse"] < per["champion"]["rmse"] / 2
    assert per["champion"]["latency_p50_ms"] > 0
    traffic = decision["traffic"]
    assert traffic["ok"] and traffic["total_invocations"] == 200
    assert sum(traffic["counted_from_responses"].values()) == 200
    for variant in ("Champion", "Challenger"):
        assert traffic["per_variant"][variant]["expected_share"] == 0.5
        assert traffic["per_variant"][variant]["invocations"] > 0
    stored = json.loads(s3.get_object(Bucket=BUCKET, Key=f"reports/{endpoint}/decision.json")["Body"].read())
    assert stored == decision == json.loads(json.dumps(decision))
    png = s3.get_object(Bucket=BUCKET, Key=f"reports/{endpoint}/decision.png")["Body"].read()
    assert png.startswith(b"\x89PNG")

    # Same models, champion better: the champion stays (fewer rows; the split is checked loosely here).
    kept = operator(endpoint, evaluation_uri, variants={"champion": "Challenger", "challenger": "Champion"},
                    rows=40, traffic_tolerance=0.5,
                    report_prefix=f"s3://{BUCKET}/reports/{endpoint}-swapped").execute(context={})  # fmt: skip
    assert kept["winner"] == "champion" and kept["winner_variant"] == "Challenger"

    # Wrong expected weights: the report is written, then the task fails on the traffic check.
    with pytest.raises(AirflowException, match="Traffic split .* is off"):
        operator(endpoint, evaluation_uri, expected_weights={"Champion": 0.95, "Challenger": 0.05}, rows=40,
                 report_prefix=f"s3://{BUCKET}/reports/{endpoint}-off").execute(context={})  # fmt: skip
    off = json.loads(s3.get_object(Bucket=BUCKET, Key=f"reports/{endpoint}-off/decision.json")["Body"].read())
    assert off["traffic"]["ok"] is False
    sm.delete_endpoint(EndpointName=endpoint)


# -- edge paths -----------------------------------------------------------------------------------------------
def test_parse_predictions_by_content_type():
    assert parse_predictions(b'{"predictions": [{"score": 1.5}]}', "application/json") == [1.5]
    assert parse_predictions(b'{"predictions":[{"score":0.8,"predicted_label":1}]}', "application/json",
                             prefer_label=True) == [1.0]  # fmt: skip
    assert parse_predictions(b"[2.5]", "application/json") == [2.5]
    assert parse_predictions(b"3.25\n", "text/csv; charset=utf-8") == [3.25]
    assert parse_predictions(b"1.0,2.0", "text/csv") == [1.0, 2.0]
    assert parse_predictions(b'{"score": 4}\n{"score": 5}\n', "application/jsonlines") == [4.0, 5.0]
    with pytest.raises(ValueError, match="without a score"):
        parse_predictions(b'{"predictions": [{"label": 1}]}', "application/json")


def _endpoint(hook, variants=("Champion", "Challenger"), status="InService"):
    hook.return_value.describe_endpoint_or_none.return_value = {
        "EndpointStatus": status,
        "EndpointConfigName": "c",
        "ProductionVariants": [{"VariantName": v, "CurrentWeight": 1.0} for v in variants],
    }


@pytest.mark.parametrize(
    ("variants", "message"),
    [
        ({"champion": "Champion", "challenger": "Ghost"}, "not on endpoint"),
        ({"champion": "Champion"}, "exactly two roles"),
        ({"champion": "Champion", "challenger": "Champion"}, "same variant"),
    ],
)
def test_bad_variants_are_refused_before_any_request(variants, message):
    with mock.patch.object(SageMakerABEvaluationOperator, "hook", new_callable=mock.PropertyMock) as hook:
        _endpoint(hook)
        with pytest.raises(ValueError, match=message):
            operator("ep", "s3://b/k.csv", variants=variants).execute(context={})
    hook.return_value.invoke_endpoint.assert_not_called()


def test_endpoint_must_be_in_service():
    with mock.patch.object(SageMakerABEvaluationOperator, "hook", new_callable=mock.PropertyMock) as hook:
        _endpoint(hook, status="Updating")
        with pytest.raises(AirflowException, match="is Updating"):
            operator("ep", "s3://b/k.csv").execute(context={})


def test_template_fields():
    fields = set(SageMakerABEvaluationOperator.template_fields)
    assert {"endpoint_name", "variants", "evaluation_data", "report_prefix", "expected_weights"} <= fields
