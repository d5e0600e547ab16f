"""Unit tests of include/housing/nightly.py: plans, layout, configs, predictions, summary (no server)."""

from __future__ import annotations

import datetime as dt
import io
import re
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


def test_run_date_is_the_logical_date_else_run_after() -> None:
    from sagemaker_fleet.run_settings import resolve_run_date

    triggered = dt.datetime(2026, 12, 1, 9, tzinfo=dt.UTC)
    # `dags trigger --logical-date 2026-11-28T02:00` on Dec 1: the date asked for, not the trigger time.
    assert resolve_run_date(dt.datetime(2026, 11, 28, 2, tzinfo=dt.UTC), triggered) == dt.date(2026, 11, 28)
    assert resolve_run_date(None, triggered) == dt.date(2026, 12, 1)
    # Dates are UTC dates: 01:00 in Berlin on the 28th is still the 27th in UTC.
    berlin = dt.timezone(dt.timedelta(hours=1))
    assert resolve_run_date(dt.datetime(2026, 11, 28, 0, 30, tzinfo=berlin), None) == dt.date(2026, 11, 27)
    with pytest.raises(ValueError, match="neither a logical date nor a run_after"):
        resolve_run_date(None, None)


def test_run_date_from_a_task_context() -> None:
    from types import SimpleNamespace

    from sagemaker_fleet.run_settings import run_date

    queued = dt.datetime(2026, 12, 1, 9, tzinfo=dt.UTC)
    asked = dt.datetime(2026, 11, 28, 2, tzinfo=dt.UTC)
    manual = SimpleNamespace(logical_date=asked, run_after=queued)
    assert run_date({"dag_run": manual, "logical_date": asked, "data_interval_end": queued}) == dt.date(2026, 11, 28)
    without = SimpleNamespace(logical_date=None, run_after=queued)
    assert run_date({"dag_run": without}) == dt.date(2026, 12, 1)


def test_report_is_per_date_and_config() -> None:
    plan = _plan()
    same = _plan(locations=list(reversed(plan["locations"])))
    other = _plan(hyperparameters={"num_round": 1})
    assert same["report_uri"] == plan["report_uri"], "the order of the locations is not a different config"
    assert other["report_uri"] != plan["report_uri"]
    assert other["report_uri"].rsplit("/config=", 1)[0] == plan["report_uri"].rsplit("/config=", 1)[0]


def test_plan_is_validated_and_json_safe() -> None:
    plan = _plan(houses_per_location="300", bad_fraction_by_location={"Chicago_IL": 0.5})
    assert plan["houses_per_location"] == 300
    assert plan["mme_prefix"] == "s3://b-test/mme/housing-mme/"
    assert plan["registry_prefix"] == "s3://b-test/registry/housing-mme/"
    assert re.fullmatch(
        r"s3://b-test/reports/housing_mme_nightly/date=2026-11-23/config=[0-9a-f]{12}/summary\.json", plan["report_uri"]
    ), plan["report_uri"]
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


def test_failed_tasks_by_index_reads_one_states_answer_for_the_whole_group() -> None:
    states = {
        "location.prepare_0": "success",
        "location.smoke_test_0": "failed",
        "location.prepare_1": "failed",
        "location.train_1": "upstream_failed",
        "location.promote_12": "failed",
        "summary": "failed",  # not in the group
        "other.prepare_0": "failed",  # another group
    }
    assert nightly.failed_tasks_by_index(states, "location") == {0: {"smoke_test"}, 1: {"prepare"}, 12: {"promote"}}


def test_results_by_location_keys_each_return_value_by_its_location() -> None:
    results = [{"location": "Chicago_IL", "version": "20261123"}, None, {"location": "Dallas_TX", "version": "x"}]
    assert nightly.results_by_location(results) == {
        "Chicago_IL": {"location": "Chicago_IL", "version": "20261123"},
        "Dallas_TX": {"location": "Dallas_TX", "version": "x"},
    }
    assert nightly.results_by_location(None) == {} and nightly.results_by_location([None]) == {}
