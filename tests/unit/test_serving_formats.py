"""Container-exact answers of the built-in XGBoost predictor, one row per (image version, endpoint kind,
content type, accept, objective); see reference/sagemaker-contracts-jobs-and-formats.md section 3.

The expected bodies are written out from the rows' predictions the way each container renders them:
comma-joined on one line (xgboost:1, 0.90-x, 1.0-1, 1.2-1 single-model, and every multi-model endpoint),
one per line with a trailing newline (1.2-2+ single-model), JSON documents, and 406 for unknown Accepts.
"""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest

from include.sagemaker_emulator.algorithms import ModelInvocationError, xgboost_algo

ROWS = np.array([[0.0, 1.0, 2.0], [3.0, 0.5, 1.0], [1.0, 4.0, 0.0]], dtype=np.float32)
CSV_BODY = b"0,1,2\n3,0.5,1\n1,4,0"
LIBSVM_BODY = b"1 0:0 1:1 2:2\n0 0:3 1:0.5 2:1\n2 0:1 1:4 2:0"  # leading labels are dropped by the container
OLD = ("1", "0.90-1", "0.90-2", "1.0-1", "1.2-1")
NEW = ("1.2-2", "1.3-1", "1.5-1", "1.7-1")


@pytest.fixture(scope="module")
def boosters(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pathlib.Path]:
    import xgboost as xgb

    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 3)).astype(np.float32)
    labels = {
        "reg:squarederror": x[:, 0] * 2,
        "multi:softmax": np.argmax(x, axis=1),
        "multi:softprob": np.argmax(x, axis=1),
    }
    out = {}
    for objective, y in labels.items():
        params = {"objective": objective, "max_depth": 2, "nthread": 1}
        if objective.startswith("multi:"):
            params["num_class"] = 3
        booster = xgb.train(params, xgb.DMatrix(x, label=y), num_boost_round=3)
        folder = tmp_path_factory.mktemp(objective.replace(":", "-"))
        booster.save_model(str(folder / "model.ubj"))  # the extension picks the format (no warning)
        (folder / "model.ubj").rename(folder / "xgboost-model")
        out[objective] = folder
    return out


_LOADED: dict[tuple[pathlib.Path, str], xgboost_algo.XGBoostPredictor] = {}


def _predictor(folder: pathlib.Path, version: str) -> xgboost_algo.XGBoostPredictor:
    if (folder, version) not in _LOADED:
        _LOADED[folder, version] = xgboost_algo.load(folder, version)
    return _LOADED[folder, version]


def _predictions(folder: pathlib.Path) -> list:
    return _predictor(folder, "1.7-1").booster.inplace_predict(ROWS).tolist()


def _comma_joined(p: list) -> str:
    return ",".join(str(v) for v in p)  # softprob rows render as Python lists "[a, b, c]"


def _one_per_line(p: list) -> str:
    return "".join((",".join(map(str, v)) if isinstance(v, list) else str(v)) + "\n" for v in p)


def _json_predictions(p: list) -> str:
    return json.dumps({"predictions": [{"score": v} for v in p]})


def _jsonlines(p: list) -> str:
    return "".join(json.dumps({"score": v}) + "\n" for v in p)


CASES = []
for objective in ("reg:squarederror", "multi:softmax", "multi:softprob"):
    for body_type, body in (("text/csv", CSV_BODY), ("text/x-libsvm", LIBSVM_BODY)):
        for version in OLD:
            for accept in (None, "application/json"):  # Accept is ignored by these images
                CASES.append((version, "single", body_type, body, accept, objective, _comma_joined, "text/csv"))
        for version in NEW:
            for accept, render, mimetype in (
                (None, _one_per_line, "text/csv; charset=utf-8"),
                ("text/csv", _one_per_line, "text/csv; charset=utf-8"),
                ("application/json", _json_predictions, "application/json"),
                ("application/jsonlines", _jsonlines, "application/jsonlines"),
            ):
                CASES.append((version, "single", body_type, body, accept, objective, render, mimetype))
        for version in (*OLD, *NEW):
            CASES.append((version, "multi-model", body_type, body, "text/csv", objective, _comma_joined, "text/csv"))
            for accept in (None, "application/json"):
                CASES.append(
                    (version, "multi-model", body_type, body, accept, objective, json.dumps, "application/json")
                )


@pytest.mark.parametrize(
    ("version", "kind", "content_type", "body", "accept", "objective", "render", "mimetype"),
    CASES,
    ids=[f"{c[0]}-{c[1]}-{c[2]}-{c[4]}-{c[5]}" for c in CASES],
)
def test_answer_format(boosters, version, kind, content_type, body, accept, objective, render, mimetype) -> None:
    predictor = _predictor(boosters[objective], version)
    answer, answered_type = predictor.invoke(body, content_type, accept, kind == "multi-model")
    expected = _predictions(boosters[objective])
    assert answer.decode() == render(expected)
    assert answered_type == mimetype


def test_softmax_answers_class_indices_as_floats(boosters) -> None:
    answer, _ = xgboost_algo.load(boosters["multi:softmax"], "1.0-1").invoke(CSV_BODY, "text/csv", None, False)
    assert all(v in ("0.0", "1.0", "2.0") for v in answer.decode().split(","))
    assert len(answer.decode().split(",")) == 3


def test_old_softprob_is_bracketed_rows(boosters) -> None:
    answer, _ = xgboost_algo.load(boosters["multi:softprob"], "1.2-1").invoke(CSV_BODY, "text/csv", None, False)
    text = answer.decode()
    assert text.startswith("[") and text.count("],[") == 2 and "\n" not in text


@pytest.mark.parametrize("version", NEW)
def test_new_images_refuse_unknown_accept(boosters, version: str) -> None:
    predictor = xgboost_algo.load(boosters["reg:squarederror"], version)
    with pytest.raises(ModelInvocationError) as info:
        predictor.invoke(CSV_BODY, "text/csv", "text/plain", False)
    assert info.value.status_code == 406 and "Accept type text/plain is not supported" in info.value.message
