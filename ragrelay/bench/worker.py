"""Worker processes for a benchmark: ``python -m ragrelay.bench.worker KIND QUEUE``.

KIND ``noop``: a ragrelay stage worker whose handler answers at once (``workers.noop``),
optionally sleeping first.
KIND ``raw``: a worker of the hand-written chain baseline.
KIND ``rawllm``: a worker of the hand-written LLM chain baseline (``bench latency``).

``--pool gevent`` monkey-patches the process before anything else is imported (what the
``celery`` command does for ``-P gevent``; ``worker_main`` does not).
"""

import sys

if __name__ == "__main__" and "gevent" in sys.argv:  # before any socket/ssl/thread import
    from gevent import monkey

    monkey.patch_all()

import os

import click

from bus.app import create_app
from bus.logging import configure_logging
from bus.settings import load_settings
from ragrelay.bench.rawchain import create_raw_app
from ragrelay.bench.rawllm import create_raw_llm_app
from workers import noop


@click.command()
@click.argument("kind", type=click.Choice(["noop", "raw", "rawllm"]))
@click.argument("queue")
@click.option(
    "--pool", type=click.Choice(["prefork", "threads", "solo", "gevent"]), default="threads"
)
@click.option("--concurrency", "-c", type=int, default=4)
@click.option("--sleep-ms", type=float, default=0.0, help="noop: sleep this long first.")
def main(kind: str, queue: str, pool: str, concurrency: int, sleep_ms: float) -> None:
    settings = load_settings()
    configure_logging(settings.log_level, json=settings.log_json)
    if kind == "noop":
        app = create_app(settings)
        noop.register(app, settings, delays_s={queue: sleep_ms / 1000.0})
    else:
        if not settings.redis_url:
            raise click.UsageError("set RAGRELAY_REDIS_URL")
        make = create_raw_app if kind == "raw" else create_raw_llm_app
        app = make(settings.redis_url)
    app.worker_main(
        [
            "worker",
            "-Q",
            queue,
            "-P",
            pool,
            "-c",
            str(concurrency),
            "-n",
            f"bench-{kind}-{queue}-{os.getpid()}@%h",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-l",
            settings.log_level,
        ]
    )


if __name__ == "__main__":
    main()
