"""CPU of one job's three LLM steps on the SDK path, and where it goes (docs/benchmarks-speed.md).

    .venv/bin/python scripts/profile_llm_job.py [--jobs 300] [--top 30] [--profiler cprofile]

Starts a private redis-server and the loopback Messages API (``tests/fakes/anthropic_server``,
1 ms delay), registers the real tasks on a Celery app exactly as ``ragrelay worker`` does,
and runs the analysis, generation and evaluation tasks of ``--jobs`` jobs one after another
through the task base (``Task.apply``: validation, dedupe check, the provider, the SDK call,
the result event in Redis). Prints this process's CPU per job (no profiler attached), then
the top frames of a second, profiled pass. The loopback server's CPU is not counted.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ragrelay.bench.procs import PrivateRedis, free_port, stop_process  # noqa: E402


def _server(delay_ms: float) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fakes.anthropic_server",
            *("--port", str(port), "--delay-ms", str(delay_ms)),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(f"{url}/v1/models", timeout=1).close()
            return proc, url
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the loopback server did not start")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--jobs", type=int, default=300)
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--profiler", choices=["cprofile", "none"], default="cprofile")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="ragrelay-prof-"))
    redis_server = PrivateRedis(work / "redis").start()
    server, url = _server(1.0)
    try:
        os.environ.update(
            {
                "RAGRELAY_REDIS_URL": redis_server.url,
                "RAGRELAY_KEY_PREFIX": "prof",
                "RAGRELAY_LOG_LEVEL": "WARNING",
                "RAGRELAY_DATA_DIR": str(work / "data"),
                "RAGRELAY_ANTHROPIC_API_KEY": "bench-loopback-key",
                "RAGRELAY_ANTHROPIC_BASE_URL": url,
                "RAGRELAY_ANTHROPIC_MAX_RETRIES": "0",
            }
        )
        os.environ.pop("RAGRELAY_FAULTS", None)
        run(args)
    finally:
        stop_process(server)
        redis_server.stop()


def run(args: argparse.Namespace) -> None:
    from bus.app import create_app
    from bus.logging import configure_logging
    from bus.settings import load_settings
    from schemas import AnalysisTask, Chunk, EvaluationTask, GenerationTask, StepLimits
    from workers.settings import load_worker_settings
    from workers.tasks import register

    settings = load_settings()
    configure_logging(settings.log_level, json=settings.log_json)
    app = create_app(settings)
    runtime = register(app, settings, load_worker_settings())
    runtime.deps()  # as the worker's warm-up does
    chunk = Chunk(chunk_id="noop#0", doc_id="noop", title="noop", text="noop")
    query = "How do I rotate the signing key without downtime?"
    limits = StepLimits(max_tokens=100_000)

    def job(i: int) -> None:
        ids = {"job_id": f"j{i}", "tenant": "bench", "limits": limits}
        a = AnalysisTask(step_id=f"j{i}:a", query=query, **ids)  # type: ignore[arg-type]
        g = GenerationTask(step_id=f"j{i}:g", query=query, context=[chunk], **ids)  # type: ignore[arg-type]
        e = EvaluationTask(
            step_id=f"j{i}:e",
            query=query,
            answer="noop",
            context=[chunk],
            **ids,  # type: ignore[arg-type]
        )
        for name, msg in (
            ("ragrelay.analysis", a),
            ("ragrelay.generation", g),
            ("ragrelay.evaluation", e),
        ):
            app.tasks[name].apply(args=(msg.to_dict(),))

    for i in range(20):  # warm: connections, caches
        job(-1 - i)
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(args.jobs):
        job(i)
    cpu = time.process_time() - c0
    wall = time.perf_counter() - t0
    print(
        f"jobs={args.jobs} cpu_ms_per_job={cpu * 1000 / args.jobs:.2f} "
        f"wall_ms_per_job={wall * 1000 / args.jobs:.2f} load_1m={os.getloadavg()[0]:.1f}"
    )
    if args.profiler == "none":
        return
    prof = cProfile.Profile(time.process_time)  # CPU, not wall time
    prof.enable()
    for i in range(args.jobs):
        job(10_000 + i)
    prof.disable()
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    stats.sort_stats("cumulative").print_stats(args.top)
    stats.sort_stats("tottime").print_stats(args.top)
    print(out.getvalue())


if __name__ == "__main__":
    main()
