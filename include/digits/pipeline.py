"""The logic behind ``digits_xgboost_multiclass``'s tasks: plan, libsvm upload, requests, scoring, report.

Nothing here imports Airflow: the DAG's tasks read the context, then call these functions with plain values
and boto3 clients. numpy and matplotlib are imported inside the functions that need them, so this module is
cheap to import at DAG parse time.

Names of one run share a prefix made of ``digits-xgb``, the run's date and a hash of the run id
(``digits-xgb-20261123-1a2b3c``): a retried task computes the same names, two runs of one date never collide.
S3 layout (all under the bucket)::

    digits-xgboost/<prefix>/{train,validation,test}/examples0..4     libsvm, the notebook's layout
    digits-xgboost/<prefix>/reports/{predictions.csv,report.json,confusion.png}
    training-output/digits-xgboost/<prefix>/xgboost-single/<job>/output/model.tar.gz
    training-output/digits-xgboost/<prefix>/xgboost-distributed/<job>/output/model.tar.gz
    training-output/digits-xgboost/<prefix>/transform/examples0..4.out   the batch transform's answers
"""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Callable, Mapping
from typing import Any

from include.digits import data as digits
from include.project_settings import (
    checked_settings,
    dated_run_prefix,
    instance_type_problems,
    integer_problems,
    unknown_param_problems,
)
from sagemaker_fleet.utils.naming import coerce_run_date, is_valid_sagemaker_name, sagemaker_name
from sagemaker_fleet.utils.s3 import parse_s3_uri, s3_uri

NOTEBOOK = "seed 003: XGBoost multiclass classification on MNIST (single vs distributed training, libsvm)"
NAME_PREFIX = "digits-xgb"
S3_ROOT = "digits-xgboost"
VARIANT_NAME = "AllTraffic"
LIBSVM = "text/x-libsvm"
JOBS = ("single", "distributed")
# Instances per job: the notebook's single machine, and two machines sharing the 5 parts (3 + 2).
INSTANCE_COUNTS = {"single": 1, "distributed": 2}
# Images that take the notebook's job as it is and answer as it parses: ``silent`` is a hyperparameter up to
# 1.0-1 (xgboost 1.2 dropped it), and answers are comma-joined (``result.split(',')``) up to 1.2-1. "1" is the
# notebook's own ``get_image_uri(region, 'xgboost')``: the legacy XGBoost 0.72 container.
IMAGE_VERSIONS = ("1", "0.90-1", "0.90-2", "1.0-1")
# The notebook's common_training_params hyperparameters, besides num_round (a Param, the notebook's 10).
NOTEBOOK_HYPERPARAMETERS = {
    "max_depth": "5",
    "eta": "0.2",
    "gamma": "4",
    "min_child_weight": "6",
    "silent": "0",
    "objective": "multi:softmax",
    "num_class": str(digits.NUM_CLASSES),
}
DEFAULTS: dict[str, Any] = {
    "image_version": "1",
    "num_round": 10,
    "batch_size": 100,
    "seed": 0,
    "training_instance_type": "ml.m4.10xlarge",
    "endpoint_instance_type": "ml.m4.xlarge",
    "batch_transform": True,
}
LIMITS = {"num_round": (1, 500), "batch_size": (1, 1000), "seed": (0, 2**32 - 1)}


class InvalidParamsError(ValueError):
    """The run's Params (or environment settings) are unusable; the message lists every problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("Invalid digits_xgboost_multiclass parameters: " + "; ".join(problems))


# --- plan ----------------------------------------------------------------------------------------------


def validate_params(params: Mapping[str, Any] | None, image_versions: tuple[str, ...] = IMAGE_VERSIONS) -> dict:
    """The Params merged over :data:`DEFAULTS` and checked; InvalidParamsError names every bad one."""
    merged = {**DEFAULTS, **{k: v for k, v in dict(params or {}).items() if v is not None}}
    problems = unknown_param_problems(merged, DEFAULTS)
    if merged["image_version"] not in image_versions:
        problems.append(
            f"image_version must be one of {list(image_versions)} (images that take the notebook's 'silent' and "
            f"answer comma-joined, as the notebook parses), got {merged['image_version']!r}"
        )
    problems += integer_problems(merged, LIMITS)
    problems += instance_type_problems(merged, ("training_instance_type", "endpoint_instance_type"))
    if not isinstance(merged["batch_transform"], bool):
        problems.append(f"batch_transform must be true or false, got {merged['batch_transform']!r}")
    if problems:
        raise InvalidParamsError(problems)
    return merged


def environment_settings(lookup: Callable[[str, str, str], str | None]) -> dict[str, str]:
    """Bucket and execution role ARN, each from ``lookup(variable, env_var, default)``; checked."""
    return checked_settings(lookup, InvalidParamsError)


def run_prefix(run_id: str, run_date: dt.date | str) -> str:
    """``digits-xgb-20261123-1a2b3c``: the DAG's name prefix, the run's date, 6 hex digits of the run id."""
    return dated_run_prefix(NAME_PREFIX, run_id, run_date)


def build_plan(
    params: Mapping[str, Any] | None,
    settings: Mapping[str, str],
    run_date: dt.date | str,
    *,
    dag_id: str,
    run_id: str,
    image_uri: str,
    image_versions: tuple[str, ...] = IMAGE_VERSIONS,
) -> dict[str, Any]:
    """Everything the run's tasks need, validated and JSON-safe (names, S3 layout, hyperparameters)."""
    checked = validate_params(params, image_versions)
    if not isinstance(image_uri, str) or "xgboost" not in image_uri:
        raise ValueError(f"image_uri must be an XGBoost image, got {image_uri!r}")
    day = coerce_run_date(run_date)
    prefix = run_prefix(run_id, day)
    names = {
        "single_job_name": sagemaker_name(prefix, "single"),
        "distributed_job_name": sagemaker_name(prefix, "distrib"),
        "model_name": sagemaker_name(prefix, "distrib", "mod"),
        "endpoint_config_name": sagemaker_name(prefix, "config"),
        "endpoint_name": sagemaker_name(prefix, "endpoint"),
        "transform_job_name": sagemaker_name(prefix, "transform"),
    }
    bad = [f"{k}={v!r}" for k, v in names.items() if not is_valid_sagemaker_name(v)]
    if bad:
        raise ValueError(f"not valid SageMaker names: {bad}")
    bucket = settings["bucket"]
    root = f"{S3_ROOT}/{prefix}"
    output_root = f"training-output/{S3_ROOT}/{prefix}"
    return {
        "dag_id": dag_id,
        "run_id": run_id,
        "run_date": day.isoformat(),
        "prefix": prefix,
        **checked,
        **names,
        "variant_name": VARIANT_NAME,
        "hyperparameters": {**NOTEBOOK_HYPERPARAMETERS, "num_round": str(checked["num_round"])},
        "image_uri": image_uri,
        "bucket": bucket,
        "role_arn": settings["role_arn"],
        "data_prefix": root,
        "channels": {split: s3_uri(bucket, f"{root}/{split}/") for split in digits.SPLITS},
        "outputs": {
            "single": s3_uri(bucket, f"{output_root}/xgboost-single/"),
            "distributed": s3_uri(bucket, f"{output_root}/xgboost-distributed/"),
        },
        "transform_output": s3_uri(bucket, f"{output_root}/transform/"),
        "report_prefix": s3_uri(bucket, f"{root}/reports/"),
    }


def run_resources(plan: Mapping[str, Any]) -> dict[str, list[str]]:
    """What the run creates for serving, and so what its teardown deletes (jobs stay as history)."""
    return {
        "endpoints": [plan["endpoint_name"]],
        "endpoint_configs": [plan["endpoint_config_name"]],
        "models": [plan["model_name"]],
    }


# --- data ----------------------------------------------------------------------------------------------


def _put(s3: Any, uri: str, body: bytes | str, content_type: str) -> None:
    bucket, key = parse_s3_uri(uri)
    s3.put_object(
        Bucket=bucket, Key=key, Body=body.encode() if isinstance(body, str) else body, ContentType=content_type
    )


def _get(s3: Any, uri: str) -> bytes:
    bucket, key = parse_s3_uri(uri)
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def upload_data(s3: Any, plan: Mapping[str, Any]) -> dict[str, Any]:
    """The notebook's ``convert_data``: each split as five libsvm parts ``examples0..4``; rows per split."""
    splits = digits.load_splits(plan["seed"])
    objects = {}
    for name, split in splits.items():
        for key, body in zip(digits.object_keys(plan["data_prefix"], name), digits.libsvm_parts(split), strict=True):
            _put(s3, s3_uri(plan["bucket"], key), body, LIBSVM)
            objects.setdefault(name, []).append(s3_uri(plan["bucket"], key))
    return {
        "rows": {name: int(len(split.labels)) for name, split in splits.items()},
        "parts": digits.PARTS,
        "features": digits.NUM_FEATURES,
        "objects": objects,
        "seed": plan["seed"],
    }


# --- SageMaker requests --------------------------------------------------------------------------------


def training_request(plan: Mapping[str, Any], job: str) -> dict[str, Any]:
    """The notebook's CreateTrainingJob for ``single`` or ``distributed`` (2 instances, ShardedByS3Key)."""
    if job not in JOBS:
        raise ValueError(f"job must be one of {JOBS}, got {job!r}")
    distribution = "ShardedByS3Key" if job == "distributed" else "FullyReplicated"

    def channel(name: str) -> dict[str, Any]:
        source = {"S3DataType": "S3Prefix", "S3Uri": plan["channels"][name], "S3DataDistributionType": distribution}
        return {"ChannelName": name, "DataSource": {"S3DataSource": source}, "ContentType": "libsvm",
                "CompressionType": "None"}  # fmt: skip

    return {
        "TrainingJobName": plan[f"{job}_job_name"],
        "AlgorithmSpecification": {"TrainingImage": plan["image_uri"], "TrainingInputMode": "File"},
        "RoleArn": plan["role_arn"],
        "OutputDataConfig": {"S3OutputPath": plan["outputs"][job]},
        "ResourceConfig": {
            "InstanceCount": INSTANCE_COUNTS[job],
            "InstanceType": plan["training_instance_type"],
            "VolumeSizeInGB": 5,
        },
        "HyperParameters": dict(plan["hyperparameters"]),
        "StoppingCondition": {"MaxRuntimeInSeconds": 86400},
        "InputDataConfig": [channel("train"), channel("validation")],
        "Tags": _tags(plan, job),
    }


def _tags(plan: Mapping[str, Any], job: str | None = None) -> list[dict[str, str]]:
    tags = [{"Key": "dag_id", "Value": plan["dag_id"]}, {"Key": "run_prefix", "Value": plan["prefix"]}]
    if job:
        tags.append({"Key": "training", "Value": job})
    return tags


def endpoint_spec(plan: Mapping[str, Any], model_artifact: str) -> dict[str, Any]:
    """The distributed job's hosting model and the one-variant ``AllTraffic`` endpoint config."""
    if not isinstance(model_artifact, str) or not model_artifact.startswith("s3://"):
        raise ValueError(f"the distributed training job gave no model artifact ({model_artifact!r})")
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
                "InitialVariantWeight": 1,
            }
        ],
        "Tags": _tags(plan),
    }
    return {"endpoint_name": plan["endpoint_name"], "endpoint_config": config, "models": [model]}


def transform_request(plan: Mapping[str, Any]) -> dict[str, Any]:
    """CreateTransformJob: every test part through the hosted model, line by line, in batches.

    ``SplitType Line`` + ``MultiRecord`` hands the container several rows per request, as the endpoint gets
    them; ``AssembleWith Line`` puts each request's answer on its own line of ``examples<i>.out``.
    """
    return {
        "TransformJobName": plan["transform_job_name"],
        "ModelName": plan["model_name"],
        "BatchStrategy": "MultiRecord",
        "MaxPayloadInMB": 6,
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": plan["channels"]["test"]}},
            "ContentType": LIBSVM,
            "CompressionType": "None",
            "SplitType": "Line",
        },
        "TransformOutput": {"S3OutputPath": plan["transform_output"], "AssembleWith": "Line"},
        "TransformResources": {"InstanceType": plan["endpoint_instance_type"], "InstanceCount": 1},
        "Tags": _tags(plan),
    }


# --- scoring -------------------------------------------------------------------------------------------


def read_test_lines(s3: Any, plan: Mapping[str, Any]) -> list[str]:
    """Every test row as its libsvm line, parts in order (examples0 first, as the notebook reads them)."""
    lines: list[str] = []
    for i in range(digits.PARTS):
        body = _get(s3, f"{plan['channels']['test']}examples{i}").decode("utf-8").strip()
        lines.extend(line for line in body.split("\n") if line.strip())
    if not lines:
        raise ValueError(f"no test rows under {plan['channels']['test']}")
    return lines


def parse_answer(result: str, where: str) -> list[float]:
    """The notebook's ``[float(num) for num in result.split(',')]``, with an error naming the request."""
    try:
        return [float(num) for num in result.split(",")]
    except ValueError:
        raise ValueError(
            f"{where}: the answer is not comma-joined numbers (the notebook's format): {result[:200]!r}"
        ) from None


def score_endpoint(invoke: Callable[[str], str], lines: list[str], batch_size: int) -> dict[str, Any]:
    """The notebook's evaluation: one libsvm row alone, then every row in batches; labels and predictions.

    ``invoke(libsvm_body) -> decoded answer`` calls InvokeEndpoint with ``text/x-libsvm``.
    """
    labels = [float(line.split(" ")[0]) for line in lines]
    single = parse_answer(invoke(lines[0]), "the single prediction")
    if len(single) != 1:
        raise ValueError(f"the single prediction answered {len(single)} numbers")
    predictions: list[float] = []
    requests = 0
    for offset in range(0, len(lines), batch_size):
        batch = lines[offset : offset + batch_size]
        answer = parse_answer(invoke("\n".join(batch)), f"rows {offset}..{offset + len(batch) - 1}")
        if len(answer) != len(batch):
            raise ValueError(f"rows {offset}..{offset + len(batch) - 1}: {len(answer)} predictions for {len(batch)}")
        predictions.extend(answer)
        requests += 1
    return {
        "single_prediction": {"label": labels[0], "predicted": single[0]},
        "labels": labels,
        "predictions": predictions,
        "requests": requests,
        "batch_size": batch_size,
    }


def transform_predictions(s3: Any, plan: Mapping[str, Any], expected_rows: int) -> list[float]:
    """The batch transform's answers (``examples<i>.out`` in part order), one number per test row."""
    predictions: list[float] = []
    for i in range(digits.PARTS):
        uri = f"{plan['transform_output']}examples{i}.out"
        text = _get(s3, uri).decode("utf-8")
        # Each mini-batch's answer is comma-joined; AssembleWith Line puts answers on separate lines.
        for number, line in enumerate(part for part in text.splitlines() if part.strip()):
            predictions.extend(parse_answer(line.strip().rstrip(","), f"{uri} line {number + 1}"))
    if len(predictions) != expected_rows:
        raise ValueError(f"the batch transform answered {len(predictions)} predictions for {expected_rows} test rows")
    return predictions


def error_rate(predictions: Any, labels: Any) -> tuple[float, list[list[int]]]:
    """The notebook's ``error_rate``: percent wrong, and confusions[predicted][actual] (10 x 10)."""
    import numpy as np

    predictions = np.asarray(predictions, dtype=float)
    labels = np.asarray(labels, dtype=float)
    if predictions.shape != labels.shape or predictions.ndim != 1 or len(labels) == 0:
        raise ValueError(f"predictions {predictions.shape} and labels {labels.shape} must be equal, non-empty")
    classes = digits.NUM_CLASSES
    bad = [p for p in predictions if not (p == int(p) and 0 <= p < classes)]
    if bad:
        raise ValueError(f"predictions outside the classes 0..{classes - 1}: {bad[:5]}")
    correct = int(np.sum(predictions == labels))
    error = 100.0 - 100.0 * correct / len(labels)
    confusions = np.zeros((classes, classes), dtype=np.int64)
    for predicted, actual in zip(predictions.astype(int), labels.astype(int), strict=True):
        confusions[predicted, actual] += 1
    return float(error), confusions.tolist()


# --- the report ----------------------------------------------------------------------------------------


def render_confusion_png(confusions: list[list[int]], title: str) -> bytes:
    """The notebook's heat map: predicted (rows) against actual (columns), counts written in the cells."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    matrix = np.asarray(confusions)
    figure = Figure(figsize=(6.5, 6), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.subplots()
    image = axes.imshow(matrix, cmap="jet", interpolation="nearest")
    figure.colorbar(image, ax=axes, fraction=0.046)
    axes.set_xlabel("Actual")
    axes.set_ylabel("Predicted")
    axes.set_xticks(range(matrix.shape[1]))
    axes.set_yticks(range(matrix.shape[0]))
    for i, row in enumerate(matrix):
        for j, count in enumerate(row):
            if count > 0:
                axes.text(j, i, str(int(count)), ha="center", va="center", fontsize=9, color="white")
    axes.set_title(title, fontsize=10)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _job_summary(plan: Mapping[str, Any], job: str, trained: Mapping[str, Any]) -> dict[str, Any]:
    metrics = trained.get("metrics") or {}
    merror = metrics.get("validation:merror")
    return {
        "job_name": trained.get("job_name"),
        "instance_count": INSTANCE_COUNTS[job],
        "train_distribution": "ShardedByS3Key" if job == "distributed" else "FullyReplicated",
        "billable_seconds": trained.get("billable_seconds"),
        "validation_merror": merror,
        "validation_accuracy": None if merror is None else round(1.0 - float(merror), 6),
        "final_metrics": dict(metrics),
        "model_artifact": trained.get("model_artifact"),
    }


def build_report(
    plan: Mapping[str, Any],
    *,
    data: Mapping[str, Any],
    training: Mapping[str, Mapping[str, Any]],
    scoring: Mapping[str, Any],
    transform: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The run's JSON report: data, both jobs side by side, the endpoint's and the transform's figures."""
    error, confusions = error_rate(scoring["predictions"], scoring["labels"])
    report: dict[str, Any] = {
        "notebook": NOTEBOOK,
        "dag_id": plan["dag_id"],
        "run_id": plan["run_id"],
        "run_date": plan["run_date"],
        "params": {key: plan[key] for key in DEFAULTS},
        "image_uri": plan["image_uri"],
        "hyperparameters": dict(plan["hyperparameters"]),
        "data": dict(data),
        "jobs": {job: _job_summary(plan, job, training[job]) for job in JOBS},
        "endpoint": {
            "endpoint_name": plan["endpoint_name"],
            "endpoint_config_name": plan["endpoint_config_name"],
            "model_name": plan["model_name"],
            "variant_name": VARIANT_NAME,
            "hosted_job": plan["distributed_job_name"],
            "single_prediction": scoring["single_prediction"],
            "requests": scoring["requests"],
            "batch_size": scoring["batch_size"],
            "test_rows": len(scoring["labels"]),
            "error_rate_percent": error,
            "accuracy": 1.0 - error / 100.0,
            "first_predictions": scoring["predictions"][:10],
            "first_labels": scoring["labels"][:10],
        },
        "confusion_matrix": {"rows": "predicted", "columns": "actual", "counts": confusions},
    }
    if transform is not None:
        transform_error, _ = error_rate(transform["predictions"], scoring["labels"])
        differing = [i for i, (a, b) in enumerate(zip(transform["predictions"], scoring["predictions"], strict=True))
                     if a != b]  # fmt: skip
        report["transform"] = {
            "job_name": transform.get("job_name"),
            "output": plan["transform_output"],
            "test_rows": len(transform["predictions"]),
            "error_rate_percent": transform_error,
            "matches_endpoint": transform_error == error and not differing,
            "rows_differing_from_endpoint": differing[:20],
        }
    report["notebook_lines"] = [
        f"Predicted label is {scoring['single_prediction']['predicted']}.",
        "error rate=%f" % (error / 100.0),
        f"Test error: {error:.1f}%",
    ]
    return report


def write_report(s3: Any, plan: Mapping[str, Any], report: Mapping[str, Any], scoring: Mapping[str, Any]) -> dict:
    """Store the predictions (CSV), the report (JSON) and the confusion heat map (PNG); their URIs."""
    uris = {
        "json": f"{plan['report_prefix']}report.json",
        "png": f"{plan['report_prefix']}confusion.png",
        "predictions": f"{plan['report_prefix']}predictions.csv",
    }
    rows = "\n".join(f"{int(lab)},{int(pred)}" for lab, pred in zip(scoring["labels"], scoring["predictions"],
                                                                    strict=True))  # fmt: skip
    _put(s3, uris["predictions"], "label,predicted\n" + rows + "\n", "text/csv")
    endpoint = report["endpoint"]
    title = (
        f"{plan['prefix']}: {endpoint['hosted_job']}, {endpoint['test_rows']} test rows, "
        f"error {endpoint['error_rate_percent']:.1f}%"
    )
    _put(s3, uris["png"], render_confusion_png(report["confusion_matrix"]["counts"], title), "image/png")
    _put(s3, uris["json"], json.dumps({**report, "report_uris": uris}, indent=2, sort_keys=True), "application/json")
    return uris


def summary_text(report: Mapping[str, Any]) -> str:
    """The task log's summary: the two jobs side by side, then the endpoint's and the transform's figures."""
    lines = [f"digits_xgboost_multiclass {report['run_date']} ({report['image_uri']}):"]
    lines.append(f"  {'job':<12} {'instances':>9} {'billable s':>10} {'validation accuracy':>20}")
    for job, summary in report["jobs"].items():
        accuracy = summary["validation_accuracy"]
        shown = "n/a" if accuracy is None else f"{accuracy:.4f}"
        lines.append(f"  {job:<12} {summary['instance_count']:>9} {summary['billable_seconds']!s:>10} {shown:>20}")
    endpoint = report["endpoint"]
    lines += [f"  {line}" for line in report["notebook_lines"]]
    lines.append(
        f"  Endpoint {endpoint['endpoint_name']} ({endpoint['hosted_job']}): {endpoint['test_rows']} test rows in "
        f"{endpoint['requests']} batch(es) of <= {endpoint['batch_size']}, accuracy {endpoint['accuracy']:.4f}"
    )
    if "transform" in report:
        transform = report["transform"]
        same = "equal to" if transform["matches_endpoint"] else "DIFFERENT from"
        lines.append(
            f"  Batch transform {transform['job_name']}: error rate {transform['error_rate_percent']:.4f}% on "
            f"{transform['test_rows']} rows, {same} the endpoint's {endpoint['error_rate_percent']:.4f}%"
        )
    return "\n".join(lines)
