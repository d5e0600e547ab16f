"""What the operations of every job kind (training, processing, transform) share: creating the record
under the store's lock (a unique name, the account's instance quota), Describe, Stop and List with their
status filter and paging. Each kind's module keeps what is its own: validation and the record's fields."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .control_plane import RequestContext, list_page, paged, save_tags
from .errors import AwsError, validation_error
from .jobs import ACTIVE, TERMINAL, JobKind, JobRunner
from .store import public
from .validation import arn, require


@dataclass(frozen=True)
class JobOperations:
    kind: JobKind
    noun: str  # "training job", as AWS's messages name the kind
    arn_key: str  # "TrainingJobArn"
    summaries_key: str  # "TrainingJobSummaries"
    summary_keys: tuple[str, ...]  # the fields a List* summary carries (those the record has)
    instance_count: Callable[[dict[str, Any]], int]  # instances a job holds against the account quota
    quota_setting: str  # the EmulatorConfig field holding the quota, e.g. "max_concurrent_training_jobs"
    duplicate_message: str  # ResourceInUse message; ``{arn}`` is the existing job's ARN
    runner: Callable[[Any], JobRunner]  # the emulator's runner of this kind
    missing: Callable[[str], AwsError]  # the error a name that names no job answers

    def arn(self, ctx: RequestContext, name: str) -> str:
        return arn(ctx.region, self.kind.store_kind, name)

    def create(
        self, ctx: RequestContext, record: dict[str, Any], *, instance_type: str, tags: list[dict[str, str]]
    ) -> dict[str, Any]:
        """Store a validated new job (its name unused, the quota not exceeded), tag it and start it."""
        name = record[self.kind.name_key]
        job_arn = record[self.arn_key]
        emulator = ctx.emulator
        store = emulator.store
        with store.locked():
            if store.get(self.kind.store_kind, name) is not None:
                raise AwsError("ResourceInUse", self.duplicate_message.format(arn=job_arn))
            running = sum(
                self.instance_count(job)
                for job in store.list(self.kind.store_kind)
                if job[self.kind.status_key] in ACTIVE
            )
            delta = self.instance_count(record)
            limit = getattr(emulator.config, self.quota_setting)
            if running + delta > limit:
                raise AwsError(
                    "ResourceLimitExceeded",
                    f"The account-level service limit '{instance_type} for {self.noun} usage' is {limit} Instances, "
                    f"with current utilization of {running} Instances and a request delta of {delta} Instances. "
                    "Please use AWS Service Quotas to request an increase for this quota. If AWS Service Quotas is "
                    "not available, contact AWS support to request an increase for this quota.",
                )
            store.put(self.kind.store_kind, name, record)
        if tags:
            save_tags(ctx, job_arn, tags)
        self.runner(emulator).submit(name)
        return {self.arn_key: job_arn}

    def get(self, ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
        name = require(body, self.kind.name_key)
        record = ctx.emulator.store.get(self.kind.store_kind, name)
        if record is None:
            raise self.missing(name)
        return record

    def describe(self, ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
        return public(self.get(ctx, body))

    def stop(self, ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
        record = self.get(ctx, body)
        status = record[self.kind.status_key]
        if status in TERMINAL:
            raise validation_error(f"The request was rejected because the {self.noun} is in status {status}.")
        self.runner(ctx.emulator).stop(record[self.kind.name_key])
        return {}

    def list(self, ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
        page, token = list_page(
            ctx.emulator.store.list(self.kind.store_kind),
            body,
            name_key=self.kind.name_key,
            status_key=self.kind.status_key,
        )
        summaries = [{k: r[k] for k in self.summary_keys if k in r} for r in page]
        return paged(self.summaries_key, summaries, token)
