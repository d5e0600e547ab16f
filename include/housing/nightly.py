"""The logic behind ``housing_mme_nightly``'s tasks: plans, S3 layout, configs, evaluation, summary.

Nothing here imports Airflow: the DAG's tasks read the context and the environment, then call these
functions with plain values and a boto3 S3 client. numpy, pandas and xgboost are imported inside the
functions that need them, so importing this module at DAG parse time stays cheap.

S3 layout of one environment (all under the bucket)::

    raw/date=2026-11-23/location=Chicago_IL/listings.csv          synthetic source only
    prepared/date=2026-11-23/location=Chicago_IL/build.json       the location's build config for the date
    prepared/date=2026-11-23/location=Chicago_IL/{train,validation,test}/<channel>.csv
    prepared/date=2026-11-23/location=Chicago_IL/quarantine/quarantine.csv
    training-output/Chicago_IL/<job name>/output/model.tar.gz     written by SageMaker
    mme/<endpoint>/Chicago_IL/Chicago_IL-20261123.tar.gz          the MME prefix (ModelDataUrl)

A rerun of a date is idempotent when a location's build config (houses, hyperparameters, instance type,
raw source, injected bad rows) is the one in its ``build.json``; with another config it fails in
``validate_params``, naming what changed, and nothing is written. Param ``revision`` N (1..99) builds
the date again beside the first build: ``raw/`` and ``prepared/`` partitions get ``/revision=NN``, the
training job ``-vNN`` (``hmn-chicago-il-20261123-v01``), the model version ``20261123-rNN`` (TargetModel
``Chicago_IL/Chicago_IL-20261123-r01.tar.gz``). No earlier object is ever rewritten.
    registry/<endpoint>/...                                        live records (the MME operators)
    reports/<dag_id>/date=2026-11-23/config=<fingerprint>/summary.json   one per date and config
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import math
import re
import tarfile
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from include.housing.evaluation import parse_label_first_csv, promotion_decision
from include.housing.feed import generate_listings, stable_seed
from include.housing.locations import validate_location
from include.housing.naming import (
    coerce_run_date,
    mme_artifact_key,
    model_version,
    sagemaker_name,
    training_job_name,
)
from include.housing.params import InvalidParamsError, hyperparameters_for_sagemaker, validate_nightly_params
from include.housing.prepare import channel_prefix, prepare_listings
from include.housing.training import csv_training_request
from include.project_settings import (
    DEFAULT_BUCKET,
    DEFAULT_ROLE_ARN,
    PROJECT_SETTINGS,
    read_settings,
    settings_problems,
)
from sagemaker_fleet.utils.s3 import ensure_bucket, s3_uri
from sagemaker_fleet.utils.s3 import parse_s3_uri as split_s3_uri

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "CHANNELS",
    "DEFAULT_BUCKET",
    "DEFAULT_RAW_SOURCE",
    "DEFAULT_ROLE_ARN",
    "ENVIRONMENT_SETTINGS",
    "SMOKE_TEST_ROWS",
    "SUMMARY_COLUMNS",
    "SYNTHETIC_SOURCE",
    "BuildConflictError",
    "InvalidEnvironmentError",
    "build_plan",
    "build_training_config",
    "ensure_bucket",
    "mme_endpoint_spec",
    "smoke_test_model",
    "write_report",
    "compare_predictions",
    "environment_settings",
    "evaluate_artifacts",
    "features_csv",
    "ingest_listings",
    "load_booster",
    "parse_predictions",
    "predict",
    "prepare_location",
    "raw_listing_uri",
    "record_build",
    "rerun_conflicts",
    "config_fingerprint",
    "s3_uri",
    "split_s3_uri",
    "summary_report",
    "summary_row",
]

SYNTHETIC_SOURCE = "synthetic"
DEFAULT_RAW_SOURCE = SYNTHETIC_SOURCE

# setting -> (Airflow Variable name, environment variable, default). Environment-level values, not
# Params: a person triggering a run does not choose the bucket or the role.
ENVIRONMENT_SETTINGS: dict[str, tuple[str, str, str]] = {
    **PROJECT_SETTINGS,
    "raw_source": ("housing_raw_source", "HOUSING_RAW_SOURCE", DEFAULT_RAW_SOURCE),
}

CHANNELS = ("train", "validation", "test")
SMOKE_TEST_ROWS = 20
XGBOOST_VERSION = "1.7-1"
# Endpoint and local predictions come from the same artifact and xgboost; only float32 rounding differs.
SMOKE_RELATIVE_TOLERANCE = 1e-5
SMOKE_ABSOLUTE_TOLERANCE = 1e-2


class InvalidEnvironmentError(ValueError):
    """An environment-level setting (Variable or environment variable) is unusable."""


# --- S3 addresses -----------------------------------------------------------------------------------


def _get_text(s3: Any, uri: str) -> str:
    bucket, key = split_s3_uri(uri)
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")


def _get_bytes(s3: Any, uri: str) -> bytes:
    bucket, key = split_s3_uri(uri)
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def _put_text(s3: Any, uri: str, text: str, content_type: str = "text/csv") -> None:
    bucket, key = split_s3_uri(uri)
    s3.put_object(Bucket=bucket, Key=key, Body=text.encode("utf-8"), ContentType=content_type)


def _exists(s3: Any, uri: str) -> bool:
    from botocore.exceptions import ClientError

    bucket, key = split_s3_uri(uri)
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    return True


# --- the run's plan: Params + environment + date, checked once before any work ----------------------


def environment_settings(lookup: Callable[[str, str, str], str | None]) -> dict[str, str]:
    """Bucket, role ARN and raw source, each from ``lookup(variable, env_var, default)``; checked.

    The DAG passes a lookup that tries the Airflow Variable, then the environment, then the default
    (``sagemaker-fleet-local``, the emulator's role, the synthetic feed).
    """
    values = read_settings(lookup, ENVIRONMENT_SETTINGS)
    problems = settings_problems(values)
    raw = values["raw_source"]
    if raw != SYNTHETIC_SOURCE:
        try:
            split_s3_uri(raw)
        except ValueError:
            problems.append(f"raw_source {raw!r} must be {SYNTHETIC_SOURCE!r} or an s3://bucket/prefix URI")
        values["raw_source"] = raw.rstrip("/")
    if problems:
        names = ", ".join(f"{v} / {e}" for v, e, _ in ENVIRONMENT_SETTINGS.values())
        raise InvalidEnvironmentError(f"Invalid environment settings ({names}): " + "; ".join(problems))
    return values


def _bad_fractions(value: Any, locations: Sequence[str], raw_source: str) -> tuple[dict[str, float], list[str]]:
    if value is None or value == {} or value == "":
        return {}, []
    if isinstance(value, str):
        with contextlib.suppress(json.JSONDecodeError):
            value = json.loads(value)
    if not isinstance(value, Mapping):
        return {}, [f"bad_fraction_by_location must be an object of location -> fraction, got {value!r}"]
    problems: list[str] = []
    if raw_source != SYNTHETIC_SOURCE:
        problems.append(
            "bad_fraction_by_location corrupts the synthetic feed only; the raw source here is "
            f"{raw_source!r}, so remove it from the run's conf"
        )
    fractions: dict[str, float] = {}
    for location, raw in value.items():
        if location not in locations:
            problems.append(f"bad_fraction_by_location: {location!r} is not one of this run's locations")
            continue
        try:
            if isinstance(raw, bool):
                raise TypeError
            fraction = float(raw)
        except (TypeError, ValueError):
            problems.append(f"bad_fraction_by_location.{location}: expected a number, got {raw!r}")
            continue
        if not math.isfinite(fraction) or not 0 <= fraction <= 1:
            problems.append(f"bad_fraction_by_location.{location}: {raw!r} is outside [0, 1]")
            continue
        fractions[location] = fraction
    return fractions, problems


def build_plan(
    params: Mapping[str, Any],
    settings: Mapping[str, str],
    run_date: dt.date | str,
    *,
    dag_id: str,
    run_id: str,
    image_uri: str,
) -> dict[str, Any]:
    """Everything the run's tasks need, validated and JSON-safe; InvalidParamsError lists every problem.

    Params arrive from the UI form, ``--conf`` or a backfill's ``--dag-run-conf``.
    ``bad_fraction_by_location`` (testing/demo only) corrupts that share of a location's synthetic rows.
    """
    problems: list[str] = []
    given = dict(params)
    bad = given.pop("bad_fraction_by_location", None)
    try:
        checked = validate_nightly_params(given)
    except InvalidParamsError as error:
        problems.extend(error.problems)
        checked = None
    locations = checked["locations"] if checked else []
    fractions, bad_problems = _bad_fractions(bad, locations, settings["raw_source"])
    problems.extend(bad_problems)
    if problems:
        raise InvalidParamsError(problems)
    assert checked is not None

    day = coerce_run_date(run_date)
    bucket = settings["bucket"]
    endpoint = checked["endpoint_name"]
    fingerprint = config_fingerprint({**checked, "bad_fraction_by_location": fractions}, settings)
    return {
        "dag_id": dag_id,
        "run_id": run_id,
        "run_date": day.isoformat(),
        "locations": list(locations),
        "houses_per_location": checked["houses_per_location"],
        "hyperparameters": checked["hyperparameters"],
        "instance_type": checked["instance_type"],
        "promotion_tolerance": checked["promotion_tolerance"],
        "max_bad_fraction": checked["max_bad_fraction"],
        "revision": checked["revision"],
        "endpoint_name": endpoint,
        "bad_fraction_by_location": fractions,
        "bucket": bucket,
        "role_arn": settings["role_arn"],
        "raw_source": settings["raw_source"],
        "image_uri": image_uri,
        "mme_prefix": s3_uri(bucket, f"mme/{endpoint}/"),
        "registry_prefix": s3_uri(bucket, f"registry/{endpoint}/"),
        "config_fingerprint": fingerprint,
        "report_uri": s3_uri(bucket, f"reports/{dag_id}/date={day.isoformat()}/config={fingerprint}/summary.json"),
    }


def config_fingerprint(params: Mapping[str, Any], settings: Mapping[str, str]) -> str:
    """A short hash of what a run builds besides its date: the checked Params and environment settings.

    Runs that resolve to the same date share a report only when this is the same too (a rerun); a run
    of the date with other Params (another location list, other hyperparameters) gets its own report.
    The order of ``locations`` does not matter.
    """
    import hashlib

    canonical = {**params, "locations": sorted(params.get("locations", []))}
    text = json.dumps({"params": canonical, "settings": dict(settings)}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


# --- setup: bucket and the multi-model endpoint --------------------------------------------------------


def _definition_hash(definition: Mapping[str, Any]) -> str:
    import hashlib

    return hashlib.sha256(json.dumps(definition, sort_keys=True).encode("utf-8")).hexdigest()[:8]


def mme_endpoint_spec(plan: Mapping[str, Any]) -> dict[str, Any]:
    """The MME model (``Mode=MultiModel``, ``ModelDataUrl`` = the MME prefix) and its endpoint config.

    Names carry a hash of the definition: the same definition every night gives the same names (the
    deploy operator then has nothing to do); a changed image, role, prefix or instance type gives new
    names, which the deploy operator rolls out as an update of the same endpoint.
    """
    endpoint = plan["endpoint_name"]
    container = {"Image": plan["image_uri"], "Mode": "MultiModel", "ModelDataUrl": plan["mme_prefix"]}
    model_definition = {"ExecutionRoleArn": plan["role_arn"], "PrimaryContainer": container}
    model_name = sagemaker_name(endpoint, "mme", _definition_hash(model_definition))
    variant = {
        "VariantName": "AllTraffic",
        "ModelName": model_name,
        "InitialInstanceCount": 1,
        "InstanceType": plan["instance_type"],
        "InitialVariantWeight": 1.0,
    }
    config_name = sagemaker_name(endpoint, "cfg", _definition_hash({"ProductionVariants": [variant]}))
    return {
        "endpoint_name": endpoint,
        "models": [{"ModelName": model_name, **model_definition}],
        "endpoint_config": {"EndpointConfigName": config_name, "ProductionVariants": [variant]},
    }


# --- ingest and prepare ---------------------------------------------------------------------------------


def build_partition(root: str, run_date: dt.date | str, location: str, revision: int = 0) -> str:
    """``<root>/date=D/location=L``, with ``/revision=NN`` for a further build of the date."""
    prefix = channel_prefix(root, run_date, location)
    return f"{prefix}/revision={revision:02d}" if revision else prefix


def raw_listing_uri(raw_source: str, bucket: str, run_date: dt.date | str, location: str, revision: int = 0) -> str:
    """Where a location's raw listings for the date live: our ``raw/`` partition for the synthetic
    feed (per revision), ``<prefix>/date=YYYY-MM-DD/location=<Location>/listings.csv`` under an S3 raw
    source (the vendor's file, read only)."""
    if raw_source == SYNTHETIC_SOURCE:
        return s3_uri(bucket, f"{build_partition('raw', run_date, location, revision)}/listings.csv")
    source_bucket, prefix = split_s3_uri(raw_source)
    root = prefix.rstrip("/") or "."
    key = f"{channel_prefix(root, run_date, location)}/listings.csv"
    return s3_uri(source_bucket, key.removeprefix("./"))


# --- one build per date, location and config ------------------------------------------------------------


class BuildConflictError(ValueError):
    """The date's partition of a location was built with another config; nothing was written."""


def location_build_config(plan: Mapping[str, Any], location: str) -> dict[str, Any]:
    """What a location's data, job and model of the date are built from (besides the date itself)."""
    return {
        "houses_per_location": plan["houses_per_location"],
        "hyperparameters": dict(plan["hyperparameters"]),
        "instance_type": plan["instance_type"],
        "raw_source": plan["raw_source"],
        "bad_fraction": plan.get("bad_fraction_by_location", {}).get(location, 0.0),
    }


def build_record_uri(plan: Mapping[str, Any], location: str) -> str:
    partition = build_partition("prepared", plan["run_date"], location, plan.get("revision", 0))
    return s3_uri(plan["bucket"], f"{partition}/build.json")


def _read_json_or_none(s3: Any, uri: str) -> Any:
    from botocore.exceptions import ClientError

    bucket, key = split_s3_uri(uri)
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound", "NoSuchBucket"):
            return None
        raise
    return json.loads(body)


def config_changes(before: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    """``name: before -> now`` for every setting that differs (hyperparameters one by one)."""
    changes = []
    for name in sorted(set(before) | set(now)):
        old, new = before.get(name), now.get(name)
        if name == "hyperparameters" and isinstance(old, Mapping) and isinstance(new, Mapping):
            changes.extend(
                f"hyperparameters.{key}: {old.get(key)!r} -> {new.get(key)!r}"
                for key in sorted(set(old) | set(new))
                if old.get(key) != new.get(key)
            )
        elif old != new:
            changes.append(f"{name}: {old!r} -> {new!r}")
    return changes


def next_free_revision(s3: Any, plan: Mapping[str, Any], location: str) -> int:
    """The lowest revision above every build of the location's date (1 when only the first exists)."""
    prefix = channel_prefix("prepared", plan["run_date"], location) + "/revision="
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=plan["bucket"], Prefix=prefix, Delimiter="/")
    taken = [0]
    for page in pages:
        for common in page.get("CommonPrefixes", []):
            digits = common["Prefix"][len(prefix) :].rstrip("/")
            if digits.isdigit():
                taken.append(int(digits))
    return max(taken) + 1


def rerun_conflicts(s3: Any, plan: Mapping[str, Any]) -> list[str]:
    """One problem per location whose date (and revision) was already built with another config.

    Checked in ``validate_params``, before anything is created: a rerun with other Params would otherwise
    rewrite the earlier run's raw listings and channels while reusing its training job.
    """
    from botocore.exceptions import ClientError

    problems = []
    revision = plan.get("revision", 0)
    for location in plan["locations"]:
        built = _read_json_or_none(s3, build_record_uri(plan, location))
        if built is None:
            continue
        changes = config_changes(built.get("config", {}), location_build_config(plan, location))
        if not changes:
            continue
        try:
            suggestion = next_free_revision(s3, plan, location)
        except ClientError:
            suggestion = revision + 1
        problems.append(
            f"{location} was already built for {plan['run_date']} (revision {revision}, run {built.get('run_id')}) "
            f"with other Params: {'; '.join(changes)}. Its data, training job and model stay as they are. "
            f"To build the date again with these Params beside it, trigger with revision {suggestion} "
            f"(its own partitions, training job and model version "
            f"{model_version(location, plan['run_date'], suggestion)}), or restore the Params."
        )
    return problems


def record_build(s3: Any, plan: Mapping[str, Any], location: str) -> None:
    """Write the location's build.json for the date, or check that the one there has this config."""
    uri = build_record_uri(plan, location)
    config = location_build_config(plan, location)
    built = _read_json_or_none(s3, uri)
    if built is None:
        record = {"location": location, "run_date": plan["run_date"], "run_id": plan["run_id"], "config": config}
        _put_text(s3, uri, json.dumps(record, indent=2, sort_keys=True), "application/json")
        return
    changes = config_changes(built.get("config", {}), config)
    if changes:
        # Another run built this partition since validate_params looked: still, overwrite nothing.
        raise BuildConflictError(
            f"{location} {plan['run_date']} revision {plan.get('revision', 0)} was built meanwhile by run "
            f"{built.get('run_id')} with other Params ({'; '.join(changes)}); nothing was written"
        )


def ingest_listings(s3: Any, plan: Mapping[str, Any], location: str) -> dict[str, Any]:
    """The day's raw listings of ``location`` in S3; returns ``{"location", "raw_uri", "source", "bytes"}``.

    Synthetic: generated from (location, date, houses) and written to the raw partition once; a rerun of
    the same build finds it there. S3 source: the file must already be there. Either way the location's
    build record is written first (or checked: another config fails with BuildConflictError).
    """
    validate_location(location)
    record_build(s3, plan, location)
    uri = raw_listing_uri(plan["raw_source"], plan["bucket"], plan["run_date"], location, plan.get("revision", 0))
    if plan["raw_source"] == SYNTHETIC_SOURCE:
        if _exists(s3, uri):  # the same build config (checked above) generates the same bytes: keep them
            size = s3.head_object(Bucket=split_s3_uri(uri)[0], Key=split_s3_uri(uri)[1])["ContentLength"]
            return {"location": location, "raw_uri": uri, "source": SYNTHETIC_SOURCE, "bytes": int(size)}
        text = generate_listings(
            location,
            plan["run_date"],
            plan["houses_per_location"],
            bad_fraction=plan.get("bad_fraction_by_location", {}).get(location, 0.0),
        )
        _put_text(s3, uri, text)
        return {"location": location, "raw_uri": uri, "source": SYNTHETIC_SOURCE, "bytes": len(text)}
    if not _exists(s3, uri):
        raise FileNotFoundError(f"{location}: no raw listings for {plan['run_date']} at {uri}")
    bucket, key = split_s3_uri(uri)
    size = s3.head_object(Bucket=bucket, Key=key)["ContentLength"]
    return {"location": location, "raw_uri": uri, "source": plan["raw_source"], "bytes": int(size)}


def prepare_location(s3: Any, plan: Mapping[str, Any], location: str, raw_uri: str) -> dict[str, Any]:
    """Validate and split the raw listings; write channels (and quarantined rows) to the date/location
    partition. Raises the prepare module's DataValidationError / TooManyBadRowsError for unusable data."""
    prepared = prepare_listings(
        _get_text(s3, raw_uri),
        location=location,
        max_bad_fraction=plan["max_bad_fraction"],
        seed=stable_seed("split", location, plan["run_date"]),
        run_date=plan["run_date"],
    )
    root = s3_uri(plan["bucket"], build_partition("prepared", plan["run_date"], location, plan.get("revision", 0)))
    channels = {name: f"{root}/{name}/" for name in CHANNELS}
    for name, text in zip(CHANNELS, (prepared.train_csv, prepared.validation_csv, prepared.test_csv), strict=True):
        _put_text(s3, f"{channels[name]}{name}.csv", text)
    quarantine_uri = None
    if prepared.quarantine_csv:
        quarantine_uri = f"{root}/quarantine/quarantine.csv"
        _put_text(s3, quarantine_uri, prepared.quarantine_csv)
    return {
        **prepared.to_summary(),
        "channels": channels,
        "test_uri": f"{channels['test']}test.csv",
        "quarantine_uri": quarantine_uri,
    }


def build_training_config(plan: Mapping[str, Any], location: str, channels: Mapping[str, str]) -> dict[str, Any]:
    """The whole CreateTrainingJob request; its name is deterministic from dag_id, location and date."""
    run_date = plan["run_date"]
    return csv_training_request(
        job_name=training_job_name(plan["dag_id"], location, run_date, revision=plan.get("revision", 0)),
        image_uri=plan["image_uri"],
        role_arn=plan["role_arn"],
        channels=channels,
        output_path=s3_uri(plan["bucket"], f"training-output/{location}/"),
        instance_type=plan["instance_type"],
        hyperparameters=hyperparameters_for_sagemaker(plan["hyperparameters"]),
        tags=[
            {"Key": "location", "Value": location},
            {"Key": "run_date", "Value": run_date},
            {"Key": "dag_id", "Value": plan["dag_id"]},
        ],
    )


# --- models: load, predict, evaluate, smoke-test -------------------------------------------------------


def load_booster(artifact: bytes):
    """The xgboost Booster inside a SageMaker ``model.tar.gz`` (``xgboost-model``, else the first file)."""
    import xgboost as xgb

    with tarfile.open(fileobj=io.BytesIO(artifact), mode="r:gz") as archive:
        members = sorted(
            (m for m in archive.getmembers() if m.isfile() and not m.name.rsplit("/", 1)[-1].startswith(".")),
            key=lambda m: m.name,
        )
        chosen = next((m for m in members if m.name.rsplit("/", 1)[-1] == "xgboost-model"), None)
        chosen = chosen or (members[0] if members else None)
        if chosen is None:
            raise ValueError("The model archive holds no model file")
        extracted = archive.extractfile(chosen)
        assert extracted is not None
        data = extracted.read()
    booster = xgb.Booster()
    booster.load_model(bytearray(data))
    booster.set_param("nthread", 1)
    return booster


def predict(booster: Any, features: np.ndarray) -> np.ndarray:
    """Predictions the way the serving container makes them (``inplace_predict``)."""
    import numpy as np

    return np.asarray(booster.inplace_predict(features, validate_features=False), dtype=float).ravel()


def evaluate_artifacts(
    s3: Any,
    *,
    location: str,
    run_date: dt.date | str,
    new_artifact_uri: str,
    test_uri: str,
    live_artifact_uri: str | None,
    live_version: str | None,
    tolerance: float,
    revision: int = 0,
) -> dict[str, Any]:
    """Score the new model and the baseline (if any) on the run date's test split; decide on promotion.

    The baseline (``live_artifact_uri``, ``live_version``) is the version that was live for the run's
    date, so a backfilled date is judged against its own past; None accepts (no earlier version).
    """
    from include.housing.evaluation import mae, rmse

    features, labels = parse_label_first_csv(_get_text(s3, test_uri))
    new_predictions = predict(load_booster(_get_bytes(s3, new_artifact_uri)), features)
    new = {"rmse": rmse(labels, new_predictions), "mae": mae(labels, new_predictions)}
    live = None
    if live_artifact_uri:
        live_predictions = predict(load_booster(_get_bytes(s3, live_artifact_uri)), features)
        live = {"rmse": rmse(labels, live_predictions), "mae": mae(labels, live_predictions)}
    decision = promotion_decision(new["rmse"], live["rmse"] if live else None, tolerance)
    version = model_version(location, run_date, revision)
    return {
        "location": location,
        "version": version,
        "target_model": mme_artifact_key(location, version),
        "model_artifact": new_artifact_uri,
        "test_rows": int(labels.size),
        "metrics": new,
        "live_version": live_version,
        "live_metrics": live,
        "promote": decision.promote,
        "reason": decision.reason,
    }


def features_csv(test_csv: str, rows: int = SMOKE_TEST_ROWS) -> tuple[str, np.ndarray]:
    """The first ``rows`` test rows without their label, as an InvokeEndpoint CSV body and as an array."""
    features, _ = parse_label_first_csv(test_csv)
    chosen = features[:rows]
    body = "\n".join(",".join(repr(float(v)) for v in row) for row in chosen) + "\n"
    return body, chosen


def parse_predictions(body: bytes | str) -> list[float]:
    """Predictions from an XGBoost ``text/csv`` or JSON response (commas and/or newlines)."""
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    text = text.strip()
    if text.startswith(("{", "[")):
        document = json.loads(text)
        if isinstance(document, Mapping):
            document = document.get("predictions", [])
        values = [item.get("score") if isinstance(item, Mapping) else item for item in document]
        return [float(v) for v in values]
    return [float(part) for part in re.split(r"[,\s]+", text) if part]


def compare_predictions(endpoint: Sequence[float], local: Sequence[float]) -> dict[str, Any]:
    """Check the endpoint served the same model: same count, every value within float32 rounding."""
    if len(endpoint) != len(local):
        raise AssertionError(f"The endpoint returned {len(endpoint)} predictions for {len(local)} rows")
    differences = [abs(float(a) - float(b)) for a, b in zip(endpoint, local, strict=True)]
    worst = max(range(len(differences)), key=differences.__getitem__) if differences else None
    for a, b in zip(endpoint, local, strict=True):
        if not math.isclose(a, b, rel_tol=SMOKE_RELATIVE_TOLERANCE, abs_tol=SMOKE_ABSOLUTE_TOLERANCE):
            raise AssertionError(
                f"The endpoint's prediction {a!r} differs from the local prediction {b!r} of the same "
                "artifact: the endpoint is not serving this model"
            )
    return {
        "rows": len(local),
        "max_abs_difference": differences[worst] if worst is not None else 0.0,
    }


def smoke_test_model(
    s3: Any,
    invoke: Callable[[str, str], bytes],
    *,
    target_model: str,
    artifact_uri: str,
    test_uri: str,
    rows: int = SMOKE_TEST_ROWS,
) -> dict[str, Any]:
    """Send test rows to the endpoint for ``target_model`` (``invoke(body, target_model)`` -> response body)
    and compare with a local prediction of the same artifact; AssertionError when they differ."""
    body, features = features_csv(_get_text(s3, test_uri), rows)
    local = predict(load_booster(_get_bytes(s3, artifact_uri)), features).tolist()
    served = parse_predictions(invoke(body, target_model))
    return {"target_model": target_model, **compare_predictions(served, local)}


# --- summary ------------------------------------------------------------------------------------------------

SUMMARY_COLUMNS = (
    "location",
    "status",
    "version",
    "test_rmse",
    "test_mae",
    "previous_version",
    "previous_rmse",
    "promoted",
    "reason",
)


def failed_tasks_by_index(states: Mapping[str, str | None], group: str) -> dict[int, set[str]]:
    """{map index: the group's task ids that failed there}, from one ``get_task_states`` of the whole group
    (its keys are ``<group>.<task>_<map index>``): one request for the fleet instead of one per location."""
    failed: dict[int, set[str]] = {}
    for key, state in states.items():
        task_id, _, index = key.rpartition("_")
        if state == "failed" and task_id.startswith(f"{group}.") and index.isdigit():
            failed.setdefault(int(index), set()).add(task_id.removeprefix(f"{group}."))
    return failed


def results_by_location(results: Any) -> dict[str, Mapping[str, Any]]:
    """{location: result} from every map index's return value of one task (each carries its location);
    a location whose task did not return has no entry."""
    return {result["location"]: result for result in results or () if isinstance(result, Mapping)}


def summary_row(
    location: str,
    *,
    evaluation: Mapping[str, Any] | None,
    promotion: Mapping[str, Any] | None,
    failed_task: str | None,
    error: str | None = None,
) -> dict[str, Any]:
    """One location's line in the summary, from what its tasks returned (None where they did not)."""
    row: dict[str, Any] = {column: None for column in SUMMARY_COLUMNS}
    row["location"] = location
    if evaluation:
        live = evaluation.get("live_metrics") or {}
        row.update(
            version=evaluation.get("version"),
            test_rmse=(evaluation.get("metrics") or {}).get("rmse"),
            test_mae=(evaluation.get("metrics") or {}).get("mae"),
            previous_version=evaluation.get("live_version"),
            previous_rmse=live.get("rmse"),
            reason=evaluation.get("reason"),
        )
    if failed_task:
        row.update(status="failed", promoted=False, reason=f"failed at {failed_task}" + (f": {error}" if error else ""))
    elif promotion:
        promoted = bool(promotion.get("promoted"))
        # A rerun finds its version already live: that is "live", not merely "registered".
        is_live = promoted or promotion.get("live_version") == promotion.get("version")
        row.update(status="live" if is_live else "registered", promoted=promoted)
        if promotion.get("previous_version") is not None:
            row["previous_version"] = promotion["previous_version"]
        if not promoted and promotion.get("reason"):
            row["reason"] = promotion["reason"]
    elif evaluation and not evaluation.get("promote"):
        row.update(status="kept live", promoted=False)
    else:
        row.update(status="incomplete", promoted=False, reason=row["reason"] or "did not reach promotion")
    return row


def summary_report(plan: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The JSON report written next to the run's other outputs."""
    failed = [row["location"] for row in rows if row.get("status") == "failed"]
    return {
        "dag_id": plan["dag_id"],
        "run_id": plan["run_id"],
        "run_date": plan["run_date"],
        "endpoint_name": plan["endpoint_name"],
        "mme_prefix": plan["mme_prefix"],
        "locations": len(rows),
        "promoted": sum(1 for row in rows if row.get("promoted")),
        "failed": failed,
        "rows": [dict(row) for row in rows],
    }


def summary_chart_png(report: Mapping[str, Any]) -> bytes:
    """PNG bar chart of the night: each location's new test RMSE beside the RMSE of the version it was judged
    against, the bar's label saying what happened (live, kept live, failed)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = list(report.get("rows") or [])
    if not rows:
        raise ValueError("the report has no rows to chart")
    figure = Figure(figsize=(max(6, 1.2 * len(rows) + 3), 4), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.subplots()
    positions = range(len(rows))
    new = [float(row.get("test_rmse") or 0.0) for row in rows]
    before = [float(row.get("previous_rmse") or 0.0) for row in rows]
    axes.bar([p - 0.2 for p in positions], new, width=0.4, label="new model (test RMSE)")
    axes.bar([p + 0.2 for p in positions], before, width=0.4, label="version it was judged against")
    axes.set_xticks(
        list(positions), [f"{row['location']}\n{row.get('status') or ''}" for row in rows], fontsize="small"
    )
    axes.set_ylabel("RMSE (price units)")
    axes.legend(fontsize="small")
    figure.suptitle(f"{report.get('dag_id', 'nightly')} {report.get('run_date', '')}: {len(rows)} location(s)")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def write_report(s3: Any, uri: str, report: Mapping[str, Any]) -> None:
    """Store the report as JSON and its chart as ``summary.png`` beside it (one per date and config; a rerun
    of the same date and config replaces its own report)."""
    _put_text(s3, uri, json.dumps(report, indent=2, sort_keys=True, default=str), content_type="application/json")
    bucket, key = split_s3_uri(uri)
    chart_key = key.rsplit("/", 1)[0] + "/summary.png"
    s3.put_object(Bucket=bucket, Key=chart_key, Body=summary_chart_png(report), ContentType="image/png")
