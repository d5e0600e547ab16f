"""``python -m include.sagemaker_emulator [--host 127.0.0.1] [--port 4566] [--data-dir .local/emulator]``."""

from __future__ import annotations

import argparse
import errno
import logging
import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path

from .config import EmulatorConfig

# The forkserver's socket is <scratch>/pymp-XXXXXXXX/listener-XXXXXXXX: 32 bytes more, within Linux's 107.
MAX_SCRATCH_PATH = 75


def parse_args(argv: list[str] | None = None) -> EmulatorConfig:
    parser = argparse.ArgumentParser(prog="python -m include.sagemaker_emulator", description=__doc__)
    parser.add_argument("--host", default=os.environ.get("EMULATOR_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("EMULATOR_PORT", "4566")))
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("EMULATOR_DATA_DIR", ".local/emulator")))
    parser.add_argument(
        "--time-scale",
        type=float,
        default=float(os.environ.get("EMULATOR_TIME_SCALE", "0")),
        help="multiplies AWS's nominal transition times (0 = instant, 0.01 = observable)",
    )
    parser.add_argument(
        "--min-transition-seconds",
        type=float,
        default=float(os.environ.get("EMULATOR_MIN_TRANSITION_SECONDS", "0.2")),
        help="shortest time an endpoint stays Creating/Updating/RollingBack/Deleting, whatever the time scale "
        "(AWS takes minutes; 0 = only as long as loading the model takes)",
    )
    parser.add_argument(
        "--max-training-jobs",
        type=int,
        default=int(os.environ.get("EMULATOR_MAX_TRAINING_JOBS", "8")),
        help="concurrent training jobs before ResourceLimitExceeded, like an account quota",
    )
    parser.add_argument(
        "--max-processing-jobs",
        type=int,
        default=int(os.environ.get("EMULATOR_MAX_PROCESSING_JOBS", "8")),
        help="concurrent processing jobs before ResourceLimitExceeded, like an account quota",
    )
    parser.add_argument(
        "--max-transform-instances",
        type=int,
        default=int(os.environ.get("EMULATOR_MAX_TRANSFORM_INSTANCES", "8")),
        help="instances of running transform jobs before ResourceLimitExceeded, like an account quota",
    )
    parser.add_argument(
        "--processing-isolation",
        choices=("auto", "namespace", "lock"),
        default=os.environ.get("EMULATOR_PROCESSING_ISOLATION", "auto"),
        help="namespace: each processing job gets a private /opt/ml (root + unshare); lock: one job at a time "
        "uses the real /opt/ml; auto: namespace when it works here",
    )
    parser.add_argument(
        "--mme-cache-size",
        type=int,
        default=int(os.environ.get("EMULATOR_MME_CACHE_SIZE", "100")),
        help="models each multi-model variant keeps loaded (LRU)",
    )
    parser.add_argument(
        "--durability",
        choices=("write", "fsync", "off"),
        default=os.environ.get("EMULATOR_DURABILITY", "write"),
        help="write: every acknowledged write is in the OS before the answer (survives kill -9); "
        "fsync: also flushed to the disk (survives power loss, slower); off: memory only until shutdown",
    )
    parser.add_argument(
        "--journal-compact-bytes",
        type=int,
        default=int(os.environ.get("EMULATOR_JOURNAL_COMPACT_BYTES", str(64 * 2**20))),
        help="fold the journal of S3/Logs/CloudWatch writes into a new snapshot beyond this size",
    )
    parser.add_argument("--log-level", default=os.environ.get("EMULATOR_LOG_LEVEL", "INFO"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.time_scale < 0:
        parser.error("--time-scale must be >= 0")
    if not 0 <= args.min_transition_seconds <= 60:
        parser.error("--min-transition-seconds (or EMULATOR_MIN_TRANSITION_SECONDS) must be between 0 and 60")
    if args.journal_compact_bytes < 1:
        parser.error("--journal-compact-bytes must be >= 1")
    if args.durability not in ("write", "fsync", "off"):
        parser.error(f"--durability (or EMULATOR_DURABILITY) must be write, fsync or off, not {args.durability!r}")
    if args.processing_isolation not in ("auto", "namespace", "lock"):
        parser.error(
            "--processing-isolation (or EMULATOR_PROCESSING_ISOLATION) must be auto, namespace or lock, "
            f"not {args.processing_isolation!r}"
        )
    if args.max_processing_jobs < 1:
        parser.error("--max-processing-jobs must be >= 1")
    if args.max_transform_instances < 1:
        parser.error("--max-transform-instances must be >= 1")
    return EmulatorConfig(
        host=args.host,
        port=args.port,
        data_dir=args.data_dir.resolve(),
        time_scale=args.time_scale,
        min_transition_seconds=args.min_transition_seconds,
        max_concurrent_training_jobs=args.max_training_jobs,
        max_concurrent_processing_jobs=args.max_processing_jobs,
        max_transform_instances=args.max_transform_instances,
        processing_isolation=args.processing_isolation,
        mme_cache_size=args.mme_cache_size,
        durability=args.durability,
        journal_compact_bytes=args.journal_compact_bytes,
    )


def port_free(host: str, port: int) -> bool:
    """Whether the server could listen on ``host:port``. SO_REUSEADDR, as uvicorn's own listening socket
    uses, so connections in TIME_WAIT left by a crashed (kill -9) emulator don't block a restart."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            return exc.errno != errno.EADDRINUSE
    return True


def use_scratch_dir(data_dir: Path) -> None:
    """Temporary files of the server and of every process it starts (multiprocessing's forkserver socket,
    ...) go to ``<data-dir>/scratch``, emptied at each start, so a kill -9 leaves nothing behind in /tmp.
    Skipped when the path would be too long for the forkserver's Unix socket (108 bytes on Linux)."""
    scratch = data_dir / "scratch"
    if len(str(scratch)) > MAX_SCRATCH_PATH:
        logging.getLogger(__name__).warning(
            "data dir path too long for a scratch dir under it; temporary files go to %s", tempfile.gettempdir()
        )
        return
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True, exist_ok=True)
    os.environ["TMPDIR"] = str(scratch)
    tempfile.tempdir = str(scratch)


def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    if not port_free(config.host, config.port):
        print(
            f"Port {config.port} on {config.host} is taken. Choose another with --port N (or EMULATOR_PORT=N).",
            file=sys.stderr,
        )
        return 2
    use_scratch_dir(config.data_dir)
    import uvicorn

    from .app import EmulatorApp
    from .emulator import Emulator

    app = EmulatorApp(Emulator(config))
    print(f"SageMaker emulator on http://{config.host}:{config.port} (data in {config.data_dir})", flush=True)
    uvicorn.run(
        app,
        host=config.host,
        port=config.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=10,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
