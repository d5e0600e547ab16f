"""The notebook's two scripts as the churn DAG ships them, run directly on temp dirs (no SageMaker).

preprocessing.py has the notebook's hard-coded /opt/ml/processing paths: the test runs a copy whose root is a
temp dir (the only change). sklearn_rf.py reads SageMaker's SM_* variables, set here to temp dirs; its model_fn
and predict_fn are then called as the scikit-learn serving container calls them.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from include.churn import data as churn

SCRIPTS = Path(__file__).resolve().parents[2] / "include" / "churn" / "scripts"
NUMERICAL = ["Account Length", "VMail Message", "Day Mins", "Day Calls", "Eve Mins", "Eve Calls", "Night Mins",
             "Night Calls", "Intl Mins", "Intl Calls", "CustServ Calls"]  # fmt: skip


def run_preprocessing(root: Path, rows: int, *arguments: str) -> subprocess.CompletedProcess:
    for part in ("input", "train", "test"):
        (root / part).mkdir(parents=True, exist_ok=True)
    (root / "input" / "raw_churn.csv").write_bytes(churn.to_csv_bytes(churn.generate(rows=rows, seed=2)))
    script = root / "preprocessing.py"
    script.write_text((SCRIPTS / "preprocessing.py").read_text().replace("/opt/ml/processing", str(root)))
    return subprocess.run([sys.executable, str(script), *arguments], capture_output=True, text=True, timeout=120)


def test_preprocessing_splits_imputes_and_encodes_as_the_notebook(tmp_path: Path) -> None:
    done = run_preprocessing(tmp_path, 1000, "--train-test-split-ratio", "0.2")
    assert done.returncode == 0, done.stderr
    assert "Train data shape after preprocessing: (800," in done.stdout
    train = pd.read_csv(tmp_path / "train" / "train.csv")
    test = pd.read_csv(tmp_path / "test" / "test.csv")
    assert len(train) == 800 and len(test) == 200
    assert list(train.columns) == list(test.columns)
    assert list(train.columns[:12]) == ["churn", *NUMERICAL]
    assert {"Int'l Plan_yes", "Int'l Plan_no", "VMail Plan_yes", "State_missing"} <= set(train.columns)
    assert set(train["churn"]) == {0, 1} and not train.isna().any().any() and not test.isna().any().any()
    # One-hot columns hold 0/1 and each row has exactly one state.
    states = train[[c for c in train.columns if c.startswith("State_")]]
    assert (states.sum(axis=1) == 1).all()


@pytest.fixture(scope="module")
def headerless(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """preprocessing.py as the DAG runs it (--no-header) on 600 customers; its processing root."""
    root = tmp_path_factory.mktemp("processing")
    done = run_preprocessing(root, 600, "--train-test-split-ratio", "0.3", "--no-header")
    assert done.returncode == 0, done.stderr
    return root


def test_no_header_writes_label_first_csv_for_xgboost(headerless: Path) -> None:
    train = np.loadtxt(headerless / "train" / "train.csv", delimiter=",", ndmin=2)  # all numbers: no header row
    test = np.loadtxt(headerless / "test" / "test.csv", delimiter=",", ndmin=2)
    assert train.shape[0] == 420 and test.shape[0] == 180 and train.shape[1] == test.shape[1] > 60
    assert set(np.unique(train[:, 0])) == {0.0, 1.0}


def test_random_forest_trains_from_sm_variables_and_serves_probabilities(tmp_path: Path, headerless: Path) -> None:
    model_dir, output_dir = tmp_path / "model", tmp_path / "output"
    model_dir.mkdir()
    output_dir.mkdir()
    env = {
        "SM_CHANNEL_TRAIN": str(headerless / "train"),
        "SM_MODEL_DIR": str(model_dir),
        "SM_OUTPUT_DATA_DIR": str(output_dir),
    }
    done = subprocess.run(
        [sys.executable, str(SCRIPTS / "sklearn_rf.py"), "--n_estimators", "25"],
        capture_output=True, text=True, timeout=120, env={**env, "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "RandomForest of 25 trees" in done.stdout
    assert (model_dir / "model.joblib").is_file()

    spec = importlib.util.spec_from_file_location("churn_sklearn_rf", SCRIPTS / "sklearn_rf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # as the serving container imports it: the training block does not run
    model = module.model_fn(str(model_dir))
    assert model.n_estimators == 25
    test = np.loadtxt(headerless / "test" / "test.csv", delimiter=",", ndmin=2)
    scores = module.predict_fn(test[:, 1:], model)
    assert scores.shape == (len(test),) and ((scores >= 0) & (scores <= 1)).all()
    assert len(np.unique(scores)) > 5  # probabilities, not 0/1 labels


def test_random_forest_says_which_channel_is_empty(tmp_path: Path) -> None:
    empty = tmp_path / "train"
    empty.mkdir()
    done = subprocess.run(
        [sys.executable, str(SCRIPTS / "sklearn_rf.py")],
        capture_output=True, text=True, timeout=120,
        env={"SM_CHANNEL_TRAIN": str(empty), "SM_MODEL_DIR": str(tmp_path), "SM_OUTPUT_DATA_DIR": str(tmp_path)},
    )  # fmt: skip
    assert done.returncode != 0 and "There are no files in" in done.stderr and "(train)" in done.stderr
