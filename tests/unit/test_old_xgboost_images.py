"""The older built-in XGBoost images: the generic ``xgboost:1`` (XGBoost 0.72) and ``sagemaker-xgboost:0.90-1`` /
``0.90-2``, trained and served by the one installed xgboost with each image's own rules (reference
sagemaker-contracts-jobs-and-formats.md section 4): ``silent`` and ``reg:linear`` accepted, the 0.x parameter,
objective and metric sets, the metric definitions SageMaker fills in, and what the xgboost:1 endpoint reads."""

from __future__ import annotations

import json
import pathlib
import re

import numpy as np
import pytest
import xgboost as xgb

from include.sagemaker_emulator.algorithms import (
    AlgorithmClientError,
    ModelInvocationError,
    default_metric_definitions,
    load_predictor,
    train,
)
from tests.unit.test_algorithms import houses, make_job

OLD_IMAGES = ("1", "0.90-1", "0.90-2")


def _classes(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    label = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(float)
    return np.column_stack([label, x])


@pytest.mark.parametrize("version", OLD_IMAGES)
def test_silent_and_reg_linear_are_accepted(tmp_path: pathlib.Path, version: str) -> None:
    hp = {"num_round": "5", "objective": "reg:linear", "silent": "0", "max_depth": "3"}
    lines: list[str] = []
    root = make_job(tmp_path / "job", hp, houses(200, 1), houses(60, 2))
    train("xgboost", root, lines.append, version=version)
    bst = xgb.Booster()
    bst.load_model(str(root / "model" / "xgboost-model"))
    assert json.loads(bst.save_config())["learner"]["objective"]["name"] == "reg:squarederror"
    # 0.90 warned about the old name; 0.72 knew no other.
    assert any("reg:linear is now deprecated" in line for line in lines) == (version != "1")
    assert not any("'silent' is deprecated" in line for line in lines)
    # xgboost < 1.3 printed 6 significant digits, the seed's "train-error:0.077154" style.
    eval_line = next(line for line in lines if line.startswith("[4]#011"))
    assert re.fullmatch(r"\[4\]#011train-rmse:[0-9.e+]+#011validation-rmse:[0-9.e+]+", eval_line)


def test_notebook_binary_logistic_hyperparameters_on_0_90_2(tmp_path: pathlib.Path) -> None:
    """Seed 004's built-in job: its exact hyperparameters; the default metric is then `error`, as logged."""
    hp = {"max_depth": "5", "subsample": "0.8", "num_round": "30", "eta": "0.2", "gamma": "4",
          "min_child_weight": "6", "silent": "0", "objective": "binary:logistic"}  # fmt: skip
    lines: list[str] = []
    train("xgboost", make_job(tmp_path / "job", hp, _classes(400, 1), _classes(100, 2)), lines.append, version="0.90-2")
    last = next(line for line in lines if line.startswith("[29]#011"))
    definitions = {d["Name"]: re.compile(d["Regex"]) for d in default_metric_definitions("xgboost", "0.90-2")}
    assert float(definitions["validation:error"].match(last).group(1)) < 0.2
    assert float(definitions["train:error"].match(last).group(1)) < 0.2


@pytest.mark.parametrize(
    ("version", "hp", "message"),
    [
        ("1", {"colsample_bynode": "0.5"}, "Extraneous hyperparameter found: colsample_bynode"),
        ("1", {"objective": "reg:squarederror"}, "Hyperparameter objective: reg:squarederror is not in"),
        ("1", {"eval_metric": "aucpr"}, "eval_metric"),
        ("0.90-2", {"sampling_method": "uniform"}, "Extraneous hyperparameter found: sampling_method"),
        ("0.90-1", {"objective": "survival:aft"}, "Hyperparameter objective: survival:aft is not in"),
        ("0.90-2", {"eval_metric": "rmsle"}, "eval_metric"),
        ("1.2-1", {"silent": "0"}, "Extraneous hyperparameter found: silent"),
    ],
)
def test_each_image_has_its_own_hyperparameter_set(
    tmp_path: pathlib.Path, version: str, hp: dict[str, str], message: str
) -> None:
    root = make_job(tmp_path / "job", {"num_round": "3", **hp}, houses(50, 1))
    with pytest.raises(AlgorithmClientError, match=re.escape(message)):
        train("xgboost", root, lambda _line: None, version=version)
    assert not list((root / "model").iterdir())


def test_metric_definitions_follow_the_image() -> None:
    names = {version: {d["Name"] for d in default_metric_definitions("xgboost", version)} for version in OLD_IMAGES}
    assert {"validation:merror", "train:merror", "validation:auc", "validation:rmse"} <= names["1"]
    assert "validation:aucpr" not in names["1"] and "validation:f1" not in names["1"]
    assert {"validation:aucpr", "validation:f1", "validation:gamma-deviance"} <= names["0.90-2"]
    assert "validation:rmsle" not in names["0.90-2"]
    assert "validation:rmsle" in {d["Name"] for d in default_metric_definitions("xgboost", "1.7-1")}


@pytest.fixture(scope="module")
def legacy_model(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    root = make_job(tmp_path_factory.mktemp("legacy") / "job", {"num_round": "5", "objective": "binary:logistic"},
                    _classes(200, 3))  # fmt: skip
    train("xgboost", root, lambda _line: None, version="1")
    return root / "model"


def test_legacy_image_reads_csv_by_default_and_libsvm(legacy_model: pathlib.Path) -> None:
    predictor = load_predictor(legacy_model, "1")
    csv_answer, csv_type = predictor.invoke(b"0.5,0.1,-1,2\n-2,-1,0,0", None, None, False)
    libsvm_answer, _ = predictor.invoke(b"0:0.5 1:0.1 2:-1 3:2\n0:-2 1:-1 2:0 3:0", "text/x-libsvm", None, False)
    assert csv_type == "text/csv"
    assert csv_answer == libsvm_answer  # comma-joined on one line, the answer the MNIST notebook splits on ","
    first, second = (float(v) for v in csv_answer.decode().split(","))
    assert first > 0.5 > second


@pytest.mark.parametrize("content_type", ["application/json", "application/x-recordio-protobuf"])
def test_legacy_image_refuses_other_content_types(legacy_model: pathlib.Path, content_type: str) -> None:
    with pytest.raises(ModelInvocationError) as info:
        load_predictor(legacy_model, "1").invoke(b"[[0.5, 0.1, -1, 2]]", content_type, None, False)
    assert info.value.status_code == 415 and content_type in info.value.message
