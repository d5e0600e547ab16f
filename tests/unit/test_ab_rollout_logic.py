"""Unit tests of include/housing/ab_rollout.py: plan, data split, requests, shift steps, probe, clean-up, report."""

from __future__ import annotations

import threading
import time

import pytest

from include.housing import ab_rollout
from include.housing.ab_rollout import (
    EndpointProbe,
    ab_endpoint_spec,
    build_plan,
    build_training_config,
    cleanup_after_failure,
    probe_loop,
    rollout_report,
    run_prefix,
    shift_steps_for,
    split_holdout,
    summary_text,
    superseded_resources,
    winner_endpoint_spec,
)
from include.housing.feed import generate_listings
from include.housing.naming import is_valid_sagemaker_name
from include.housing.params import InvalidParamsError

SETTINGS = {"bucket": "bucket", "role_arn": "arn:aws:iam::123456789012:role/R", "raw_source": "synthetic"}
IMAGES = {"xgboost": "img/xgboost:1.7-1", "linear-learner": "img/linear-learner:1"}
RUN_ID = "manual__2026-11-23T10:00:00+00:00"


def plan(**params):
    return build_plan(params, SETTINGS, "2026-11-23", dag_id="housing_ab_rollout", run_id=RUN_ID, image_uris=IMAGES)


def test_run_prefix_is_deterministic_short_and_differs_by_run() -> None:
    first = run_prefix("housing_ab_rollout", RUN_ID, "2026-11-23")
    assert first == run_prefix("housing_ab_rollout", RUN_ID, "2026-11-23")
    assert first.startswith("har-20261123-") and len(first) == len("har-20261123-") + 6
    assert first != run_prefix("housing_ab_rollout", RUN_ID + "x", "2026-11-23")
    with pytest.raises(ValueError):
        run_prefix("housing_ab_rollout", "", "2026-11-23")


def test_plan_names_are_valid_and_distinct() -> None:
    p = plan(endpoint_name="e" * 63)
    names = [p["ab_config_name"]]
    for spec in p["roles"].values():
        names += [spec["training_job_name"], spec["model_name"], spec["final_config_name"]]
    assert all(is_valid_sagemaker_name(n) and len(n) <= 63 for n in names)
    configs = {p["ab_config_name"], *(spec["final_config_name"] for spec in p["roles"].values())}
    assert len(configs) == 3
    assert p["roles"]["champion"]["model_name"] != p["roles"]["challenger"]["model_name"]
    assert p["metric"] == "rmse" and p["confidence"] == 0.95
    assert p["evaluation_uri"].startswith("s3://bucket/ab-rollout/" + "e" * 63 + "/har-20261123-")


def test_plan_rejects_bad_params_with_every_problem() -> None:
    with pytest.raises(InvalidParamsError) as caught:
        plan(champion={"algorithm": "prophet"}, evaluation_rows=3, shift_steps=[0.5, 0.2])
    assert len(caught.value.problems) == 3
    with pytest.raises(InvalidParamsError, match="unknown parameter"):
        plan(colour="blue")


def test_split_holdout_keeps_header_and_row_counts() -> None:
    raw = generate_listings("Chicago_IL", "2026-11-23", 200)
    training, holdout = split_holdout(raw, 50, seed=7)
    header = raw.splitlines()[0]
    assert training.splitlines()[0] == header and holdout.splitlines()[0] == header
    assert len(training.splitlines()) == 151 and len(holdout.splitlines()) == 51
    assert set(training.splitlines()[1:]).isdisjoint(holdout.splitlines()[1:])
    assert split_holdout(raw, 50, seed=7) == (training, holdout)
    with pytest.raises(ValueError, match="raise houses_per_location"):
        split_holdout(raw, 190, seed=7)


class FakeS3:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}

    def put_object(self, Bucket, Key, Body, ContentType):
        self.objects[(Bucket, Key)] = Body


def test_prepare_data_writes_channels_and_label_first_evaluation_rows() -> None:
    s3 = FakeS3()
    p = plan(houses_per_location=300, evaluation_rows=60)
    data = ab_rollout.prepare_data(s3, p)
    assert data["rows_evaluation"] == 60
    assert data["rows_train"] + data["rows_validation"] + data["rows_test"] == 300
    evaluation = s3.objects[("bucket", p["evaluation_uri"].removeprefix("s3://bucket/"))].decode()
    rows = evaluation.strip().splitlines()
    assert len(rows) == 60 and all(len(r.split(",")) == 7 for r in rows)
    assert all(not r[0].isalpha() for r in rows)  # no header
    assert data["raw_uri"].endswith("/raw/listings.csv") and "/ab-rollout/" in data["raw_uri"]


def test_training_configs_for_both_algorithms() -> None:
    p = plan(champion={"algorithm": "linear-learner"}, challenger={"algorithm": "xgboost"})
    channels = {"train": "s3://b/t/", "validation": "s3://b/v/", "test": "s3://b/x/"}
    linear = build_training_config(p, "champion", channels)
    tree = build_training_config(p, "challenger", channels)
    assert linear["AlgorithmSpecification"]["TrainingImage"] == IMAGES["linear-learner"]
    assert linear["HyperParameters"]["predictor_type"] == "regressor"
    assert linear["HyperParameters"]["feature_dim"] == "6"
    assert tree["HyperParameters"]["num_round"] == "25" and "feature_dim" not in tree["HyperParameters"]
    assert [c["ChannelName"] for c in tree["InputDataConfig"]] == ["train", "validation"]
    assert all(isinstance(v, str) for v in tree["HyperParameters"].values())
    assert tree["TrainingJobName"] == p["roles"]["challenger"]["training_job_name"]


def test_endpoint_specs() -> None:
    p = plan(initial_weights={"champion": 3, "challenger": 1})
    spec = ab_endpoint_spec(p, {"champion": "s3://b/c/model.tar.gz", "challenger": "s3://b/d/model.tar.gz"})
    variants = spec["endpoint_config"]["ProductionVariants"]
    assert [(v["VariantName"], v["InitialVariantWeight"]) for v in variants] == [("champion", 3.0), ("challenger", 1.0)]
    assert [m["PrimaryContainer"]["ModelDataUrl"] for m in spec["models"]] == [
        "s3://b/c/model.tar.gz",
        "s3://b/d/model.tar.gz",
    ]
    with pytest.raises(ValueError, match="no model artifact"):
        ab_endpoint_spec(p, {"champion": None, "challenger": "s3://b/d/model.tar.gz"})
    final = winner_endpoint_spec(p, "challenger")["endpoint_config"]
    assert final["EndpointConfigName"] == p["roles"]["challenger"]["final_config_name"]
    assert final["ProductionVariants"] == [{**variants[1], "InitialVariantWeight": 1.0}]
    with pytest.raises(ValueError):
        winner_endpoint_spec(p, "nobody")


def test_shift_steps_move_traffic_to_the_winner() -> None:
    p = plan()  # 1:1, schedule [0.1, 0.5, 1.0]
    assert shift_steps_for(p, "challenger") == [{"challenger": 1.0, "champion": 0.0}]
    assert shift_steps_for(p, "champion") == [{"champion": 1.0, "challenger": 0.0}]
    p = plan(initial_weights={"champion": 9, "challenger": 1}, shift_steps=[0.25, 0.5, 0.9])
    assert shift_steps_for(p, "challenger") == [
        {"challenger": 0.25, "champion": 0.75},
        {"challenger": 0.5, "champion": 0.5},
        {"challenger": 0.9, "champion": 0.1},
        {"challenger": 1.0, "champion": 0.0},
    ]
    assert shift_steps_for(p, "champion") == [{"champion": 1.0, "challenger": 0.0}]


def test_superseded_and_failure_cleanup() -> None:
    p = plan()
    roles = p["roles"]
    previous = {
        "EndpointConfigName": "har-20261122-abcdef-champion-only",
        "ProductionVariants": [{"VariantName": "champion", "ModelName": "har-20261122-abcdef-champion"}],
    }
    gone = superseded_resources(p, "champion", previous)
    assert roles["champion"]["final_config_name"] not in gone["endpoint_configs"]
    assert set(gone["endpoint_configs"]) == {
        p["ab_config_name"],
        roles["challenger"]["final_config_name"],
        "har-20261122-abcdef-champion-only",
    }
    assert set(gone["models"]) == {roles["challenger"]["model_name"], "har-20261122-abcdef-champion"}
    # Someone else's config is never touched.
    foreign = {"EndpointConfigName": "hand-made", "ProductionVariants": [{"ModelName": "hand-model"}]}
    assert "hand-made" not in superseded_resources(p, "champion", foreign)["endpoint_configs"]

    undo = cleanup_after_failure(p, {"existed": True, "endpoint_config_name": "har-20261122-abcdef-champion-only"})
    assert undo["restore_endpoint"] == {
        "endpoint_name": "housing-ab",
        "endpoint_config_name": "har-20261122-abcdef-champion-only",
    }
    assert undo["endpoints"] == [] and len(undo["endpoint_configs"]) == 3 and len(undo["models"]) == 2
    first = cleanup_after_failure(p, {"existed": False, "endpoint_config_name": None})
    assert first["restore_endpoint"] is None and first["endpoints"] == ["housing-ab"]


class FakeBody:
    def read(self) -> bytes:
        return b"1.0"


class FakeRuntime:
    """Answers from 'old' until switched, then from 'new'; fails the requests listed in ``fail_at``."""

    def __init__(self, fail_at: set[int] = frozenset()) -> None:
        self.calls = 0
        self.variant = "old"
        self.fail_at = fail_at
        self.lock = threading.Lock()

    def invoke_endpoint(self, **kwargs):
        with self.lock:
            self.calls += 1
            call = self.calls
        if call in self.fail_at:
            raise RuntimeError("ServiceUnavailable")
        return {"Body": FakeBody(), "InvokedProductionVariant": self.variant}


def test_probe_loop_records_every_request_until_stopped() -> None:
    stop = threading.Event()
    records: list[dict] = []
    runtime = FakeRuntime(fail_at={2})

    def record(entry: dict) -> None:
        records.append(entry)
        if len(records) == 4:
            stop.set()

    probe_loop(runtime, "ep", "1,2", stop, interval=0, record=record)
    assert len(records) == 4 and [r["ok"] for r in records] == [True, False, True, True]
    assert "ServiceUnavailable" in records[1]["error"]


def test_endpoint_probe_runs_around_an_update_and_counts_phases() -> None:
    runtime = FakeRuntime()
    with EndpointProbe(runtime, "ep", "1,2", interval=0.001, min_requests_before=3, min_requests_after=3) as probe:
        assert runtime.calls >= 3  # the baseline exists before the update starts
        probe.mark("update_started")
        time.sleep(0.05)
        runtime.variant = "new"
        probe.mark("update_done")
        summary = probe.stop()
    assert summary["failed"] == 0 and summary["requests"] == runtime.calls
    assert summary["requests_before_update"] >= 3 and summary["requests_during_update"] >= 1
    assert summary["requests_after_update"] >= 3 and summary["variants_after_update"] == {"new": summary[
        "requests_after_update"]}  # fmt: skip


def test_endpoint_probe_reports_failures() -> None:
    runtime = FakeRuntime(fail_at={4, 5})
    with EndpointProbe(runtime, "ep", "1", interval=0.001, min_requests_before=2, min_requests_after=6) as probe:
        probe.mark("update_started")
        probe.mark("update_done")
        summary = probe.stop()
    assert summary["failed"] == 2 and len(summary["errors"]) == 2


def test_report_and_summary() -> None:
    p = plan()
    decision = {
        "winner": "challenger",
        "loser": "champion",
        "reason": "challenger wins",
        "metric": "rmse",
        "p_value": 0.001,
        "sample_size": 100,
        "variants": {"champion": "champion", "challenger": "challenger"},
        "per_variant": {
            "champion": {"rmse": 20000.0, "mae": 15000.0, "latency_p50_ms": 3.0},
            "challenger": {"rmse": 10000.0, "mae": 8000.0, "latency_p50_ms": 4.0},
        },
        "traffic": {
            "counted_from_responses": {"champion": 48, "challenger": 52},
            "per_variant": {"champion": {"observed_share": 0.48}, "challenger": {"observed_share": 0.52}},
        },
    }
    report = rollout_report(
        p,
        data={"rows_train": 1},
        training={"champion": {"job_name": "a"}, "challenger": {"job_name": "b"}},
        decision=decision,
        shift=[{"step": 1}],
        promotion={"probe": {"requests": 30, "failed": 0, "requests_during_update": 10}},
        endpoint={"EndpointConfigName": "x-challenger-only"},
        cleanup={"deleted": []},
    )
    assert report["winner"] == "challenger"
    assert [r["weighted_requests"] for r in report["rows"]] == [48, 52]
    text = summary_text(report)
    assert "x-challenger-only" in text and "30 requests, 0 failed" in text and "challenger" in text
    s3 = FakeS3()
    uris = ab_rollout.write_rollout_report(s3, p, report)
    assert uris["json"].endswith("rollout.json") and uris["png"].endswith("rollout.png")
    png = s3.objects[("bucket", uris["png"].removeprefix("s3://bucket/"))]
    assert png.startswith(b"\x89PNG")
