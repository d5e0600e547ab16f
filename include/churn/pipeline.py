"""The logic behind ``churn_processing_pipeline``'s tasks: plan, inputs, requests, scoring, evaluation, report.

Nothing here imports Airflow: the DAG's tasks read the context, then call these functions with plain values
and boto3 clients. numpy, pandas, scikit-learn and matplotlib are imported inside the functions that need them,
so this module is cheap to import at DAG parse time.

Names of one run share a prefix made of ``churn``, the run's date and a hash of the run id
(``churn-20261123-1a2b3c``): a retried task computes the same names, and two runs of one date never collide.
S3 layout (all under the bucket)::

    churn-processing-pipeline/<prefix>/raw/raw_churn.csv                   the notebook's input file
    churn-processing-pipeline/<prefix>/code/preprocessing.py               the processing job's script
    churn-processing-pipeline/<prefix>/code/sourcedir.tar.gz               sklearn_rf.py, as the SDK packs it
    churn-processing-pipeline/<prefix>/processing/{train/train.csv,test/test.csv}   label-first, no header
    churn-processing-pipeline/<prefix>/transform/<model>/test.csv.out     label,score per test row
    churn-processing-pipeline/<prefix>/reports/{report.json,roc_curves.png}
    training-output/churn-processing-pipeline/<prefix>/<job>/output/model.tar.gz
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import tarfile
from collections.abc import Callable, Mapping
from pathlib import Path
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
    "MODELS",
    "NOTEBOOK",
    "InvalidParamsError",
    "build_plan",
    "build_report",
    "choose_winner",
    "endpoint_spec",
    "environment_settings",
    "evaluate_scores",
    "model_request",
    "processing_request",
    "read_transform_scores",
    "render_roc_png",
    "run_prefix",
    "run_resources",
    "smoke_test",
    "summary_text",
    "training_requests",
    "transform_request",
    "upload_inputs",
    "validate_params",
    "write_report",
]

NOTEBOOK = "seed 004: [ProdML] Amazon SageMaker Part I: Overview, SageMaker Studio, and Model Training"
NAME_PREFIX = "churn"
S3_ROOT = "churn-processing-pipeline"
SCRIPTS_DIR = Path(__file__).resolve().parent / "scripts"
PREPROCESSING_SCRIPT = "preprocessing.py"
TRAINING_SCRIPT = "sklearn_rf.py"
XGBOOST_VERSION = "0.90-2"  # the notebook's get_image_uri(region, "xgboost", repo_version="0.90-2")
# The notebook's SKLearnProcessor ran framework 0.20.0; its modernised scripts need scikit-learn >= 1.2.
SKLEARN_VERSION = "1.2-1"
# The notebook's set_hyperparameters, as strings (CreateTrainingJob takes strings).
XGBOOST_HYPERPARAMETERS = {
    "max_depth": "5",
    "subsample": "0.8",
    "num_round": "600",
    "eta": "0.2",
    "gamma": "4",
    "min_child_weight": "6",
    "silent": "0",
    "objective": "binary:logistic",
}
MODELS = ("xgboost", "random_forest")  # report keys; also the order of the ROC legend
MODEL_LABELS = {"xgboost": f"built-in XGBoost {XGBOOST_VERSION}", "random_forest": "scikit-learn RandomForest"}
MODEL_SUFFIX = {"xgboost": "xgb", "random_forest": "rf"}
THRESHOLD = 0.5
VARIANT_NAME = "AllTraffic"
SMOKE_TEST_ROWS = 5
MIN_ROWS, MAX_ROWS = 500, 100_000
MIN_SPLIT, MAX_SPLIT = 0.1, 0.5
MIN_TREES, MAX_TREES = 1, 1000
DEFAULTS: dict[str, Any] = {
    "rows": 3333,  # the notebook's churn data: 3,333 customers
    "seed": 0,
    "train_test_split_ratio": 0.2,  # the notebook's sklearn_processor.run(arguments=[..., "0.2"])
    "n_estimators": 50,  # the notebook's SKLearn(hyperparameters={"n_estimators": 50})
    "deploy_best": True,
    "keep_endpoint": False,
    "processing_instance_type": "ml.m4.xlarge",
    "xgboost_instance_type": "ml.m4.xlarge",
    "sklearn_instance_type": "ml.c4.xlarge",
    "transform_instance_type": "ml.m4.xlarge",
    "endpoint_instance_type": "ml.m4.xlarge",
}
INSTANCE_PARAMS = [name for name in DEFAULTS if name.endswith("_instance_type")]
TRAINING_INSTANCE_COUNT = 1  # both jobs, as in the notebook; the DAG's pool slots follow it

_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")


class InvalidParamsError(ValueError):
    """The run's Params (or environment settings) are unusable; the message lists every problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("Invalid churn_processing_pipeline parameters: " + "; ".join(problems))


# --- plan ----------------------------------------------------------------------------------------------


def validate_params(params: Mapping[str, Any] | None) -> dict[str, Any]:
    """The Params merged over :data:`DEFAULTS` and checked; InvalidParamsError names every bad one."""
    merged = {**DEFAULTS, **dict(params or {})}
    problems = unknown_param_problems(merged, DEFAULTS)
    limits = {"rows": (MIN_ROWS, MAX_ROWS), "seed": (0, 2**32 - 1), "n_estimators": (MIN_TREES, MAX_TREES)}
    problems += integer_problems(merged, limits)
    ratio = merged["train_test_split_ratio"]
    if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not MIN_SPLIT <= ratio <= MAX_SPLIT:
        problems.append(f"train_test_split_ratio must be a number from {MIN_SPLIT} to {MAX_SPLIT}, got {ratio!r}")
    else:
        merged["train_test_split_ratio"] = float(ratio)
    for name in ("deploy_best", "keep_endpoint"):
        if not isinstance(merged[name], bool):
            problems.append(f"{name} must be true or false, got {merged[name]!r}")
    if merged["keep_endpoint"] is True and merged["deploy_best"] is False:
        problems.append("keep_endpoint needs deploy_best: there is no endpoint to keep")
    problems += instance_type_problems(merged, INSTANCE_PARAMS)
    if problems:
        raise InvalidParamsError(problems)
    return merged


def environment_settings(lookup: Callable[[str, str, str], str | None]) -> dict[str, str]:
    """Bucket and execution role ARN, each from ``lookup(variable, env_var, default)``; checked."""
    return checked_settings(lookup, InvalidParamsError)


def run_prefix(run_id: str, run_date: dt.date | str) -> str:
    """``churn-20261123-1a2b3c``: the DAG's name prefix, the run's date, 6 hex digits of the run id."""
    return dated_run_prefix(NAME_PREFIX, run_id, run_date)


def build_plan(
    params: Mapping[str, Any] | None,
    settings: Mapping[str, str],
    run_date: dt.date | str,
    *,
    dag_id: str,
    run_id: str,
    region: str,
) -> dict[str, Any]:
    """Everything the run's tasks need, validated and JSON-safe (names, images, S3 layout)."""
    from include.sagemaker_images import image_uri

    checked = validate_params(params)
    if not isinstance(region, str) or not _REGION.match(region):
        raise ValueError(f"region must be an AWS region such as us-east-1, got {region!r}")
    day = coerce_run_date(run_date)
    prefix = run_prefix(run_id, day)
    names = {
        "processing_job_name": sagemaker_name(prefix, "preprocessing"),
        "training_job_names": {key: sagemaker_name(prefix, MODEL_SUFFIX[key]) for key in MODELS},
        "model_names": {key: sagemaker_name(prefix, MODEL_SUFFIX[key]) for key in MODELS},
        "transform_job_names": {key: sagemaker_name(prefix, MODEL_SUFFIX[key]) for key in MODELS},
        "endpoint_config_name": sagemaker_name(prefix, "config"),
        "endpoint_name": sagemaker_name(prefix, "endpoint"),
    }
    flat = [names["processing_job_name"], names["endpoint_config_name"], names["endpoint_name"]]
    flat += [
        name for key in ("training_job_names", "model_names", "transform_job_names") for name in names[key].values()
    ]
    bad = [name for name in flat if not is_valid_sagemaker_name(name)]
    if bad:
        raise ValueError(f"not valid SageMaker names: {bad}")
    bucket = settings["bucket"]
    root = s3_uri(bucket, f"{S3_ROOT}/{prefix}")
    return {
        "dag_id": dag_id,
        "run_id": run_id,
        "run_date": day.isoformat(),
        "prefix": prefix,
        "region": region,
        **checked,
        **names,
        "images": {
            "xgboost": image_uri("xgboost", region, XGBOOST_VERSION),
            "sklearn": image_uri("sklearn", region, SKLEARN_VERSION),
            "sklearn_inference": image_uri("sklearn", region, SKLEARN_VERSION, image_scope="inference"),
        },
        "bucket": bucket,
        "role_arn": settings["role_arn"],
        "raw_uri": f"{root}/raw/raw_churn.csv",
        "code_uri": f"{root}/code/{PREPROCESSING_SCRIPT}",
        "sourcedir_uri": f"{root}/code/sourcedir.tar.gz",
        "processed": {"train": f"{root}/processing/train/", "test": f"{root}/processing/test/"},
        "transform_output": {key: f"{root}/transform/{MODEL_SUFFIX[key]}/" for key in MODELS},
        "training_output": s3_uri(bucket, f"training-output/{S3_ROOT}/{prefix}/"),
        "report_prefix": f"{root}/reports/",
    }


def run_resources(plan: Mapping[str, Any]) -> dict[str, list[str]]:
    """What the run creates for scoring and serving, and so what its teardown deletes.

    Both models always (the transform jobs need them); the endpoint and its config too unless
    ``keep_endpoint``. With ``keep_endpoint`` the config stays listed: the teardown skips a config (and the
    models it names) while an endpoint uses it, so the loser's model is deleted and the winner's kept.
    """
    keep = bool(plan["keep_endpoint"])
    return {
        "endpoints": [] if keep else [plan["endpoint_name"]],
        "endpoint_configs": [plan["endpoint_config_name"]],
        "models": [plan["model_names"][key] for key in MODELS],
    }


# --- inputs ----------------------------------------------------------------------------------------------


def _put(s3: Any, uri: str, body: bytes | str, content_type: str) -> None:
    bucket, key = parse_s3_uri(uri)
    s3.put_object(
        Bucket=bucket, Key=key, Body=body.encode() if isinstance(body, str) else body, ContentType=content_type
    )


def _get(s3: Any, uri: str) -> bytes:
    bucket, key = parse_s3_uri(uri)
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def sourcedir_tarball() -> bytes:
    """``sourcedir.tar.gz`` as the SageMaker SDK packs an entry point: the script at the archive's root.

    Built reproducibly (fixed mtime, owner and mode), so a retry uploads the same bytes.
    """
    data = (SCRIPTS_DIR / TRAINING_SCRIPT).read_bytes()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as archive:
        info = tarfile.TarInfo(TRAINING_SCRIPT)
        info.size, info.mode, info.mtime = len(data), 0o644, 0
        archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def upload_inputs(s3: Any, plan: Mapping[str, Any]) -> dict[str, Any]:
    """The raw churn CSV, the preprocessing script and the training sourcedir in S3; a summary of the data."""
    from include.churn import data as churn

    frame = churn.generate(rows=plan["rows"], seed=plan["seed"])
    _put(s3, plan["raw_uri"], churn.to_csv_bytes(frame), "text/csv")
    _put(s3, plan["code_uri"], (SCRIPTS_DIR / PREPROCESSING_SCRIPT).read_bytes(), "text/x-python")
    _put(s3, plan["sourcedir_uri"], sourcedir_tarball(), "application/gzip")
    churned = int((frame[churn.LABEL] == churn.LABEL_VALUES[1]).sum())
    return {
        "raw_uri": plan["raw_uri"],
        "raw_shape": list(frame.shape),
        "columns": list(frame.columns),
        "churned": churned,
        "stayed": len(frame) - churned,
        "missing_values": {k: int(v) for k, v in frame.isna().sum().items() if v},
        "seed": plan["seed"],
    }


# --- SageMaker requests --------------------------------------------------------------------------------


def _tags(plan: Mapping[str, Any], **extra: str) -> list[dict[str, str]]:
    tags = {"dag_id": plan["dag_id"], "run_prefix": plan["prefix"], **extra}
    return [{"Key": key, "Value": value} for key, value in tags.items()]


def processing_request(plan: Mapping[str, Any]) -> dict[str, Any]:
    """The notebook's ``SKLearnProcessor.run`` as a CreateProcessingJob request (what the SDK sends).

    Input ``input-1`` puts raw_churn.csv in /opt/ml/processing/input, input ``code`` the script in
    /opt/ml/processing/input/code; outputs ``train.csv`` and ``test.csv`` (the notebook's output names) go to
    their own prefixes, so each can be a channel.
    """

    def s3_input(name: str, uri: str, local: str) -> dict[str, Any]:
        source = {"S3Uri": uri, "LocalPath": local, "S3DataType": "S3Prefix", "S3InputMode": "File",
                  "S3DataDistributionType": "FullyReplicated"}  # fmt: skip
        return {"InputName": name, "AppManaged": False, "S3Input": source}

    def s3_output(name: str, uri: str, local: str) -> dict[str, Any]:
        return {"OutputName": name, "AppManaged": False,
                "S3Output": {"S3Uri": uri, "LocalPath": local, "S3UploadMode": "EndOfJob"}}  # fmt: skip

    return {
        "ProcessingJobName": plan["processing_job_name"],
        "RoleArn": plan["role_arn"],
        "AppSpecification": {
            "ImageUri": plan["images"]["sklearn"],
            "ContainerEntrypoint": ["python3", f"/opt/ml/processing/input/code/{PREPROCESSING_SCRIPT}"],
            "ContainerArguments": ["--train-test-split-ratio", str(plan["train_test_split_ratio"]), "--no-header"],
        },
        "ProcessingResources": {
            "ClusterConfig": {
                "InstanceCount": 1,
                "InstanceType": plan["processing_instance_type"],
                "VolumeSizeInGB": 30,
            }
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": 60 * 60},
        "ProcessingInputs": [
            s3_input("input-1", plan["raw_uri"], "/opt/ml/processing/input"),
            s3_input("code", plan["code_uri"], "/opt/ml/processing/input/code"),
        ],
        "ProcessingOutputConfig": {
            "Outputs": [
                s3_output("train.csv", plan["processed"]["train"], "/opt/ml/processing/train"),
                s3_output("test.csv", plan["processed"]["test"], "/opt/ml/processing/test"),
            ]
        },
        "Tags": _tags(plan, step="preprocessing"),
    }


def _channel(name: str, uri: str) -> dict[str, Any]:
    source = {"S3DataType": "S3Prefix", "S3Uri": uri, "S3DataDistributionType": "FullyReplicated"}
    return {"ChannelName": name, "DataSource": {"S3DataSource": source}, "ContentType": "text/csv",
            "CompressionType": "None", "RecordWrapperType": "None"}  # fmt: skip


def training_requests(plan: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The notebook's two CreateTrainingJob requests, keyed by model: built-in XGBoost and script-mode RF.

    XGBoost: the notebook's image (0.90-2) and hyperparameters, ``train`` and ``validation`` channels; the
    validation channel is the processed test set (the notebook's validation split is not made by its own
    preprocessing): without early stopping it only feeds the job's ``validation:error`` metric, never the model.

    RandomForest: what ``SKLearn(entry_point="sklearn_rf.py", hyperparameters={"n_estimators": ...}).fit``
    sends: the scikit-learn image, every hyperparameter JSON-encoded, ``sagemaker_program`` and
    ``sagemaker_submit_directory`` (the sourcedir.tar.gz in S3) among them.
    """

    def request(key: str, image: str, instance_type: str, hyperparameters: dict[str, str], channels: list) -> dict:
        return {
            "TrainingJobName": plan["training_job_names"][key],
            "RoleArn": plan["role_arn"],
            "AlgorithmSpecification": {"TrainingImage": image, "TrainingInputMode": "File"},
            "ResourceConfig": {
                "InstanceCount": TRAINING_INSTANCE_COUNT,
                "InstanceType": instance_type,
                "VolumeSizeInGB": 30,
            },  # fmt: skip
            "InputDataConfig": channels,
            "OutputDataConfig": {"S3OutputPath": plan["training_output"]},
            "HyperParameters": hyperparameters,
            "StoppingCondition": {"MaxRuntimeInSeconds": 60 * 60},
            "Tags": _tags(plan, model=key),
        }

    sdk_hyperparameters = {
        "n_estimators": plan["n_estimators"],
        "sagemaker_program": TRAINING_SCRIPT,
        "sagemaker_submit_directory": plan["sourcedir_uri"],
        "sagemaker_container_log_level": 20,
        "sagemaker_region": plan["region"],
    }
    return {
        "xgboost": request(
            "xgboost",
            plan["images"]["xgboost"],
            plan["xgboost_instance_type"],
            dict(XGBOOST_HYPERPARAMETERS),
            [_channel("train", plan["processed"]["train"]), _channel("validation", plan["processed"]["test"])],
        ),  # fmt: skip
        "random_forest": request(
            "random_forest",
            plan["images"]["sklearn"],
            plan["sklearn_instance_type"],
            {name: json.dumps(value) for name, value in sdk_hyperparameters.items()},
            [_channel("train", plan["processed"]["train"])],
        ),  # fmt: skip
    }


def model_request(plan: Mapping[str, Any], key: str, model_artifact: str) -> dict[str, Any]:
    """CreateModel for one trained model: XGBoost's image, or the scikit-learn image with the SDK's script env."""
    if key not in MODELS:
        raise ValueError(f"model must be one of {list(MODELS)}, got {key!r}")
    if not isinstance(model_artifact, str) or not model_artifact.startswith("s3://"):
        raise ValueError(f"the {key} training job gave no model artifact ({model_artifact!r})")
    container: dict[str, Any] = {"ModelDataUrl": model_artifact}
    if key == "xgboost":
        container["Image"] = plan["images"]["xgboost"]
    else:
        container["Image"] = plan["images"]["sklearn_inference"]
        container["Environment"] = {
            "SAGEMAKER_PROGRAM": TRAINING_SCRIPT,
            "SAGEMAKER_SUBMIT_DIRECTORY": plan["sourcedir_uri"],
            "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
            "SAGEMAKER_REGION": plan["region"],
        }
    return {
        "ModelName": plan["model_names"][key],
        "ExecutionRoleArn": plan["role_arn"],
        "PrimaryContainer": container,
        "Tags": _tags(plan, model=key),
    }


def transform_request(plan: Mapping[str, Any], key: str) -> dict[str, Any]:
    """CreateTransformJob scoring the processed test set with one model.

    The test rows are label-first; ``InputFilter $[1:]`` sends the features only, ``JoinSource Input`` joins
    each answer to its input row and ``OutputFilter $[0,-1]`` keeps ``label,score``: SageMaker's own way of
    keeping the label beside the prediction.
    """
    return {
        "TransformJobName": plan["transform_job_names"][key],
        "ModelName": plan["model_names"][key],
        "BatchStrategy": "MultiRecord",
        "MaxPayloadInMB": 6,
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": plan["processed"]["test"]}},
            "ContentType": "text/csv",
            "CompressionType": "None",
            "SplitType": "Line",
        },
        "TransformOutput": {
            "S3OutputPath": plan["transform_output"][key],
            "Accept": "text/csv",
            "AssembleWith": "Line",
        },
        "TransformResources": {"InstanceType": plan["transform_instance_type"], "InstanceCount": 1},
        "DataProcessing": {"InputFilter": "$[1:]", "JoinSource": "Input", "OutputFilter": "$[0,-1]"},
        "Tags": _tags(plan, model=key),
    }


def endpoint_spec(plan: Mapping[str, Any], winner: str, model: Mapping[str, Any]) -> dict[str, Any]:
    """The winner's model (the same CreateModel request the transform used) behind one ``AllTraffic`` variant."""
    if winner not in MODELS or model.get("ModelName") != plan["model_names"][winner]:
        raise ValueError(f"the winner {winner!r} and its model {model.get('ModelName')!r} do not match the plan")
    config = {
        "EndpointConfigName": plan["endpoint_config_name"],
        "ProductionVariants": [
            {
                "VariantName": VARIANT_NAME,
                "ModelName": model["ModelName"],
                "InitialInstanceCount": 1,
                "InstanceType": plan["endpoint_instance_type"],
            }
        ],
        "Tags": _tags(plan, model=winner),
    }
    return {"endpoint_name": plan["endpoint_name"], "endpoint_config": config, "models": [dict(model)]}


# --- scoring and metrics -------------------------------------------------------------------------------


def _parse_numbers(text: str, where: str) -> list[list[float]]:
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append([float(cell) for cell in line.split(",")])
        except ValueError:
            raise ValueError(f"{where}, line {number}: not numbers: {line[:200]!r}") from None
    return rows


def read_transform_scores(s3: Any, plan: Mapping[str, Any], key: str) -> dict[str, Any]:
    """``label,score`` rows of one transform job's output (every ``.out`` object under its output prefix)."""
    import numpy as np

    bucket, prefix = parse_s3_uri(plan["transform_output"][key])
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    objects = sorted(item["Key"] for item in listed if item["Key"].endswith(".out"))
    if not objects:
        raise ValueError(f"the {key} transform job wrote no .out object under {plan['transform_output'][key]}")
    rows: list[list[float]] = []
    for object_key in objects:
        where = f"s3://{bucket}/{object_key}"
        parsed = _parse_numbers(_get(s3, where).decode("utf-8"), where)
        bad = [len(row) for row in parsed if len(row) != 2]
        if bad:
            raise ValueError(f"{where}: expected label,score rows (2 columns), got rows of {sorted(set(bad))} columns")
        rows.extend(parsed)
    table = np.asarray(rows, dtype=float)
    return {"labels": table[:, 0], "scores": table[:, 1], "objects": [f"s3://{bucket}/{k}" for k in objects]}


def evaluate_scores(labels: Any, scores: Any, *, curve_points: int = 101) -> dict[str, Any]:
    """Accuracy at 0.5, ROC AUC, the confusion matrix and the ROC curve (thinned to ``curve_points``)."""
    import numpy as np
    from sklearn.metrics import confusion_matrix, roc_auc_score, roc_curve

    labels = np.asarray(labels, dtype=float)
    scores = np.asarray(scores, dtype=float)
    if labels.shape != scores.shape or labels.ndim != 1 or len(labels) == 0:
        raise ValueError(f"labels {labels.shape} and scores {scores.shape} must be equal, non-empty vectors")
    if not set(np.unique(labels)) <= {0.0, 1.0}:
        raise ValueError(f"labels must be 0/1, got {sorted(set(np.unique(labels)))[:5]}")
    if not np.isfinite(scores).all() or scores.min() < 0 or scores.max() > 1:
        raise ValueError(f"scores must be probabilities in [0, 1], got {scores.min()}..{scores.max()}")
    if len(np.unique(labels)) < 2:
        raise ValueError("the test set holds one class only: AUC is undefined; use more rows or another seed")
    predicted = (scores > THRESHOLD).astype(int)
    (tn, fp), (fn, tp) = confusion_matrix(labels.astype(int), predicted, labels=[0, 1]).tolist()
    fpr, tpr, _ = roc_curve(labels, scores)
    keep = np.unique(np.linspace(0, len(fpr) - 1, min(curve_points, len(fpr))).round().astype(int))
    return {
        "test_rows": len(labels),
        "positives": int(labels.sum()),
        "accuracy": float((predicted == labels).mean()),
        "auc": float(roc_auc_score(labels, scores)),
        "threshold": THRESHOLD,
        "confusion_matrix": {"labels": ["stayed (0)", "churned (1)"], "rows_true_columns_predicted": [[tn, fp], [fn, tp]]},
        "true_negatives": tn, "false_positives": fp, "false_negatives": fn, "true_positives": tp,
        "precision": float(tp / (tp + fp)) if tp + fp else 0.0,
        "recall": float(tp / (tp + fn)) if tp + fn else 0.0,
        "majority_baseline_accuracy": float(max(labels.mean(), 1 - labels.mean())),
        "roc_curve": {"fpr": [round(float(v), 5) for v in fpr[keep]], "tpr": [round(float(v), 5) for v in tpr[keep]]},
    }  # fmt: skip


def choose_winner(evaluations: Mapping[str, Mapping[str, Any]]) -> str:
    """The better model: higher AUC, then higher accuracy; a full tie goes to the first of :data:`MODELS`."""
    missing = [key for key in MODELS if key not in evaluations]
    if missing:
        raise ValueError(f"no evaluation for {missing}")
    return max(MODELS, key=lambda key: (evaluations[key]["auc"], evaluations[key]["accuracy"], -MODELS.index(key)))


def smoke_test(
    s3: Any, invoke: Callable[[str], bytes], plan: Mapping[str, Any], winner: str, transform_scores: Any
) -> dict[str, Any]:
    """Send the first test rows' features to the endpoint as CSV; its scores must equal the batch transform's.

    Same model, same rows: a real-time answer that differs from the batch one means the endpoint does not
    run the model that was evaluated. Built-in XGBoost 0.90-2 answers one comma-joined line, scikit-learn one
    line per row: both are read as a flat list of numbers.
    """
    import numpy as np

    test_uri = plan["processed"]["test"] + "test.csv"
    lines = [line for line in _get(s3, test_uri).decode("utf-8").splitlines() if line.strip()][:SMOKE_TEST_ROWS]
    features = "\n".join(line.split(",", 1)[1] for line in lines)
    body = invoke(features)
    answer = [
        value for row in _parse_numbers(body.decode("utf-8"), f"endpoint {plan['endpoint_name']}") for value in row
    ]
    expected = np.asarray(transform_scores, dtype=float)[: len(lines)]
    if len(answer) != len(lines):
        raise ValueError(
            f"endpoint {plan['endpoint_name']} answered {len(answer)} scores for {len(lines)} rows: {body[:200]!r}"
        )
    difference = float(np.max(np.abs(np.asarray(answer) - expected)))
    if difference > 1e-5:
        raise ValueError(
            f"endpoint {plan['endpoint_name']} ({winner}) scores {answer} differ from the batch transform's "
            f"{expected.tolist()} by up to {difference}"
        )
    return {"endpoint_name": plan["endpoint_name"], "model": winner, "rows": len(lines), "scores": answer,
            "max_difference_from_transform": difference}  # fmt: skip


# --- the report ----------------------------------------------------------------------------------------


def render_roc_png(evaluations: Mapping[str, Mapping[str, Any]], title: str) -> bytes:
    """PNG: both models' ROC curves (with AUC), then each model's confusion matrix at 0.5."""
    # The Agg canvas bound to one Figure, not pyplot: no display, no global state in a long-lived worker.
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(14, 4.6), dpi=100)
    FigureCanvasAgg(figure)
    roc, *matrices = figure.subplots(1, 1 + len(MODELS))
    for key in MODELS:
        curve = evaluations[key]["roc_curve"]
        roc.plot(
            curve["fpr"], curve["tpr"], linewidth=2, label=f"{MODEL_LABELS[key]} (AUC {evaluations[key]['auc']:.3f})"
        )
    roc.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1, label="chance (AUC 0.5)")
    roc.set_xlabel("false positive rate")
    roc.set_ylabel("true positive rate")
    roc.set_title("ROC curves on the test set", fontsize=10)
    roc.legend(fontsize=8, loc="lower right")
    for axes, key in zip(matrices, MODELS, strict=True):
        matrix = np.asarray(evaluations[key]["confusion_matrix"]["rows_true_columns_predicted"])
        axes.imshow(matrix, cmap="Blues")
        for (row, column), count in np.ndenumerate(matrix):
            color = "white" if count > matrix.max() / 2 else "black"
            axes.text(column, row, str(count), ha="center", va="center", color=color, fontsize=12)
        axes.set_xticks([0, 1], ["stayed", "churned"])
        axes.set_yticks([0, 1], ["stayed", "churned"])
        axes.set_xlabel("predicted")
        axes.set_ylabel("true")
        axes.set_title(f"{MODEL_LABELS[key]}: accuracy {evaluations[key]['accuracy']:.3f}", fontsize=10)
    figure.suptitle(title, fontsize=11)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def build_report(
    plan: Mapping[str, Any],
    *,
    data: Mapping[str, Any],
    processing: Mapping[str, Any],
    trainings: Mapping[str, Mapping[str, Any]],
    transforms: Mapping[str, Mapping[str, Any]],
    evaluations: Mapping[str, Mapping[str, Any]],
) -> dict[str, Any]:
    """The run's JSON report: data, the processing job, both training and transform jobs, both evaluations."""
    winner = choose_winner(evaluations)
    rows = {evaluation["test_rows"] for evaluation in evaluations.values()}
    if len(rows) != 1:
        raise ValueError(f"the two transform jobs scored different numbers of test rows: {sorted(rows)}")
    return {
        "notebook": NOTEBOOK,
        "dag_id": plan["dag_id"],
        "run_id": plan["run_id"],
        "run_date": plan["run_date"],
        "params": {key: plan[key] for key in DEFAULTS},
        "data": dict(data),
        "processing": {
            "job_name": processing.get("job_name"),
            "image": plan["images"]["sklearn"],
            "arguments": ["--train-test-split-ratio", str(plan["train_test_split_ratio"]), "--no-header"],
            "outputs": dict(processing.get("outputs") or {}),
        },
        "models": {
            key: {
                "label": MODEL_LABELS[key],
                "training_job": trainings[key].get("job_name"),
                "image": plan["images"]["xgboost" if key == "xgboost" else "sklearn"],
                "final_metrics": dict(trainings[key].get("metrics") or {}),
                "billable_seconds": trainings[key].get("billable_seconds"),
                "model_artifact": trainings[key].get("model_artifact"),
                "model_name": plan["model_names"][key],
                "transform_job": transforms[key].get("job_name"),
                "transform_output": transforms[key].get("objects"),
                **{name: value for name, value in evaluations[key].items()},
            }
            for key in MODELS
        },
        "xgboost_hyperparameters": dict(XGBOOST_HYPERPARAMETERS),
        "random_forest_hyperparameters": {"n_estimators": plan["n_estimators"]},
        "test_rows": rows.pop(),
        "winner": winner,
        "winner_by": "AUC, then accuracy",
    }


def write_report(s3: Any, plan: Mapping[str, Any], report: Mapping[str, Any]) -> dict[str, str]:
    """Store the report as JSON and the ROC curves (with the confusion matrices) as PNG next to it."""
    uris = {"json": f"{plan['report_prefix']}report.json", "png": f"{plan['report_prefix']}roc_curves.png"}
    title = f"{plan['prefix']}: churn on {report['test_rows']} test customers, winner {MODEL_LABELS[report['winner']]}"
    _put(s3, uris["png"], render_roc_png(report["models"], title), "image/png")
    _put(s3, uris["json"], json.dumps({**report, "report_uris": uris}, indent=2, sort_keys=True), "application/json")
    return uris


def summary_text(report: Mapping[str, Any]) -> str:
    """The task log's summary: one line per model, then the winner."""
    lines = [
        f"churn_processing_pipeline {report['run_date']}: {report['data']['raw_shape'][0]} customers "
        f"({report['data']['churned']} churned), {report['test_rows']} scored by batch transform:"
    ]
    for key in MODELS:
        model = report["models"][key]
        tn, fp, fn, tp = (model[name] for name in ("true_negatives", "false_positives", "false_negatives",
                                                    "true_positives"))  # fmt: skip
        lines.append(
            f"  {model['label']:<28} accuracy {model['accuracy']:.3f}  AUC {model['auc']:.3f}  "
            f"confusion [[TN {tn}, FP {fp}], [FN {fn}, TP {tp}]]  (job {model['training_job']})"
        )
    winner = report["models"][report["winner"]]
    lines.append(f"  Winner by {report['winner_by']}: {winner['label']} (majority baseline accuracy "
                 f"{winner['majority_baseline_accuracy']:.3f})")  # fmt: skip
    return "\n".join(lines)
