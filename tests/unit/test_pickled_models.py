"""Issue 12, item 2 at function level: a model file from a client is never run as code.

Legitimate pickled Boosters (made by xgboost 3.x itself, every pickle protocol) load and predict exactly
like the original; pickles whose ``__reduce__`` would run code, or that hold anything but a Booster, are a
500 "Unable to load model" naming the model, and their code never runs (a marker file never appears).
"""

from __future__ import annotations

import builtins
import io
import os
import pickle
import subprocess
import tarfile
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb

from include.sagemaker_emulator.algorithms import ModelInvocationError, load_predictor
from include.sagemaker_emulator.algorithms._pickled_booster import RefusedPickle, load_pickled_booster
from include.sagemaker_emulator.serving.runtime import load_archive


def _booster(seed: int = 0) -> tuple[xgb.Booster, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 10, size=(200, 5)).astype(np.float32)
    y = 3 * x[:, 0] - 2 * x[:, 1] + rng.normal(0, 0.1, 200)
    booster = xgb.train({"objective": "reg:squarederror", "max_depth": 3}, xgb.DMatrix(x, label=y), 10)
    return booster, x


class _RunsCode:
    """What an attacker pickles: unpickling it calls ``action`` with ``args``."""

    def __init__(self, action: object, *args: object):
        self.action, self.args = action, args

    def __reduce__(self) -> tuple:
        return self.action, self.args


def _hostile_pickles(marker: Path) -> dict[str, bytes]:
    booster, _ = _booster()
    good_state = booster.__getstate__()
    poisoned_state = dict(good_state, extra=_RunsCode(builtins.open, str(marker), "w"))

    class PoisonedBooster:
        """Pickles as xgboost.core.Booster, with an attacker's object inside its state."""

        def __reduce__(self) -> tuple:
            return (xgb.Booster, (), poisoned_state)

    class BoosterFromPath:
        """xgboost.core.Booster(model_file=<a server path>): the Booster class called with arguments."""

        def __reduce__(self) -> tuple:
            return (xgb.Booster, (None, None, "/etc/hostname"))

    return {
        "os.system": pickle.dumps(_RunsCode(os.system, f"touch {marker}")),
        "open(w)": pickle.dumps(_RunsCode(builtins.open, str(marker), "w")),
        "subprocess": pickle.dumps(_RunsCode(subprocess.call, ["touch", str(marker)])),
        "exec (protocol 0)": pickle.dumps(_RunsCode(builtins.exec, f"open({str(marker)!r}, 'w')"), protocol=0),
        "code inside the Booster's state": pickle.dumps(PoisonedBooster()),
        "Booster called with a path": pickle.dumps(BoosterFromPath()),
        "a dict": pickle.dumps({"handle": bytearray(b"x")}),
        "numpy array": pickle.dumps(np.arange(3)),
    }


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_pickled_booster_made_by_xgboost_3_loads_and_predicts_the_same(tmp_path: Path, protocol: int) -> None:
    booster, x = _booster()
    (tmp_path / "xgboost-model").write_bytes(pickle.dumps(booster, protocol=protocol))
    predictor = load_predictor(tmp_path)
    body = "\n".join(",".join(f"{v:.6f}" for v in row) for row in x[:20]).encode()
    answer, content_type = predictor.invoke(body, "text/csv", "text/csv", False)
    rows = np.array([float(v) for v in answer.decode().split()])
    rounded = np.array([[float(f"{v:.6f}") for v in row] for row in x[:20]], dtype=np.float32)
    assert content_type.startswith("text/csv")
    np.testing.assert_allclose(rows, booster.inplace_predict(rounded), rtol=1e-6)


def test_hostile_pickles_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    for label, data in _hostile_pickles(marker).items():
        model_dir = tmp_path / label.replace(" ", "-")
        model_dir.mkdir()
        (model_dir / "xgboost-model").write_bytes(data)
        with pytest.raises(ModelInvocationError) as refused:
            load_predictor(model_dir)
        message = refused.value.message
        assert refused.value.status_code == 500, label
        assert message.startswith("Unable to load model: Model xgboost-model cannot be loaded"), label
        assert "Pickle load error=" in message, label
        assert not marker.exists(), f"{label}: the pickle ran"


def test_refusals_say_what_the_pickle_names() -> None:
    with pytest.raises(RefusedPickle, match=r"calls posix\.system, which a pickled xgboost Booster never does"):
        load_pickled_booster(pickle.dumps(_RunsCode(os.system, "true")))
    with pytest.raises(RefusedPickle, match=r"bytearray\(int\) is not part of a pickled Booster"):
        load_pickled_booster(pickle.dumps(_RunsCode(bytearray, 10**12)))  # would allocate a terabyte
    with pytest.raises(RefusedPickle, match="holds a dict, not an xgboost Booster"):
        load_pickled_booster(pickle.dumps({"a": 1}))
    with pytest.raises(RefusedPickle, match="not a readable pickle"):
        load_pickled_booster(b"\x80\x04garbage")


def test_a_pickled_booster_xgboost_3_cannot_read_is_a_model_error(tmp_path: Path) -> None:
    # The old containers' xgboost (0.90-1.2) serialised in a binary format 3.x no longer reads; the
    # pickle's shape is right, its model bytes are not: refused with xgboost's own reason.
    booster, _ = _booster()
    state = booster.__getstate__()

    class OldBooster:
        def __reduce__(self) -> tuple:
            return (xgb.Booster, (), {**state, "handle": bytearray(b"binf" + bytes(64))})

    (tmp_path / "xgboost-model").write_bytes(pickle.dumps(OldBooster()))
    with pytest.raises(ModelInvocationError) as refused:
        load_predictor(tmp_path)
    assert refused.value.status_code == 500
    message = refused.value.message
    assert f"a pickled xgboost Booster whose model xgboost {xgb.__version__} cannot read" in message, message
    assert "Invalid serialization file" in message and "save_model('xgboost-model.json')" in message


def test_archive_with_hostile_pickle_names_the_artifact(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    buffer = io.BytesIO()
    data = pickle.dumps(_RunsCode(os.system, f"touch {marker}"))
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("xgboost-model")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    with pytest.raises(ModelInvocationError) as refused:
        load_archive(buffer.getvalue(), "s3://bucket/evil/model.tar.gz")
    assert "(model artifact s3://bucket/evil/model.tar.gz)" in refused.value.message
    assert "calls posix.system" in refused.value.message
    assert not marker.exists()
