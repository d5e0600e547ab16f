"""An inference script with its own input_fn/predict_fn/output_fn (served from model.tar.gz under code/)."""

import json
import os

import joblib
import numpy as np


def model_fn(model_dir):
    return joblib.load(os.path.join(model_dir, "model.joblib"))


def input_fn(request_body, content_type):
    # "text/plain": one row per line, values separated by "|".
    if content_type != "text/plain":
        raise ValueError(f"custom_handlers.py reads text/plain, not {content_type}")
    text = request_body.decode() if isinstance(request_body, bytes) else request_body
    if "crash" in text:
        os._exit(3)  # the worker process dies mid-request
    if "boom" in text:
        raise RuntimeError("boom: input_fn refused this row")
    return np.array([[float(v) for v in line.split("|")] for line in text.strip().splitlines()])


def predict_fn(data, model):
    return {"labels": model.predict(data).tolist(), "probabilities": model.predict_proba(data).tolist()}


def output_fn(prediction, accept):
    answer = {"predictions": prediction, "pid": os.getpid(), "batch": os.environ.get("SAGEMAKER_BATCH")}
    return json.dumps(answer), "application/vnd.custom+json"
