"""Container-exact BATCH answers of the built-in XGBoost predictor (``SAGEMAKER_BATCH=true``), one row per
(image version, content type, accept, objective), next to the real-time table in test_serving_formats.py.

Under batch transform every image answers ``"\\n".join(map(str, preds)) + "\\n"`` whatever the Accept (reference
section 3): one prediction per line, ``multi:softmax`` as the class index as a float, ``multi:softprob`` rows as
Python lists (``[0.1, 0.2, 0.7]``); ``text/x-libsvm`` input drops the label token.
"""

from __future__ import annotations

import pytest

from include.sagemaker_emulator.algorithms import ModelInvocationError, xgboost_algo
from include.sagemaker_emulator.serving.predictors import XGBoostBatchPredictor, predictor_for_model
from tests.unit.test_serving_formats import CSV_BODY, LIBSVM_BODY, NEW, OLD, _predictions, boosters  # noqa: F401

JSON_BODY = b'{"instances": [[0, 1, 2], [3, 0.5, 1], [1, 4, 0]]}'
JSONLINES_BODY = b"[0, 1, 2]\n[3, 0.5, 1]\n[1, 4, 0]\n"
BODIES = (
    ("text/csv", CSV_BODY),
    ("text/csv", CSV_BODY + b"\n"),  # Line splitting leaves a trailing newline on the last mini-batch
    ("text/x-libsvm", LIBSVM_BODY),
    ("application/json", JSON_BODY),
    ("application/jsonlines", JSONLINES_BODY),
)
ACCEPTS = (None, "text/csv", "application/json", "application/jsonlines")


def _batch_lines(p: list) -> str:
    return "".join(f"{v}\n" for v in p)  # str(list) for softprob rows: "[0.1, 0.2, 0.7]"


CASES = [
    (version, content_type, body, accept, "reg:squarederror")
    for version in (*OLD, *NEW)
    for content_type, body in BODIES
    for accept in ACCEPTS
] + [
    (version, "text/csv", CSV_BODY, accept, objective)
    for objective in ("multi:softmax", "multi:softprob")
    for version in (*OLD, *NEW)
    for accept in (None, "application/json")
]


@pytest.mark.parametrize(
    ("version", "content_type", "body", "accept", "objective"),
    CASES,
    ids=[f"{c[0]}-{c[1]}-{len(c[2])}-{c[3]}-{c[4]}" for c in CASES],
)
def test_batch_answer_format(boosters, version, content_type, body, accept, objective) -> None:  # noqa: F811
    predictor = XGBoostBatchPredictor(xgboost_algo.load(boosters[objective], version))
    if version == "1" and content_type.startswith("application/"):
        with pytest.raises(ModelInvocationError) as refused:  # xgboost:1 (0.72) reads CSV and libsvm only
            predictor.invoke(body, content_type, accept, False)
        assert refused.value.status_code == 415 and f"Content-type {content_type} is not supported" in str(
            refused.value
        )
        return
    answer, _ = predictor.invoke(body, content_type, accept, False)
    assert answer.decode() == _batch_lines(_predictions(boosters[objective]))


def test_softprob_rows_are_python_lists_and_softmax_floats(boosters) -> None:  # noqa: F811
    softprob = XGBoostBatchPredictor(xgboost_algo.load(boosters["multi:softprob"], "1.7-1"))
    lines = softprob.invoke(CSV_BODY, "text/csv", "text/csv", False)[0].decode().splitlines()
    assert len(lines) == 3 and all(line.startswith("[") and line.count(", ") == 2 for line in lines)
    softmax = XGBoostBatchPredictor(xgboost_algo.load(boosters["multi:softmax"], "0.90-2"))
    assert set(softmax.invoke(CSV_BODY, "text/csv", None, False)[0].decode().split()) <= {"0.0", "1.0", "2.0"}


def test_predictor_for_model_gives_the_batch_form_only_when_asked(boosters) -> None:  # noqa: F811
    record = {
        "ModelName": "m",
        "PrimaryContainer": {"Image": "x.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.2-1"},
    }
    batch = predictor_for_model(record, boosters["reg:squarederror"], batch=True)
    realtime = predictor_for_model(record, boosters["reg:squarederror"], batch=False)
    assert batch.invoke(CSV_BODY, "text/csv", None, False)[0].decode().count("\n") == 3
    assert "\n" not in realtime.invoke(CSV_BODY, "text/csv", None, False)[0].decode()  # 1.2-1: comma-joined
    assert batch.execution_parameters()["BatchStrategy"] == "MULTI_RECORD"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"0,1,2\n3,oops,1", "could not convert string to float: 'oops' (row 2, column 2)"),
        (b"0,1\n3,0.5", "Feature size of csv inference data 2 is not consistent with feature size of trained model 3"),
        (b"0,1,2\n3,0.5,1,7", "row 2 has 4 values but row 1 has 3"),
    ],
)
def test_bad_csv_gets_the_containers_message(boosters, body: bytes, message: str) -> None:  # noqa: F811
    predictor = XGBoostBatchPredictor(xgboost_algo.load(boosters["reg:squarederror"], "1.7-1"))
    with pytest.raises(ModelInvocationError) as info:
        predictor.invoke(body, "text/csv", None, False)
    assert info.value.status_code == 400 and message in info.value.message
