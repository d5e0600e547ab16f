"""What answers InvokeEndpoint: loaded variants, the multi-model LRU cache, weighted routing tables.

Routing tables live in memory (``ServingPlane.routes``) and are replaced whole when a deployment changes
them, so a request either sees the old table or the new one and never a half-built one. A warm request
runs the model inline on the event loop (no thread hop); only downloads/loads and very large payloads go
to a thread.
"""

from __future__ import annotations

import asyncio
import bisect
import hashlib
import io
import os
import random
import shutil
import tarfile
import tempfile
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ..algorithms import ModelInvocationError, Predictor, load_predictor
from ..aws import MissingObject
from ..validation import split_s3_uri

if TYPE_CHECKING:
    from ..aws import MotoFacade

_TMP_ROOT = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None


class UnsafeMember(tarfile.FilterError):
    """A model.tar.gz member that could land outside the scratch directory, or is not plain data."""

    def __init__(self, member: tarfile.TarInfo, why: str):
        super().__init__(f"member {member.name!r} {why}")
        self.tarinfo = member


def model_member_filter(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo:
    """Only regular files and directories with relative names that stay inside ``dest``.

    Stricter than tarfile's "data" filter, which maps absolute names and allows links within ``dest``:
    a model archive has no business holding either.
    """
    name = member.name
    if name.startswith("/"):
        raise UnsafeMember(member, "has an absolute path")
    if ".." in name.split("/"):
        raise UnsafeMember(member, "climbs out of the archive with '..'")
    if "\x00" in name:
        raise UnsafeMember(member, "has a NUL character in its name")
    if member.issym() or member.islnk():
        raise UnsafeMember(member, f"is a link (to {member.linkname!r}); a model archive holds only files")
    if not (member.isreg() or member.isdir()):
        raise UnsafeMember(member, "is a device, FIFO or other special file; a model archive holds only files")
    return tarfile.data_filter(member, dest)


def _within_space(scratch: str) -> Callable[[tarfile.TarInfo, str], tarfile.TarInfo]:
    """model_member_filter, plus a budget: a small archive that inflates to more than half the scratch file
    system's free space (a decompression bomb; the scratch dir is in RAM when /dev/shm exists) is refused
    before it fills it. Sizes come from the members' headers, which bound what extraction writes."""
    budget = shutil.disk_usage(scratch).free // 2
    used = 0

    def check(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo:
        nonlocal used
        checked = model_member_filter(member, dest)
        used += max(0, member.size)
        if used > budget:
            raise UnsafeMember(member, f"takes the archive past {budget} bytes, half the free scratch space")
        return checked

    return check


def extract_archive(raw: bytes, dest: str | Path, source: str) -> None:
    """Untar a .tar.gz held in memory into ``dest`` (files and directories only, inside ``dest``)."""
    try:
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:*") as tar:
            tar.extractall(dest, filter=_within_space(str(dest)))
    except (tarfile.TarError, OSError, EOFError, ValueError) as exc:
        raise ModelInvocationError(
            500, f"Unable to load model: {source} is not a readable model.tar.gz archive ({exc})."
        ) from None


def load_archive(raw: bytes, source: str, version: str | None = None) -> Predictor:
    """Untar a model.tar.gz held in memory into a scratch directory and load it like the container."""
    with tempfile.TemporaryDirectory(prefix="sm-model-", dir=_TMP_ROOT) as tmp:
        extract_archive(raw, tmp, source)
        try:
            return load_predictor(Path(tmp), version)
        except ModelInvocationError as exc:
            # Name the artifact: the scratch directory means nothing to the user.
            raise ModelInvocationError(exc.status_code, f"{exc.message} (model artifact {source})") from None


class MissingModelData(Exception):
    """A multi-model endpoint's TargetModel has no object in S3."""

    def __init__(self, url: str):
        super().__init__(url)
        self.url = url


def instance_id(endpoint: str, variant: str) -> str:
    return "i-" + hashlib.sha1(f"{endpoint}/{variant}".encode()).hexdigest()[:17]


class ModelCache:
    """Loaded multi-model-endpoint models by TargetModel name, least recently used evicted first.

    Used only from the event loop; a load runs in a thread as one task that every concurrent caller for
    the same name awaits, so a model is downloaded and loaded once.
    """

    def __init__(self, capacity: int, keep: bool = True):
        self.capacity = max(1, capacity)
        self.keep = keep  # ModelCacheSetting=Disabled: unload right after the invocation
        self.models: OrderedDict[str, Predictor] = OrderedDict()
        self.loading: dict[str, asyncio.Task[Predictor]] = {}
        # Called once per real load with (name, milliseconds), e.g. to write the endpoint's log line.
        self.on_loaded: Callable[[str, float], None] | None = None

    def get(self, name: str) -> Predictor | None:
        predictor = self.models.get(name)
        if predictor is not None:
            self.models.move_to_end(name)
        return predictor

    async def load(self, name: str, loader: Callable[[str], Predictor]) -> Predictor:
        task = self.loading.get(name)
        if task is None:
            task = asyncio.ensure_future(self._load(name, loader))
            self.loading[name] = task
        return await asyncio.shield(task)

    async def _load(self, name: str, loader: Callable[[str], Predictor]) -> Predictor:
        started = time.perf_counter()
        try:
            predictor = await asyncio.to_thread(loader, name)
        finally:
            self.loading.pop(name, None)
        if self.on_loaded is not None:
            self.on_loaded(name, (time.perf_counter() - started) * 1000)
        if self.keep:
            self.models[name] = predictor
            while len(self.models) > self.capacity:
                self.models.popitem(last=False)
        return predictor


class Variant:
    """One production variant of one deployed endpoint configuration (a 'fleet' member)."""

    def __init__(
        self,
        *,
        endpoint: str,
        region: str,
        name: str,
        model_name: str,
        algorithm: str,
        predictor: Predictor | None = None,
        model_data_url: str | None = None,
        cache_capacity: int = 100,
        cache_enabled: bool = True,
        moto: MotoFacade | None = None,
    ):
        self.endpoint = endpoint
        self.region = region
        self.name = name
        self.model_name = model_name
        self.algorithm = algorithm
        self.predictor = predictor
        self.multi_model = predictor is None
        self.model_data_url = model_data_url or ""
        self.dims = (region, endpoint, name)
        self.log_stream = f"{name}/{instance_id(endpoint, name)}"
        self.cache = ModelCache(cache_capacity, cache_enabled) if self.multi_model else None
        self._moto = moto
        if self.multi_model:
            self._bucket, prefix = split_s3_uri(self.model_data_url, "ModelDataUrl")
            self._prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"

    def target_url(self, target: str) -> str:
        return f"s3://{self._bucket}/{self._prefix}{target}"

    def close(self) -> None:
        """Stop what serves this variant (script mode: its worker processes)."""
        if self.predictor is not None:
            self.predictor.close()

    def load_target(self, target: str) -> Predictor:
        """Download and load one TargetModel (runs in a thread)."""
        assert self._moto is not None
        try:
            raw = self._moto.s3_get(self._bucket, self._prefix + target)
        except MissingObject:
            raise MissingModelData(self.target_url(target)) from None
        return load_archive(raw, self.target_url(target))


class Route:
    """A weighted routing table: ``entries`` are (variant, weight); weights are relative ratios."""

    __slots__ = ("_by_name", "_cumulative", "_total", "_variants", "entries")

    def __init__(self, entries: list[tuple[Variant, float]]):
        self.entries = entries
        self._variants: list[Variant] = []
        self._cumulative: list[float] = []
        total = 0.0
        for variant, weight in entries:
            if weight > 0:
                total += weight
                self._variants.append(variant)
                self._cumulative.append(total)
        self._total = total
        self._by_name: dict[str, list[tuple[Variant, float]]] = {}
        for variant, weight in entries:
            self._by_name.setdefault(variant.name, []).append((variant, weight))

    def pick(self) -> Variant | None:
        if not self._variants:
            return None
        if len(self._variants) == 1:
            return self._variants[0]
        index = bisect.bisect_right(self._cumulative, random.random() * self._total)
        return self._variants[min(index, len(self._variants) - 1)]

    def named(self, name: str) -> Variant | None:
        candidates = self._by_name.get(name)
        if not candidates:
            return None
        if len(candidates) == 1:
            return candidates[0][0]
        # Mid-deployment (canary/linear) the same variant name exists in the old and the new fleet.
        total = sum(w for _, w in candidates)
        if total <= 0:
            return candidates[-1][0]
        point = random.random() * total
        for variant, weight in candidates:
            point -= weight
            if point <= 0:
                return variant
        return candidates[-1][0]

    def variant_names(self) -> list[str]:
        return list(self._by_name)
