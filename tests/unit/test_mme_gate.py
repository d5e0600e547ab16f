"""The MME registry's gate and history helpers (no server): check_decision and live_version_on."""

from __future__ import annotations

import datetime as dt

import pytest
from airflow.sdk.exceptions import AirflowSkipException

from sagemaker_fleet.operators.mme import check_decision, live_version_on


def _record(live: str | None, released: list[str], registered_only: list[str] = ()) -> dict:
    versions = {v: {"target_model": f"X/X-{v}.tar.gz", "released_at": "2026-12-01T00:00:00+00:00"} for v in released}
    versions.update({v: {"target_model": f"X/X-{v}.tar.gz"} for v in registered_only})
    return {"location": "X", "live_version": live, "versions": versions}


def test_a_rejected_decision_skips_with_its_reason() -> None:
    with pytest.raises(AirflowSkipException, match=r"Chicago_IL 20261103 not accepted.*RMSE 107,991 exceeds"):
        check_decision({"promote": False, "reason": "RMSE 107,991 exceeds the limit"}, "Chicago_IL 20261103")


def test_an_accepted_decision_or_no_gate_lets_the_task_run() -> None:
    decision = {"promote": True, "reason": "first version"}
    assert check_decision(decision, "x") is decision
    assert check_decision(None, "x") is None


@pytest.mark.parametrize("bad", [True, "true", {"promote": "yes"}, {"reason": "no decision"}, ["promote"]])
def test_a_malformed_decision_is_an_error_not_a_pass(bad) -> None:
    with pytest.raises(ValueError, match="decision must be a dict with a boolean 'promote'"):
        check_decision(bad, "Chicago_IL 20261103")


def test_live_on_a_date_is_the_newest_released_version_up_to_it() -> None:
    # Live is 20261201 (the nightly); 20261101 was backfilled and released without moving the pointer;
    # 20261115 was registered but never released (its smoke test failed).
    record = _record("20261201", ["20261101", "20261201"], registered_only=["20261115"])
    assert live_version_on(record, dt.date(2026, 10, 31)) is None
    assert live_version_on(record, dt.date(2026, 11, 1)) == "20261101"
    assert live_version_on(record, "2026-11-20") == "20261101"  # 20261115 never served
    assert live_version_on(record, "20261130") == "20261101"
    assert live_version_on(record, dt.datetime(2026, 12, 5, 2, tzinfo=dt.UTC)) == "20261201"
    assert live_version_on(None, "2026-11-20") is None


def test_a_record_without_release_marks_counts_its_live_version() -> None:
    record = _record("20261102", [], registered_only=["20261101", "20261102"])
    assert live_version_on(record, "2026-11-03") == "20261102"
    assert live_version_on(record, "2026-11-01") is None


def test_revisions_of_a_date_order_after_the_date() -> None:
    record = _record("20261102-r01", ["20261102", "20261102-r01"])
    assert live_version_on(record, "2026-11-02") == "20261102-r01"


@pytest.mark.parametrize("operator", ["register", "promote"])
def test_the_mme_operators_skip_a_rejected_model_before_touching_s3(operator: str) -> None:
    from sagemaker_fleet.operators.mme import MMEPromoteModelOperator, MMERegisterModelOperator

    rejected = {"promote": False, "reason": "Keep the live model: new RMSE 107,991 exceeds the limit 22,360"}
    common = {
        "mme_prefix": "s3://b/mme/",
        "registry_prefix": "s3://b/registry/",
        "location": "Chicago_IL",
        "version": "20261103",
        "decision": rejected,
        # Nothing answers here: any S3 call would fail the test with a connection error, not a skip.
        "aws_conn_id": None,
        "region_name": "us-east-1",
    }
    if operator == "register":
        task = MMERegisterModelOperator(task_id="register", model_artifact="s3://b/out/model.tar.gz", **common)
    else:
        task = MMEPromoteModelOperator(task_id="promote", **common)
    with pytest.raises(AirflowSkipException, match="Chicago_IL 20261103 not accepted.*107,991"):
        task.execute({})


def _gated(operator: str, decision: dict, **fields):
    from sagemaker_fleet.operators.mme import MMEPromoteModelOperator, MMERegisterModelOperator

    cls = MMERegisterModelOperator if operator == "register" else MMEPromoteModelOperator
    # Nothing answers at aws_conn_id=None: any S3 call would fail with a connection error.
    return cls(
        task_id=operator,
        mme_prefix="s3://b/mme/",
        registry_prefix="s3://b/registry/",
        location="Chicago_IL",
        decision=decision,
        aws_conn_id=None,
        region_name="us-east-1",
        **fields,
    )


@pytest.mark.parametrize("operator", ["register", "promote"])
def test_the_version_of_a_rejected_model_comes_from_the_decision(operator: str) -> None:
    rejected = {"promote": False, "reason": "RMSE 107,991 exceeds the limit", "version": "20261104"}
    with pytest.raises(AirflowSkipException, match="Chicago_IL 20261104 not accepted.*107,991"):
        _gated(operator, rejected).execute({})


@pytest.mark.parametrize("operator", ["register", "promote"])
def test_an_accepted_decision_without_what_the_task_needs_fails_before_s3(operator: str) -> None:
    accepted = {"promote": True, "reason": "first version", "metrics": {"rmse": 1.0}}
    missing = "model_artifact, version" if operator == "register" else "version"
    with pytest.raises(ValueError, match=f"^{operator}: {missing} missing: pass it, or a decision that carries it"):
        _gated(operator, accepted).execute({})


def test_fields_passed_explicitly_win_over_the_decision() -> None:
    decision = {"promote": True, "version": "20261104", "model_artifact": "s3://b/a.tar.gz", "metrics": {"rmse": 2}}
    task = _gated("register", decision, version="20261105", model_artifact="s3://b/b.tar.gz")
    from sagemaker_fleet.operators.mme import fill_from_decision

    fill_from_decision(task, "model_artifact", "version", "metrics")
    assert (task.version, task.model_artifact, task.metrics) == ("20261105", "s3://b/b.tar.gz", {"rmse": 2})
