"""Script-mode training: the user's own script in the scikit-learn image, or in the XGBoost image in framework
mode, run the way the SageMaker training toolkit (``sagemaker-training``) runs it.

* Images: ``sagemaker-scikit-learn:<version>`` (every version in sagemaker-core's image config, the same list
  processing jobs accept) always run a script; ``sagemaker-xgboost:<version>`` runs one when the hyperparameter
  ``sagemaker_program`` is present (framework mode), its built-in algorithm otherwise.
* The code: ``sagemaker_submit_directory`` is the S3 URI of ``sourcedir.tar.gz``; it is extracted into
  ``/opt/ml/code`` (regular files and directories only, nothing outside, the filter model archives use) and
  ``sagemaker_program`` runs there: ``python <program> --key value ...`` for ``*.py``, ``sh -c ./<program>`` for
  ``*.sh``, ``python -m <module>`` otherwise. ``python``/``python3`` are this emulator's interpreter: one
  Python stack serves every image version, so a script written for an old scikit-learn fails on its own calls.
* Hyperparameters: every value JSON-decoded (kept as the string when that fails), ``sagemaker_*`` keys taken
  out, the rest passed as sorted ``--key value`` arguments and ``SM_HP_<KEY>`` variables.
* ``requirements.txt`` in the source directory is checked against what is installed (``importlib.metadata``),
  never installed: a package that is missing or at a version the line excludes fails the job with a
  ``ClientError`` naming it.
* A non-zero exit fails the job with ``AlgorithmError: ExecuteUserScriptError`` (exit code, the exception
  line, the command); the traceback is in the job's CloudWatch stream.

Where ``/opt/ml`` is: with a private mount namespace (root and ``unshare``, as processing jobs use) each host's
process sees its own job directory at ``/opt/ml``, so scripts with hard-coded ``/opt/ml/...`` paths run
unchanged and every ``SM_*`` path is the real container path. Without one, the ``SM_*`` variables (and
``SAGEMAKER_BASE_DIR``, which the toolkit itself honours) point at the job directory instead, and a script that
hard-codes ``/opt/ml`` fails on its own paths.
"""

from __future__ import annotations

import functools
import io
import json
import os
import posixpath
import re
import sys
import tarfile
from pathlib import Path
from typing import Any

from .framework_images import sklearn_image_version
from .jobs import Failed

SCRIPT = "script"  # the ``_algorithm`` of a script-mode training job
CONTAINER_ROOT = "/opt/ml"
# Used when sagemaker-core (whose image config lists the versions) is not installed: its 2.27.0 list.
_XGBOOST_IMAGE = re.compile(r"(^|/)sagemaker-xgboost:(?P<version>\d+\.\d+-\d+)(-.*)?$")
# What SM_FRAMEWORK_MODULE says in each image (its SAGEMAKER_TRAINING_MODULE).
FRAMEWORK_MODULES = {
    "sklearn": "sagemaker_sklearn_container.training:main",
    "xgboost": "sagemaker_xgboost_container.training:main",
}
# sagemaker_* hyperparameters the toolkit reads itself; any other sagemaker_* key is a framework parameter.
TOOLKIT_HYPERPARAMETERS = {
    "sagemaker_program", "sagemaker_submit_directory", "sagemaker_enable_cloudwatch_metrics",
    "sagemaker_container_log_level", "sagemaker_job_name", "sagemaker_region", "sagemaker_s3_output",
}  # fmt: skip
MAX_FAILURE_BYTES = 1024
ENVIRONMENT_BASE = {"PYTHONUNBUFFERED": "TRUE", "PYTHONDONTWRITEBYTECODE": "TRUE", "LANG": "C.UTF-8"}


class ScriptRequestError(ValueError):
    """A CreateTrainingJob request whose script-mode settings cannot work (the message says what and where)."""


def decode_hyperparameters(raw: dict[str, str]) -> dict[str, Any]:
    """The toolkit's ``read_hyperparameters``: each value JSON-decoded, or kept as given."""
    decoded: dict[str, Any] = {}
    for key, value in raw.items():
        try:
            decoded[key] = json.loads(value)
        except (ValueError, TypeError):
            decoded[key] = value
    return decoded


def framework_for(image: str, hyperparameters: dict[str, str]) -> tuple[str, str] | None:
    """("sklearn" | "xgboost", image version) when the job runs a user's script, else None."""
    version = sklearn_image_version(image)
    if version:
        return "sklearn", version
    match = _XGBOOST_IMAGE.search(image or "")
    if match and "sagemaker_program" in hyperparameters:
        return "xgboost", match.group("version")
    return None


def check_request(image: str, hyperparameters: dict[str, str], s3_etag: Any) -> dict[str, str]:
    """The script settings of a CreateTrainingJob request, checked before anything is created.

    Returns {"program", "submit_directory"}; raises ScriptRequestError naming the bad value.
    """
    decoded = decode_hyperparameters(hyperparameters)
    program = decoded.get("sagemaker_program")
    if program is None:
        raise ScriptRequestError(
            f"Image {image} runs your training script (script mode): HyperParameters must name it in "
            'sagemaker_program (JSON string, e.g. "\\"train.py\\"") with its code in sagemaker_submit_directory '
            "(S3 URI of sourcedir.tar.gz), as the SageMaker Python SDK sets them."
        )
    if not isinstance(program, str) or not program.strip():
        raise ScriptRequestError(f"HyperParameters sagemaker_program must be a script name, not {program!r}.")
    normal = posixpath.normpath(program)
    if normal.startswith(("/", "..")) or "\x00" in program:
        raise ScriptRequestError(
            f"HyperParameters sagemaker_program {program!r} must be a path inside the source directory "
            "(/opt/ml/code), e.g. train.py or scripts/train.py."
        )
    submit = decoded.get("sagemaker_submit_directory")
    if not isinstance(submit, str) or not submit.startswith("s3://"):
        raise ScriptRequestError(
            f"HyperParameters sagemaker_submit_directory must be the S3 URI of your sourcedir.tar.gz "
            f"(e.g. s3://bucket/prefix/source/sourcedir.tar.gz), not {submit!r}."
        )
    bucket, _, key = submit[len("s3://") :].partition("/")
    if not bucket or not key or key.endswith("/") or s3_etag(bucket, key) is None:
        raise ScriptRequestError(
            f"HyperParameters sagemaker_submit_directory {submit}: no such S3 object. Upload sourcedir.tar.gz "
            "there (a tar.gz of the directory holding your script) before creating the training job."
        )
    return {"program": normal, "submit_directory": submit}


# -- in the job ------------------------------------------------------------------------------------------------
def _member_filter(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo:
    from .serving.runtime import model_member_filter

    return model_member_filter(member, dest)


def extract_source(archive: bytes, code_dir: Path, uri: str) -> None:
    """sourcedir.tar.gz into ``code_dir``: regular files and directories only, every member inside it."""
    from .serving.runtime import UnsafeMember

    code_dir.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:*") as tar:
            tar.extractall(code_dir, filter=_member_filter)
    except UnsafeMember as exc:
        raise Failed(f"ClientError: The source archive {uri} cannot be used: {exc}.") from None
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise Failed(f"ClientError: The source archive {uri} is not a readable tar.gz file ({exc}).") from None


def check_requirements(code_dir: Path, log: Any) -> None:
    """Every requirement of ``requirements.txt`` must already be installed at an allowed version."""
    import importlib.metadata

    from packaging.requirements import InvalidRequirement, Requirement

    path = code_dir / "requirements.txt"
    if not path.is_file() or path.is_symlink():
        return
    log("Checking requirements.txt against the installed packages (the local emulator never installs any)")
    for number, raw in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-"):
            log(f"requirements.txt line {number}: pip option {line!r} ignored by the local emulator")
            continue
        try:
            requirement = Requirement(line)
        except InvalidRequirement as exc:
            raise Failed(f"ClientError: requirements.txt line {number} {line!r} is not a requirement: {exc}") from None
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        try:
            installed = importlib.metadata.version(requirement.name)
        except importlib.metadata.PackageNotFoundError:
            raise Failed(
                f"ClientError: requirements.txt line {number} needs package {requirement.name!r}, which is not "
                "installed in the local emulator's Python environment (the emulator checks requirements but "
                "never installs them; install it there, or remove it from requirements.txt)."
            ) from None
        if requirement.specifier and not requirement.specifier.contains(installed, prereleases=True):
            raise Failed(
                f"ClientError: requirements.txt line {number} needs {requirement}, but {requirement.name} "
                f"{installed} is installed in the local emulator's Python environment (never changed by the "
                "emulator)."
            )
        log(f"requirements.txt: {requirement.name} {installed} is installed")


def _cmd_value(value: Any) -> str:
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def user_args(hyperparameters: dict[str, Any]) -> list[str]:
    """The toolkit's ``to_cmd_args``: sorted keys, ``--key value`` (``-k`` for one-letter keys)."""
    args: list[str] = []
    for key in sorted(hyperparameters):
        args += [f"-{key}" if len(key) == 1 else f"--{key}", _cmd_value(hyperparameters[key])]
    return args


def command(program: str, args: list[str]) -> list[str]:
    """How the toolkit starts the entry point, with this emulator's interpreter as ``python``."""
    if program.endswith(".sh"):
        import shlex

        return ["/bin/sh", "-c", " ".join(shlex.quote(part) for part in [f"./{program}", *args])]
    if program.endswith(".py"):
        return [sys.executable, program, *args]
    return [sys.executable, "-m", program.replace("/", "."), *args]


def _env_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(",", ":"))


def toolkit_environment(
    record: dict[str, Any],
    *,
    framework: str,
    host: str,
    hosts: list[str],
    base: str,
    input_config: dict[str, Any],
    resource_config: dict[str, Any],
) -> dict[str, str]:
    """The ``SM_*`` variables (``to_env_vars``) and the others the toolkit sets, for one host; ``base`` is
    where this host's process sees its /opt/ml."""
    decoded = decode_hyperparameters(record["HyperParameters"])
    user = {k: v for k, v in decoded.items() if not k.startswith("sagemaker_")}
    sagemaker = {k: v for k, v in decoded.items() if k.startswith("sagemaker_")}
    framework_params = {k: v for k, v in sagemaker.items() if k not in TOOLKIT_HYPERPARAMETERS}
    program = sagemaker["sagemaker_program"]
    paths = {
        "model_dir": f"{base}/model",
        "input_dir": f"{base}/input",
        "input_config_dir": f"{base}/input/config",
        "output_dir": f"{base}/output",
        "output_data_dir": f"{base}/output/data",
        "output_intermediate_dir": f"{base}/output/intermediate",
    }
    channels = {name: f"{base}/input/data/{name}" for name in input_config}
    args = user_args(user)
    module_name = program[:-3] if program.endswith(".py") else program
    values: dict[str, Any] = {
        "hosts": hosts,
        "network_interface_name": "eth0",
        "hps": user,
        "user_entry_point": program,
        "framework_params": framework_params,
        "resource_config": resource_config,
        "input_data_config": input_config,
        "channels": sorted(channels),
        "current_host": host,
        "current_instance_type": resource_config["current_instance_type"],
        "current_instance_group": "homogeneousCluster",
        "current_instance_group_hosts": hosts,
        "instance_groups": ["homogeneousCluster"],
        "instance_groups_dict": {group["instance_group_name"]: group for group in resource_config["instance_groups"]},
        "distribution_instance_groups": [],
        "is_hetero": False,
        "module_name": module_name,
        "log_level": sagemaker.get("sagemaker_container_log_level", 20),
        "framework_module": FRAMEWORK_MODULES[framework],
        "num_cpus": os.cpu_count() or 1,
        "num_gpus": 0,
        "num_neurons": 0,
        "module_dir": sagemaker["sagemaker_submit_directory"],
        "user_args": args,
        **paths,
    }
    values["training_env"] = {
        **{k: v for k, v in values.items() if k not in ("hps", "framework_params", "channels", "user_args")},
        "hyperparameters": user,
        "additional_framework_parameters": framework_params,
        "channel_input_dirs": channels,
        "job_name": record["TrainingJobName"],
        "is_master": host == hosts[0],
        "master_hostname": hosts[0],
    }
    env = {"SM_" + key.upper(): _env_value(value) for key, value in values.items()}
    env.update({f"SM_CHANNEL_{name.upper()}": path for name, path in channels.items()})
    env.update({f"SM_HP_{key.upper()}": _env_value(value) for key, value in user.items()})
    env.update(
        {
            "TRAINING_JOB_NAME": record["TrainingJobName"],
            "TRAINING_JOB_ARN": record["TrainingJobArn"],
            "CURRENT_HOST": host,
            "SAGEMAKER_REGION": str(sagemaker.get("sagemaker_region", record["_region"])),
            "AWS_REGION": record["_region"],
            "SAGEMAKER_BASE_DIR": base,
            "SAGEMAKER_TRAINING_MODULE": FRAMEWORK_MODULES[framework],
            "PYTHONPATH": f"{base}/code",
        }
    )
    return env


def process_environment(toolkit: dict[str, str], shims: Path, record: dict[str, Any]) -> dict[str, str]:
    """What the script's process gets: a container's basics, the job's Environment, then the toolkit's."""
    env = {
        "PATH": os.pathsep.join([str(shims), os.environ.get("PATH", "/usr/bin:/bin")]),
        "HOME": os.environ.get("HOME", "/root"),
        **ENVIRONMENT_BASE,
    }
    env.update(record.get("Environment") or {})
    env.update(toolkit)
    return env


def write_shims(shims: Path) -> None:
    """``python``/``python3`` on the script's PATH: this emulator's interpreter."""
    shims.mkdir(parents=True, exist_ok=True)
    for name in ("python", "python3"):
        shim = shims / name
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
        shim.chmod(0o755)


@functools.lru_cache(maxsize=1)
def private_opt_ml_works() -> bool:
    """Whether each script can get its own /opt/ml (a private mount namespace); asked once per server."""
    from .processing import namespace_works

    return namespace_works()


def namespace_prefix(host_dir: Path) -> list[str]:
    """In a new mount namespace: the host's directory bound on /opt/ml, then the command run from
    /opt/ml/code (same pid, so stops and exit codes reach it)."""
    script = 'mount --bind "$1" /opt/ml && cd /opt/ml/code && shift && exec "$@"'
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", str(host_dir)]


def failure_reason(host_dir: Path, exitcode: int, argv: list[str], lines: list[str]) -> str:
    """FailureReason of a script that exited non-zero: ``AlgorithmError: `` + /opt/ml/output/failure when the
    script wrote one, else the toolkit's ExecuteUserScriptError (which it also writes there)."""
    failure = host_dir / "output" / "failure"
    if failure.is_file() and not failure.is_symlink() and failure.stat().st_size:
        text = failure.read_bytes()[:MAX_FAILURE_BYTES].decode("utf-8", "replace")
    else:
        code = 137 if exitcode in (-9, 137) else (128 - exitcode if exitcode < 0 else exitcode)
        shown = " ".join(["python" if part == sys.executable else part for part in argv])
        text = f'ExecuteUserScriptError:\nExitCode {code}\nErrorMessage "{_error_message(lines)}"\nCommand "{shown}"'
        if code == 137:
            text += '\nExtraInfo "OutOfMemory: Process killed by SIGKILL (signal 9)"'
        failure.parent.mkdir(parents=True, exist_ok=True)
        failure.write_text(text)
    return ("AlgorithmError: " + text)[:MAX_FAILURE_BYTES]


def _error_message(lines: list[str]) -> str:
    """The exception line of the script's last traceback (the full traceback is in CloudWatch)."""
    start = max((i for i, line in enumerate(lines) if line.startswith("Traceback (most recent call last)")), default=-1)
    if start < 0:
        return ""
    tail = [line for line in lines[start + 1 :] if line.strip() and not line.startswith((" ", "\t"))]
    return tail[-1].strip().replace('"', "'")[:400] if tail else ""
