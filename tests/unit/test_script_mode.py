"""The training toolkit's rules as the emulator applies them (no server): hyperparameter decoding and
arguments, the command, requirements checks, the source archive filter, and the failure reason."""

from __future__ import annotations

import io
import sys
import tarfile
from pathlib import Path

import pytest

from include.sagemaker_emulator import script_mode
from include.sagemaker_emulator.framework_images import sklearn_versions
from include.sagemaker_emulator.jobs import Failed


def test_hyperparameters_are_json_decoded_or_kept() -> None:
    decoded = script_mode.decode_hyperparameters(
        {"n": "50", "rate": "0.1", "flag": "true", "name": '"rf"', "raw": "binary:logistic", "list": "[1, 2]"}
    )
    assert decoded == {"n": 50, "rate": 0.1, "flag": True, "name": "rf", "raw": "binary:logistic", "list": [1, 2]}


def test_user_args_are_sorted_with_short_keys_and_dicts_as_the_toolkit_writes_them() -> None:
    args = script_mode.user_args({"n_estimators": 50, "a": 1, "opts": {"x": 1, "y": "z"}, "flag": True})
    assert args == ["-a", "1", "--flag", "True", "--n_estimators", "50", "--opts", "x=1,y=z"]


@pytest.mark.parametrize(
    ("program", "expected"),
    [
        ("train.py", [sys.executable, "train.py", "--k", "v"]),
        ("run.sh", ["/bin/sh", "-c", "./run.sh --k v"]),
        ("pkg/train", [sys.executable, "-m", "pkg.train", "--k", "v"]),
    ],
)
def test_command_uses_the_emulators_interpreter(program: str, expected: list[str]) -> None:
    assert script_mode.command(program, ["--k", "v"]) == expected


def test_framework_for_knows_every_sklearn_version_and_xgboost_framework_mode() -> None:
    from include.sagemaker_images import image_uri

    for version in sklearn_versions():
        uri = image_uri("sklearn", "us-east-1", version, py_version="py3")
        assert script_mode.framework_for(uri, {}) == ("sklearn", version)
    assert "0.20.0" in sklearn_versions() and "1.9-0" in sklearn_versions()
    xgb = image_uri("xgboost", "eu-west-1", "1.7-1")
    assert script_mode.framework_for(xgb, {"sagemaker_program": '"t.py"'}) == ("xgboost", "1.7-1")
    assert script_mode.framework_for(xgb, {"num_round": "5"}) is None  # algorithm mode
    assert script_mode.framework_for("x/linear-learner:1", {"sagemaker_program": '"t.py"'}) is None


def _requirements(tmp_path: Path, text: str) -> Path:
    (tmp_path / "requirements.txt").write_text(text)
    return tmp_path


def test_installed_requirements_pass_and_are_logged(tmp_path: Path) -> None:
    lines: list[str] = []
    text = "# pinned by the image\nnumpy\nscikit-learn>=0.20\n--index-url https://example.invalid\n"
    text += 'pywin32; sys_platform == "win32"\n'
    script_mode.check_requirements(_requirements(tmp_path, text), lines.append)
    assert any(line.startswith("requirements.txt: numpy ") for line in lines)
    assert any("pip option '--index-url https://example.invalid' ignored" in line for line in lines)
    assert not any("pywin32" in line for line in lines)  # its marker excludes this platform


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("eli5\n", "line 1 needs package 'eli5', which is not installed"),
        ("numpy\nnumpy==0.0.1\n", "line 2 needs numpy==0.0.1, but numpy"),
        ("numpy>=>1\n", "line 1 'numpy>=>1' is not a requirement"),
    ],
)
def test_missing_or_mismatched_requirements_fail_as_client_errors(tmp_path: Path, text: str, words: str) -> None:
    with pytest.raises(Failed) as failed:
        script_mode.check_requirements(_requirements(tmp_path, text), lambda _line: None)
    assert str(failed.value).startswith("ClientError: requirements.txt")
    assert words in str(failed.value)


def _archive(*members: tuple[tarfile.TarInfo, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for info, data in members:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.mark.parametrize("name", ["../escape.py", "/etc/cron.d/x", "a/../../b.py"])
def test_source_members_outside_the_code_dir_are_refused(tmp_path: Path, name: str) -> None:
    archive = _archive((tarfile.TarInfo("train.py"), b"print(1)\n"), (tarfile.TarInfo(name), b"x"))
    with pytest.raises(Failed, match="ClientError: The source archive s3://b/src.tar.gz cannot be used"):
        script_mode.extract_source(archive, tmp_path / "code", "s3://b/src.tar.gz")
    assert not (tmp_path / "escape.py").exists()


def test_a_source_archive_extracts_with_subdirectories(tmp_path: Path) -> None:
    archive = _archive((tarfile.TarInfo("train.py"), b"print(1)\n"), (tarfile.TarInfo("lib/util.py"), b"X = 1\n"))
    script_mode.extract_source(archive, tmp_path / "code", "s3://b/src.tar.gz")
    assert (tmp_path / "code" / "lib" / "util.py").read_text() == "X = 1\n"


def test_a_broken_archive_is_a_client_error(tmp_path: Path) -> None:
    with pytest.raises(Failed, match="is not a readable tar.gz file"):
        script_mode.extract_source(b"not a tarball", tmp_path / "code", "s3://b/src.tar.gz")


def test_failure_reason_is_the_toolkits_or_the_scripts_own(tmp_path: Path) -> None:
    lines = ["starting", "Traceback (most recent call last):", '  File "t.py", line 3', "KeyError: 'x'"]
    reason = script_mode.failure_reason(tmp_path, 1, [sys.executable, "t.py", "--k", "v"], lines)
    assert reason == (
        "AlgorithmError: ExecuteUserScriptError:\nExitCode 1\nErrorMessage \"KeyError: 'x'\"\n"
        'Command "python t.py --k v"'
    )
    assert (tmp_path / "output" / "failure").read_text() == reason.removeprefix("AlgorithmError: ")
    killed = script_mode.failure_reason(tmp_path / "other", -9, [sys.executable, "t.py"], [])
    assert "ExitCode 137" in killed and "OutOfMemory: Process killed by SIGKILL" in killed
    own = tmp_path / "own"
    (own / "output").mkdir(parents=True)
    (own / "output" / "failure").write_text("the data had no label column")
    assert script_mode.failure_reason(own, 2, ["x"], []) == "AlgorithmError: the data had no label column"
