"""include.churn.data: the notebook's 21-column churn schema, seeded, offline, with a learnable signal."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from include.churn import data as churn


def test_schema_matches_the_notebooks_raw_churn_csv() -> None:
    frame = churn.generate()
    assert frame.shape == (3333, 21)
    assert list(frame.columns) == churn.COLUMNS and frame.columns[-1] == "Churn?"
    assert set(frame["Churn?"]) == {"True.", "False."}
    assert set(frame["Int'l Plan"]) == {"yes", "no"} and set(frame["VMail Plan"]) == {"yes", "no"}
    assert set(frame["Area Code"]) == {408, 415, 510}
    assert frame["Phone"].str.fullmatch(r"\d{3}-\d{4}").all()
    assert set(frame["State"].dropna()) <= set(churn.STATES) and len(churn.STATES) == 51
    # Voice-mail messages only with a voice-mail plan; charges follow the minutes.
    assert (frame.loc[frame["VMail Plan"] == "no", "VMail Message"] == 0).all()
    complete = frame.dropna(subset=["Day Mins"])
    assert np.allclose(complete["Day Charge"], complete["Day Mins"] * 0.17, atol=0.006)


def test_churn_rate_and_missing_values_are_as_documented() -> None:
    frame = churn.generate(seed=3)
    rate = (frame["Churn?"] == "True.").mean()
    assert 0.11 < rate < 0.18, rate  # the original's 14.5 %
    assert frame["Day Mins"].isna().sum() == frame["State"].isna().sum() == 33
    assert churn.generate(rows=500, missing_fraction=0.0).isna().sum().sum() == 0


def test_seeded_and_csv_round_trip() -> None:
    first, again, other = churn.generate(rows=400, seed=7), churn.generate(rows=400, seed=7), churn.generate(rows=400)
    pd.testing.assert_frame_equal(first, again)
    assert not first.equals(other)
    read = pd.read_csv(io.BytesIO(churn.to_csv_bytes(first)))
    assert list(read.columns) == churn.COLUMNS and len(read) == 400
    assert read["Churn?"].tolist() == first["Churn?"].tolist()


def test_the_signal_is_learnable() -> None:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.metrics import roc_auc_score

    frame = churn.generate(seed=1)
    label = (frame["Churn?"] == "True.").to_numpy()
    features = frame[["Day Mins", "CustServ Calls", "Intl Mins", "Account Length"]].fillna(180.0)
    features = features.assign(intl=frame["Int'l Plan"] == "yes", vmail=frame["VMail Plan"] == "yes").to_numpy()
    model = RandomForestClassifier(n_estimators=60, min_samples_leaf=3, random_state=0).fit(
        features[:2333], label[:2333]
    )
    auc = roc_auc_score(label[2333:], model.predict_proba(features[2333:])[:, 1])
    assert auc > 0.75, auc
    # The documented log-odds rank the churners far above chance too.
    assert roc_auc_score(label, churn.churn_log_odds(frame)) > 0.75


@pytest.mark.parametrize(("rows", "missing"), [(50, 0.01), (True, 0.01), (500, 0.6), ("1000", 0.01)])
def test_bad_arguments_are_refused(rows, missing) -> None:
    with pytest.raises(ValueError, match="rows|missing_fraction"):
        churn.generate(rows=rows, missing_fraction=missing)
