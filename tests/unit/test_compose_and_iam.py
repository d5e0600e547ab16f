"""Static checks of docker-compose.yaml, docker-compose.aws.yaml, the Dockerfile and the IAM policies in iam/.

Docker is not needed (nor run): the files are parsed and checked against what Airflow 3.3 with the
CeleryExecutor needs and against what the DAGs and plugins actually read and call.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yaml"
COMPOSE_AWS = ROOT / "docker-compose.aws.yaml"
DOCKERFILE = ROOT / "Dockerfile"
IAM = ROOT / "iam"
EXECUTION_POLICY = IAM / "sagemaker-execution-role-policy.json"
EXECUTION_TRUST = IAM / "sagemaker-execution-role-trust.json"
AIRFLOW_POLICY = IAM / "airflow-policy.json"
README = ROOT / "README.md"

AIRFLOW_IMAGE = "apache/airflow:3.3.2-python3.11"
EMULATOR = "sagemaker-emulator"
AIRFLOW_SERVICES = {
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
}
REQUIRED_SERVICES = {"postgres", "redis", EMULATOR, *AIRFLOW_SERVICES}
# Services that run until stopped (airflow-init exits once done; profile-only helpers are not started).
LONG_RUNNING = REQUIRED_SERVICES - {"airflow-init"}
CODE_MOUNTS = {"dags": "/opt/airflow/dags", "plugins": "/opt/airflow/plugins", "include": "/opt/airflow/include"}
# The only actions allowed on "Resource": "*": AWS offers no resource-level permissions for them.
STAR_RESOURCE_ACTIONS = {
    "sagemaker:ListTrainingJobs",
    "sagemaker:ListModels",
    "sagemaker:ListEndpointConfigs",
    "sagemaker:ListEndpoints",
    "cloudwatch:GetMetricStatistics",
    "cloudwatch:ListMetrics",
    "cloudwatch:PutMetricData",
    "ecr:GetAuthorizationToken",
}
PLACEHOLDERS = {"ACCOUNT_ID", "REGION", "BUCKET", "RAW_BUCKET", "EXECUTION_ROLE_NAME"}
SAMPLE = {
    "ACCOUNT_ID": "111122223333",
    "REGION": "eu-west-1",
    "BUCKET": "my-housing-bucket",
    "RAW_BUCKET": "my-raw-listings",
    "EXECUTION_ROLE_NAME": "housing-sagemaker-execution",
}
AWS_ENV = {
    "AWS_REGION": "eu-west-1",
    "HOUSING_BUCKET": "my-housing-bucket",
    "HOUSING_ROLE_ARN": "arn:aws:iam::111122223333:role/housing-sagemaker-execution",
}


# --- helpers -------------------------------------------------------------------------------------------

_VAR = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def interpolate(value: str, env: dict[str, str] | None = None) -> str:
    """Compose's variable interpolation (``${X}``, ``${X:-default}``, ``${X:?error}``, ``$$``) with ``env``."""
    env = env or {}

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group("name"), match.group("op"), match.group("arg")
        current = env.get(name)
        if op in (":-", "-"):
            return current if current or (op == "-" and current is not None) else arg
        if op in (":?", "?"):
            if current is None or (op == ":?" and current == ""):
                raise KeyError(f"{name}: {arg}")
            return current
        return current or ""

    return _VAR.sub(replace, value)


def load_yaml(path: Path) -> dict[str, Any]:
    with path.open() as handle:
        return yaml.safe_load(handle)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_yaml(COMPOSE)


@pytest.fixture(scope="module")
def aws_override() -> dict[str, Any]:
    return load_yaml(COMPOSE_AWS)


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def environment(service: dict[str, Any]) -> dict[str, Any]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return env


def argv(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return shlex.split(value) if isinstance(value, str) else [str(part) for part in value]


def healthcheck_text(service: dict[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    return " ".join(test) if isinstance(test, list) else test


def aws_connection(env: dict[str, Any], shell_env: dict[str, str] | None = None) -> dict[str, Any]:
    return json.loads(interpolate(env["AIRFLOW_CONN_AWS_DEFAULT"], shell_env))


def dockerfile_from_images() -> list[str]:
    return [line.split()[1] for line in DOCKERFILE.read_text().splitlines() if line.upper().startswith("FROM ")]


def statements(path: Path) -> list[dict[str, Any]]:
    return json.loads(path.read_text())["Statement"]


def as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def fill(text: str) -> str:
    for name, value in SAMPLE.items():
        text = text.replace("${" + name + "}", value)
    return text


def granted(path: Path, action: str) -> list[str]:
    """The (filled) resource patterns of the Allow statements granting ``action``."""
    patterns: list[str] = []
    for statement in json.loads(fill(path.read_text()))["Statement"]:
        if statement["Effect"] == "Allow" and action in as_list(statement["Action"]):
            patterns.extend(as_list(statement["Resource"]))
    return patterns


def allows(path: Path, action: str, arn: str) -> bool:
    return any(fnmatch.fnmatchcase(arn, pattern) for pattern in granted(path, action))


def sagemaker_arn(kind: str, name: str) -> str:
    # SageMaker ARNs carry the resource name in lower case.
    return f"arn:aws:sagemaker:{SAMPLE['REGION']}:{SAMPLE['ACCOUNT_ID']}:{kind}/{name.lower()}"


def project_sources() -> str:
    files = [*sorted((ROOT / "dags").glob("*.py")), *sorted((ROOT / "plugins").rglob("*.py"))]
    files += sorted((ROOT / "include" / "housing").rglob("*.py"))
    return "\n".join(path.read_text() for path in files)


# --- the compose file ----------------------------------------------------------------------------------


def test_compose_loads_and_has_every_service(compose: dict[str, Any]) -> None:
    assert isinstance(compose, dict) and isinstance(compose.get("services"), dict)
    missing = REQUIRED_SERVICES - set(compose["services"])
    assert not missing, f"docker-compose.yaml lacks {sorted(missing)}"


def test_airflow_services_and_emulator_run_the_airflow_332_image(services: dict[str, dict[str, Any]]) -> None:
    assert dockerfile_from_images() == [AIRFLOW_IMAGE]
    for name in {*AIRFLOW_SERVICES, EMULATOR}:
        service = services[name]
        build = service.get("build")
        if build is None:
            assert interpolate(service["image"]).startswith("apache/airflow:3.3.2"), name
            continue
        context = interpolate(build if isinstance(build, str) else build.get("context", "."))
        dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
        assert (COMPOSE.parent / context / dockerfile).resolve() == DOCKERFILE, f"{name} builds {context}/{dockerfile}"


def test_dockerfile_installs_requirements_txt() -> None:
    lines = [line.strip() for line in DOCKERFILE.read_text().splitlines()]
    copies = [line.split()[1:] for line in lines if line.upper().startswith("COPY ")]
    destinations = [parts[-1] for parts in copies if "requirements.txt" in parts[:-1]]
    assert destinations, "the Dockerfile never copies requirements.txt"
    destination = destinations[0]
    target = destination + "requirements.txt" if destination.endswith("/") else destination
    runs = " ".join(line for line in lines if line.upper().startswith("RUN "))
    assert re.search(rf"pip install\b[^&;]*-r\s+{re.escape(target)}(\s|$)", runs), runs


def test_code_is_mounted_under_opt_airflow(services: dict[str, dict[str, Any]]) -> None:
    for name in AIRFLOW_SERVICES:
        mounts = {}
        for volume in services[name].get("volumes", []):
            source, target = interpolate(volume).split(":")[:2]
            mounts[target] = (COMPOSE.parent / source).resolve()
        for folder, target in CODE_MOUNTS.items():
            assert mounts.get(target) == ROOT / folder, f"{name}: ./{folder} is not mounted at {target}"


def test_pythonpath_has_the_project_root(services: dict[str, dict[str, Any]]) -> None:
    for name in {*AIRFLOW_SERVICES, EMULATOR}:
        paths = str(environment(services[name]).get("PYTHONPATH", "")).split(":")
        assert "/opt/airflow" in paths, f"{name}: PYTHONPATH={paths} cannot import include.housing"


def test_one_jwt_secret_for_every_airflow_service(services: dict[str, dict[str, Any]]) -> None:
    secrets = {name: environment(services[name]).get("AIRFLOW__API_AUTH__JWT_SECRET") for name in AIRFLOW_SERVICES}
    assert all(secrets.values()), f"services without AIRFLOW__API_AUTH__JWT_SECRET: {secrets}"
    assert len({interpolate(value) for value in secrets.values()}) == 1, secrets
    assert len(set(secrets.values())) == 1, "the secret must be the same expression everywhere"
    assert interpolate(next(iter(secrets.values())), {"AIRFLOW__API_AUTH__JWT_SECRET": "mine"}) == "mine"


def test_celery_executor_and_airflow_settings(services: dict[str, dict[str, Any]]) -> None:
    apiserver_ports = {str(port).rsplit(":", 1)[-1] for port in services["airflow-apiserver"].get("ports", [])}
    for name in AIRFLOW_SERVICES:
        env = environment(services[name])
        assert env.get("AIRFLOW__CORE__EXECUTOR") == "CeleryExecutor", name
        assert str(env.get("AIRFLOW__CORE__LOAD_EXAMPLES")).lower() == "false", name
        url = urlparse(interpolate(env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"]))
        assert url.hostname == "airflow-apiserver" and str(url.port) in apiserver_ports, url
        assert url.path.rstrip("/") == "/execution", url
        assert interpolate(env["AIRFLOW__CELERY__BROKER_URL"]).startswith("redis://"), name
        assert "@postgres" in interpolate(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]), name


def test_each_long_running_service_has_a_healthcheck(services: dict[str, dict[str, Any]]) -> None:
    for name in LONG_RUNNING:
        check = services[name].get("healthcheck") or {}
        assert check.get("test") and not check.get("disable"), f"{name} has no healthcheck"
        assert check["test"] != ["NONE"], name
    assert "pg_isready" in healthcheck_text(services["postgres"])
    assert "redis-cli ping" in healthcheck_text(services["redis"])
    assert re.search(
        r"localhost:8080/api/v2/(monitor/health|version)\b", healthcheck_text(services["airflow-apiserver"])
    )
    assert "localhost:8974/health" in healthcheck_text(services["airflow-scheduler"])
    assert "inspect ping" in healthcheck_text(services["airflow-worker"])
    assert "DagProcessorJob" in healthcheck_text(services["airflow-dag-processor"])
    assert "TriggererJob" in healthcheck_text(services["airflow-triggerer"])
    # The scheduler's health server only listens when enabled.
    env = environment(services["airflow-scheduler"])
    assert str(env.get("AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK")).lower() == "true"


def test_depends_on_conditions_as_in_the_official_file(services: dict[str, dict[str, Any]]) -> None:
    for name in AIRFLOW_SERVICES:
        depends = services[name].get("depends_on") or {}
        assert isinstance(depends, dict), f"{name}: depends_on must use conditions"
        for backend in ("postgres", "redis"):
            assert depends.get(backend, {}).get("condition") == "service_healthy", f"{name} -> {backend}"
        if name != "airflow-init":
            assert depends.get("airflow-init", {}).get("condition") == "service_completed_successfully", name
        # The AWS override switches the emulator off, so no Airflow service may require it.
        assert EMULATOR not in depends, name
    worker = services["airflow-worker"]["depends_on"]
    assert worker.get("airflow-apiserver", {}).get("condition") == "service_healthy"


def test_emulator_service_runs_the_emulator_on_all_interfaces(compose: dict[str, Any]) -> None:
    service = compose["services"][EMULATOR]
    words = argv(service.get("entrypoint")) + argv(service.get("command"))
    start = words.index("python")
    assert words[start + 1 : start + 3] == ["-m", "include.sagemaker_emulator"], words
    args = words[start + 3 :]
    assert args[args.index("--host") + 1] == "0.0.0.0", args
    port = args[args.index("--port") + 1] if "--port" in args else "4566"
    assert f"localhost:{port}/_emulator/health" in healthcheck_text(service)
    data_dir = args[args.index("--data-dir") + 1]
    volumes = {interpolate(v).split(":")[1]: interpolate(v).split(":")[0] for v in service.get("volumes", [])}
    assert data_dir in volumes, f"--data-dir {data_dir} is not on a volume"
    assert volumes[data_dir] in (compose.get("volumes") or {}), "the emulator's data must be a named volume"
    assert volumes.get("/opt/airflow/include") and (COMPOSE.parent / volumes["/opt/airflow/include"]).resolve() == (
        ROOT / "include"
    )


def test_aws_default_points_at_the_emulator_service(compose: dict[str, Any]) -> None:
    services = compose["services"]
    emulator_words = argv(services[EMULATOR].get("command"))
    port = emulator_words[emulator_words.index("--port") + 1]
    for name in AIRFLOW_SERVICES:
        conn = aws_connection(environment(services[name]))
        assert conn["conn_type"] == "aws", name
        url = urlparse(conn["extra"]["endpoint_url"])
        assert url.hostname == EMULATOR and str(url.port) == port, f"{name}: {url.geturl()}"
        assert conn["extra"].get("region_name") == "us-east-1", name


def test_dag_settings_and_names_match_the_code(services: dict[str, dict[str, Any]]) -> None:
    from include.housing.nightly import ENVIRONMENT_SETTINGS, environment_settings

    dag_sources = [path.read_text() for path in sorted((ROOT / "dags").glob("housing_*.py"))]
    assert dag_sources
    pools = {m for src in dag_sources for m in re.findall(r'TRAINING_POOL = "([^"]+)"', src)}
    conn_ids = {m for src in dag_sources for m in re.findall(r'AWS_CONN_ID = "([^"]+)"', src)}
    assert pools == {"sagemaker_training"} and conn_ids == {"aws_default"}, (pools, conn_ids)
    init = " ".join(argv(services["airflow-init"]["command"]))
    assert re.search(r"airflow pools set sagemaker_training 4\b", init), "airflow-init must create the pool"
    assert "airflow db migrate" in init
    conn_env = "AIRFLOW_CONN_" + next(iter(conn_ids)).upper()
    for name in AIRFLOW_SERVICES:
        env = {key: interpolate(str(value)) for key, value in environment(services[name]).items() if value is not None}
        assert conn_env in env, f"{name} does not define the connection the DAGs use"
        for _variable, env_var, _default in ENVIRONMENT_SETTINGS.values():
            assert env.get(env_var), f"{name} does not set {env_var}"
        # The defaults must pass the DAGs' own validation of these settings.
        settings = environment_settings(lambda variable, env_var, default, env=env: env.get(env_var) or default)
        assert settings["bucket"] == env["HOUSING_BUCKET"]


def test_simple_auth_manager_user_and_password_file(services: dict[str, dict[str, Any]]) -> None:
    env = environment(services["airflow-apiserver"])
    users = dict(
        pair.split(":")[:2] for pair in interpolate(env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"]).split(",")
    )
    assert "admin" in users.values(), users
    password_file = env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]
    init_env = environment(services["airflow-init"])
    assert init_env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"] == password_file
    # The file airflow-init writes must be on a volume the api-server sees.
    directory = str(Path(password_file).parent)
    for name in ("airflow-init", "airflow-apiserver"):
        targets = {interpolate(v).split(":")[1]: interpolate(v).split(":")[0] for v in services[name]["volumes"]}
        assert directory in targets, f"{name} does not mount {directory}"


# --- the AWS override ----------------------------------------------------------------------------------


def test_aws_override_removes_the_emulator_endpoint(
    services: dict[str, dict[str, Any]], aws_override: dict[str, Any]
) -> None:
    overridden = aws_override["services"]
    airflow_services = {name for name in services if name.startswith("airflow-")}
    assert airflow_services >= AIRFLOW_SERVICES
    for name in airflow_services:
        merged = {**environment(services[name]), **environment(overridden.get(name, {}))}
        conn = aws_connection(merged, AWS_ENV)
        assert conn["conn_type"] == "aws", name
        assert "endpoint_url" not in conn.get("extra", {}), f"{name} still talks to the emulator"
        assert "endpoint_url" not in json.dumps(conn), name
        assert not conn.get("login") and not conn.get("password"), f"{name} keeps the emulator's dummy keys"
        assert conn["extra"]["region_name"] == AWS_ENV["AWS_REGION"], name
        for required in ("AWS_REGION", "HOUSING_BUCKET", "HOUSING_ROLE_ARN"):
            partial = {key: value for key, value in AWS_ENV.items() if key != required}
            with pytest.raises(KeyError):
                for value in merged.values():
                    if value is not None:
                        interpolate(str(value), partial)
        assert interpolate(merged["HOUSING_BUCKET"], AWS_ENV) == AWS_ENV["HOUSING_BUCKET"]
        assert interpolate(merged["HOUSING_ROLE_ARN"], AWS_ENV) == AWS_ENV["HOUSING_ROLE_ARN"]
    emulator_profiles = overridden.get(EMULATOR, {}).get("profiles") or []
    assert emulator_profiles, "the AWS override must keep the emulator from starting"
    assert not set(emulator_profiles) & set(services[EMULATOR].get("profiles") or [])


# --- IAM -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [EXECUTION_POLICY, EXECUTION_TRUST, AIRFLOW_POLICY], ids=lambda p: p.name)
def test_iam_documents_are_valid(path: Path) -> None:
    document = json.loads(path.read_text())
    assert document["Version"] == "2012-10-17"
    assert isinstance(document["Statement"], list) and document["Statement"]
    sids = [statement.get("Sid") for statement in document["Statement"]]
    assert all(sid and re.fullmatch(r"[A-Za-z0-9]+", sid) for sid in sids), sids
    assert len(set(sids)) == len(sids), sids
    for statement in document["Statement"]:
        assert statement["Effect"] in {"Allow", "Deny"}, statement
        assert as_list(statement["Action"]), statement
        if path == EXECUTION_TRUST:
            assert "Principal" in statement and "Resource" not in statement
        else:
            assert as_list(statement["Resource"]) and "Principal" not in statement
    filled = fill(path.read_text())
    assert "${" not in filled, "a placeholder outside the documented set"
    for arn in re.findall(r'"(arn:[^"]*)"', filled):
        assert re.match(r"arn:aws:(s3|sagemaker|logs|ecr|iam|cloudwatch)::?[^:]*:", arn), arn


@pytest.mark.parametrize("path", [EXECUTION_POLICY, AIRFLOW_POLICY], ids=lambda p: p.name)
def test_no_star_action_and_star_resource_only_where_aws_requires_it(path: Path) -> None:
    for statement in statements(path):
        actions = as_list(statement["Action"])
        assert not any("*" in action for action in actions), f"wildcard action in {statement['Sid']}"
        if "*" in as_list(statement["Resource"]):
            assert as_list(statement["Resource"]) == ["*"], statement["Sid"]
            assert set(actions) <= STAR_RESOURCE_ACTIONS, f"{statement['Sid']} puts {actions} on *"
            assert "StarRequired" in statement["Sid"], f"{statement['Sid']} must say why it needs *"


def test_passrole_only_for_the_execution_role_and_only_to_sagemaker() -> None:
    role = "arn:aws:iam::${ACCOUNT_ID}:role/${EXECUTION_ROLE_NAME}"
    passing = [s for s in statements(AIRFLOW_POLICY) if "iam:PassRole" in as_list(s["Action"])]
    assert len(passing) == 1
    assert as_list(passing[0]["Resource"]) == [role]
    assert passing[0]["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
    iam_actions = {a for s in statements(AIRFLOW_POLICY) for a in as_list(s["Action"]) if a.startswith("iam:")}
    assert iam_actions == {"iam:PassRole", "iam:GetRole"}
    for statement in statements(AIRFLOW_POLICY):
        if "iam:GetRole" in as_list(statement["Action"]):
            assert as_list(statement["Resource"]) == [role]
    assert not any(a.startswith("iam:") for s in statements(EXECUTION_POLICY) for a in as_list(s["Action"]))


def test_trust_policy_trusts_sagemaker_only() -> None:
    (statement,) = statements(EXECUTION_TRUST)
    assert statement["Effect"] == "Allow"
    assert statement["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    assert as_list(statement["Action"]) == ["sts:AssumeRole"]


def test_airflow_policy_grants_exactly_the_sagemaker_calls_the_code_makes() -> None:
    source = project_sources()
    resources = r"training_jobs?|models?|endpoint_configs?|endpoints?|endpoint_weights_and_capacities|tags"
    calls = set(re.findall(rf"\b((?:create|describe|delete|update|stop|list|invoke)_(?:{resources}))\b", source))
    used = {"sagemaker:" + "".join(word.capitalize() for word in call.split("_")) for call in calls}
    assert {"sagemaker:CreateTrainingJob", "sagemaker:InvokeEndpoint", "sagemaker:UpdateEndpoint"} <= used
    granted_actions = {
        a for s in statements(AIRFLOW_POLICY) for a in as_list(s["Action"]) if a.startswith("sagemaker:")
    }
    assert used - granted_actions == set(), f"the code calls {sorted(used - granted_actions)} without permission"
    # Creating with Tags needs AddTags (tag-on-create); nothing else beyond what the code calls.
    assert granted_actions - used == {"sagemaker:AddTags"}, sorted(granted_actions - used)


def test_s3_delete_granted_only_if_the_code_deletes_objects() -> None:
    deletes = bool(re.search(r"\.delete_objects?\(|\.delete_bucket\(", project_sources()))
    for path in (AIRFLOW_POLICY, EXECUTION_POLICY):
        actions = {a for s in statements(path) for a in as_list(s["Action"])}
        assert ("s3:DeleteObject" in actions) == (deletes and path == AIRFLOW_POLICY), path.name
        assert "s3:DeleteBucket" not in actions


def test_resource_patterns_cover_the_names_the_dags_use_and_nothing_else() -> None:
    from include.housing.ab_rollout import run_prefix
    from include.housing.naming import sagemaker_name, training_job_name
    from include.housing.params import AB_DEFAULTS, NIGHTLY_DEFAULTS

    day = dt.date(2026, 11, 23)
    nightly_job = training_job_name("housing_mme_nightly", "Chicago_IL", day, attempt=2)
    prefix = run_prefix("housing_ab_rollout", "manual__2026-11-23T10:00:00+00:00", day)
    mme_endpoint, ab_endpoint = NIGHTLY_DEFAULTS["endpoint_name"], AB_DEFAULTS["endpoint_name"]
    expected = {
        ("sagemaker:CreateTrainingJob", "training-job"): [nightly_job, sagemaker_name(prefix, "challenger")],
        ("sagemaker:CreateModel", "model"): [sagemaker_name(mme_endpoint, "mme", "0a1b2c3d"), prefix + "-champion"],
        ("sagemaker:CreateEndpointConfig", "endpoint-config"): [
            sagemaker_name(mme_endpoint, "cfg", "0a1b2c3d"),
            sagemaker_name(prefix, "ab"),
            sagemaker_name(prefix, "champion", "only"),
        ],
        ("sagemaker:UpdateEndpoint", "endpoint"): [mme_endpoint, ab_endpoint],
        ("sagemaker:InvokeEndpoint", "endpoint"): [mme_endpoint, ab_endpoint],
        ("sagemaker:AddTags", "training-job"): [nightly_job],
    }
    for (action, kind), names in expected.items():
        for name in names:
            assert allows(AIRFLOW_POLICY, action, sagemaker_arn(kind, name)), f"{action} on {kind}/{name}"
        assert not allows(AIRFLOW_POLICY, action, sagemaker_arn(kind, "someone-elses-resource")), action
    bucket, raw = SAMPLE["BUCKET"], SAMPLE["RAW_BUCKET"]
    assert allows(AIRFLOW_POLICY, "s3:PutObject", f"arn:aws:s3:::{bucket}/mme/{mme_endpoint}/Chicago_IL/x.tar.gz")
    assert not allows(AIRFLOW_POLICY, "s3:PutObject", "arn:aws:s3:::another-bucket/key")
    assert not allows(AIRFLOW_POLICY, "s3:PutObject", f"arn:aws:s3:::{raw}/key"), "the raw source is read-only"
    assert allows(AIRFLOW_POLICY, "s3:GetObject", f"arn:aws:s3:::{raw}/date=2026-11-23/location=Chicago_IL/x.csv")
    role_arn = f"arn:aws:iam::{SAMPLE['ACCOUNT_ID']}:role/{SAMPLE['EXECUTION_ROLE_NAME']}"
    assert allows(AIRFLOW_POLICY, "iam:PassRole", role_arn)
    assert not allows(AIRFLOW_POLICY, "iam:PassRole", role_arn.replace("housing-", "admin-"))
    log_stream = f"arn:aws:logs:{SAMPLE['REGION']}:{SAMPLE['ACCOUNT_ID']}:log-group:/aws/sagemaker/TrainingJobs"
    assert allows(AIRFLOW_POLICY, "logs:GetLogEvents", log_stream + f":log-stream:{nightly_job}/algo-1-1")
    assert not allows(AIRFLOW_POLICY, "logs:GetLogEvents", log_stream.replace("/aws/sagemaker/", "/other/"))


def test_execution_role_reads_inputs_and_writes_only_training_output() -> None:
    bucket = SAMPLE["BUCKET"]
    channel = f"arn:aws:s3:::{bucket}/prepared/date=2026-11-23/location=Chicago_IL/train/train.csv"
    assert allows(EXECUTION_POLICY, "s3:GetObject", channel)
    assert allows(EXECUTION_POLICY, "s3:GetObject", f"arn:aws:s3:::{bucket}/mme/housing-mme/Chicago_IL/a.tar.gz")
    assert allows(
        EXECUTION_POLICY, "s3:PutObject", f"arn:aws:s3:::{bucket}/training-output/Chicago_IL/job/model.tar.gz"
    )
    assert not allows(EXECUTION_POLICY, "s3:PutObject", f"arn:aws:s3:::{bucket}/mme/housing-mme/Chicago_IL/a.tar.gz")
    assert allows(EXECUTION_POLICY, "s3:ListBucket", f"arn:aws:s3:::{bucket}")
    log_group = f"arn:aws:logs:{SAMPLE['REGION']}:{SAMPLE['ACCOUNT_ID']}:log-group:/aws/sagemaker/TrainingJobs"
    assert allows(EXECUTION_POLICY, "logs:PutLogEvents", log_group + ":log-stream:hmn-chicago-il-20261123/algo-1")
    xgboost_repo = f"arn:aws:ecr:{SAMPLE['REGION']}:683313688378:repository/sagemaker-xgboost"
    assert allows(EXECUTION_POLICY, "ecr:BatchGetImage", xgboost_repo)
    assert not allows(EXECUTION_POLICY, "ecr:BatchGetImage", xgboost_repo.replace("sagemaker-xgboost", "private"))


def test_placeholders_are_the_documented_ones() -> None:
    used = set()
    for path in (EXECUTION_POLICY, EXECUTION_TRUST, AIRFLOW_POLICY):
        used |= set(re.findall(r"\$\{([A-Za-z_]+)\}", path.read_text()))
    assert used == PLACEHOLDERS, used
    readme = README.read_text()
    assert "## Running against AWS" in readme and "## Scaling out with docker compose" in readme
    section = readme.split("## Running against AWS", 1)[1]
    for name in PLACEHOLDERS:
        assert name in section, f"README does not say how to fill ${{{name}}}"
    for name in ("sagemaker-execution-role-policy.json", "sagemaker-execution-role-trust.json", "airflow-policy.json"):
        assert f"iam/{name}" in section, name


def test_rollback_alarms_are_granted_exactly_where_the_code_creates_them() -> None:
    source = project_sources()
    assert "put_metric_alarm(" in source, "the deploy operator creates rollback alarms"
    patterns = granted(AIRFLOW_POLICY, "cloudwatch:PutMetricAlarm")
    assert patterns == ["arn:aws:cloudwatch:eu-west-1:111122223333:alarm:sagemaker-fleet-*"]
    # The alarm names the hook builds fall under that pattern.
    assert re.search(r'f"sagemaker-fleet-\{endpoint_name\}-\{variant_name\}-5xx"', source)
    # Tags on PutMetricAlarm need TagResource; SageMaker reads the alarms' states with the caller's rights.
    assert granted(AIRFLOW_POLICY, "cloudwatch:TagResource") == patterns
    assert granted(AIRFLOW_POLICY, "cloudwatch:DescribeAlarms") == patterns
