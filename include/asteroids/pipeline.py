"""The logic behind ``asteroid_linear_learner``'s tasks: plan, recordIO channels, requests, scoring, report.

Nothing here imports Airflow: the DAG's tasks read the context, then call these functions with plain values
and boto3 clients. numpy, pandas and matplotlib are imported inside the functions that need them, so this
module is cheap to import at DAG parse time.

Names of one run share a prefix made of ``asteroid-ll``, the run's date and a hash of the run id
(``asteroid-ll-20261123-1a2b3c``): a retried task computes the same names, and two runs of one date never
collide. S3 layout (all under the bucket)::

    asteroid-linear-learner/<prefix>/train/linear_train.data            recordIO-protobuf (the notebook's name)
    asteroid-linear-learner/<prefix>/validation/linear_validation.data  recordIO-protobuf
    asteroid-linear-learner/<prefix>/test/test.csv                      label-first CSV, no header
    asteroid-linear-learner/<prefix>/reports/{predictions.csv,report.json,predictions.png}
    training-output/asteroid-linear-learner/<prefix>/<job>/output/model.tar.gz
"""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Callable, Mapping
from typing import Any

from include.project_settings import (
    checked_settings,
    dated_run_prefix,
    instance_type_problems,
    integer_problems,
    unknown_param_problems,
)
from sagemaker_fleet.utils.naming import coerce_run_date, is_valid_sagemaker_name, sagemaker_name
from sagemaker_fleet.utils.s3 import parse_s3_uri, s3_uri

__all__ = [
    "DEFAULTS",
    "NOTEBOOK",
    "PREDICTOR_TYPES",
    "InvalidParamsError",
    "build_plan",
    "build_report",
    "endpoint_spec",
    "environment_settings",
    "evaluate_predictions",
    "linear_learner_image_uri",
    "notebook_lines",
    "prepare_channels",
    "render_predictions_png",
    "run_prefix",
    "run_resources",
    "score_test_rows",
    "summary_text",
    "training_request",
    "validate_params",
    "write_report",
]

NOTEBOOK = "seed 002: Running Machine Learning Algorithms on AWS SageMaker (Linear Learner, NASA asteroids)"
NAME_PREFIX = "asteroid-ll"
S3_ROOT = "asteroid-linear-learner"
VARIANT_NAME = "AllTraffic"
PREDICTOR_TYPES = ("regressor", "binary_classifier")
# The notebook's loss for its regressor; a binary classifier needs a classification loss (absolute_loss is
# refused for it), and logistic is what Linear Learner's "auto" picks.
LOSS_BY_PREDICTOR = {"regressor": "absolute_loss", "binary_classifier": "logistic"}
# The notebook's CreateTrainingJob hyperparameters besides predictor_type and loss.
NOTEBOOK_HYPERPARAMETERS = {"feature_dim": "32", "mini_batch_size": "100", "epochs": "10", "num_models": "32"}
TRAINING_INSTANCE_COUNT = 1  # the notebook's; the DAG's pool slots follow it
THRESHOLD = 0.5  # the notebook's classification threshold
MIN_ROWS, MAX_ROWS = 500, 100_000
DEFAULTS: dict[str, Any] = {
    "predictor_type": "regressor",
    "rows": 4687,  # the notebook's data set (4687 x 40): trains in seconds
    "seed": 0,
    "training_instance_type": "ml.c4.2xlarge",
    "endpoint_instance_type": "ml.m4.xlarge",
}
# Scoring sends the test rows as CSV in requests of at most this many rows (InvokeEndpoint takes <= 6 MB; a
# row of 32 features is < 500 bytes), so the notebook's single request stays a single request at its size.
ROWS_PER_REQUEST = 5000


class InvalidParamsError(ValueError):
    """The run's Params (or environment settings) are unusable; the message lists every problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("Invalid asteroid_linear_learner parameters: " + "; ".join(problems))


# --- plan ----------------------------------------------------------------------------------------------


def validate_params(params: Mapping[str, Any] | None) -> dict[str, Any]:
    """The Params merged over :data:`DEFAULTS` and checked; InvalidParamsError names every bad one."""
    merged = {**DEFAULTS, **dict(params or {})}
    problems = unknown_param_problems(merged, DEFAULTS)
    if merged["predictor_type"] not in PREDICTOR_TYPES:
        problems.append(f"predictor_type must be one of {list(PREDICTOR_TYPES)}, got {merged['predictor_type']!r}")
    problems += integer_problems(merged, {"rows": (MIN_ROWS, MAX_ROWS), "seed": (0, 2**32 - 1)})
    problems += instance_type_problems(merged, ("training_instance_type", "endpoint_instance_type"))
    if problems:
        raise InvalidParamsError(problems)
    return merged


def environment_settings(lookup: Callable[[str, str, str], str | None]) -> dict[str, str]:
    """Bucket and execution role ARN, each from ``lookup(variable, env_var, default)``; checked."""
    return checked_settings(lookup, InvalidParamsError)


def run_prefix(run_id: str, run_date: dt.date | str) -> str:
    """``asteroid-ll-20261123-1a2b3c``: the DAG's name prefix, the run's date, 6 hex digits of the run id."""
    return dated_run_prefix(NAME_PREFIX, run_id, run_date)


def build_plan(
    params: Mapping[str, Any] | None,
    settings: Mapping[str, str],
    run_date: dt.date | str,
    *,
    dag_id: str,
    run_id: str,
    image_uri: str,
) -> dict[str, Any]:
    """Everything the run's tasks need, validated and JSON-safe (names, S3 layout, hyperparameters)."""
    checked = validate_params(params)
    if not isinstance(image_uri, str) or "linear-learner" not in image_uri:
        raise ValueError(f"image_uri must be a linear-learner image, got {image_uri!r}")
    day = coerce_run_date(run_date)
    prefix = run_prefix(run_id, day)
    names = {
        "training_job_name": prefix,
        "model_name": prefix,
        "endpoint_config_name": sagemaker_name(prefix, "config"),
        "endpoint_name": sagemaker_name(prefix, "endpoint"),
    }
    bad = [f"{k}={v!r}" for k, v in names.items() if not is_valid_sagemaker_name(v)]
    if bad:
        raise ValueError(f"not valid SageMaker names: {bad}")
    bucket = settings["bucket"]
    root = s3_uri(bucket, f"{S3_ROOT}/{prefix}")
    predictor_type = checked["predictor_type"]
    hyperparameters = {
        **NOTEBOOK_HYPERPARAMETERS,
        "predictor_type": predictor_type,
        "loss": LOSS_BY_PREDICTOR[predictor_type],
    }
    return {
        "dag_id": dag_id,
        "run_id": run_id,
        "run_date": day.isoformat(),
        "prefix": prefix,
        **checked,
        **names,
        "variant_name": VARIANT_NAME,
        "hyperparameters": hyperparameters,
        "image_uri": image_uri,
        "bucket": bucket,
        "role_arn": settings["role_arn"],
        "channels": {"train": f"{root}/train/", "validation": f"{root}/validation/"},
        "test_uri": f"{root}/test/test.csv",
        "training_output": s3_uri(bucket, f"training-output/{S3_ROOT}/{prefix}/"),
        "report_prefix": f"{root}/reports/",
    }


def run_resources(plan: Mapping[str, Any]) -> dict[str, list[str]]:
    """What the run creates for serving, and so what its teardown deletes (the training job stays as history)."""
    return {
        "endpoints": [plan["endpoint_name"]],
        "endpoint_configs": [plan["endpoint_config_name"]],
        "models": [plan["model_name"]],
    }


def linear_learner_image_uri(region: str) -> str:
    """The Linear Learner image of ``region``, from the SageMaker SDK's own registry table, without importing it.

    ``sagemaker.core.image_uris.retrieve("linear-learner", region)`` gives the same URI but imports the SDK
    (about 10 s on a loaded 2-core worker); its table is a JSON file in the installed package, read here.
    """
    import importlib.util
    import pathlib

    spec = importlib.util.find_spec("sagemaker")  # finds the package without running its __init__
    if spec is None or not spec.submodule_search_locations:
        raise ValueError("the sagemaker package is not installed: cannot look up the Linear Learner image")
    table_path = pathlib.Path(next(iter(spec.submodule_search_locations)), "core", "image_uri_config",
                              "linear-learner.json")  # fmt: skip
    table = json.loads(table_path.read_text())
    version = table["versions"]["1"]  # the notebook's get_image_uri(region, "linear-learner") -> ":1"
    account = version["registries"].get(region)
    if account is None:
        raise ValueError(f"Linear Learner has no image in region {region!r}")
    domain = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"{account}.dkr.ecr.{region}.{domain}/{version['repository']}:1"


# --- data ----------------------------------------------------------------------------------------------


def _put(s3: Any, uri: str, body: bytes | str, content_type: str) -> None:
    bucket, key = parse_s3_uri(uri)
    s3.put_object(
        Bucket=bucket, Key=key, Body=body.encode() if isinstance(body, str) else body, ContentType=content_type
    )


def _get(s3: Any, uri: str) -> bytes:
    bucket, key = parse_s3_uri(uri)
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def np2csv(array: Any) -> str:
    """The notebook's ``np2csv``: rows as ``%g`` CSV, no header, no trailing newline."""
    import numpy as np

    buffer = io.BytesIO()
    np.savetxt(buffer, array, delimiter=",", fmt="%g")
    return buffer.getvalue().decode().rstrip()


def prepare_channels(s3: Any, plan: Mapping[str, Any]) -> dict[str, Any]:
    """The notebook's data steps: 40 raw columns -> 35 clean -> 80/10/10 split -> recordIO channels in S3.

    Train and validation go to S3 as recordIO-protobuf (``write_numpy_to_dense_tensor``, float32 features and
    labels), test as label-first CSV for scoring. Returns the shapes, split sizes, label counts and the
    training labels' median (the notebook's baseline predictor).
    """
    import numpy as np

    from include.asteroids import data as asteroids
    from include.formats import recordio

    raw = asteroids.generate(rows=plan["rows"], seed=plan["seed"])
    clean = asteroids.clean(raw)
    parts = asteroids.split(clean, seed=plan["seed"])
    arrays = {name: asteroids.features_and_labels(frame) for name, frame in parts.items()}
    empty = [name for name, (x, _) in arrays.items() if len(x) == 0]
    if empty:
        raise ValueError(f"the {plan['rows']}-row split left no rows for {empty}; raise rows")
    files = {"train": "linear_train.data", "validation": "linear_validation.data"}
    channel_objects = {}
    for channel, file_name in files.items():
        x, y = arrays[channel]
        body = io.BytesIO()
        recordio.write_numpy_to_dense_tensor(body, x.astype("float32"), y.astype("float32"))
        uri = plan["channels"][channel] + file_name
        _put(s3, uri, body.getvalue(), recordio.CONTENT_TYPE)
        channel_objects[channel] = uri
    test_x, test_y = arrays["test"]
    _put(s3, plan["test_uri"], np2csv(np.column_stack([test_y, test_x])) + "\n", "text/csv")
    train_y = arrays["train"][1]
    counts = clean["hazardous"].value_counts()
    return {
        "raw_shape": list(raw.shape),
        "clean_shape": list(clean.shape),
        "features": int(arrays["train"][0].shape[1]),
        "rows": {name: len(frame) for name, frame in parts.items()},
        "hazardous_counts": {str(bool(k)): int(v) for k, v in counts.items()},
        "train_label_median": float(np.median(train_y)),
        "channel_objects": channel_objects,
        "test_uri": plan["test_uri"],
        "seed": plan["seed"],
    }


# --- SageMaker requests --------------------------------------------------------------------------------


def training_request(plan: Mapping[str, Any]) -> dict[str, Any]:
    """The notebook's CreateTrainingJob request, with the run's names, bucket, role and predictor type."""

    def channel(name: str, distribution: str) -> dict[str, Any]:
        source = {"S3DataType": "S3Prefix", "S3Uri": plan["channels"][name], "S3DataDistributionType": distribution}
        return {
            "ChannelName": name,
            "DataSource": {"S3DataSource": source},
            "CompressionType": "None",
            "RecordWrapperType": "None",
        }

    return {
        "RoleArn": plan["role_arn"],
        "TrainingJobName": plan["training_job_name"],
        "AlgorithmSpecification": {"TrainingImage": plan["image_uri"], "TrainingInputMode": "File"},
        "ResourceConfig": {
            "InstanceCount": TRAINING_INSTANCE_COUNT,
            "InstanceType": plan["training_instance_type"],
            "VolumeSizeInGB": 10,
        },
        # No ContentType: Linear Learner's default is recordIO-protobuf, as in the notebook.
        "InputDataConfig": [channel("train", "ShardedByS3Key"), channel("validation", "FullyReplicated")],
        "OutputDataConfig": {"S3OutputPath": plan["training_output"]},
        "HyperParameters": dict(plan["hyperparameters"]),
        "StoppingCondition": {"MaxRuntimeInSeconds": 60 * 60},
        "Tags": _tags(plan),
    }


def _tags(plan: Mapping[str, Any]) -> list[dict[str, str]]:
    return [
        {"Key": "dag_id", "Value": plan["dag_id"]},
        {"Key": "run_prefix", "Value": plan["prefix"]},
        {"Key": "predictor_type", "Value": plan["predictor_type"]},
    ]


def endpoint_spec(plan: Mapping[str, Any], model_artifact: str) -> dict[str, Any]:
    """The hosting model (the training image and artifact) and the one-variant ``AllTraffic`` endpoint config."""
    if not isinstance(model_artifact, str) or not model_artifact.startswith("s3://"):
        raise ValueError(f"the training job gave no model artifact ({model_artifact!r})")
    model = {
        "ModelName": plan["model_name"],
        "ExecutionRoleArn": plan["role_arn"],
        "PrimaryContainer": {"Image": plan["image_uri"], "ModelDataUrl": model_artifact},
        "Tags": _tags(plan),
    }
    config = {
        "EndpointConfigName": plan["endpoint_config_name"],
        "ProductionVariants": [
            {
                "VariantName": VARIANT_NAME,
                "ModelName": plan["model_name"],
                "InitialInstanceCount": 1,
                "InstanceType": plan["endpoint_instance_type"],
            }
        ],
        "Tags": _tags(plan),
    }
    return {"endpoint_name": plan["endpoint_name"], "endpoint_config": config, "models": [model]}


# --- scoring and metrics -------------------------------------------------------------------------------


def _parse_predictions(body: bytes, expected: int, where: str) -> tuple[list[float], list[float] | None]:
    try:
        predictions = json.loads(body)["predictions"]
    except (ValueError, KeyError, TypeError):
        raise ValueError(f"{where}: the endpoint's answer is not Linear Learner JSON: {body[:200]!r}") from None
    if not isinstance(predictions, list) or len(predictions) != expected:
        got = len(predictions) if isinstance(predictions, list) else predictions
        raise ValueError(f"{where}: expected {expected} predictions, got {got}")
    scores = [float(p["score"]) for p in predictions]
    labels = (
        [float(p["predicted_label"]) for p in predictions] if all("predicted_label" in p for p in predictions) else None
    )
    return scores, labels


def score_test_rows(
    s3: Any, invoke: Callable[[str], bytes], plan: Mapping[str, Any], data: Mapping[str, Any]
) -> dict[str, Any]:
    """Send every test row to the endpoint as CSV (the notebook's ``np2csv`` body), keep the answers in S3.

    ``invoke(csv_body) -> response bytes`` calls InvokeEndpoint with ``ContentType=text/csv``. Returns the
    metrics (:func:`evaluate_predictions`), the request count and the predictions' URI.
    """
    import numpy as np

    table = np.loadtxt(io.StringIO(_get(s3, data["test_uri"]).decode()), delimiter=",", ndmin=2)
    test_y, test_x = table[:, 0], table[:, 1:]
    scores: list[float] = []
    labels: list[float] | None = []
    requests = 0
    for start in range(0, len(test_x), ROWS_PER_REQUEST):
        chunk = test_x[start : start + ROWS_PER_REQUEST]
        chunk_scores, chunk_labels = _parse_predictions(
            invoke(np2csv(chunk)), len(chunk), f"rows {start}..{start + len(chunk) - 1}"
        )
        requests += 1
        scores.extend(chunk_scores)
        labels = labels + chunk_labels if labels is not None and chunk_labels is not None else None
    test_pred = np.array(scores)
    metrics = evaluate_predictions(test_y, test_pred, data["train_label_median"], labels)
    predictions_uri = plan["report_prefix"] + "predictions.csv"
    columns = [test_y, test_pred] + ([np.array(labels)] if labels is not None else [])
    header = "label,score" + (",predicted_label" if labels is not None else "")
    _put(s3, predictions_uri, header + "\n" + np2csv(np.column_stack(columns)) + "\n", "text/csv")
    return {"metrics": metrics, "rows_scored": len(test_y), "requests": requests, "predictions_uri": predictions_uri}


def evaluate_predictions(
    test_y: Any, test_pred: Any, train_median: float, predicted_labels: Any = None
) -> dict[str, Any]:
    """The notebook's figures: MAE against the training median, accuracy at 0.5 against the majority class.

    The baseline predicts ``median(train_y)`` for every row: for a 0/1 label with fewer than half positives
    that is 0, the majority class, so the same baseline serves both comparisons, as in the notebook.
    """
    import numpy as np

    test_y = np.asarray(test_y, dtype=float)
    test_pred = np.asarray(test_pred, dtype=float)
    if test_y.shape != test_pred.shape or test_y.ndim != 1 or len(test_y) == 0:
        raise ValueError(f"labels {test_y.shape} and predictions {test_pred.shape} must be equal, non-empty vectors")
    test_pred_class = (test_pred > THRESHOLD) + 0
    test_pred_baseline = np.repeat(train_median, len(test_y))
    metrics: dict[str, Any] = {
        "test_rows": len(test_y),
        "test_mae_linear": float(np.mean(np.abs(test_y - test_pred))),
        "test_mae_baseline": float(np.mean(np.abs(test_y - train_median))),
        "prediction_accuracy": float(np.mean(test_y == test_pred_class) * 100),
        "baseline_accuracy": float(np.mean(test_y == test_pred_baseline) * 100),
        "threshold": THRESHOLD,
        "train_label_median": float(train_median),
        "test_positive_fraction": float(np.mean(test_y)),
    }
    if predicted_labels is not None:
        # A binary classifier also answers its own label, at the threshold it calibrated on validation data.
        metrics["predicted_label_accuracy"] = float(np.mean(test_y == np.asarray(predicted_labels, dtype=float)) * 100)
    metrics["mae_improvement_over_baseline"] = metrics["test_mae_baseline"] - metrics["test_mae_linear"]
    metrics["accuracy_gain_over_baseline"] = metrics["prediction_accuracy"] - metrics["baseline_accuracy"]
    return metrics


def notebook_lines(clean_shape: Any, metrics: Mapping[str, Any]) -> list[str]:
    """What the notebook prints, in its words and rounding, for this run's figures."""
    return [
        str(tuple(int(n) for n in clean_shape)),
        f"Test MAE Baseline : {round(metrics['test_mae_baseline'], 3)}",
        f"Test MAE Linear: {round(metrics['test_mae_linear'], 3)}",
        f"Prediction Accuracy: {round(metrics['prediction_accuracy'], 1)} %",
        f"Baseline Accuracy: {round(metrics['baseline_accuracy'], 1)} %",
    ]


# --- the report ----------------------------------------------------------------------------------------


def render_predictions_png(labels: Any, scores: Any, metrics: Mapping[str, Any], title: str) -> bytes:
    """PNG: each test row's score against its label (jittered), and the scores' histogram per class."""
    # The Agg canvas bound to one Figure, not pyplot: no display, no global state in a long-lived worker.
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    labels = np.asarray(labels, dtype=float)
    scores = np.asarray(scores, dtype=float)
    figure = Figure(figsize=(11, 4.5), dpi=100)
    FigureCanvasAgg(figure)
    scatter, histogram = figure.subplots(1, 2)
    jitter = np.random.default_rng(0).uniform(-0.12, 0.12, len(labels))
    hazardous = labels == 1
    scatter.scatter(labels[~hazardous] + jitter[~hazardous], scores[~hazardous], s=8, alpha=0.5, label="not hazardous")
    scatter.scatter(labels[hazardous] + jitter[hazardous], scores[hazardous], s=8, alpha=0.5, label="hazardous")
    scatter.axhline(THRESHOLD, color="black", linestyle="--", linewidth=1, label=f"threshold {THRESHOLD}")
    scatter.axhline(metrics["train_label_median"], color="grey", linestyle=":", linewidth=1, label="median baseline")
    scatter.set_xticks([0, 1], ["0", "1"])
    scatter.set_xlabel("label (hazardous)")
    scatter.set_ylabel("predicted score")
    scatter.set_title(
        f"MAE {metrics['test_mae_linear']:.3f} vs baseline {metrics['test_mae_baseline']:.3f}", fontsize=10
    )
    scatter.legend(fontsize=8, loc="best")
    bins = np.linspace(min(scores.min(), 0.0), max(scores.max(), 1.0), 30)
    histogram.hist(scores[~hazardous], bins=bins, alpha=0.6, label="not hazardous")
    histogram.hist(scores[hazardous], bins=bins, alpha=0.6, label="hazardous")
    histogram.axvline(THRESHOLD, color="black", linestyle="--", linewidth=1)
    histogram.set_xlabel("predicted score")
    histogram.set_ylabel("test rows")
    histogram.set_title(
        f"accuracy at {THRESHOLD}: {metrics['prediction_accuracy']:.1f} % vs majority "
        f"{metrics['baseline_accuracy']:.1f} %",
        fontsize=10,
    )
    histogram.legend(fontsize=8)
    figure.suptitle(title, fontsize=11)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def build_report(
    plan: Mapping[str, Any],
    *,
    data: Mapping[str, Any],
    training: Mapping[str, Any],
    deployment: Mapping[str, Any],
    scoring: Mapping[str, Any],
) -> dict[str, Any]:
    """The run's JSON report: data, the training job, the endpoint, the figures and the notebook's lines."""
    metrics = scoring["metrics"]
    return {
        "notebook": NOTEBOOK,
        "dag_id": plan["dag_id"],
        "run_id": plan["run_id"],
        "run_date": plan["run_date"],
        "predictor_type": plan["predictor_type"],
        "params": {key: plan[key] for key in DEFAULTS},
        "data": dict(data),
        "training": {
            "job_name": training.get("job_name"),
            "hyperparameters": dict(plan["hyperparameters"]),
            "instance_type": plan["training_instance_type"],
            "instance_count": TRAINING_INSTANCE_COUNT,
            "final_metrics": training.get("metrics", {}),
            "billable_seconds": training.get("billable_seconds"),
            "model_artifact": training.get("model_artifact"),
        },
        "endpoint": {
            "endpoint_name": plan["endpoint_name"],
            "endpoint_config_name": plan["endpoint_config_name"],
            "model_name": plan["model_name"],
            "variant_name": VARIANT_NAME,
            "instance_type": plan["endpoint_instance_type"],
            "operation": deployment.get("operation"),
        },
        "scoring": {
            "content_type": "text/csv",
            "rows_scored": scoring["rows_scored"],
            "requests": scoring["requests"],
            "predictions_uri": scoring["predictions_uri"],
        },
        "metrics": dict(metrics),
        "notebook_lines": notebook_lines(data["clean_shape"], metrics),
        "notebook_printed": [
            "(4687, 35)",
            "Test MAE Baseline : 0.18",
            "Test MAE Linear: 0.181",
            "Prediction Accuracy: 82.0 %",
            "Baseline Accuracy: 82.0 %",
        ],
    }


def write_report(s3: Any, plan: Mapping[str, Any], report: Mapping[str, Any]) -> dict[str, str]:
    """Store the report as JSON and the predictions-vs-labels plot as PNG next to it; their URIs."""
    import numpy as np

    table = np.loadtxt(io.StringIO(_get(s3, report["scoring"]["predictions_uri"]).decode()), delimiter=",",
                       skiprows=1, ndmin=2)  # fmt: skip
    title = f"{plan['prefix']}: Linear Learner {plan['predictor_type']} on {report['metrics']['test_rows']} test rows"
    uris = {"json": f"{plan['report_prefix']}report.json", "png": f"{plan['report_prefix']}predictions.png"}
    _put(s3, uris["png"], render_predictions_png(table[:, 0], table[:, 1], report["metrics"], title), "image/png")
    _put(s3, uris["json"], json.dumps({**report, "report_uris": uris}, indent=2, sort_keys=True), "application/json")
    return uris


def summary_text(report: Mapping[str, Any]) -> str:
    """The task log's summary: the notebook's printed lines for this run, then the comparison in words."""
    metrics = report["metrics"]
    mae_verdict = "better than" if metrics["mae_improvement_over_baseline"] > 0 else "no better than"
    acc_verdict = "above" if metrics["accuracy_gain_over_baseline"] > 0 else "not above"
    lines = [
        f"asteroid_linear_learner {report['run_date']} ({report['predictor_type']}, job {report['training']['job_name']}, "
        f"endpoint {report['endpoint']['endpoint_name']} variant {report['endpoint']['variant_name']}):",
        *(f"  {line}" for line in report["notebook_lines"]),
        f"  MAE {metrics['test_mae_linear']:.4f} is {mae_verdict} the median baseline {metrics['test_mae_baseline']:.4f}; "
        f"accuracy at {metrics['threshold']} {metrics['prediction_accuracy']:.1f} % is {acc_verdict} the majority "
        f"baseline {metrics['baseline_accuracy']:.1f} % ({report['scoring']['rows_scored']} test rows, "
        f"{report['scoring']['requests']} CSV request(s)).",
    ]
    if "predicted_label_accuracy" in metrics:
        lines.append(f"  The classifier's own predicted_label: {metrics['predicted_label_accuracy']:.1f} % accurate.")
    lines.append(f"  The notebook printed: {'; '.join(report['notebook_printed'])}")
    return "\n".join(lines)
