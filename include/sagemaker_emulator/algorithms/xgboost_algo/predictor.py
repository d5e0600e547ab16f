"""SageMaker built-in XGBoost serving: ``algorithm_mode/serve.py`` (single model) and
``algorithm_mode/handler_service.py`` (multi-model server), answer formats per image version."""

from __future__ import annotations

import json
import math
import pathlib
import warnings
from typing import Any

import numpy as np

from .. import _data
from .._base import Predictor
from .._errors import ModelInvocationError
from .._pickled_booster import load_pickled_booster
from .spec import COMMA_JOINED_CSV_VERSIONS, DEFAULT_VERSION, LEGACY_TEXT_ONLY_VERSIONS, MODEL_NAME

_SINGLE_ACCEPTS = ("application/json", "application/jsonlines", "application/x-recordio-protobuf", "text/csv")


def _media(value: str | None) -> str:
    return value.split(";", 1)[0].strip().lower() if value else ""


class XGBoostPredictor(Predictor):
    """Loaded ``xgboost-model``; ``invoke`` is thread-safe (``inplace_predict`` is) and allocation-light."""

    algorithm = "xgboost"

    def __init__(self, booster: Any, source: pathlib.Path, version: str = DEFAULT_VERSION) -> None:
        self.booster = booster
        self.source = source
        self.version = version  # the serving image's container version: it picks the answer's format
        self.feature_count: int | None = int(booster.num_features()) or None
        config = json.loads(booster.save_config())
        self.objective: str = config["learner"]["objective"]["name"]
        self.num_class = int(config["learner"]["learner_model_param"].get("num_class", "0") or 0)

    # -- parsing -------------------------------------------------------------------------------
    def _parse_csv(self, text: str) -> np.ndarray:
        lines = text.split("\n")
        first = lines[0]
        if "," in first:
            delimiter = ","
        elif "\t" in first:
            delimiter = "\t"
        elif ";" in first:
            delimiter = ";"
        elif "|" in first:
            delimiter = "|"
        elif " " in first.strip():
            delimiter = " "
        else:
            delimiter = ","
        if len(lines) == 1:
            cells = first.split(delimiter)
            try:
                return np.array([float(c) if c.strip() else math.nan for c in cells], dtype=np.float32)[None, :]
            except ValueError:
                pass  # fall through to the row-by-row diagnosis below
        rows = []
        width = None
        for i, line in enumerate(lines, 1):
            line = line.rstrip("\r")
            cells = line.split(delimiter)
            if width is None:
                width = len(cells)
            elif len(cells) != width:
                raise ModelInvocationError(
                    400,
                    "Unable to evaluate payload provided: Loading csv data failed with Exception, please ensure "
                    f"data is in csv format: row {i} has {len(cells)} values but row 1 has {width}.",
                )
            try:
                rows.append([float(c) if c.strip() else math.nan for c in cells])
            except ValueError:
                bad = next((j, c) for j, c in enumerate(cells, 1) if c.strip() and not _data._looks_like_number(c))
                raise ModelInvocationError(
                    400,
                    "Unable to evaluate payload provided: Loading csv data failed with Exception, please ensure "
                    f"data is in csv format: could not convert string to float: {bad[1].strip()!r} "
                    f"(row {i}, column {bad[0]}).",
                ) from None
        return np.asarray(rows, dtype=np.float32)

    def _parse_libsvm(self, text: str) -> Any:
        from scipy.sparse import csr_matrix

        indptr = [0]
        indices: list[int] = []
        values: list[float] = []
        for i, line in enumerate(text.split("\n"), 1):
            for token in line.split():
                if ":" not in token:
                    continue  # the leading label (if any) is ignored, like the container
                key, _, val = token.partition(":")
                try:
                    indices.append(int(key))
                    values.append(float(val))
                except ValueError:
                    raise ModelInvocationError(
                        400,
                        "Unable to evaluate payload provided: Loading libsvm data failed with Exception, please "
                        f"ensure data is in libsvm format: bad token {token[:40]!r} on row {i}.",
                    ) from None
            indptr.append(len(indices))
        n_cols = max(indices) + 1 if indices else 0
        if self.feature_count and n_cols > self.feature_count + 1:
            raise ModelInvocationError(
                400,
                f"Unable to evaluate payload provided: Feature size of libsvm inference data {n_cols} is larger "
                f"than feature size of trained model {self.feature_count}.",
            )
        width = max(n_cols, self.feature_count or 0)
        return csr_matrix(
            (np.asarray(values, dtype=np.float32), np.asarray(indices, dtype=np.int64), np.asarray(indptr)),
            shape=(len(indptr) - 1, width),
        )[:, : self.feature_count or width]

    def _parse_json(self, text: str, lines: bool) -> np.ndarray:
        try:
            if lines:
                doc = [json.loads(line) for line in text.split("\n") if line.strip()]
            else:
                doc = json.loads(text)
            if isinstance(doc, dict):
                doc = doc.get("instances", doc.get("features"))
            rows = []
            for row in doc if isinstance(doc, list) else [None]:
                if isinstance(row, dict):
                    row = row.get("features", row.get("values"))
                rows.append(row)
            if rows and not isinstance(rows[0], list):
                rows = [rows]  # a single bare row: [1.0, 2.0, ...]
            return np.asarray(rows, dtype=np.float32)
        except (ValueError, TypeError) as e:
            raise ModelInvocationError(
                400,
                "Unable to evaluate payload provided: Loading json data failed with Exception, please send "
                f'{{"instances": [[f1, f2, ...], ...]}} or a list of rows: {e}',
            ) from None

    def _check_width(self, x: np.ndarray, kind: str) -> np.ndarray:
        # Strict, like the container's check for pickled models; (xgboost 1.7 would silently treat
        # missing trailing columns as missing values for native models - a trap we do not copy).
        expected = self.feature_count
        if x.ndim != 2 or expected is None or x.shape[1] == expected:
            return x
        raise ModelInvocationError(
            400,
            f"Unable to evaluate payload provided: Feature size of {kind} inference data {x.shape[1]} is not "
            f"consistent with feature size of trained model {expected}.",
        )

    def _parse_recordio(self, body: bytes) -> Any:
        """``features["values"]`` of each record: a dense matrix, or CSR when the records carry ``keys``."""
        from include.formats import recordio

        try:
            matrix = recordio.to_matrix([("request body", body)])
        except recordio.RecordIOError as e:
            raise ModelInvocationError(400, f"Unable to evaluate payload provided: {e}") from None
        if not matrix.sparse:
            return self._check_width(matrix.features, "recordio-protobuf")
        features = matrix.features
        if self.feature_count and features.shape[1] < self.feature_count:
            features.resize((features.shape[0], self.feature_count))
        return features

    # -- invoke --------------------------------------------------------------------------------
    def invoke(self, body: bytes, content_type: str | None, accept: str | None, multi_model: bool) -> tuple[bytes, str]:
        ctype = _media(content_type)
        acc = _media(accept)
        if multi_model:
            if not acc or acc == "*/*":
                acc = "application/json"
        elif not acc or acc == "*/*":
            acc = "text/csv"
        if not body:
            return b"", acc  # the container answers 204 No Content
        if ctype in ("application/x-recordio-protobuf", "recordio-protobuf"):
            if self.version in LEGACY_TEXT_ONLY_VERSIONS:
                raise ModelInvocationError(415, f"Content-type {content_type} is not supported.")
            if multi_model:  # the MME handler decodes only CSV and libsvm
                raise ModelInvocationError(415, "Content type must be either libsvm or csv.")
            x = self._parse_recordio(body)  # binary: never decoded as text
        else:
            x = self._parse_text(body, ctype, content_type)
        try:
            preds = self.booster.inplace_predict(x, validate_features=False)
        except Exception as e:
            raise ModelInvocationError(400, f"Unable to evaluate payload provided: {e}") from None
        if not multi_model and self.version in COMMA_JOINED_CSV_VERSIONS:
            # softprob rows render as Python lists: "[0.1, 0.2, 0.7],[...]", as those images answer.
            return ",".join(map(str, preds.tolist())).encode(), "text/csv"
        return self._encode(preds.tolist(), acc, accept, multi_model)

    def _parse_text(self, body: bytes, ctype: str, content_type: str | None) -> Any:
        try:
            text = body.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise ModelInvocationError(400, "Unable to evaluate payload provided: payload is not UTF-8") from None
        if self.version in LEGACY_TEXT_ONLY_VERSIONS:
            # The xgboost:1 (0.72) image reads text/csv (its default) and libsvm only.
            if ctype in ("", "text/csv", "csv"):
                return self._check_width(self._parse_csv(text), "csv")
            if ctype not in ("libsvm", "text/libsvm", "text/x-libsvm"):
                raise ModelInvocationError(415, f"Content-type {content_type} is not supported.")
        if ctype in ("text/csv", "csv"):
            x = self._check_width(self._parse_csv(text), "csv")
        elif ctype in ("", "libsvm", "text/libsvm", "text/x-libsvm"):
            x = self._parse_libsvm(text)  # libsvm is the container's default when Content-Type is absent
        elif ctype in ("application/json", "json"):
            x = self._check_width(self._parse_json(text, lines=False), "json")
        elif ctype in ("application/jsonlines", "application/json-lines", "jsonlines"):
            x = self._check_width(self._parse_json(text, lines=True), "json")
        else:
            raise ModelInvocationError(415, f"Content-type {content_type} is not supported.")
        return x

    @staticmethod
    def _encode(preds: list, acc: str, accept: str | None, multi_model: bool) -> tuple[bytes, str]:
        if multi_model:
            if acc in ("text/csv", "csv"):
                return ",".join(map(str, preds)).encode(), "text/csv"
            if acc in ("application/json", "json"):
                return json.dumps(preds).encode(), "application/json"
            raise ModelInvocationError(
                415,
                f"Encoding to accept type {accept} failed with exception: {accept} is not an accepted Accept "
                "type. Please choose one of the following: ['text/csv', 'application/json'].",
            )
        if acc == "text/csv":
            if preds and isinstance(preds[0], list):
                out = "".join(",".join(map(str, row)) + "\n" for row in preds)
            else:
                out = "".join(f"{p}\n" for p in preds)
            return out.encode(), "text/csv; charset=utf-8"
        if acc == "application/json":
            return json.dumps({"predictions": [{"score": p} for p in preds]}).encode(), "application/json"
        if acc == "application/jsonlines":
            return "".join(json.dumps({"score": p}) + "\n" for p in preds).encode(), "application/jsonlines"
        if acc == "application/x-recordio-protobuf":
            raise ModelInvocationError(
                406, "Accept type application/x-recordio-protobuf is not supported by the local SageMaker emulator."
            )
        raise ModelInvocationError(
            406,
            f"Accept type {accept} is not supported. Please use supported accept types: {list(_SINGLE_ACCEPTS)}.",
        )


def load(model_dir: pathlib.Path, version: str = DEFAULT_VERSION) -> XGBoostPredictor:
    """Load like the container: ignore dotfiles, take ``xgboost-model`` (else the first file),
    accept native xgboost formats (JSON, UBJSON) and pickled Boosters (through the restricted unpickler
    of :mod:`._pickled_booster`, never ``pickle.load``); predict with one thread."""
    import xgboost as xgb

    files = sorted(p for p in model_dir.iterdir() if p.is_file() and not p.name.startswith("."))
    path = next((p for p in files if p.name == MODEL_NAME), files[0] if files else None)
    if path is None:
        raise ModelInvocationError(500, f"Unable to load model: no model file found in {model_dir.name}")
    try:
        booster = xgb.Booster()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Unknown file format: ``. Using UBJSON as a guess."
            booster.load_model(str(path))
    except Exception as native_error:
        try:
            # 1.0-1/1.2-x artifacts are pickled Boosters; a pickle from a client is never pickle.load()ed.
            booster = load_pickled_booster(path.read_bytes())
        except Exception as pickle_error:
            raise ModelInvocationError(
                500,
                f"Unable to load model: Model {path.name} cannot be loaded:\nPickle load error={pickle_error}"
                f"\nXGB load model error={native_error}",
            ) from None
    booster.set_param("nthread", 1)
    return XGBoostPredictor(booster, path, version)
