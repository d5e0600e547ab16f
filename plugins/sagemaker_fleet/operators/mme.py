"""The MME registry: versioned, never-overwritten artifacts under an MME prefix plus a per-location live record.

Layout::

    s3://bucket/mme/Chicago_IL/Chicago_IL-20261123.tar.gz    the TargetModel (naming.mme_artifact_key)
    s3://bucket/registry/Chicago_IL.json                     the location's record:
        {"location", "live_version", "live_target_model",
         "versions": {version: {target_model, s3_uri, etag, registered_at, metrics, decision,
                                released_at}},
         "live_history": [{version, previous_version, at}, ...], "updated_at"}

The record stays small however many versions a location accumulates (O(locations) for the fleet, not
O(versions)): beyond ``2 * RECORD_WINDOW`` version entries, all but the newest ``RECORD_WINDOW`` (and the live
one, and the one being written) move, in chunks of ``RECORD_WINDOW``, to immutable archive objects
``registry/<location>/archive/<first>_<last>_<sha>.json`` (content-addressed, written ``IfNoneMatch``), listed in
the record's ``archives`` as ``{key, first, last, count}``; ``live_history`` keeps its newest
``2 * RECORD_WINDOW`` moves the same way. Lookups read the window first and an archive only for a version or
date older than it (a backfill), so the nightly path never reads more than the record.
:func:`list_locations` lists the registry prefix with a delimiter (one entry per location), never the MME
prefix.

A version is *released* once promotion accepted it (``released_at``), whether or not it moved the live
pointer: a backfilled date older than the live version is released for its date but never made live.
The version live on a date D is the newest released version dated on or before D
(:func:`live_version_on`); a new candidate is gated against the one live the day before its date, so a
backfill is judged against what was live for that date, not against today's model. ``live_history``
lists every move of the live pointer (forward only unless ``allow_older``).

Both operators take the evaluation's ``decision`` (``{"promote": bool, "reason": str}``): unless it
accepted the model they skip (AirflowSkipException with the reason) before touching anything. They check
it themselves rather than trust a short-circuit upstream: under Airflow 3.3's scheduler a short-circuit
inside a mapped task group does not skip its downstream tasks (apache/airflow#67265).

Writes are S3 conditional writes: an artifact is created with ``PutObject IfNoneMatch="*"`` (so two runs can
never both "create" it), and a record is read-modify-written with ``IfMatch=<etag>`` (``IfNoneMatch="*"`` for
the first one), retried on 412 PreconditionFailed. A PutObject is atomic, so a record is never half-written,
and a concurrent update is re-applied on the fresh record instead of being lost.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from airflow.exceptions import AirflowException
from airflow.providers.amazon.aws.operators.base_aws import AwsBaseOperator
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields

from sagemaker_fleet.hooks.sagemaker import SageMakerFleetHook, parse_s3_uri
from sagemaker_fleet.links.sagemaker import MMEArtifactLink, MMERegistryRecordLink

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = [
    "MMEPromoteModelOperator",
    "MMERegisterModelOperator",
    "check_decision",
    "fill_from_decision",
    "archive_reader",
    "list_live_models",
    "list_locations",
    "list_registered_models",
    "live_version_on",
    "read_live_record",
    "update_record",
    "version_entry",
]

MAX_RECORD_ATTEMPTS = 10
# Version entries (and live moves) a record keeps inline; beyond twice this, older ones go to archive objects.
RECORD_WINDOW = 50
# Larger artifacts are copied server-side (CopyObject IfNoneMatch) instead of read and re-put.
MAX_IN_MEMORY_ARTIFACT_BYTES = 512 * 1024 * 1024
_CONFLICT_CODES = {"PreconditionFailed", "412", "ConditionalRequestConflict", "409"}


def _utcnow() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _prefix(uri: str, what: str) -> tuple[str, str]:
    try:
        bucket, key = parse_s3_uri(uri)
    except ValueError as error:
        raise ValueError(f"{what}: {error}") from None
    return bucket, (key.rstrip("/") + "/") if key else ""


def _error_code(error: Exception) -> str:
    response = getattr(error, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def _version_key(version: str) -> tuple[str, int]:
    from sagemaker_fleet.utils.naming import VERSION_PATTERN

    match = VERSION_PATTERN.match(version)
    if match is None:
        raise ValueError(f"Invalid model version {version!r}: expected YYYYMMDD or YYYYMMDD-rNN")
    return match.group("date"), int(match.group("revision") or 0)


def _date_key(day: dt.date | str) -> str:
    """``YYYYMMDD`` of a date, an ISO date string or a version."""
    if isinstance(day, dt.datetime):
        day = day.date()
    if isinstance(day, dt.date):
        return day.strftime("%Y%m%d")
    text = str(day).strip()
    if len(text) == 10 and text[4] == "-" and text[7] == "-":
        return dt.date.fromisoformat(text).strftime("%Y%m%d")
    return _version_key(text)[0]


ArchiveReader = Callable[[str], dict]


def _released(record: dict, entries: dict) -> list[str]:
    return [v for v, entry in entries.items() if entry.get("released_at") or v == record.get("live_version")]


def live_version_on(record: dict | None, day: dt.date | str, read_archive: ArchiveReader | None = None) -> str | None:
    """The version that was live for ``day`` (a date, ``YYYY-MM-DD`` or a version): the newest released
    version dated on or before it; None when the location had no released version by then.

    Released versions are those promotion accepted (``released_at``); the live pointer itself always is
    one (records written before ``released_at`` existed count their live version). Archived versions are
    read (``read_archive``, see :func:`archive_reader`) only when an archive could hold a newer answer than
    the record's window, i.e. for dates older than the window (backfills).
    """
    if not record:
        return None
    cutoff = _date_key(day)
    eligible = [v for v in _released(record, record.get("versions") or {}) if _version_key(v)[0] <= cutoff]
    best = max(eligible, key=_version_key) if eligible else None
    for archive in reversed(record.get("archives") or []):
        if _version_key(archive["first"])[0] > cutoff or (best and _version_key(archive["last"]) <= _version_key(best)):
            continue
        if read_archive is None:
            raise ValueError(
                f"{record.get('location')}: the version live on {cutoff} may be archived ({archive['key']}); "
                "pass read_archive=archive_reader(hook, registry_prefix)"
            )
        entries = read_archive(archive["key"]).get("versions", {})
        older = [v for v in _released(record, entries) if _version_key(v)[0] <= cutoff]
        if older and (best is None or _version_key(max(older, key=_version_key)) > _version_key(best)):
            best = max(older, key=_version_key)
    return best


def check_decision(decision: Any, what: str) -> dict | None:
    """Skip the task (AirflowSkipException with the reason) unless ``decision`` accepted the model.

    ``decision`` is the evaluation's ``{"promote": bool, "reason": str, ...}``; None means no gate.
    """
    from airflow.sdk.exceptions import AirflowSkipException

    if decision is None:
        return None
    if not isinstance(decision, dict) or not isinstance(decision.get("promote"), bool):
        raise ValueError(f"{what}: decision must be a dict with a boolean 'promote', got {decision!r}")
    if not decision["promote"]:
        raise AirflowSkipException(f"{what} not accepted by the evaluation: {decision.get('reason') or 'no reason'}")
    return decision


def fill_from_decision(operator: Any, *names: str) -> None:
    """Set each of ``names`` left None on ``operator`` from the same key of its ``decision``.

    A DAG then passes the evaluation's result once (one XCom) instead of each value in it as its own XCom.
    """
    decision = operator.decision if isinstance(operator.decision, dict) else {}
    for name in names:
        if getattr(operator, name) is None:
            setattr(operator, name, decision.get(name))


def _require(operator: Any, *names: str) -> None:
    """ValueError naming the task and each of ``names`` that is still empty (neither passed nor decided)."""
    if missing := [name for name in names if getattr(operator, name) in (None, "")]:
        raise ValueError(f"{operator.task_id}: {', '.join(missing)} missing: pass it, or a decision that carries it")


def record_key(registry_prefix: str, location: str) -> tuple[str, str]:
    bucket, prefix = _prefix(registry_prefix, "registry_prefix")
    return bucket, f"{prefix}{location}.json"


def _read_record(s3: Any, bucket: str, key: str) -> tuple[dict | None, str | None]:
    try:
        response = s3.get_object(Bucket=bucket, Key=key)
    except Exception as error:
        if _error_code(error) in {"NoSuchKey", "404", "NotFound"}:
            return None, None
        raise
    return json.loads(response["Body"].read()), response["ETag"]


def read_live_record(hook: SageMakerFleetHook, registry_prefix: str, location: str) -> dict | None:
    """The location's registry record (with ``live_version``), or None when nothing was registered."""
    bucket, key = record_key(registry_prefix, location)
    return _read_record(hook.s3_client, bucket, key)[0]


def list_registered_models(hook: SageMakerFleetHook, mme_prefix: str) -> list[str]:
    """TargetModels under the MME prefix, like the SDK's ``MultiDataModel.list_models`` (every version: one
    ListObjectsV2 page per 1,000; for the fleet's live models use :func:`list_live_models`)."""
    return hook.list_mme_models(mme_prefix)


def list_locations(hook: SageMakerFleetHook, registry_prefix: str) -> list[str]:
    """The locations with a registry record: one ListObjectsV2 entry per location (the archives under
    ``<location>/`` collapse into one common prefix), whatever the number of versions."""
    bucket, prefix = _prefix(registry_prefix, "registry_prefix")
    names = []
    for page in hook.s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
        names.extend(
            o["Key"][len(prefix) : -len(".json")] for o in page.get("Contents", []) if o["Key"].endswith(".json")
        )
    return sorted(names)


def list_live_models(hook: SageMakerFleetHook, registry_prefix: str) -> dict[str, str | None]:
    """location -> its live TargetModel (None before a first promotion): one record read per location."""
    bucket, prefix = _prefix(registry_prefix, "registry_prefix")
    live = {}
    for location in list_locations(hook, registry_prefix):
        record, _ = _read_record(hook.s3_client, bucket, f"{prefix}{location}.json")
        live[location] = (record or {}).get("live_target_model")
    return live


def archive_reader(hook: SageMakerFleetHook, registry_prefix: str) -> ArchiveReader:
    """A callable reading an archive object by the key a record lists (cached: archives never change)."""
    bucket, _ = _prefix(registry_prefix, "registry_prefix")
    cache: dict[str, dict] = {}

    def read(key: str) -> dict:
        if key not in cache:
            cache[key] = json.loads(hook.s3_client.get_object(Bucket=bucket, Key=key)["Body"].read())
        return cache[key]

    return read


def version_entry(record: dict | None, version: str, read_archive: ArchiveReader) -> dict | None:
    """A version's entry from the record's window or, when older, from the archive that holds it."""
    if not record:
        return None
    entry = (record.get("versions") or {}).get(version)
    if entry is not None:
        return entry
    key = _version_key(version)
    for archive in reversed(record.get("archives") or []):
        if _version_key(archive["first"]) <= key <= _version_key(archive["last"]):
            entry = read_archive(archive["key"]).get("versions", {}).get(version)
            if entry is not None:
                return entry
    return None


def _compact(s3: Any, bucket: str, key: str, record: dict, keep: tuple[str, ...]) -> dict:
    """Move version entries and live moves beyond the window to immutable archive objects (see the module
    docstring). Each archive is content-addressed and created with ``IfNoneMatch``, so a retried update
    writes the same object again harmlessly, and an archive is referenced only once it exists."""
    versions = record.get("versions") or {}
    history = record.get("live_history") or []
    if len(versions) <= 2 * RECORD_WINDOW and len(history) <= 2 * RECORD_WINDOW:
        return record
    pinned = {record.get("live_version"), *keep}
    movable = sorted((v for v in versions if v not in pinned), key=_version_key)
    to_archive = movable[: max(0, len(movable) - RECORD_WINDOW)] if len(versions) > 2 * RECORD_WINDOW else []
    old_moves = history[: len(history) - RECORD_WINDOW] if len(history) > 2 * RECORD_WINDOW else []
    chunks = [to_archive[i : i + RECORD_WINDOW] for i in range(0, len(to_archive), RECORD_WINDOW)] or [[]]
    location_dir = key[: -len(".json")]
    for index, chunk in enumerate(chunks):
        moves = old_moves if index == len(chunks) - 1 else []
        if not chunk and not moves:
            continue
        body = {
            "location": record.get("location"),
            "versions": {v: versions[v] for v in chunk},
            "live_history": moves,
        }
        data = json.dumps(body, indent=1, sort_keys=True).encode("utf-8")
        first, last = (chunk[0], chunk[-1]) if chunk else (moves[0]["version"], moves[-1]["version"])
        archive_key = f"{location_dir}/archive/{first}_{last}_{hashlib.sha256(data).hexdigest()[:12]}.json"
        try:
            s3.put_object(Bucket=bucket, Key=archive_key, Body=data, ContentType="application/json", IfNoneMatch="*")
        except Exception as error:
            if _error_code(error) not in _CONFLICT_CODES:  # an earlier attempt wrote these very bytes
                raise
        if chunk:
            record.setdefault("archives", []).append(
                {"key": archive_key, "first": first, "last": last, "count": len(chunk)}
            )
        else:
            record.setdefault("history_archives", []).append(archive_key)
        for version in chunk:
            del versions[version]
    if old_moves:
        record["live_history"] = history[len(old_moves) :]
    return record


def update_record(
    hook: SageMakerFleetHook,
    registry_prefix: str,
    location: str,
    mutate: Callable[[dict | None], dict | None],
    *,
    max_attempts: int = MAX_RECORD_ATTEMPTS,
    keep: tuple[str, ...] = (),
) -> tuple[dict | None, bool]:
    """Read-modify-write a record with S3 conditional writes; returns ``(record, written)``.

    ``mutate`` gets a fresh copy of the current record (None when absent) and returns the new record, or
    the same/None to leave it alone. It is called again on the re-read record after every conflict, so it
    must decide from its argument only. A record that outgrew its window is compacted before it is written
    (``keep``: versions that stay inline, e.g. the one just registered).
    """
    s3 = hook.s3_client
    bucket, key = record_key(registry_prefix, location)
    for attempt in range(1, max_attempts + 1):
        current, etag = _read_record(s3, bucket, key)
        snapshot = json.loads(json.dumps(current)) if current is not None else None
        new = mutate(json.loads(json.dumps(current)) if current is not None else None)
        if new is None or new == snapshot:
            return current, False
        new = _compact(s3, bucket, key, new, keep)
        condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
        try:
            s3.put_object(
                Bucket=bucket,
                Key=key,
                Body=json.dumps(new, indent=2, sort_keys=True).encode("utf-8"),
                ContentType="application/json",
                **condition,
            )
            return new, True
        except Exception as error:
            # 412: someone else wrote since we read; NoSuchKey: it was deleted since. Re-read and re-apply.
            if _error_code(error) not in _CONFLICT_CODES | {"NoSuchKey"}:
                raise
            delay = min(2.0, 0.05 * 2**attempt) * random.uniform(0.5, 1.0)
            hook.log.info("Registry record %s changed under us (%s); retrying in %.2f s", key, error, delay)
            time.sleep(delay)
    raise AirflowException(f"Could not update s3://{bucket}/{key}: {max_attempts} concurrent-write conflicts")


def _touched(record: dict) -> dict:
    record["updated_at"] = _utcnow()
    return record


def _jsonable_metrics(metrics: dict | None) -> dict:
    if metrics is None:
        return {}
    if not isinstance(metrics, dict):
        raise ValueError(f"metrics must be a dict, got {type(metrics).__name__}")
    cast: dict[str, Any] = {}
    for name, value in metrics.items():
        try:
            cast[str(name)] = float(value) if not isinstance(value, bool) else value
        except (TypeError, ValueError):
            cast[str(name)] = value if isinstance(value, str | int | bool) or value is None else str(value)
    return cast


class MMERegisterModelOperator(AwsBaseOperator[SageMakerFleetHook]):
    """Copy a training artifact into the MME prefix under its versioned TargetModel and record the version.

    Never overwrites: the same bytes already at that key is a no-op (``created`` False); different bytes
    is an error. The version is recorded but not made live (see :class:`MMEPromoteModelOperator`).
    With ``decision``, it skips unless the evaluation accepted the model (:func:`check_decision`).

    Returns ``{"location", "version", "target_model", "s3_uri", "created"}``.
    """

    aws_hook_class = SageMakerFleetHook
    template_fields = aws_template_fields(
        "model_artifact", "mme_prefix", "registry_prefix", "location", "version", "metrics", "decision"
    )
    template_fields_renderers = {"metrics": "json", "decision": "json"}
    operator_extra_links = (MMEArtifactLink(), MMERegistryRecordLink())

    def __init__(
        self,
        *,
        model_artifact: str | None = None,
        mme_prefix: str,
        registry_prefix: str,
        location: str,
        version: str | None = None,
        metrics: dict | None = None,
        decision: dict | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.decision = decision
        self.model_artifact = model_artifact
        self.mme_prefix = mme_prefix
        self.registry_prefix = registry_prefix
        self.location = location
        self.version = version
        self.metrics = metrics

    def execute(self, context: Context) -> dict:
        from sagemaker_fleet.utils.naming import mme_artifact_key

        # Every check happens before anything is written (templated values are only known here).
        fill_from_decision(self, "model_artifact", "version", "metrics")
        decision = check_decision(self.decision, f"{self.location} {self.version}")
        _require(self, "model_artifact", "version")
        target_model = mme_artifact_key(self.location, self.version)
        source_bucket, source_key = parse_s3_uri(self.model_artifact)
        mme_bucket, mme_key_prefix = _prefix(self.mme_prefix, "mme_prefix")
        registry_bucket, registry_key = record_key(self.registry_prefix, self.location)
        metrics = _jsonable_metrics(self.metrics)
        dest_key = f"{mme_key_prefix}{target_model}"
        MMEArtifactLink.persist_for(context, self, bucket=mme_bucket, key=dest_key)
        MMERegistryRecordLink.persist_for(context, self, bucket=registry_bucket, key=registry_key)
        s3_uri = f"s3://{mme_bucket}/{dest_key}"
        s3 = self.hook.s3_client

        try:
            source = s3.head_object(Bucket=source_bucket, Key=source_key)
        except Exception as error:
            if _error_code(error) in {"404", "NoSuchKey", "NotFound"}:
                raise AirflowException(f"Training artifact {self.model_artifact} does not exist") from None
            raise
        created = self._copy_once(s3, source_bucket, source_key, source, mme_bucket, dest_key)
        etag = s3.head_object(Bucket=mme_bucket, Key=dest_key)["ETag"]
        self.log.info("%s %s -> %s", "Copied" if created else "Already there:", self.model_artifact, s3_uri)

        entry = {
            "target_model": target_model,
            "s3_uri": s3_uri,
            "etag": etag,
            "registered_at": _utcnow(),
            "metrics": metrics,
        }
        if decision is not None:
            entry["decision"] = {k: decision[k] for k in ("reason", "live_version") if k in decision}

        def add_version(record: dict | None) -> dict | None:
            record = record or {
                "location": self.location,
                "live_version": None,
                "live_target_model": None,
                "versions": {},
            }
            known = version_entry(record, self.version, read_archive)
            record.setdefault("versions", {})
            if known is not None:
                if known.get("etag") != etag:
                    raise AirflowException(
                        f"Registry says {self.location} {self.version} has ETag {known.get('etag')}, "
                        f"but {s3_uri} has {etag}; refusing to change a registered version"
                    )
                if not metrics or known.get("metrics") == metrics:
                    return None  # a retry of the same registration: nothing to write
                record["versions"][self.version] = {**known, "metrics": metrics}
            else:
                record["versions"][self.version] = dict(entry)
            record["updated_at"] = _utcnow()
            return record

        read_archive = archive_reader(self.hook, self.registry_prefix)
        _, written = update_record(self.hook, self.registry_prefix, self.location, add_version, keep=(self.version,))
        self.log.info("Registry record of %s %s", self.location, "updated" if written else "already up to date")
        return {
            "location": self.location,
            "version": self.version,
            "target_model": target_model,
            "s3_uri": s3_uri,
            "created": created,
        }

    def _copy_once(self, s3: Any, src_bucket: str, src_key: str, source: dict, bucket: str, key: str) -> bool:
        """True when this call created ``key``; False when identical bytes were already there."""
        existing = self._head_or_none(s3, bucket, key)
        if existing is None:
            try:
                if int(source.get("ContentLength", 0)) <= MAX_IN_MEMORY_ARTIFACT_BYTES:
                    body = s3.get_object(Bucket=src_bucket, Key=src_key)["Body"].read()
                    s3.put_object(Bucket=bucket, Key=key, Body=body, IfNoneMatch="*")
                else:
                    s3.copy_object(
                        Bucket=bucket, Key=key, CopySource={"Bucket": src_bucket, "Key": src_key}, IfNoneMatch="*"
                    )
                return True
            except Exception as error:
                if _error_code(error) not in _CONFLICT_CODES:
                    raise
                # A concurrent run created it first: fall through and compare its bytes with ours.
                existing = s3.head_object(Bucket=bucket, Key=key)
        if self._same_bytes(s3, src_bucket, src_key, source, bucket, key, existing):
            return False
        raise AirflowException(
            f"s3://{bucket}/{key} already exists with different bytes than {self.model_artifact}; "
            "artifacts are never overwritten (the MME would keep serving its cached copy). "
            "Register a new version instead, e.g. naming.model_version(location, run_date, revision=1)."
        )

    @staticmethod
    def _head_or_none(s3: Any, bucket: str, key: str) -> dict | None:
        try:
            return s3.head_object(Bucket=bucket, Key=key)
        except Exception as error:
            if _error_code(error) in {"404", "NoSuchKey", "NotFound"}:
                return None
            raise

    @staticmethod
    def _same_bytes(s3: Any, src_bucket: str, src_key: str, source: dict, bucket: str, key: str, dest: dict) -> bool:
        if source.get("ContentLength") != dest.get("ContentLength"):
            return False
        # Single-part ETags are MD5s of the bytes; multipart ones ("...-N") depend on part sizes: hash instead.
        if source["ETag"] == dest["ETag"] and "-" not in source["ETag"]:
            return True

        def digest(b: str, k: str) -> str:
            sha = hashlib.sha256()
            for chunk in s3.get_object(Bucket=b, Key=k)["Body"].iter_chunks(1024 * 1024):
                sha.update(chunk)
            return sha.hexdigest()

        return digest(src_bucket, src_key) == digest(bucket, key)


class MMEPromoteModelOperator(AwsBaseOperator[SageMakerFleetHook]):
    """Make a registered version the location's live model in its registry record.

    A version older than the live one is not made live unless ``allow_older`` (a backfill must not move
    live backwards); that is a success with ``promoted`` False and the reason, and the version is still
    marked released (it is what was live for its date, see :func:`live_version_on`). With ``decision``,
    it skips unless the evaluation accepted the model (:func:`check_decision`), and ``version`` left unset
    is read from it.

    With ``outlets=[AssetAlias(...)]``, a promotion also emits an Asset event for the location's registry
    record (``s3://<registry>/<location>.json``) through each alias.

    Returns ``{"location", "version", "live_version", "previous_version", "promoted", "reason",
    "asset_event"}``.
    """

    aws_hook_class = SageMakerFleetHook
    template_fields = aws_template_fields(
        "mme_prefix", "registry_prefix", "location", "version", "allow_older", "decision"
    )
    template_fields_renderers = {"decision": "json"}
    operator_extra_links = (MMEArtifactLink(), MMERegistryRecordLink())

    def __init__(
        self,
        *,
        mme_prefix: str,
        registry_prefix: str,
        location: str,
        version: str | None = None,
        allow_older: bool = False,
        decision: dict | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.decision = decision
        self.mme_prefix = mme_prefix
        self.registry_prefix = registry_prefix
        self.location = location
        self.version = version
        self.allow_older = allow_older

    def execute(self, context: Context) -> dict:
        from sagemaker_fleet.utils.naming import mme_artifact_key

        fill_from_decision(self, "version")
        check_decision(self.decision, f"{self.location} {self.version}")
        _require(self, "version")
        target_model = mme_artifact_key(self.location, self.version)
        new_key = _version_key(self.version)
        allow_older = self.allow_older
        if isinstance(allow_older, str):  # a rendered template
            allow_older = allow_older.strip().lower() in {"1", "true", "yes", "on"}
        mme_bucket, mme_key_prefix = _prefix(self.mme_prefix, "mme_prefix")
        MMEArtifactLink.persist_for(context, self, bucket=mme_bucket, key=mme_key_prefix + target_model)
        MMERegistryRecordLink.persist_for(
            context, self, **dict(zip(("bucket", "key"), record_key(self.registry_prefix, self.location), strict=True))
        )
        if (
            MMERegisterModelOperator._head_or_none(self.hook.s3_client, mme_bucket, mme_key_prefix + target_model)
            is None
        ):
            raise AirflowException(
                f"s3://{mme_bucket}/{mme_key_prefix}{target_model} does not exist: register {self.version} first"
            )
        outcome: dict[str, Any] = {}

        def promote(record: dict | None) -> dict | None:
            archived = version_entry(record, self.version, read_archive)
            if record is None or archived is None:
                raise AirflowException(
                    f"{self.location} {self.version} is not in the registry "
                    f"({self.registry_prefix}); run MMERegisterModelOperator first"
                )
            live = record.get("live_version")
            outcome.update(previous_version=live, live_version=live, promoted=False)
            # An archived version (a rollback to an old one) comes back into the record's window.
            entry = record.setdefault("versions", {}).setdefault(self.version, dict(archived))
            newly_released = not entry.get("released_at")
            if newly_released:
                entry["released_at"] = _utcnow()
            if live == self.version:
                outcome["reason"] = f"{self.version} is already live"
                return _touched(record) if newly_released else None
            if live is not None and new_key < _version_key(live) and not allow_older:
                outcome["reason"] = (
                    f"{self.version} is older than the live {live}: released for its date, the live pointer "
                    "stays (pass allow_older=True to roll back)"
                )
                return _touched(record) if newly_released else None
            record["live_version"] = self.version
            record["live_target_model"] = target_model
            record.setdefault("live_history", []).append(
                {"version": self.version, "previous_version": live, "at": _utcnow()}
            )
            _touched(record)
            outcome.update(live_version=self.version, promoted=True)
            outcome["reason"] = f"{self.version} is live (was {live})" if live else f"{self.version} is live (first)"
            return record

        read_archive = archive_reader(self.hook, self.registry_prefix)
        update_record(self.hook, self.registry_prefix, self.location, promote, keep=(self.version,))
        self.log.info("%s: %s", self.location, outcome["reason"])
        outcome["asset_event"] = self._announce(context, outcome) if outcome["promoted"] else False
        return {"location": self.location, "version": self.version, **outcome}

    def _announce(self, context: Context, outcome: dict[str, Any]) -> bool:
        """An Asset event for the location's record through each AssetAlias in ``outlets``: consumers learn
        which location's live model changed (the asset is only known at run time, hence the alias)."""
        from airflow.sdk import Asset, AssetAlias

        aliases = [outlet for outlet in self.outlets if isinstance(outlet, AssetAlias)]
        bucket, key = record_key(self.registry_prefix, self.location)
        for alias in aliases:
            context["outlet_events"][alias].add(
                Asset(f"s3://{bucket}/{key}"),
                extra={
                    "location": self.location,
                    "version": self.version,
                    "previous_version": outcome["previous_version"],
                },
            )
        return bool(aliases)
