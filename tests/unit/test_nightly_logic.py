"""Unit tests of include/housing/nightly.py: plans, layout, configs, predictions, summary (no server)."""

from __future__ import annotations

import datetime as dt
import io
import tarfile

import pytest

from include.housing import nightly
from include.housing.params import InvalidParamsError

SETTINGS = {"bucket": "b-test", "role_arn": nightly.DEFAULT_ROLE_ARN, "raw_source": "synthetic"}


def _plan(**params):
    return nightly.build_plan(
        {"locations": ["Chicago_IL", "Dallas_TX"], **params},
        SETTINGS,
        "2026-11-23",
        dag_id="housing_mme_nightly",
        run_id="manual__x",
        image_uri="img:1",
    )


def test_environment_settings_defaults_and_errors() -> None:
    assert nightly.environment_settings(lambda *spec: None) == {
        "bucket": nightly.DEFAULT_BUCKET,
        "role_arn": nightly.DEFAULT_ROLE_ARN,
        "raw_source": "synthetic",
    }
    values = {"housing_bucket": "Bad_Bucket", "housing_raw_source": "ftp://x"}
    with pytest.raises(nightly.InvalidEnvironmentError) as error:
        nightly.environment_settings(lambda variable, env, default: values.get(variable))
    assert "Bad_Bucket" in str(error.value) and "ftp://x" in str(error.value)


def test_run_date_falls_back_to_run_after() -> None:
    after = dt.datetime(2026, 11, 23, 9, tzinfo=dt.UTC)
    assert nightly.resolve_run_date(None, None, after) == dt.date(2026, 11, 23)
    assert nightly.resolve_run_date(after + dt.timedelta(days=1), after, after) == dt.date(2026, 11, 24)
    with pytest.raises(ValueError):
        nightly.resolve_run_date(None, None, None)


def test_plan_is_validated_and_json_safe() -> None:
    plan = _plan(houses_per_location="300", bad_fraction_by_location={"Chicago_IL": 0.5})
    assert plan["houses_per_location"] == 300
    assert plan["mme_prefix"] == "s3://b-test/mme/housing-mme/"
    assert plan["registry_prefix"] == "s3://b-test/registry/housing-mme/"
    assert plan["report_uri"].endswith("reports/housing_mme_nightly/date=2026-11-23/summary.json")
    assert plan["bad_fraction_by_location"] == {"Chicago_IL": 0.5}


def test_plan_reports_every_problem_at_once() -> None:
    with pytest.raises(InvalidParamsError) as error:
        _plan(locations=["Chicago_IL", "chicago"], houses_per_location=0, bad_fraction_by_location={"Dallas_TX": 2})
    text = str(error.value)
    assert "chicago" in text and "houses_per_location" in text
    with pytest.raises(InvalidParamsError, match="outside"):
        _plan(bad_fraction_by_location={"Dallas_TX": 2})
    with pytest.raises(InvalidParamsError, match="synthetic feed only"):
        nightly.build_plan(
            {"locations": ["Chicago_IL"], "bad_fraction_by_location": {"Chicago_IL": 0.1}},
            {**SETTINGS, "raw_source": "s3://raw/listings"},
            "2026-11-23",
            dag_id="d",
            run_id="r",
            image_uri="i",
        )


def test_raw_listing_uri_for_both_sources() -> None:
    assert (
        nightly.raw_listing_uri("synthetic", "b", "2026-11-23", "Chicago_IL")
        == "s3://b/raw/date=2026-11-23/location=Chicago_IL/listings.csv"
    )
    assert (
        nightly.raw_listing_uri("s3://vendor/feeds/housing", "b", "2026-11-23", "Chicago_IL")
        == "s3://vendor/feeds/housing/date=2026-11-23/location=Chicago_IL/listings.csv"
    )


def test_training_config_is_deterministic_and_complete() -> None:
    plan = _plan()
    channels = {name: f"s3://b-test/p/{name}/" for name in nightly.CHANNELS}
    config = nightly.build_training_config(plan, "Chicago_IL", channels)
    assert config == nightly.build_training_config(plan, "Chicago_IL", channels)
    assert config["TrainingJobName"] == "hmn-chicago-il-20261123"
    assert [c["ChannelName"] for c in config["InputDataConfig"]] == ["train", "validation"]
    assert all(isinstance(v, str) for v in config["HyperParameters"].values())
    assert config["Tags"][0] == {"Key": "location", "Value": "Chicago_IL"}  # the grid's label for train


def test_endpoint_spec_names_follow_the_definition() -> None:
    plan = _plan()
    spec = nightly.mme_endpoint_spec(plan)
    model = spec["models"][0]
    assert model["PrimaryContainer"] == {"Image": "img:1", "Mode": "MultiModel", "ModelDataUrl": plan["mme_prefix"]}
    assert spec["endpoint_config"]["ProductionVariants"][0]["ModelName"] == model["ModelName"]
    assert nightly.mme_endpoint_spec(plan) == spec
    changed = nightly.mme_endpoint_spec({**plan, "image_uri": "img:2"})
    assert changed["models"][0]["ModelName"] != model["ModelName"]
    assert changed["endpoint_config"]["EndpointConfigName"] != spec["endpoint_config"]["EndpointConfigName"]


def _artifact() -> tuple[bytes, object]:
    import numpy as np
    import xgboost as xgb

    rng = np.random.default_rng(0)
    features = rng.normal(size=(50, 3))
    labels = features @ np.array([3.0, -2.0, 1.0])
    booster = xgb.train({"max_depth": 2}, xgb.DMatrix(features, label=labels), num_boost_round=5)
    raw = booster.save_raw(raw_format="ubj")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo("xgboost-model")
        info.size = len(raw)
        archive.addfile(info, io.BytesIO(bytes(raw)))
    return buffer.getvalue(), features


def test_load_booster_predicts_like_the_original() -> None:
    artifact, features = _artifact()
    predictions = nightly.predict(nightly.load_booster(artifact), features)
    assert predictions.shape == (50,)


def test_parse_and_compare_predictions() -> None:
    assert nightly.parse_predictions(b"1.5,2.5\n3") == [1.5, 2.5, 3.0]
    assert nightly.parse_predictions(b"[485586.25]") == [485586.25]
    assert nightly.parse_predictions('{"predictions": [{"score": 2.0}]}') == [2.0]
    assert nightly.compare_predictions([100.0, 200.001], [100.0, 200.0])["rows"] == 2
    with pytest.raises(AssertionError, match="not serving this model"):
        nightly.compare_predictions([100.0, 250.0], [100.0, 200.0])
    with pytest.raises(AssertionError, match="1 predictions for 2 rows"):
        nightly.compare_predictions([1.0], [1.0, 2.0])


def test_features_csv_drops_the_label() -> None:
    body, features = nightly.features_csv("5,1,2\n6,3,4\n7,5,6\n", rows=2)
    assert body == "1.0,2.0\n3.0,4.0\n" and features.shape == (2, 2)


def test_summary_rows_cover_every_outcome() -> None:
    evaluation = {
        "version": "20261124",
        "metrics": {"rmse": 10.0, "mae": 5.0},
        "live_version": "20261123",
        "live_metrics": {"rmse": 9.0},
        "promote": True,
        "reason": "Promote: ...",
    }
    live = nightly.summary_row(
        "Dallas_TX",
        evaluation=evaluation,
        promotion={"promoted": True, "live_version": "20261124", "previous_version": "20261123"},
        failed_task=None,
    )
    assert live["status"] == "live" and live["previous_rmse"] == 9.0 and live["promoted"] is True
    kept = nightly.summary_row(
        "Dallas_TX", evaluation={**evaluation, "promote": False, "reason": "Keep"}, promotion=None, failed_task=None
    )
    assert kept["status"] == "kept live" and kept["reason"] == "Keep"
    older = nightly.summary_row(
        "Dallas_TX",
        evaluation=evaluation,
        promotion={"promoted": False, "live_version": "20261130", "reason": "newer live"},
        failed_task=None,
    )
    assert older["status"] == "registered" and older["reason"] == "newer live"
    rerun = nightly.summary_row(
        "Dallas_TX",
        evaluation=evaluation,
        promotion={"promoted": False, "version": "20261124", "live_version": "20261124", "reason": "already live"},
        failed_task=None,
    )
    assert rerun["status"] == "live" and rerun["promoted"] is False
    failed = nightly.summary_row("Chicago_IL", evaluation=None, promotion=None, failed_task="prepare")
    assert failed["status"] == "failed" and failed["reason"] == "failed at prepare"
    report = nightly.summary_report(_plan(), [live, failed])
    assert report["failed"] == ["Chicago_IL"] and report["promoted"] == 1
