"""``make run``: the whole product on this machine, no AWS account needed.

Starts the local SageMaker emulator and Airflow 3 (api-server with the UI, scheduler, dag-processor,
triggerer; LocalExecutor on SQLite, state in ``.local/``), points ``aws_default`` at the emulator,
creates the ``sagemaker_training`` pool, unpauses the DAGs, follows one ``housing_mme_nightly`` run (the
scheduler's run of the latest nightly date when unpausing makes one due, else one triggered through the
REST API; never both), prints a per-location summary with one prediction per location
through the multi-model endpoint, then keeps everything running for the UI until Ctrl-C, when it stops
every process it started. A second ``make run`` reuses the state in ``.local/``.

Ports: ``AIRFLOW_PORT`` (8080) and ``EMULATOR_PORT`` (4566), e.g. ``make run AIRFLOW_PORT=8081``.

Local-only by default: the API server (UI) and the emulator listen on 127.0.0.1; ``AIRFLOW_HOST=0.0.0.0``
(or an address of this machine) opens the UI to the network, ``EMULATOR_HOST`` the emulator, which has no
authentication. Airflow 3.3 binds its log servers (scheduler 8793, triggerer 8794) to every interface
with no setting to change that, so they only start when ``AIRFLOW_HOST`` is not loopback; on one machine
the API server reads task logs from the files directly. The UI login is ``admin`` with a random password
generated on the first run; it and every secret are created 0600 (and ``.local/`` under umask 077).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
LOCAL = ROOT / ".local"
AIRFLOW_HOME = LOCAL / "airflow"
LOGS = LOCAL / "logs"
DAG_ID = "housing_mme_nightly"
USERNAME = "admin"
# The password older versions of this launcher wrote: replaced on sight.
KNOWN_PASSWORD = "admin"
RUN_TIMEOUT_S = int(os.environ.get("RUN_TIMEOUT_S", "1800"))


# What the messages start with; `make run-distributed` (include/distributed.py) sets its own.
PREFIX = "[make run]"


def say(message: str) -> None:
    print(f"{PREFIX} {message}", flush=True)


def port_taken(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def bind_host(variable: str) -> str:
    """The address a server binds: 127.0.0.1 unless the user asked otherwise in ``variable``."""
    host = os.environ.get(variable, "").strip() or "127.0.0.1"
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise SystemExit(f"[make run] {variable}={host!r} is not an IP address (e.g. 127.0.0.1 or 0.0.0.0)") from None
    return host


def is_loopback(host: str) -> bool:
    return ipaddress.ip_address(host).is_loopback


def url_host(host: str) -> str:
    """How this machine reaches a server bound to ``host`` (a wildcard bind is reached on loopback)."""
    address = ipaddress.ip_address(host)
    if address.is_unspecified:
        address = ipaddress.ip_address("::1" if address.version == 6 else "127.0.0.1")
    return f"[{address}]" if address.version == 6 else str(address)


def private_file(path: Path, content: str, replace_if: Any = None) -> str:
    """The content of a secret file, created 0600 from the first byte (never readable by others, not even
    between creating and chmod-ing); an existing one is kept, tightened to 0600 if an older run left it
    wider, and rewritten when ``replace_if(old_content)`` says so."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        os.chmod(path, 0o600)
        existing = path.read_text()
        if replace_if is None or not replace_if(existing):
            return existing
        scratch = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
        descriptor = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(content)
        os.replace(scratch, path)
        return content
    with os.fdopen(descriptor, "w") as handle:
        handle.write(content)
    return content


def ui_password(airflow_home: Path | None = None) -> str:
    """The UI user's password from the simple auth manager's passwords file, generated on the first run."""
    passwords_file = (airflow_home or AIRFLOW_HOME) / "passwords.json"
    generated = json.dumps({USERNAME: secrets.token_urlsafe(12)})

    def unusable(text: str) -> bool:
        try:
            password = json.loads(text).get(USERNAME)
        except (ValueError, AttributeError):
            return True
        return not password or password == KNOWN_PASSWORD

    return json.loads(private_file(passwords_file, generated, replace_if=unusable))[USERNAME]


class Stack:
    """The processes this launcher started, each in its own process group so stopping reaches children."""

    def __init__(self, logs: Path | None = None) -> None:
        self.logs = logs or LOGS
        self.processes: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, argv: list[str], env: dict[str, str], **popen: Any) -> subprocess.Popen[bytes]:
        """Start ``argv`` in a new session, output to ``<logs>/<name>.log``; ``popen``: more Popen arguments
        (e.g. ``user=`` for a server that refuses root)."""
        self.logs.mkdir(parents=True, exist_ok=True)
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 (the child owns it for its life)
        process = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **popen
        )
        self.processes.append((name, process))
        return process

    def check(self) -> None:
        for name, process in self.processes:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with code {process.returncode}; see {self.logs / (name + '.log')}")

    def stop(self) -> None:
        for name, process in reversed(self.processes):
            if process.poll() is None:
                say(f"stopping {name}")
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for _name, process in self.processes:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.processes.clear()


def api_server_url(airflow_host: str, airflow_port: int) -> str:
    """Where this machine's processes (launcher, tasks) reach the API server."""
    return f"http://{url_host(airflow_host)}:{airflow_port}"


def exposure(host: str, variable: str) -> str:
    if is_loopback(host):
        return f"loopback only; {variable}=0.0.0.0 opens it to the network"
    return f"OPEN to the network as {variable}={host} asked"


def airflow_env(
    emulator_url: str, airflow_host: str, airflow_port: int, airflow_home: Path | None = None
) -> dict[str, str]:
    """Every Airflow process's environment (``make run``'s; ``airflow_home`` defaults to .local/airflow)."""
    airflow_home = airflow_home or AIRFLOW_HOME
    airflow_home.mkdir(parents=True, exist_ok=True, mode=0o700)
    # Older runs created these 0755/0644; airflow.cfg holds the Fernet key and the API's secret_key.
    os.chmod(airflow_home, 0o700)
    if airflow_home == AIRFLOW_HOME:
        os.chmod(LOCAL, 0o700)
    if (airflow_home / "airflow.cfg").exists():
        os.chmod(airflow_home / "airflow.cfg", 0o600)
    jwt_secret = private_file(airflow_home / "jwt_secret", secrets.token_urlsafe(32))
    api_url = api_server_url(airflow_host, airflow_port)
    # The UI's own links use base_url: pinned to loopback only when that is the one way in; opened up, the
    # address comes from each request (unless you set AIRFLOW__API__BASE_URL yourself).
    base_url = {"AIRFLOW__API__BASE_URL": api_url} if is_loopback(airflow_host) else {}
    bin_dir = str(Path(sys.executable).parent)
    return {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "plugins")]),
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api_url}/execution/",
        **base_url,
        "AIRFLOW__API__HOST": airflow_host,
        "AIRFLOW__API__PORT": str(airflow_port),
        "AIRFLOW__API_AUTH__JWT_SECRET": jwt_secret,
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USERNAME}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(airflow_home / "passwords.json"),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
        "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "10",
        # The provider's SageMaker operators defer too (their own fallback is False); ours default to True.
        "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE": "True",
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(
            {"conn_type": "aws", "extra": {"endpoint_url": emulator_url, "region_name": "us-east-1"}}
        ),
        "AWS_ENDPOINT_URL": emulator_url,
        "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "local"),
        "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "local"),
        "AWS_DEFAULT_REGION": "us-east-1",
    }


class Api:
    """The Airflow 3 REST API with a JWT from the simple auth manager."""

    def __init__(self, base: str):
        self.base = base
        self.token: str | None = None

    def _call(self, method: str, path: str, body: Any = None, auth: bool = True) -> Any:
        headers = {"Content-Type": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self.token}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")

    def login(self, password: str) -> None:
        answer = self._call("POST", "/auth/token", {"username": USERNAME, "password": password}, auth=False)
        self.token = answer["access_token"]

    def get(self, path: str) -> Any:
        return self._call("GET", path)

    def post(self, path: str, body: Any) -> Any:
        return self._call("POST", path, body)

    def patch(self, path: str, body: Any) -> Any:
        return self._call("PATCH", path, body)


def wait_until(what: str, check: Any, timeout: float, stack: Stack) -> Any:
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        stack.check()
        try:
            result = check()
            if result:
                return result
        except (OSError, urllib.error.URLError, KeyError, ValueError) as exc:
            last_error = exc
        time.sleep(1)
    raise RuntimeError(f"timed out waiting for {what}" + (f" ({last_error})" if last_error else ""))


def existing_runs(api: Api) -> set[str]:
    """Ids of the DAG's runs so far; none when the DAG was never parsed (the API answers 404)."""
    try:
        return {run["dag_run_id"] for run in api.get(f"/api/v2/dags/{DAG_ID}/dagRuns?limit=1000")["dag_runs"]}
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return set()
        raise


def scheduled_run_is_due(dag: dict[str, Any], now: dt.datetime) -> bool:
    """Whether the scheduler is about to start a run of its own: the DAG's next run is not in the future.

    Unpausing a DAG with ``catchup=False`` makes the scheduler start the latest nightly run at once; one
    more triggered run would do the same work again (issue 14: two full nights on the first ``make run``).
    """
    due = dag.get("next_dagrun_run_after")
    if not due or dag.get("is_paused"):
        return False
    return dt.datetime.fromisoformat(due.replace("Z", "+00:00")) <= now


def the_one_run(api: Api, known_runs: set[str], stack: Stack) -> str:
    """The scheduler's run when it starts (or started) one, else a run triggered here: one run, never both."""

    def new_run() -> dict[str, Any] | None:
        runs = api.get(f"/api/v2/dags/{DAG_ID}/dagRuns?limit=1000")["dag_runs"]
        return next((run for run in runs if run["dag_run_id"] not in known_runs), None)

    run = new_run()
    if run is None and scheduled_run_is_due(api.get(f"/api/v2/dags/{DAG_ID}"), dt.datetime.now(dt.UTC)):
        run = wait_until(f"the scheduler's run of {DAG_ID}", new_run, 180, stack)
    if run is not None:
        say(f"the scheduler started {DAG_ID} run {run['dag_run_id']} (the latest nightly date); following it")
        return run["dag_run_id"]
    run = api.post(
        f"/api/v2/dags/{DAG_ID}/dagRuns", {"logical_date": None, "conf": {}, "note": "triggered by make run"}
    )
    say(f"triggered {DAG_ID} run {run['dag_run_id']} (the scheduler has none due); following it")
    return run["dag_run_id"]


def follow_run(api: Api, run_id: str, stack: Stack) -> str:
    """Print each task's state changes until ``run_id`` ends (and those of any other active run of the DAG)."""
    seen: dict[str, str] = {}
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        stack.check()
        runs = api.get(f"/api/v2/dags/{DAG_ID}/dagRuns?state=running&state=queued&limit=10")["dag_runs"]
        ours = api.get(f"/api/v2/dags/{DAG_ID}/dagRuns/{urllib.request.quote(run_id)}")
        for run in [r for r in runs if r["dag_run_id"] != run_id] + [ours]:
            tag = "" if run["dag_run_id"] == run_id else f"({run['dag_run_id'].split('__')[0]} run) "
            if run["state"] == "queued":
                if seen.get(run["dag_run_id"]) != "queued":
                    say(f"  {tag or 'our run '}is queued behind the active run")
                    seen[run["dag_run_id"]] = "queued"
                continue
            instances = api.get(
                f"/api/v2/dags/{DAG_ID}/dagRuns/{urllib.request.quote(run['dag_run_id'])}/taskInstances?limit=1000"
            )["task_instances"]
            for ti in instances:
                label = ti.get("rendered_map_index") or (str(ti["map_index"]) if ti["map_index"] >= 0 else "")
                key = f"{tag}{ti['task_id']}{f' [{label}]' if label else ''}"
                state = ti.get("state") or "none"
                if seen.get(key) != state and state in (
                    "running",
                    "deferred",
                    "success",
                    "failed",
                    "upstream_failed",
                    "up_for_retry",
                    "skipped",
                ):
                    say(f"  {key}: {state}")
                    seen[key] = state
        if ours["state"] in ("success", "failed"):
            return ours["state"]
        time.sleep(2)
    raise RuntimeError(f"the run did not finish within {RUN_TIMEOUT_S} s")


def sample_house(location: str, run_date: str) -> list[str]:
    """The features of one of the day's listings for the location (the feed is deterministic)."""
    import csv
    import io

    from include.housing.feed import FEATURE_COLUMNS, generate_listings

    row = next(csv.DictReader(io.StringIO(generate_listings(location, run_date, 1))))
    return [row[column] for column in FEATURE_COLUMNS]


def print_summary(api: Api, run_id: str, emulator_url: str) -> None:
    import boto3

    from include.housing.naming import mme_artifact_key

    quoted = urllib.request.quote(run_id)
    try:
        entry = api.get(f"/api/v2/dags/{DAG_ID}/dagRuns/{quoted}/taskInstances/summary/xcomEntries/return_value")
    except urllib.error.HTTPError as exc:
        say(f"no summary available ({exc})")
        return
    report = entry.get("value")
    if isinstance(report, str):
        report = json.loads(report)
    runtime = boto3.client(
        "sagemaker-runtime",
        endpoint_url=emulator_url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    say(
        f"Summary for {report['run_date']} (one prediction per location through the MME endpoint "
        f"{report['endpoint_name']}):"
    )
    print(f"  {'location':<18}{'version':<12}{'test RMSE':>12}  {'status':<11}{'prediction':>12}  TargetModel")
    for row in report["rows"]:
        prediction, target = "-", "-"
        if row.get("version") and row.get("status") in ("live", "registered"):
            target = mme_artifact_key(row["location"], row["version"])
            answer = runtime.invoke_endpoint(
                EndpointName=report["endpoint_name"],
                TargetModel=target,
                ContentType="text/csv",
                Body=",".join(sample_house(row["location"], report["run_date"])),
            )
            prediction = f"${float(json.loads(answer['Body'].read())[0]):,.0f}"
        rmse = row.get("test_rmse")
        print(
            f"  {row['location']:<18}{str(row.get('version') or '-'):<12}"
            f"{(f'{rmse:,.0f}' if isinstance(rmse, int | float) else '-'):>12}  "
            f"{str(row.get('status') or '-'):<11}{prediction:>12}  {target}"
        )


def main() -> int:
    # Everything this run and its children create under .local/ (database, logs, airflow.cfg with its
    # Fernet key, the emulator's data) is private to the user from the moment it exists.
    os.umask(0o077)
    airflow_host, emulator_host = bind_host("AIRFLOW_HOST"), bind_host("EMULATOR_HOST")
    airflow_port = int(os.environ.get("AIRFLOW_PORT", "8080"))
    emulator_port = int(os.environ.get("EMULATOR_PORT", "4566"))
    for name, port, variable in (
        ("Airflow's UI", airflow_port, "AIRFLOW_PORT"),
        ("the emulator", emulator_port, "EMULATOR_PORT"),
    ):
        if port_taken(port):
            say(
                f"port {port} for {name} is taken. Stop what uses it, or choose another port: "
                f"make run {variable}={port + 1}"
            )
            return 2
    emulator_url = f"http://{url_host(emulator_host)}:{emulator_port}"
    LOCAL.mkdir(exist_ok=True, mode=0o700)
    env = airflow_env(emulator_url, airflow_host, airflow_port)
    password = ui_password()
    stack = Stack()
    interrupted = False

    def on_signal(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    # Installed explicitly: a launcher started in the background inherits an ignored SIGINT.
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        say(
            f"starting the SageMaker emulator, listening on {emulator_host}:{emulator_port} "
            f"({exposure(emulator_host, 'EMULATOR_HOST')}; data in .local/emulator)"
        )
        stack.start(
            "emulator",
            [
                sys.executable,
                "-m",
                "include.sagemaker_emulator",
                "--host",
                emulator_host,
                "--port",
                str(emulator_port),
                "--data-dir",
                str(LOCAL / "emulator"),
            ],
            env,
        )
        say("preparing Airflow's database in .local/airflow")
        LOGS.mkdir(parents=True, exist_ok=True)
        with open(LOGS / "db-migrate.log", "ab") as log:
            subprocess.run(
                ["airflow", "db", "migrate"], cwd=ROOT, env=env, check=True, stdout=log, stderr=subprocess.STDOUT
            )
        subprocess.run(
            [
                "airflow",
                "pools",
                "set",
                "sagemaker_training",
                "4",
                "SageMaker training jobs in flight (the account quota)",
                "--include-deferred",
            ],
            cwd=ROOT,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        # Airflow 3.3 binds its log servers to every interface, with no setting for the address.
        log_servers = [] if is_loopback(airflow_host) else ["scheduler", "triggerer"]
        stack.start("api-server", ["airflow", "api-server", "--host", airflow_host, "--port", str(airflow_port)], env)
        stack.start("dag-processor", ["airflow", "dag-processor"], env)
        say(
            f"starting Airflow 3: the API server and UI listen on {airflow_host}:{airflow_port} "
            f"({exposure(airflow_host, 'AIRFLOW_HOST')}); logs in {LOGS}"
        )
        wait_until(
            "the emulator", lambda: urllib.request.urlopen(f"{emulator_url}/_emulator/health", timeout=2), 60, stack
        )
        api = Api(api_server_url(airflow_host, airflow_port))
        wait_until("Airflow's API server", lambda: api.login(password) or True, 180, stack)
        # Runs that exist before the scheduler starts (a later make run): the one to follow is a new one.
        known_runs = existing_runs(api)
        # Tasks report to the API server's Execution API: started before it answers, the first ones time out.
        for name in ("scheduler", "triggerer"):
            stack.start(name, ["airflow", name] + ([] if name in log_servers else ["--skip-serve-logs"]), env)
        if log_servers:
            say("the log servers of the scheduler (8793) and the triggerer (8794) listen on every interface")
        wait_until(f"the DAG {DAG_ID} to be parsed", lambda: api.get(f"/api/v2/dags/{DAG_ID}"), 180, stack)
        for dag_id in ("housing_mme_nightly", "housing_ab_rollout"):
            with contextlib.suppress(urllib.error.HTTPError):
                api.patch(f"/api/v2/dags/{dag_id}", {"is_paused": False})
        run_id = the_one_run(api, known_runs, stack)
        state = follow_run(api, run_id, stack)
        say(f"the run ended: {state}")
        print_summary(api, run_id, emulator_url)
        say(
            f"Airflow UI: {api.base}  (log in as {USERNAME} / {password}; "
            f"the password is kept in {AIRFLOW_HOME.relative_to(ROOT) / 'passwords.json'}, mode 0600)"
        )
        say("everything keeps running for the UI; press Ctrl-C to stop it all")
        while True:
            stack.check()
            time.sleep(2)
    except KeyboardInterrupt:
        interrupted = True
        return 0
    except Exception as exc:
        say(f"error: {exc}")
        return 1
    finally:
        if interrupted:
            say("Ctrl-C: stopping everything this run started")
        stack.stop()
        say("stopped")


if __name__ == "__main__":
    sys.exit(main())
