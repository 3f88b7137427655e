"""Long-running processes: workers, the orchestrator, a local cluster, health checks."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import click

from bus.app import create_app
from bus.heartbeat import Heartbeat
from bus.settings import Settings
from ragrelay.cli.settings import require_redis, workers_of
from ragrelay.cli.settings import settings_of as _settings
from schemas import STAGE_SPECS
from schemas.fingerprint import LLM_STAGES

# Worker kinds: every registered stage, and ingest (CPU-bound embedding: prefork).
DEFAULT_POOLS: dict[str, str] = {
    **{name: spec.default_pool for name, spec in STAGE_SPECS.items()},
    "ingest": "prefork",
}
STAGES = tuple(DEFAULT_POOLS)
# Pool sizes. An LLM call costs ~5 ms of CPU and waits ~1 s: one process can keep about 200
# calls in flight before its CPU, not its pool, is the limit (docs/benchmarks-speed.md).
DEFAULT_CONCURRENCY: dict[str, int] = {"gevent": 200, "threads": 16}
LLM_STAGE_THREADS = 200


def _require_redis(settings: Settings, what: str) -> None:
    require_redis(
        settings,
        (
            f"{what} needs a broker: set RAGRELAY_REDIS_URL (e.g. redis://127.0.0.1:6379/0). "
            "Without it, `ragrelay ask` and `ragrelay demo` run everything in one process."
        ),
    ).close()


@click.command()
@click.argument("stage", type=click.Choice(STAGES))
@click.option(
    "--concurrency",
    "-c",
    type=int,
    default=None,
    help="Pool size (default: 200 for the LLM stages' threads and for gevent, 16 for other "
    "threads, 2 for prefork).",
)
@click.option(
    "--pool",
    type=click.Choice(["prefork", "threads", "solo", "gevent"]),
    default=None,
    help="Default: the stage's (schemas.STAGE_SPECS): threads for the LLM-bound stages, "
    "prefork for retrieval and ingest. gevent (pip install 'ragrelay[gevent]') patches "
    "the process at start-up; it measured slower than threads.",
)
@click.pass_context
def worker(ctx: click.Context, stage: str, concurrency: int | None, pool: str | None) -> None:
    """Run a worker of STAGE consuming its own queue."""
    settings = _settings(ctx)
    _require_redis(settings, "ragrelay worker")
    pool = pool or DEFAULT_POOLS[stage]
    if concurrency is None:
        llm_threads = pool == "threads" and stage in LLM_STAGES
        concurrency = LLM_STAGE_THREADS if llm_threads else DEFAULT_CONCURRENCY.get(pool, 2)
    if pool == "gevent":
        _require_patched()
    _start_metrics(settings, pool)
    # Imported here, after _start_metrics: prometheus_client reads PROMETHEUS_MULTIPROC_DIR
    # when bus.metrics is first imported, and the orchestrator process loads no worker code.
    if stage in LLM_STAGES:
        from workers.deps import preflight

        preflight(settings, workers_of(ctx))
    from workers.tasks import register

    app = create_app(settings)
    workers = workers_of(ctx)
    # LLM stages on Claude never embed: no embedding model in their processes.
    on_claude = stage in LLM_STAGES and workers.anthropic.api_key is not None
    register(app, settings, workers, warm_embedder=not on_claude)
    _start_heartbeat(settings, stage)
    app.worker_main(
        [
            "worker",
            "-Q",
            stage,
            "-P",
            pool,
            "-c",
            str(concurrency),
            "-n",
            f"{stage}-{os.getpid()}@%h",
            "--without-gossip",
            "--without-mingle",
            "-l",
            settings.log_level,
        ]
    )


def _require_patched() -> None:
    """A gevent pool in an unpatched process blocks on every socket: refuse to start."""
    try:
        from gevent import monkey
    except ImportError:
        raise click.UsageError(
            "--pool gevent needs gevent: pip install 'ragrelay[gevent]'"
        ) from None
    if not monkey.is_module_patched("socket"):
        raise click.UsageError(
            "--pool gevent needs the process patched before start-up: run it as "
            "`ragrelay worker ...` or `python -m ragrelay worker ...` (ragrelay.cli.greenlets)"
        )


@click.command("orchestrator")
@click.option(
    "--concurrency",
    "-c",
    type=int,
    default=4,
    show_default=True,
    help="Threads consuming the orchestrator queue (ingress by send_task).",
)
@click.pass_context
def orchestrator_command(ctx: click.Context, concurrency: int) -> None:
    """Run the orchestrator: event loop, sweeper, and the `ragrelay.submit` ingress task."""
    from orchestrator import ingress
    from orchestrator.loop import run_loop

    settings = _settings(ctx)
    _require_redis(settings, "ragrelay orchestrator")
    _start_metrics(settings, "threads")
    app = create_app(settings)
    ingress.register(app, settings)
    stop = threading.Event()
    thread = threading.Thread(
        target=run_loop, args=(app, settings, stop), daemon=True, name="ragrelay-engine"
    )
    thread.start()
    _start_heartbeat(settings, "orchestrator")
    try:
        app.worker_main(
            [
                "worker",
                "-Q",
                "orchestrator",
                "-P",
                "threads",
                "-c",
                str(concurrency),
                "-n",
                f"orchestrator-{os.getpid()}@%h",
                "--without-gossip",
                "--without-mingle",
                "-l",
                settings.log_level,
            ]
        )
    finally:
        stop.set()
        thread.join(timeout=5)


@click.command()
@click.option(
    "--workers",
    "spec",
    default="",
    metavar="KIND=N,...",
    help="Processes per kind, e.g. analysis=2,retrieval=4 (default 1 each).",
)
@click.option(
    "--log-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where each process writes its log, <name>.log (default: <RAGRELAY_DATA_DIR>/logs).",
)
@click.option(
    "--verbose",
    is_flag=True,
    help="Let every process write to this terminal too (Celery banners and all), "
    "instead of one line per process.",
)
@click.pass_context
def up(ctx: click.Context, spec: str, log_dir: Path | None, verbose: bool) -> None:
    """Start a local cluster: the orchestrator and every worker kind as its own OS process.

    Prints one line per process when it is ready, with its log file; each process's own
    output (Celery's banner, warnings, logs) goes to <log dir>/<name>.log."""
    from ragrelay.cli.up import children, report, wait_ready

    settings = _settings(ctx)
    _require_redis(settings, "ragrelay up")
    counts = {stage: 1 for stage in STAGES}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        kind, _, amount = part.partition("=")
        if kind not in counts or not amount.isdigit():
            raise click.BadParameter(
                f"expected KIND=N with KIND in {', '.join(STAGES)}: {part!r}",
                param_hint="--workers",
            )
        counts[kind] = int(amount)
    log_dir = log_dir or settings.ensure_data_dir() / "logs"
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise click.UsageError(f"--log-dir {log_dir}: {exc.strerror}") from exc
    kids = children(counts, log_dir)
    if verbose:
        for kid in kids:
            kid.proc = subprocess.Popen([sys.executable, "-m", "ragrelay", *kid.args])
    else:
        for kid in kids:
            kid.start()
    procs = [kid.proc for kid in kids if kid.proc is not None]
    click.echo(
        f"ragrelay up: {len(procs)} processes "
        f"({', '.join(f'{k}={v}' for k, v in counts.items())}); logs in {log_dir}; "
        "Ctrl-C stops them",
        err=True,
    )

    def stop_all(signum: int = signal.SIGTERM, frame: object = None) -> None:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop_all)
    from bus.redis import connect

    client = connect(settings)
    try:
        if not verbose:
            wait_ready(kids, settings, client)
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        if not verbose:
            report(kids, settings, client)  # which one stopped, and the end of its log
    except KeyboardInterrupt:
        pass
    finally:
        stop_all()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        for kid in kids:
            kid.close()
        client.close()
    failed = [p.args for p in procs if p.returncode not in (0, -signal.SIGTERM, None)]
    sys.exit(1 if failed else 0)


def _start_metrics(settings: Settings, pool: str) -> None:
    """Serve /metrics on RAGRELAY_METRICS_PORT; prefork children share a multiprocess dir."""
    if settings.metrics_port is None:
        return
    if pool == "prefork" and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        import tempfile

        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="ragrelay-metrics-")
    from bus.metrics import serve_metrics

    serve_metrics(settings.metrics_port)


def _start_heartbeat(settings: Settings, name: str) -> None:
    """The heartbeat file (probes) and, with Redis, a key per process (the gateway's /readyz)."""
    from bus.keys import Keys
    from bus.redis import connect

    path = settings.heartbeat_dir / f"{name}.heartbeat" if settings.heartbeat_dir else None
    key = Keys(settings.key_prefix).heartbeat(f"{name}:{socket.gethostname()}-{os.getpid()}")
    Heartbeat(
        path,
        settings.heartbeat_interval_s,
        redis_client=None if settings.embedded else connect(settings),
        redis_key=key,
        registry_key=Keys(settings.key_prefix).heartbeats(),
    ).start()
