"""Issue 12, item 1 at function level: no client-chosen string becomes a file outside the data dir.

Every place a name becomes a path is driven with a few thousand generated path-like inputs (see
tests/path_like.py): S3 keys staged into a training channel (the real staging code against moto in this
process), control-plane record names (the Store, ARNs included), and model.tar.gz members (the serving
plane's extraction). Each checks that nothing appears outside the data dir (or the scratch dir).
"""

from __future__ import annotations

import io
import itertools
import shutil
import tarfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from include.sagemaker_emulator import safe_paths
from include.sagemaker_emulator.algorithms import ModelInvocationError
from include.sagemaker_emulator.aws import MotoFacade
from include.sagemaker_emulator.config import ACCOUNT_ID, EmulatorConfig
from include.sagemaker_emulator.errors import AwsError
from include.sagemaker_emulator.safe_paths import KeyEscapesChannel, channel_file, derived_name, record_file_stem
from include.sagemaker_emulator.serving import runtime
from include.sagemaker_emulator.store import Store
from include.sagemaker_emulator.training import TrainingRunner, _Failed
from include.sagemaker_emulator.validation import check_name
from tests.path_like import climbs_out, path_like, relative_paths, sandbox_dir, tree

PROPERTY = settings(
    max_examples=1000,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
BUCKET = "path-safety"


def deep_data_dir(sandbox: Path) -> Path:
    # 8 levels + the data dir's own 6 down to a channel: 12 '..' can not leave the sandbox.
    return sandbox.joinpath(*(f"level{i}" for i in range(8)), "data")


# -- channel_file: the cases the issue names, spelled out ------------------------------------------------------
@pytest.mark.parametrize(
    ("key", "prefix"),
    [
        ("p/train/../../../../../../tmp/x.csv", "p/train/"),
        ("p/train/../x.csv", "p/train/"),
        ("p/train/..", "p/train/"),
        ("p/train/a/../../x.csv", "p/train/"),
        ("p/train/./../x.csv", "p/train/"),
        ("p/train//../x.csv", "p/train/"),
        ("../../etc/passwd", ""),
        ("p/train/../train/x.csv", "p/train"),  # prefix without '/': the relative part is '/../train/x.csv'
    ],
)
def test_keys_climbing_out_of_the_channel_are_refused(key: str, prefix: str) -> None:
    with pytest.raises(KeyEscapesChannel) as refused:
        channel_file(key, prefix)
    assert refused.value.key == key


@pytest.mark.parametrize(
    ("key", "prefix", "expected"),
    [
        ("p/train/train.csv", "p/train/", "train.csv"),
        ("p/train/2026/11/part-0.csv", "p/train/", "2026/11/part-0.csv"),
        ("p/train/a/../b.csv", "p/train/", "b.csv"),  # stays inside: normalised
        ("p/train//./x.csv", "p/train/", "x.csv"),
        ("p/train/%2e%2e/x.csv", "p/train/", "%2e%2e/x.csv"),  # already-decoded keys only: '%2e%2e' is a name
        ("p/train/..\\..\\x.csv", "p/train/", "..\\..\\x.csv"),  # a backslash is an ordinary character here
        ("/tmp/x.csv", "", "tmp/x.csv"),  # an absolute-looking key stays below the channel
        ("p/train/train.csv", "p/train/train.csv", "train.csv"),  # S3Uri naming one object
    ],
)
def test_keys_inside_the_channel_keep_their_path(key: str, prefix: str, expected: str) -> None:
    assert channel_file(key, prefix) == Path(expected)


def test_names_that_cannot_be_files_get_derived_names() -> None:
    assert channel_file("p/a\x00b/x.csv", "p/") == Path(derived_name("a\x00b"), "x.csv")
    long_name = "y" * 256
    assert channel_file(f"p/{long_name}", "p/") == Path(derived_name(long_name))
    assert channel_file("p/" + "é" * 128, "p/") == Path(derived_name("é" * 128))  # 256 bytes: too long
    assert channel_file("p/" + "é" * 127, "p/") == Path("é" * 127)  # 254 bytes: kept
    assert channel_file("p/a/..", "p/") == Path(derived_name("p/a/.."))  # folds onto the channel itself


def test_record_file_names_are_single_path_components() -> None:
    arn = "arn:aws:sagemaker:us-east-1:123456789012:endpoint/x"
    assert record_file_stem(arn) == "arn%3Aaws%3Asagemaker%3Aus-east-1%3A123456789012%3Aendpoint%2Fx"  # as before
    assert record_file_stem("../../../tmp/x") == "..%2F..%2F..%2Ftmp%2Fx"
    assert record_file_stem("a\x00b") == "a%00b"
    assert record_file_stem("MyEndpoint") == record_file_stem("myendpoint")
    assert record_file_stem("a" * 300).startswith("sha256-")


@pytest.mark.parametrize("name", ["job\n", "job/../x", "..", "job\x00", "a" * 64])
def test_resource_names_that_become_directories_follow_the_pattern(name: str) -> None:
    # Training job names become job directories: only [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}, no trailing newline.
    with pytest.raises(AwsError) as refused:
        check_name(name, "trainingJobName")
    assert refused.value.code == "ValidationException" and "trainingJobName" in refused.value.message


# -- channel staging: the real staging code, moto in this process, thousands of keys ------------------------------
@pytest.fixture(scope="module")
def staging() -> Iterator[SimpleNamespace]:
    sandbox = sandbox_dir()
    data_dir = deep_data_dir(sandbox)
    data_dir.mkdir(parents=True)
    moto = MotoFacade(data_dir)
    moto._s3.create_bucket(BUCKET, "us-east-1")
    runner = TrainingRunner(store=None, moto=moto, faults=None, config=EmulatorConfig(data_dir=data_dir))
    before = tree(sandbox, skip=data_dir)
    yield SimpleNamespace(sandbox=sandbox, data_dir=data_dir, moto=moto, runner=runner, before=before)
    shutil.rmtree(sandbox)


def _record(prefix: str) -> dict:
    return {
        "AlgorithmSpecification": {"TrainingInputMode": "File"},
        "HyperParameters": {},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        "InputDataConfig": [
            {"ChannelName": "train", "DataSource": {"S3DataSource": {"S3Uri": f"s3://{BUCKET}/{prefix}"}}}
        ],
    }


@PROPERTY
@given(prefix=st.sampled_from(["p/train/", "p/train", ""]), rests=st.lists(path_like, min_size=1, max_size=4))
def test_staged_channel_objects_never_leave_the_channel(staging: SimpleNamespace, prefix: str, rests: list) -> None:
    keys = {prefix + rest: str(i).encode() for i, rest in enumerate(rests)}
    keys = {k: v for k, v in keys.items() if k and len(k.encode()) <= 1024}  # what S3 accepts
    if not keys:
        return
    s3 = staging.moto._s3
    for key, body in keys.items():
        s3.put_object(BUCKET, key, body)
    job_dir = staging.runner.jobs_root / "job"
    channel_dir = job_dir / "input" / "data" / "train"
    files = {k: v for k, v in keys.items() if not k.endswith("/")}
    escaping = {k for k in files if climbs_out(k[len(prefix) :])}
    try:
        staging.runner._prepare(_record(prefix), job_dir, ["algo-1"])
    except _Failed as failed:
        reason = str(failed)
        assert reason.startswith("ClientError: ")
        if "names a path outside" in reason:
            assert any(repr(k) in reason for k in escaping), reason
        else:
            assert not escaping and "cannot both be downloaded" in reason, reason
    else:
        assert not escaping, f"{sorted(escaping)} were staged"
        staged = [p.read_bytes() for p in channel_dir.rglob("*") if p.is_file()]
        assert sorted(staged) == sorted(files.values())
    finally:
        for key in keys:
            s3.delete_object(BUCKET, key)
        assert tree(staging.sandbox, skip=staging.data_dir) == staging.before, "a file appeared outside the data dir"
        outside_job = tree(staging.data_dir, skip=job_dir) - {"training"}
        assert not outside_job, f"files outside the job dir: {sorted(outside_job)[:5]}"
        shutil.rmtree(job_dir, ignore_errors=True)


# -- control-plane records: names and ARNs of any shape --------------------------------------------------------------
record_names = st.one_of(
    path_like,
    # Any character, lone surrogates included: a JSON body can carry them as \ud800 escapes.
    st.text(alphabet=st.characters(exclude_categories=()), max_size=40),
    path_like.map(lambda p: f"arn:aws:sagemaker:us-east-1:{ACCOUNT_ID}:endpoint/{p}"),
).filter(bool)


@pytest.fixture(scope="module")
def store_sandbox() -> Iterator[SimpleNamespace]:
    sandbox = sandbox_dir()
    data_dir = deep_data_dir(sandbox)
    store = Store(data_dir)
    yield SimpleNamespace(sandbox=sandbox, data_dir=data_dir, store=store, before=tree(sandbox, skip=data_dir))
    shutil.rmtree(sandbox)


@settings(PROPERTY, max_examples=800)
@given(name=record_names, kind=st.sampled_from(["tags", "model", "endpoint"]))
def test_record_names_stay_one_file_in_their_folder(store_sandbox: SimpleNamespace, name: str, kind: str) -> None:
    store, folder = store_sandbox.store, store_sandbox.data_dir / "sagemaker" / kind
    store.put(kind, name, {"Name": name, "Tags": []})
    try:
        written = [p for p in folder.iterdir()]
        assert len(written) == 1 and written[0].is_file() and written[0].suffix == ".json", written
        assert store.get(kind, name.upper() if name.isascii() else name)["Name"] == name
        # A restart reads it back under the same name.
        assert Store(store_sandbox.data_dir).get(kind, name)["Name"] == name
    finally:
        assert store.delete(kind, name)
        assert not any(folder.iterdir())
        assert tree(store_sandbox.sandbox, skip=store_sandbox.data_dir) == store_sandbox.before


# -- model.tar.gz members: names, links, devices ----------------------------------------------------------------------
TAR_TYPES = [tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE, tarfile.FIFOTYPE]
members = st.tuples(path_like.filter(bool), st.sampled_from(TAR_TYPES), relative_paths)


def _archive(specs: list[tuple[str, bytes, str]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, link in specs:
            info = tarfile.TarInfo(name)
            info.type = kind
            data = b"not a model"
            if kind == tarfile.REGTYPE:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                info.linkname = link
                tar.addfile(info)
    return buffer.getvalue()


def _unsafe(name: str, kind: bytes) -> bool:
    return name.startswith("/") or ".." in name.split("/") or "\x00" in name or kind not in (b"0", b"5")


@pytest.fixture(scope="module")
def scratch_sandbox() -> Iterator[SimpleNamespace]:
    sandbox = sandbox_dir()
    scratch = deep_data_dir(sandbox)
    scratch.mkdir(parents=True)
    yield SimpleNamespace(sandbox=sandbox, scratch=scratch, before=tree(sandbox))
    shutil.rmtree(sandbox)


@settings(PROPERTY, max_examples=600)
@given(specs=st.lists(members, min_size=1, max_size=4))
def test_model_archive_members_stay_in_the_scratch_dir(scratch_sandbox: SimpleNamespace, specs: list) -> None:
    try:
        raw = _archive(specs)
    except (ValueError, UnicodeError, tarfile.TarError):
        return  # tarfile cannot even write it (e.g. a NUL in a pax name), so no client can send it
    source = "s3://bucket/mme/model.tar.gz"
    extracted: list[set[str]] = []

    def inspect_extraction(model_dir: Path, version: str | None = None) -> None:
        # Stands in for the model loader (none of these archives holds a model): see what was extracted.
        extracted.append(tree(model_dir))
        assert safe_paths.inside(scratch_sandbox.scratch, model_dir)
        raise ModelInvocationError(500, "Unable to load model: no model file found")

    scratch = mock.patch.object(runtime, "_TMP_ROOT", str(scratch_sandbox.scratch))
    loader = mock.patch.object(runtime, "load_predictor", inspect_extraction)
    with scratch, loader, pytest.raises(ModelInvocationError) as refused:
        runtime.load_archive(raw, source)
    assert refused.value.status_code == 500 and source in refused.value.message
    with tarfile.open(fileobj=io.BytesIO(raw)) as written:  # what the archive really holds (tar cuts at NUL)
        unsafe = [m for m in written.getmembers() if _unsafe(m.name, m.type)]
    if unsafe:
        assert "is not a readable model.tar.gz archive" in refused.value.message
        assert not extracted, "the loader ran on an archive with unsafe members"
    else:  # extracted, unless the file system itself refuses a name (longer than 255 bytes, ...)
        assert extracted or "is not a readable model.tar.gz archive" in refused.value.message
    assert tree(scratch_sandbox.sandbox) == scratch_sandbox.before, "the archive left files behind"


@pytest.mark.parametrize(
    ("name", "kind", "link", "why"),
    [
        ("../../../../tmp/evil", tarfile.REGTYPE, "", "climbs out"),
        ("/tmp/evil", tarfile.REGTYPE, "", "absolute path"),
        ("xgboost-model", tarfile.SYMTYPE, "/etc/passwd", "is a link"),
        ("xgboost-model", tarfile.SYMTYPE, "other-file", "is a link"),
        ("xgboost-model", tarfile.LNKTYPE, "other-file", "is a link"),
        ("xgboost-model", tarfile.CHRTYPE, "", "special file"),
        ("xgboost-model", tarfile.FIFOTYPE, "", "special file"),
    ],
)
def test_unsafe_archive_members_are_refused_by_name(
    tmp_path: Path, name: str, kind: bytes, link: str, why: str
) -> None:
    source = "s3://bucket/models/model.tar.gz"
    with mock.patch.object(runtime, "_TMP_ROOT", str(tmp_path)), pytest.raises(ModelInvocationError) as refused:
        runtime.load_archive(_archive([(name, kind, link)]), source)
    message = refused.value.message
    assert source in message and repr(name) in message and why in message, message
    assert list(tmp_path.iterdir()) == []


def test_property_inputs_cover_the_nasty_cases() -> None:
    # The generators must really produce what they are meant to: traversals, encodings, NUL, long names.
    seen = list(itertools.islice(iter(_examples(path_like, 400)), 400))
    assert any(climbs_out(p) for p in seen)
    assert any("\x00" in p for p in seen)
    assert any("%2e%2e" in p.lower() for p in seen)
    assert any(any(len(s.encode()) > 255 for s in p.split("/")) for p in seen)
    assert any(p.startswith("/") for p in seen)


def _examples(strategy: st.SearchStrategy, count: int) -> list:
    found: list = []

    @settings(max_examples=count, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(strategy)
    def collect(value: object) -> None:
        found.append(value)

    collect()
    return found


def test_safe_paths_inside() -> None:
    root = Path("/srv/data")
    assert safe_paths.inside(root, root / "a" / "b")
    assert not safe_paths.inside(root, root / ".." / "x")
    assert not safe_paths.inside(root, Path("/srv/database"))


def test_archive_inflating_past_the_scratch_space_is_refused_before_filling_it(tmp_path: Path) -> None:
    zeros = b"\0" * 1500  # 1.5 KB that gzip packs into a few dozen bytes: a decompression bomb in miniature
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("xgboost-model")
        info.size = len(zeros)
        tar.addfile(info, io.BytesIO(zeros))
    free = shutil.disk_usage(tmp_path)._replace(free=2000)  # half of it, 1000 bytes, is the budget
    scratch = mock.patch.object(runtime, "_TMP_ROOT", str(tmp_path))
    small_disk = mock.patch.object(runtime.shutil, "disk_usage", return_value=free)
    with scratch, small_disk, pytest.raises(ModelInvocationError) as refused:
        runtime.load_archive(buffer.getvalue(), "s3://bucket/bomb/model.tar.gz")
    message = refused.value.message
    assert "'xgboost-model' takes the archive past 1000 bytes" in message and "s3://bucket/bomb" in message
    assert list(tmp_path.iterdir()) == []
