"""``make run-distributed``: the CeleryExecutor shape of docker-compose.yaml as local processes.

Starts, each a real process of this machine listening on 127.0.0.1 only:

* **PostgreSQL** (the machine's, ``/usr/lib/postgresql/<version>/bin``), the metadata database and the
  Celery result backend. It refuses to run as root, so under root it runs as the ``postgres`` user.
* **Redis** (Debian's ``redis-server``), the Celery broker, with a generated password and no persistence.
* **The SageMaker emulator.**
* **Airflow 3**: api-server (UI), scheduler, dag-processor, triggerer and two Celery workers,
  ``worker1@<host>`` and ``worker2@<host>``; task instances record which one ran them.

Then, like ``make run``, it unpauses the DAGs, triggers one ``housing_mme_nightly`` run, follows it,
prints which worker ran each task and the per-location summary, and keeps everything running for the UI
until Ctrl-C, when it stops every process group it started (Celery's prefork children and the task
processes included). A worker that dies is reported and the rest carries on: Airflow retries its tasks
on the other worker.

The settings every Airflow process shares come from ``airflow-distributed.env``, the file
docker-compose.yaml reads too; this launcher overrides only what names a host (and adds its secrets).
Variables already set in the environment win over the file, as compose's ``environment:`` does.

Ports (all configurable, defaults apart from ``make run``'s): ``AIRFLOW_PORT`` 8090, ``EMULATOR_PORT``
4576, ``POSTGRES_PORT`` 5442, ``REDIS_PORT`` 6389. State (database, logs, secrets, 0600) lives in
``.local/distributed`` (``DISTRIBUTED_STATE_DIR``). ``RUN_CONF`` (JSON) is the triggered run's conf,
e.g. ``make run-distributed RUN_CONF='{"houses_per_location": 200}'``; ``WORKER_CONCURRENCY`` (4) the
task slots of each worker.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from include import launcher
from include.launcher import (
    DAG_ID,
    LOCAL,
    ROOT,
    USERNAME,
    Api,
    Stack,
    airflow_env,
    api_server_url,
    follow_run,
    port_taken,
    print_summary,
    private_file,
    ui_password,
    wait_until,
)

SETTINGS_FILE = ROOT / "airflow-distributed.env"
WORKERS = ("worker1", "worker2")
LOOPBACK = "127.0.0.1"
DEFAULT_PORTS = {"AIRFLOW_PORT": 8090, "EMULATOR_PORT": 4576, "POSTGRES_PORT": 5442, "REDIS_PORT": 6389}
# The variables this launcher sets itself, for this machine: the file must not set them.
HOST_VARIABLES = frozenset(
    {
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
        "AIRFLOW__CELERY__BROKER_URL",
        "AIRFLOW__CELERY__RESULT_BACKEND",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
        "AIRFLOW__API__BASE_URL",
        "AIRFLOW__API__HOST",
        "AIRFLOW__CORE__HOSTNAME_CALLABLE",
        "AIRFLOW_CONN_AWS_DEFAULT",
        "AWS_ENDPOINT_URL",
    }
)
DATABASE = "airflow"


PREFIX = "[make run-distributed]"


def say(message: str) -> None:
    print(f"{PREFIX} {message}", flush=True)


def read_settings(path: Path = SETTINGS_FILE) -> dict[str, str]:
    """The shared settings: ``KEY=value`` lines (python-dotenv's reading, as compose reads ``env_file``)."""
    from dotenv import dotenv_values

    if not path.is_file():
        raise SystemExit(f"[make run-distributed] the settings file {path} is missing")
    values = dotenv_values(path, interpolate=False)
    problems = [f"{key} has no value" for key, value in values.items() if value is None or value == ""]
    problems += [f"{key} names a host: the launcher and compose set it" for key in values if key in HOST_VARIABLES]
    if problems:
        raise SystemExit(f"[make run-distributed] {path.name}: " + "; ".join(problems))
    return {key: str(value) for key, value in values.items()}


def configured_port(variable: str) -> int:
    raw = os.environ.get(variable, "").strip() or str(DEFAULT_PORTS[variable])
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise SystemExit(f"[make run-distributed] {variable}={raw!r} is not a port number (1-65535)")
    return int(raw)


def run_conf() -> dict[str, Any]:
    raw = os.environ.get("RUN_CONF", "").strip()
    if not raw:
        return {}
    try:
        conf = json.loads(raw)
    except ValueError as exc:
        raise SystemExit(f"[make run-distributed] RUN_CONF is not JSON: {exc}") from None
    if not isinstance(conf, dict):
        raise SystemExit(f"[make run-distributed] RUN_CONF must be a JSON object, got {type(conf).__name__}")
    return conf


def worker_concurrency() -> int:
    raw = os.environ.get("WORKER_CONCURRENCY", "").strip() or "4"
    if not raw.isdigit() or not 1 <= int(raw) <= 64:
        raise SystemExit(f"[make run-distributed] WORKER_CONCURRENCY={raw!r} is not a number from 1 to 64")
    return int(raw)


def postgres_bin() -> Path:
    """The directory of the machine's PostgreSQL server programs (``PG_BIN``, else the newest Debian one)."""
    if os.environ.get("PG_BIN"):
        candidates = [Path(os.environ["PG_BIN"])]
    else:
        installed = [path for path in Path("/usr/lib/postgresql").glob("*/bin") if path.parent.name.isdigit()]
        candidates = sorted(installed, key=lambda path: int(path.parent.name), reverse=True)
    for directory in candidates:
        if (directory / "initdb").is_file() and (directory / "postgres").is_file():
            return directory
    raise SystemExit(
        "[make run-distributed] no PostgreSQL server found (initdb and postgres in /usr/lib/postgresql/*/bin or "
        "PG_BIN): `make run-distributed` installs it with apt-get, or `apt-get install postgresql`"
    )


class DistributedStack(Stack):
    """A :class:`Stack` that survives the death of a worker (Airflow retries its tasks elsewhere) and stops
    processes that left their parent's group: the task processes Airflow's supervisor puts in groups of
    their own."""

    def __init__(self, logs: Path, pid_dir: Path, expendable: frozenset[str] = frozenset()) -> None:
        super().__init__(logs)
        self.pid_dir = pid_dir
        self.expendable = expendable
        self.reported: set[str] = set()

    def start(self, name: str, argv: list[str], env: dict[str, str], **popen: Any) -> subprocess.Popen[bytes]:
        process = super().start(name, argv, env, **popen)
        # Each process leads its own group (start_new_session): this is its group id too.
        (self.pid_dir / f"{name}.pid").unlink(missing_ok=True)
        private_file(self.pid_dir / f"{name}.pid", str(process.pid))
        return process

    def check(self) -> None:
        for name, process in self.processes:
            if process.poll() is None:
                continue
            if name in self.expendable:
                if name not in self.reported:
                    say(f"{name} died (exit code {process.returncode}); its tasks are retried on the other worker")
                    self.reported.add(name)
                continue
            raise RuntimeError(f"{name} exited with code {process.returncode}; see {self.logs / (name + '.log')}")

    def stop(self) -> None:
        import psutil

        descendants: list[psutil.Process] = []
        for _name, process in self.processes:
            with contextlib.suppress(psutil.Error):
                descendants += psutil.Process(process.pid).children(recursive=True)
        names = [name for name, _process in self.processes]
        super().stop()
        own_group = os.getpgid(0)
        for child in descendants:
            with contextlib.suppress(psutil.Error, OSError):
                if child.is_running() and os.getpgid(child.pid) != own_group:
                    os.killpg(os.getpgid(child.pid), signal.SIGKILL)
        psutil.wait_procs(descendants, timeout=10)
        for name in names:
            (self.pid_dir / f"{name}.pid").unlink(missing_ok=True)


def kill_process_tree(pid: int) -> list[int]:
    """SIGKILL the process group led by ``pid`` and the groups of all its descendants (as a machine dying
    would); returns the pids killed."""
    import psutil

    try:
        tree = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []
    groups = set()
    for process in tree:
        with contextlib.suppress(psutil.Error, OSError):
            groups.add(os.getpgid(process.pid))
    groups.discard(os.getpgid(0))
    for group in groups:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
    return [process.pid for process in tree]


class Postgres:
    """A PostgreSQL cluster in ``<state>/postgres``: created once (initdb), password auth on 127.0.0.1."""

    def __init__(self, state: Path, port: int) -> None:
        self.bin = postgres_bin()
        self.data = state / "postgres" / "data"
        self.socket_dir = state / "postgres" / "socket"
        self.port = port
        self.password = private_file(state / "secrets" / "postgres_password", secrets.token_urlsafe(24))
        # Root may not run it: the `postgres` user does, and owns its directories.
        self.user = "postgres" if os.geteuid() == 0 else None

    @property
    def url(self) -> str:
        return f"postgresql://{DATABASE}:{urllib.parse.quote(self.password)}@{LOOPBACK}:{self.port}/{DATABASE}"

    def _own(self, path: Path) -> None:
        if self.user:
            account = pwd.getpwnam(self.user)
            os.chown(path, account.pw_uid, account.pw_gid)

    def prepare(self, log: Path) -> None:
        if self.user:
            try:
                pwd.getpwnam(self.user)
            except KeyError:
                raise SystemExit(
                    "[make run-distributed] PostgreSQL refuses to run as root and there is no `postgres` "
                    "user: install the postgresql package (it creates one) or run as another user"
                ) from None
        self.data.parent.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(mode=0o700, exist_ok=True)
        self._own(self.socket_dir)
        if self.user:
            # The server reaches its directories through ours (.local, the state directory): traverse only
            # (0711), nothing listable; the secrets, logs and Airflow's home below stay 0700.
            state = self.data.parents[1]
            ours = [self.data.parent, state, *(d for d in state.parents if d == LOCAL or LOCAL in d.parents)]
            for directory in ours:
                os.chmod(directory, 0o711)
            reachable = subprocess.run(["test", "-x", str(self.data.parent)], user=self.user, check=False, cwd="/")
            if reachable.returncode != 0:
                raise SystemExit(
                    f"[make run-distributed] the {self.user} user cannot reach {self.data.parent}: every directory "
                    "above it must be searchable by others (chmod o+x), or choose DISTRIBUTED_STATE_DIR elsewhere"
                )
        if (self.data / "PG_VERSION").exists():
            return
        self.data.mkdir(mode=0o700, exist_ok=True)
        self._own(self.data)
        password_file = self.data.parent / f".initdb-{secrets.token_hex(4)}"
        private_file(password_file, self.password)
        self._own(password_file)
        try:
            with open(log, "ab") as output:
                subprocess.run(
                    [
                        str(self.bin / "initdb"),
                        "--pgdata",
                        str(self.data),
                        "--username",
                        DATABASE,
                        "--pwfile",
                        str(password_file),
                        "--auth-local=peer",
                        "--auth-host=scram-sha-256",
                        "--encoding=UTF8",
                        "--locale=C",
                    ],
                    check=True,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    user=self.user,
                    cwd="/",
                )
        finally:
            password_file.unlink(missing_ok=True)

    def argv(self) -> list[str]:
        return [
            str(self.bin / "postgres"),
            "-D",
            str(self.data),
            "-c",
            f"listen_addresses={LOOPBACK}",
            "-c",
            f"port={self.port}",
            "-c",
            f"unix_socket_directories={self.socket_dir}",
            # Airflow's scheduler, api-server, workers and their tasks each hold connections.
            "-c",
            "max_connections=200",
            # A crash may lose the last commits, never corrupt the database; much faster on a shared disk.
            "-c",
            "synchronous_commit=off",
        ]

    def ensure_database(self) -> None:
        import psycopg2

        with contextlib.closing(
            psycopg2.connect(host=LOOPBACK, port=self.port, user=DATABASE, password=self.password, dbname="postgres")
        ) as connection:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,))
                if cursor.fetchone() is None:
                    cursor.execute(f'CREATE DATABASE "{DATABASE}"')

    def ready(self) -> bool:
        import psycopg2

        try:
            psycopg2.connect(
                host=LOOPBACK,
                port=self.port,
                user=DATABASE,
                password=self.password,
                dbname="postgres",
                connect_timeout=2,
            ).close()
        except psycopg2.OperationalError:
            return False
        return True


class Redis:
    """Debian's redis-server on 127.0.0.1: no persistence, a generated password in a 0600 config file."""

    def __init__(self, state: Path, port: int) -> None:
        server = shutil.which("redis-server")
        if not server:
            raise SystemExit(
                "[make run-distributed] redis-server not found: `make run-distributed` installs it with apt-get, "
                "or `apt-get install redis-server`"
            )
        self.server = server
        self.port = port
        self.dir = state / "redis"
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.password = private_file(state / "secrets" / "redis_password", secrets.token_hex(24))
        # In a file, not on the command line where `ps` would show it.
        self.config = self.dir / "redis.conf"
        self.config.unlink(missing_ok=True)
        private_file(
            self.config,
            "\n".join(
                [
                    f"bind {LOOPBACK}",
                    f"port {self.port}",
                    "protected-mode yes",
                    f"requirepass {self.password}",
                    'save ""',
                    "appendonly no",
                    f"dir {self.dir}",
                    "daemonize no",
                    "",
                ]
            ),
        )

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@{LOOPBACK}:{self.port}/0"

    def argv(self) -> list[str]:
        return [self.server, str(self.config)]

    def ready(self) -> bool:
        import redis

        return bool(redis.Redis(host=LOOPBACK, port=self.port, password=self.password, socket_timeout=2).ping())


def distributed_env(
    settings: dict[str, str], airflow_home: Path, emulator_url: str, airflow_port: int, postgres: Postgres, redis: Redis
) -> dict[str, str]:
    """Every Airflow process's environment: ``make run``'s, then the shared settings file (unless the
    environment sets a variable), then this machine's host names and secrets."""
    env = airflow_env(emulator_url, LOOPBACK, airflow_port, airflow_home)
    env.update({key: os.environ.get(key, value) for key, value in settings.items()})
    # Keep what the caller's PYTHONPATH adds after the project's own entries.
    extra = [entry for entry in os.environ.get("PYTHONPATH", "").split(os.pathsep) if entry]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys([*env["PYTHONPATH"].split(os.pathsep), *extra]))
    env.update(
        {
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": postgres.url.replace("postgresql://", "postgresql+psycopg2://", 1),
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+"
            + postgres.url.replace("postgresql://", "postgresql+psycopg2://", 1),
            "AIRFLOW__CELERY__BROKER_URL": redis.url,
            # Task instances record their worker (include/worker_identity.py) rather than the machine.
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "include.worker_identity.hostname",
        }
    )
    return env


class PatientApi(Api):
    """The REST API client of ``make run``, retrying reads that time out: on a busy machine the API server
    may answer one poll late, which is no reason to stop the whole stack. Writes are not retried (a
    trigger that did arrive must not be sent twice)."""

    def get(self, path: str) -> Any:
        for attempt in range(5):
            try:
                return super().get(path)
            except urllib.error.HTTPError:
                raise
            except (TimeoutError, urllib.error.URLError) as exc:
                if attempt == 4:
                    raise
                say(f"the API server did not answer {path.split('?')[0]} in time ({exc}); asking again")
                time.sleep(2)
        raise AssertionError("unreachable")


def print_workers(api: Api, run_id: str) -> dict[str, int]:
    """Which worker ran each task of the run (task instances' ``hostname``); returns tasks per worker."""
    quoted = urllib.parse.quote(run_id)
    instances = api.get(f"/api/v2/dags/{DAG_ID}/dagRuns/{quoted}/taskInstances?limit=1000")["task_instances"]
    say("which worker ran each task (the last try):")
    counts: dict[str, int] = {}
    for ti in sorted(instances, key=lambda t: (t["map_index"], t["task_id"])):
        label = ti.get("rendered_map_index") or (str(ti["map_index"]) if ti["map_index"] >= 0 else "")
        worker = ti.get("hostname") or "-"
        counts[worker] = counts.get(worker, 0) + 1
        name = f"{ti['task_id']}{f' [{label}]' if label else ''}"
        print(f"  {name:<48}{ti.get('state') or 'none':<16}try {ti.get('try_number', 0):<3} {worker}")
    print("  " + ", ".join(f"{worker}: {count} task(s)" for worker, count in sorted(counts.items())))
    return counts


def main() -> int:
    # The helpers shared with `make run` (following the run, stopping) speak under this command's name.
    launcher.PREFIX = PREFIX
    os.umask(0o077)
    ports = {variable: configured_port(variable) for variable in DEFAULT_PORTS}
    if len(set(ports.values())) != len(ports):
        say(f"the ports must differ: {ports}")
        return 2
    for variable, port in ports.items():
        if port_taken(port):
            say(f"port {port} ({variable}) is taken. Stop what uses it or choose another: {variable}={port + 1}")
            return 2
    settings = read_settings()
    conf = run_conf()
    concurrency = worker_concurrency()
    state = Path(os.environ.get("DISTRIBUTED_STATE_DIR") or LOCAL / "distributed").resolve()
    state.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(state, 0o700)
    (state / "secrets").mkdir(exist_ok=True, mode=0o700)
    logs = state / "logs"
    logs.mkdir(exist_ok=True, mode=0o700)
    airflow_home = state / "airflow"
    airflow_port = ports["AIRFLOW_PORT"]
    emulator_url = f"http://{LOOPBACK}:{ports['EMULATOR_PORT']}"
    postgres = Postgres(state, ports["POSTGRES_PORT"])
    redis = Redis(state, ports["REDIS_PORT"])
    infrastructure = DistributedStack(logs, state / "pids")
    airflow = DistributedStack(logs, state / "pids", expendable=frozenset(WORKERS))
    (state / "pids").mkdir(exist_ok=True, mode=0o700)
    interrupted = False

    def on_signal(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        say(f"state, logs and secrets in {state}")
        postgres.prepare(logs / "initdb.log")
        say(f"starting PostgreSQL ({postgres.bin}) on {LOOPBACK}:{postgres.port}")
        infrastructure.start("postgres", postgres.argv(), dict(os.environ), user=postgres.user)
        say(f"starting Redis on {LOOPBACK}:{redis.port}")
        infrastructure.start("redis", redis.argv(), dict(os.environ))
        env = distributed_env(settings, airflow_home, emulator_url, airflow_port, postgres, redis)
        password = ui_password(airflow_home)
        say(f"starting the SageMaker emulator on {emulator_url}")
        infrastructure.start(
            "emulator",
            [
                sys.executable,
                "-m",
                "include.sagemaker_emulator",
                "--host",
                LOOPBACK,
                "--port",
                str(ports["EMULATOR_PORT"]),
                "--data-dir",
                str(state / "emulator"),
            ],
            env,
        )
        wait_until("PostgreSQL", postgres.ready, 60, infrastructure)
        postgres.ensure_database()
        wait_until("Redis", redis.ready, 30, infrastructure)
        say("preparing Airflow's database (airflow db migrate)")
        with open(logs / "db-migrate.log", "ab") as log:
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
        airflow.start("api-server", ["airflow", "api-server", "--host", LOOPBACK, "--port", str(airflow_port)], env)
        airflow.start("dag-processor", ["airflow", "dag-processor"], env)
        api = PatientApi(api_server_url(LOOPBACK, airflow_port))
        say(f"starting Airflow 3 (CeleryExecutor): API server and UI on {api.base}")
        wait_until(
            "the emulator",
            lambda: urllib.request.urlopen(f"{emulator_url}/_emulator/health", timeout=2),
            60,
            infrastructure,
        )
        wait_until("Airflow's API server", lambda: api.login(password) or True, 240, airflow)
        # Log servers bind every interface (Airflow 3.3 has no setting for it): none is started; the API
        # server reads the task logs from the shared files on this machine.
        for name in ("scheduler", "triggerer"):
            airflow.start(name, ["airflow", name, "--skip-serve-logs"], env)
        host = socket.gethostname()
        for worker in WORKERS:
            airflow.start(
                worker,
                [
                    "airflow",
                    "celery",
                    "worker",
                    "--celery-hostname",
                    f"{worker}@%h",
                    "--concurrency",
                    str(concurrency),
                    "--skip-serve-logs",
                ],
                {**env, "AIRFLOW_WORKER_NAME": f"{worker}@{host}"},
            )
        say(f"two Celery workers, {', '.join(f'{w}@{host}' for w in WORKERS)}, {concurrency} task slots each")
        wait_until(f"the DAG {DAG_ID} to be parsed", lambda: api.get(f"/api/v2/dags/{DAG_ID}"), 240, airflow)
        for dag_id in ("housing_mme_nightly", "housing_ab_rollout"):
            with contextlib.suppress(urllib.error.HTTPError):
                api.patch(f"/api/v2/dags/{dag_id}", {"is_paused": False})
        run = api.post(
            f"/api/v2/dags/{DAG_ID}/dagRuns",
            {"logical_date": None, "conf": conf, "note": "triggered by make run-distributed"},
        )
        say(f"triggered {DAG_ID} run {run['dag_run_id']}; following it")
        state_of_run = follow_run(api, run["dag_run_id"], airflow)
        say(f"the run ended: {state_of_run}")
        print_workers(api, run["dag_run_id"])
        print_summary(api, run["dag_run_id"], emulator_url)
        say(
            f"Airflow UI: {api.base}  (log in as {USERNAME} / {password}; the password is kept in "
            f"{airflow_home / 'passwords.json'}, mode 0600)"
        )
        say("everything keeps running for the UI; press Ctrl-C to stop it all")
        while True:
            airflow.check()
            infrastructure.check()
            time.sleep(2)
    except KeyboardInterrupt:
        interrupted = True
        return 0
    except Exception as exc:
        say(f"error: {exc}")
        return 1
    finally:
        # A second Ctrl-C (or a SIGTERM) must not cut the stopping short and leave servers behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if interrupted:
            say("Ctrl-C: stopping everything this run started")
        # Airflow first, so the database and the broker see their clients leave.
        airflow.stop()
        infrastructure.stop()
        say("stopped")


if __name__ == "__main__":
    sys.exit(main())
