"""Real training and serving through the built-in algorithm emulations (no server, small data)."""

from __future__ import annotations

import json
import pathlib
import re

import numpy as np
import pytest
import xgboost as xgb

from include.sagemaker_emulator.algorithms import (
    DEFAULT_METRIC_DEFINITIONS,
    AlgorithmClientError,
    ModelInvocationError,
    UnsupportedImageError,
    algorithm_for_image,
    algorithm_version,
    load_predictor,
    train,
)


def houses(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    sqft = rng.uniform(500, 4000, n)
    beds = rng.integers(1, 6, n)
    baths = rng.integers(1, 4, n)
    year = rng.integers(1950, 2020, n)
    lot = rng.uniform(0, 1, n)
    dist = rng.uniform(0, 50, n)
    price = 150 * sqft + 10000 * beds + 5000 * baths + 300 * (year - 1950) - 800 * dist + rng.normal(0, 8000, n)
    return np.column_stack([price, sqft, beds, baths, year, lot, dist])


def make_job(
    root: pathlib.Path,
    hp: dict[str, str],
    train_rows: np.ndarray | None = None,
    val_rows: np.ndarray | None = None,
    content_type: str | None = "text/csv",
    files: dict[str, str] | None = None,
) -> pathlib.Path:
    (root / "input" / "config").mkdir(parents=True)
    (root / "model").mkdir()
    (root / "output" / "data").mkdir(parents=True)
    channels = {}
    for name, rows in (("train", train_rows), ("validation", val_rows)):
        if rows is None:
            continue
        (root / "input" / "data" / name).mkdir(parents=True)
        np.savetxt(root / "input" / "data" / name / f"{name}.csv", rows, delimiter=",", fmt="%.8g")
        channels[name] = {"TrainingInputMode": "File"}
    for rel, text in (files or {}).items():
        path = root / "input" / "data" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        channels.setdefault(rel.split("/")[0], {"TrainingInputMode": "File"})
    for cfg in channels.values():
        if content_type is not None:
            cfg["ContentType"] = content_type
    (root / "input/config/hyperparameters.json").write_text(json.dumps(hp))
    (root / "input/config/inputdataconfig.json").write_text(json.dumps(channels))
    (root / "input/config/resourceconfig.json").write_text(json.dumps({"current_host": "algo-1", "hosts": ["algo-1"]}))
    return root


XGB_HP = {"num_round": "25", "max_depth": "5", "eta": "0.3", "objective": "reg:squarederror"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[pathlib.Path, list[str]]:
    root = make_job(tmp_path_factory.mktemp("xgb") / "job", XGB_HP, houses(1000, 1), houses(300, 2))
    lines: list[str] = []
    train("xgboost", root, lines.append)
    return root, lines


# ------------------------------------------------------------------------------------------- images


@pytest.mark.parametrize(
    ("uri", "algo", "version"),
    [
        ("683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1", "xgboost", "1.7-1"),
        ("246618743249.dkr.ecr.us-west-2.amazonaws.com/sagemaker-xgboost:1.5-1-cpu-py3", "xgboost", "1.5-1"),
        ("sagemaker-xgboost:1.0-1", "xgboost", "1.0-1"),
        ("683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:0.90-2-cpu-py3", "xgboost", "0.90-2"),
        ("811284229777.dkr.ecr.us-east-1.amazonaws.com/xgboost:1", "xgboost", "1"),
        ("433757028032.dkr.ecr.us-west-2.amazonaws.com/xgboost:latest", "xgboost", "1"),
        ("382416733822.dkr.ecr.us-east-1.amazonaws.com/linear-learner:1", "linear-learner", None),
    ],
)
def test_algorithm_for_image(uri: str, algo: str, version: str | None) -> None:
    assert algorithm_for_image(uri) == algo
    assert algorithm_version(uri) == version


@pytest.mark.parametrize("uri", ["x.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.1-1", "xgboost:0.72",
                                 "sagemaker-xgboost:3.0-5", "123.dkr.ecr.eu-west-1.amazonaws.com/my-image:latest"])  # fmt: skip
def test_unsupported_images(uri: str) -> None:
    with pytest.raises(UnsupportedImageError) as err:
        algorithm_for_image(uri)
    assert "1.7-1" in str(err.value)


# ------------------------------------------------------------------------------------------- xgboost train


def test_xgboost_trains_real_model(trained: tuple[pathlib.Path, list[str]]) -> None:
    root, lines = trained
    assert lines[0].endswith("] Running XGBoost Sagemaker in algorithm mode")
    assert re.match(r"^\[\d{4}-\d\d-\d\d:\d\d:\d\d:\d\d:INFO\] ", lines[0])
    assert any(line.endswith("Determined delimiter of CSV input is ','") for line in lines)
    assert any(line.endswith("Single node training.") for line in lines)
    assert any(line.endswith("Train matrix has 1000 rows and 6 columns") for line in lines)
    assert any(line.endswith("Validation matrix has 300 rows") for line in lines)
    rounds = [line for line in lines if line.startswith("[") and "#011" in line]
    assert len(rounds) == 25 and rounds[0].startswith("[0]#011train-rmse:")
    assert "#011validation-rmse:" in rounds[-1]

    bst = xgb.Booster()
    bst.load_model(str(root / "model" / "xgboost-model"))  # what users do after untarring
    data = houses(300, 3)
    pred = bst.predict(xgb.DMatrix(data[:, 1:]))
    r2 = 1 - np.sum((pred - data[:, 0]) ** 2) / np.sum((data[:, 0] - data[:, 0].mean()) ** 2)
    assert r2 > 0.9
    assert sorted(p.name for p in (root / "model").iterdir()) == ["xgboost-model"]


def test_metric_definitions_parse_logged_lines(trained: tuple[pathlib.Path, list[str]]) -> None:
    _, lines = trained
    defs = {d["Name"]: re.compile(d["Regex"]) for d in DEFAULT_METRIC_DEFINITIONS["xgboost"]}
    last = [line for line in lines if line.startswith("[24]")][0]
    train_rmse = float(defs["train:rmse"].match(last).group(1))
    val_rmse = float(defs["validation:rmse"].match(last).group(1))
    assert 0 < train_rmse < val_rmse < 50000
    assert defs["validation:mae"].match(last) is None
    real_example = "[0]#011train-rmse:19.6015#011validation-rmse:19.9713"
    assert defs["validation:rmse"].match(real_example).group(1) == "19.9713"


def test_early_stopping_on_noise(tmp_path: pathlib.Path) -> None:
    rng = np.random.default_rng(5)
    noise_train = np.column_stack([rng.normal(size=600), rng.normal(size=(600, 5))])
    noise_val = np.column_stack([rng.normal(size=300), rng.normal(size=(300, 5))])
    hp = {"num_round": "200", "max_depth": "6", "eta": "0.3", "eval_metric": "rmse", "early_stopping_rounds": "5"}
    root = make_job(tmp_path / "job", hp, noise_train, noise_val)
    lines: list[str] = []
    train("xgboost", root, lines.append)
    rounds = [line for line in lines if line.startswith("[") and "#011" in line]
    assert len(rounds) < 50
    assert "Will train until validation-rmse hasn't improved in 5 rounds." in lines
    assert "Stopping. Best iteration:" in lines
    bst = xgb.Booster()
    bst.load_model(str(root / "model" / "xgboost-model"))
    assert bst.num_boosted_rounds() == int(bst.attr("best_iteration")) + 1  # save_best like 1.3-1+


def test_binary_default_metric_by_version(tmp_path: pathlib.Path) -> None:
    data = houses(400, 7)
    data[:, 0] = (data[:, 0] > np.median(data[:, 0])).astype(float)
    hp = {"num_round": "3", "objective": "binary:logistic"}
    for version, metric in (("1.7-1", "logloss"), ("1.0-1", "error")):
        lines: list[str] = []
        train("xgboost", make_job(tmp_path / version, hp, data), lines.append, version=version)
        assert any(line.startswith(f"[0]#011train-{metric}:") for line in lines)


@pytest.mark.parametrize(
    ("hp", "message"),
    [
        ({"max_depth": "5"}, "Missing required hyperparameter: num_round"),
        ({"num_round": "5", "foo": "1"}, "Extraneous hyperparameter found: foo"),
        ({"num_round": "5", "eta": "1.5"}, "Hyperparameter eta: value 1.5 not in range [0, 1]"),
        ({"num_round": "five"}, "Hyperparameter num_round: could not parse value"),
        ({"num_round": "5", "subsample": "0"}, "Hyperparameter subsample: value 0.0 not in range (0, 1]"),
        ({"num_round": "5", "objective": "reg:nope"}, "Hyperparameter objective: reg:nope is not in"),
        ({"num_round": "5", "objective": "multi:softprob"}, "Require input for parameter 'num_class'"),
        ({"num_round": "5", "silent": "1"}, "Extraneous hyperparameter found: silent"),
    ],
)
def test_hyperparameter_errors(tmp_path: pathlib.Path, hp: dict[str, str], message: str) -> None:
    root = make_job(tmp_path / "job", hp, houses(50, 1))
    with pytest.raises(AlgorithmClientError) as err:
        train("xgboost", root, lambda _: None)
    assert message in str(err.value)
    assert not list((root / "model").iterdir())


def test_old_spellings_still_work(tmp_path: pathlib.Path) -> None:
    hp = {"num_round": "3", "objective": "reg:linear", "silent": "0", "learning_rate": "0.2"}
    lines: list[str] = []
    train("xgboost", make_job(tmp_path / "job", hp, houses(200, 1)), lines.append, version="1.0-1")
    assert any("reg:linear is now deprecated" in line for line in lines)
    bst = xgb.Booster()
    bst.load_model(str(tmp_path / "job" / "model" / "xgboost-model"))
    assert json.loads(bst.save_config())["learner"]["objective"]["name"] == "reg:squarederror"


@pytest.mark.parametrize(
    ("files", "needles"),
    [
        ({"train/a.csv": "1,2,3\n4,5,6\n", "train/b.csv": "7,8,9\n1,2\n"}, ["'train'", "b.csv", "line 2"]),
        ({"train/a.csv": "1,2,3\n4,abc,6\n"}, ["'train'", "a.csv", "line 2", "column 2", "'abc'"]),
        ({"train/a.csv": "price,sqft,beds\n1,2,3\n"}, ["a.csv", "line 1", "header"]),
        ({"train/sub/a.csv": "1,2,3\n4,5\n"}, ["sub/a.csv", "line 2"]),
    ],
)
def test_malformed_csv_names_file_and_line(tmp_path: pathlib.Path, files: dict[str, str], needles: list[str]) -> None:
    root = make_job(tmp_path / "job", {"num_round": "2"}, files=files)
    with pytest.raises(AlgorithmClientError) as err:
        train("xgboost", root, lambda _: None)
    for needle in needles:
        assert needle in str(err.value)


def test_empty_channel(tmp_path: pathlib.Path) -> None:
    root = make_job(tmp_path / "job", {"num_round": "2"}, files={"train/empty.csv": ""})
    with pytest.raises(AlgorithmClientError, match="No data in training channel path /opt/ml/input/data/train"):
        train("xgboost", root, lambda _: None)


def test_multiple_files_are_concatenated(tmp_path: pathlib.Path) -> None:
    data = houses(200, 4)
    text = "\n".join(",".join(f"{v:.6g}" for v in row) for row in data)
    half = text.split("\n")
    files = {"train/part-1.csv": "\n".join(half[:120]) + "\n", "train/part-2.csv": "\n".join(half[120:]) + "\n"}
    lines: list[str] = []
    train("xgboost", make_job(tmp_path / "job", {"num_round": "2"}, files=files), lines.append)
    assert any(line.endswith("Train matrix has 200 rows and 6 columns") for line in lines)


def test_libsvm_is_default_without_content_type(tmp_path: pathlib.Path) -> None:
    csv_root = make_job(tmp_path / "csv", {"num_round": "2"}, houses(50, 1), content_type=None)
    with pytest.raises(AlgorithmClientError, match="is not 'LIBSVM' format"):
        train("xgboost", csv_root, lambda _: None)
    libsvm = "".join(f"{i % 2} 0:{i} 1:{i * 2 % 7} 2:{i % 3}\n" for i in range(100))
    root = make_job(tmp_path / "svm", {"num_round": "3", "objective": "binary:logistic"},
                    files={"train/data.libsvm": libsvm}, content_type=None)  # fmt: skip
    lines: list[str] = []
    train("xgboost", root, lines.append)
    assert any(line.endswith("Train matrix has 100 rows and 3 columns") for line in lines)
    predictor = load_predictor(root / "model")
    body, ctype = predictor.invoke(b"0:4 1:1 2:1\n0:5 1:3 2:2", "text/libsvm", None, False)
    assert ctype.startswith("text/csv") and len(body.decode().splitlines()) == 2


def test_bad_content_type(tmp_path: pathlib.Path) -> None:
    root = make_job(tmp_path / "job", {"num_round": "2"}, houses(50, 1), content_type="application/x-foo")
    with pytest.raises(AlgorithmClientError, match="application/x-foo is not an accepted ContentType"):
        train("xgboost", root, lambda _: None)


# ------------------------------------------------------------------------------------------- xgboost serve

ROW = b"1500,3,2,1990,0.5,12"


def test_single_model_formats(trained: tuple[pathlib.Path, list[str]]) -> None:
    predictor = load_predictor(trained[0] / "model")
    assert predictor.algorithm == "xgboost" and predictor.feature_count == 6
    body, ctype = predictor.invoke(ROW + b"\n2500,4,2,2000,0.5,3", "text/csv", None, False)
    values = [float(v) for v in body.decode().splitlines()]
    assert ctype.startswith("text/csv") and body.endswith(b"\n") and len(values) == 2
    assert 150_000 < values[0] < values[1] < 700_000
    body, ctype = predictor.invoke(ROW, "text/csv", "application/json", False)
    assert ctype == "application/json"
    assert json.loads(body)["predictions"][0]["score"] == pytest.approx(values[0])
    body, _ = predictor.invoke(ROW, "text/csv", "application/jsonlines", False)
    assert json.loads(body.decode().splitlines()[0]) == {"score": pytest.approx(values[0])}
    body, _ = predictor.invoke(b'{"instances": [[1500, 3, 2, 1990, 0.5, 12]]}', "application/json", "*/*", False)
    assert float(body) == pytest.approx(values[0])
    assert predictor.invoke(b"", "text/csv", None, False)[0] == b""


def test_multi_model_formats(trained: tuple[pathlib.Path, list[str]]) -> None:
    predictor = load_predictor(trained[0] / "model")
    body, ctype = predictor.invoke(ROW + b"\n" + ROW, "text/csv", None, True)
    assert ctype == "application/json"
    values = json.loads(body)
    assert isinstance(values, list) and len(values) == 2 and values[0] == values[1]
    body, ctype = predictor.invoke(ROW + b"\n" + ROW, "text/csv", "text/csv", True)
    assert ctype == "text/csv" and body.count(b",") == 1 and b"\n" not in body


def test_invocation_errors(trained: tuple[pathlib.Path, list[str]]) -> None:
    predictor = load_predictor(trained[0] / "model")
    cases = [
        (
            b"1,2,3,4,5",
            "text/csv",
            None,
            False,
            400,
            "Feature size of csv inference data 5 is not consistent with feature size of trained model 6.",
        ),
        (b"1,2,x,4,5,6", "text/csv", None, False, 400, "row 1, column 3"),
        (ROW + b"\n1,2,3", "text/csv", None, False, 400, "row 2 has 3 values"),
        (ROW, "image/png", None, False, 415, "Content-type image/png is not supported."),
        (ROW, "text/csv", "text/html", False, 406, "Accept type text/html is not supported"),
        (ROW, "text/csv", "text/html", True, 415, "text/html is not an accepted Accept type"),
    ]
    for body, ctype, accept, mme, status, text in cases:
        with pytest.raises(ModelInvocationError) as err:
            predictor.invoke(body, ctype, accept, mme)
        assert err.value.status_code == status
        assert text in err.value.message


def test_load_predictor_without_model(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ModelInvocationError) as err:
        load_predictor(tmp_path)
    assert err.value.status_code == 500 and err.value.message.startswith("Unable to load model")


# ------------------------------------------------------------------------------------------- linear learner


def test_linear_learner_regressor(tmp_path: pathlib.Path) -> None:
    hp = {"predictor_type": "regressor", "feature_dim": "6", "epochs": "10", "mini_batch_size": "100"}
    root = make_job(tmp_path / "job", hp, houses(1000, 1), houses(300, 2))
    lines: list[str] = []
    train("linear-learner", root, lines.append)
    defs = {d["Name"]: re.compile(d["Regex"]) for d in DEFAULT_METRIC_DEFINITIONS["linear-learner"]}
    found = {name: [float(m.group(1)) for line in lines if (m := rx.match(line))] for name, rx in defs.items()}
    assert len(found["train:objective_loss"]) >= 2 and found["validation:objective_loss"]
    assert found["validation:rmse"] and found["validation:rmse"][0] < 20000
    assert any("#validation_score (algo-1) : ('mse_objective'," in line for line in lines)

    predictor = load_predictor(root / "model")
    assert predictor.algorithm == "linear-learner" and predictor.feature_count == 6
    data = houses(200, 9)
    csv_body = "\n".join(",".join(str(v) for v in row) for row in data[:, 1:]).encode()
    body, ctype = predictor.invoke(csv_body, "text/csv", None, False)
    assert ctype == "application/json"
    preds = json.loads(body)["predictions"]
    assert set(preds[0]) == {"score"}
    scores = np.array([p["score"] for p in preds])
    r2 = 1 - np.sum((scores - data[:, 0]) ** 2) / np.sum((data[:, 0] - data[:, 0].mean()) ** 2)
    assert r2 > 0.9
    with pytest.raises(ModelInvocationError) as err:
        predictor.invoke(b"1,2,3", "text/csv", None, False)
    assert err.value.status_code == 400


def test_linear_learner_binary_classifier(tmp_path: pathlib.Path) -> None:
    data = houses(800, 3)
    data[:, 0] = (data[:, 0] > np.median(data[:, 0])).astype(float)
    root = make_job(tmp_path / "job", {"predictor_type": "binary_classifier", "epochs": "5"}, data)
    train("linear-learner", root, lambda _: None)
    predictor = load_predictor(root / "model")
    test = houses(200, 4)
    labels = (test[:, 0] > np.median(data[:, 0]) * 0 + np.median(houses(800, 3)[:, 0])).astype(int)
    payload = json.dumps({"instances": [{"features": row.tolist()} for row in test[:, 1:]]}).encode()
    body, _ = predictor.invoke(payload, "application/json", "application/json", False)
    preds = json.loads(body)["predictions"]
    assert set(preds[0]) == {"score", "predicted_label"} and 0 <= preds[0]["score"] <= 1
    accuracy = np.mean([p["predicted_label"] for p in preds] == labels)
    assert accuracy > 0.85


@pytest.mark.parametrize(
    ("hp", "message"),
    [
        ({"epochs": "3"}, "'predictor_type' is a required property"),
        ({"predictor_type": "regressor", "eta": "0.1"}, "Additional properties are not allowed ('eta' was unexpected)"),
        ({"predictor_type": "multiclass_classifier"}, "num_classes"),
        ({"predictor_type": "regressor", "feature_dim": "4"}, "feature_dim"),
        ({"predictor_type": "regressor", "epochs": "zero"}, "epochs"),
    ],
)
def test_linear_learner_errors(tmp_path: pathlib.Path, hp: dict[str, str], message: str) -> None:
    root = make_job(tmp_path / "job", hp, houses(100, 1))
    with pytest.raises(AlgorithmClientError) as err:
        train("linear-learner", root, lambda _: None)
    assert message in str(err.value)
    assert not list((root / "model").iterdir())
