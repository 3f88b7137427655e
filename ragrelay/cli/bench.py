"""``ragrelay bench``: what the orchestration costs, and how close to Little's law it runs."""

from __future__ import annotations

import contextlib
import dataclasses
import os
from pathlib import Path
from typing import Any

import click

from bus.errors import ConfigError
from bus.keys import STAGE_QUEUES
from ragrelay.bench.measure import (
    BenchError,
    StageSpec,
    alternate,
    emit,
    measure_pipeline,
    pipeline_side,
    raw_chain_side,
)
from ragrelay.bench.run import bench_run, machine
from ragrelay.bench.stats import parse_counts, ratio
from ragrelay.cli.settings import settings_of as _settings

POOLS = click.Choice(["threads", "prefork", "solo"])


def _counts(spec: str) -> dict[str, int]:
    try:
        return parse_counts(spec, STAGE_QUEUES)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--workers") from exc


@click.group("bench")
def bench() -> None:
    """Benchmarks: orchestration overhead against raw Celery, and I/O-bound efficiency."""


@bench.command("overhead")
@click.option(
    "--jobs",
    type=click.IntRange(1),
    default=2000,
    show_default=True,
    help="Measured jobs (and chains).",
)
@click.option("--warmup", type=click.IntRange(0), default=100, show_default=True)
@click.option(
    "--inflight",
    type=click.IntRange(1),
    default=16,
    show_default=True,
    help="Jobs kept in flight by the closed-loop driver (same for both sides).",
)
@click.option(
    "--workers",
    "spec",
    default="",
    metavar="KIND=N,...",
    help="Processes per stage for the pipeline (default 1 each); the chain gets "
    "one process per task.",
)
@click.option("--pool", type=POOLS, default="threads", show_default=True)
@click.option("--concurrency", "-c", type=click.IntRange(1), default=4, show_default=True)
@click.option(
    "--slices",
    type=click.IntRange(1),
    default=10,
    show_default=True,
    help="Alternate the two sides in this many slices (same background load).",
)
@click.option("--timeout", "timeout_s", type=float, default=300.0, show_default=True)
@click.option(
    "--keep-logs",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Keep worker logs under this directory.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_context
def overhead(
    ctx: click.Context,
    jobs: int,
    warmup: int,
    inflight: int,
    spec: str,
    pool: str,
    concurrency: int,
    slices: int,
    timeout_s: float,
    keep_logs: Path | None,
    as_json: bool,
) -> None:
    """Zero-cost stages through the full pipeline vs. a raw Celery chain of 4 no-op tasks.

    Both run in this invocation on the same Redis (a private redis-server, or
    RAGRELAY_REDIS_URL: then use an idle one, its stage queues are consumed here), both
    fleets up at once, measured in alternating slices so both see the same machine load.
    """
    settings = _settings(ctx)
    counts = _counts(spec)
    stages = {s: StageSpec("noop", counts[s], pool, concurrency) for s in STAGE_QUEUES}
    common = {"inflight": inflight, "pool": pool, "concurrency": concurrency}
    try:
        with bench_run(settings.redis_url, os.environ, keep_logs) as run:
            with (
                raw_chain_side(run, pool=pool, concurrency=concurrency) as raw_side,
                pipeline_side(run, stages) as pipe_side,
            ):
                raw, pipe = alternate(
                    [raw_side, pipe_side],
                    jobs=jobs,
                    slices=slices,
                    warmup=warmup,
                    inflight=inflight,
                    timeout_s=timeout_s,
                )
            raw_line = raw.line(
                measurement="raw_chain",
                tasks_per_job=4,
                result_backend="redis",
                slices=slices,
                **common,
            )
            emit(_first(raw_line, "measurement"), as_json)
            pipe_line = pipe.line(
                measurement="pipeline",
                stages="noop",
                iterations=1,
                retrieval_shards=1,
                workers=counts,
                slices=slices,
                **common,
            )
            emit(_first(pipe_line, "measurement"), as_json)
            emit(
                {
                    "measurement": "overhead",
                    "pipeline_vs_raw_chain": ratio(pipe_line["jobs_per_s"], raw_line["jobs_per_s"]),
                    "pipeline_jobs_per_s": pipe_line["jobs_per_s"],
                    "raw_chain_jobs_per_s": raw_line["jobs_per_s"],
                    "pipeline_p50_ms": pipe_line["p50_ms"],
                    "raw_chain_p50_ms": raw_line["p50_ms"],
                    "pipeline_p99_ms": pipe_line["p99_ms"],
                    "raw_chain_p99_ms": raw_line["p99_ms"],
                    "jobs": jobs,
                    "redis": run.redis_kind,
                    "machine": machine(),
                },
                as_json,
            )
    except (BenchError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from exc
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


def _first(line: dict[str, object], key: str) -> dict[str, object]:
    return {key: line[key], **{k: v for k, v in line.items() if k != key}}


@bench.command("latency")
@click.option(
    "--llm-delay-ms",
    type=click.FloatRange(0, min_open=True),
    default=800.0,
    show_default=True,
    help="Delay of every LLM call.",
)
@click.option("--inflight", type=click.IntRange(1), default=200, show_default=True)
@click.option(
    "--jobs",
    type=click.IntRange(1),
    default=1000,
    show_default=True,
    help="Measured jobs, rounded up to whole waves of --inflight.",
)
@click.option(
    "--llm",
    type=click.Choice(["auto", "anthropic", "sleep-fault"]),
    default="auto",
    show_default=True,
    help="anthropic: real handlers and SDK against the loopback server; sleep-fault: "
    "zero-cost stages sleeping the delay; auto: anthropic when it works.",
)
@click.option(
    "--workers",
    "spec",
    default="",
    metavar="KIND=N,...",
    help="Processes per stage (default 1 each).",
)
@click.option(
    "--concurrency",
    "-c",
    type=click.IntRange(1),
    default=200,
    show_default=True,
    help="Threads per stage process.",
)
@click.option(
    "--scale-out",
    "scale_stage",
    type=click.Choice(list(STAGE_QUEUES)),
    default=None,
    help="Also measure with 1, 2 and 4 processes of this stage.",
)
@click.option(
    "--scale-concurrency",
    type=click.IntRange(1),
    default=16,
    show_default=True,
    help="Threads per process of the --scale-out stage in those runs.",
)
@click.option("--scale-jobs", type=click.IntRange(1), default=400, show_default=True)
@click.option("--timeout", "timeout_s", type=float, default=300.0, show_default=True)
@click.option("--keep-logs", type=click.Path(path_type=Path, file_okay=False), default=None)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_context
def latency(
    ctx: click.Context,
    llm_delay_ms: float,
    inflight: int,
    jobs: int,
    llm: str,
    spec: str,
    concurrency: int,
    scale_stage: str | None,
    scale_concurrency: int,
    scale_jobs: int,
    timeout_s: float,
    keep_logs: Path | None,
    as_json: bool,
) -> None:
    """Achieved jobs/s vs. the Little's-law bound with I/O-bound stages on a threads pool."""
    from ragrelay.bench import latency as lat

    settings = _settings(ctx)
    plan = lat.LatencyPlan(llm_delay_ms, inflight, jobs, _counts(spec), concurrency, timeout_s)
    if llm == "anthropic" and not lat.fake_server_available():
        raise click.ClickException(
            "--llm anthropic needs tests/fakes/anthropic_server.py (run from a source checkout)"
        )
    try:
        with (
            bench_run(settings.redis_url, os.environ, keep_logs) as run,
            contextlib.ExitStack() as stack,
        ):
            url = None
            mode = "sleep-fault" if llm == "auto" and not lat.fake_server_available() else llm
            if mode in ("auto", "anthropic"):
                url = stack.enter_context(lat.fake_anthropic(run, llm_delay_ms))
                probe = lat.measure(run, plan, "anthropic", url=url, jobs=2, warmup=0, tag="probe")
                try:
                    lat.check_anthropic(probe)
                    mode = "anthropic"
                except BenchError:
                    if mode == "anthropic":
                        raise
                    mode = "sleep-fault"
            m = lat.measure(run, plan, mode, url=url)
            line = lat.latency_line(
                m, plan, mode, workers=dict(plan.counts), concurrency=concurrency
            )
            line["redis"] = run.redis_kind
            line["machine"] = machine()
            emit(_first(line, "measurement"), as_json)
            if scale_stage is not None:
                for n in (1, 2, 4):
                    counts = {**plan.counts, scale_stage: n}
                    sm = _scaled(
                        lat,
                        run,
                        plan,
                        mode,
                        url,
                        counts,
                        scale_stage,
                        scale_concurrency,
                        scale_jobs,
                        n,
                    )
                    emit(
                        _first(
                            lat.latency_line(
                                sm,
                                plan,
                                mode,
                                measurement="scale_out",
                                stage=scale_stage,
                                processes=n,
                                stage_concurrency=scale_concurrency,
                            ),
                            "measurement",
                        ),
                        as_json,
                    )
    except (BenchError, RuntimeError, ConfigError) as exc:
        raise click.ClickException(str(exc)) from exc


def _scaled(
    lat: Any,
    run: Any,
    plan: Any,
    mode: str,
    url: str | None,
    counts: dict[str, int],
    stage: str,
    conc: int,
    jobs: int,
    n: int,
) -> Any:
    specs = lat.stage_specs(mode, plan, counts)
    specs[stage] = dataclasses.replace(specs[stage], concurrency=conc)
    env = lat.anthropic_env(url) if mode == "anthropic" and url else {}
    return measure_pipeline(
        run,
        specs,
        jobs=max(jobs, plan.inflight),
        warmup=min(plan.inflight, 20),
        inflight=plan.inflight,
        timeout_s=plan.timeout_s,
        extra_env=env,
        tag=f"s{n}",
    )


@bench.command("mcp")
@click.option("--url", required=True, help="The gateway's base URL, e.g. http://127.0.0.1:8080")
@click.option(
    "--key", envvar="RAGRELAY_API_KEY", required=True, help="An API key (or RAGRELAY_API_KEY)."
)
@click.option("--jobs", type=click.IntRange(1), default=30, show_default=True)
@click.option("--warmup", type=click.IntRange(0), default=3, show_default=True)
@click.option("--question", default="How are transient errors retried?", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
def mcp_overhead(url: str, key: str, jobs: int, warmup: int, question: str, as_json: bool) -> None:
    """The MCP layer's overhead per ask: the same job over /v1 (submit + SSE) and over /mcp
    (the SDK's client calling `ask` in one session), alternating, against a running gateway
    and cluster; and what opening an MCP session costs."""
    import json

    from ragrelay.bench.mcp_overhead import run

    result = run(url, key, jobs=jobs, warmup=warmup, question=question)
    if as_json:
        click.echo(json.dumps(result))
        return
    click.echo(
        f"{jobs} jobs each way: HTTP p50 {result['http_p50_ms']} ms (p90 {result['http_p90_ms']}), "
        f"MCP p50 {result['mcp_p50_ms']} ms (p90 {result['mcp_p90_ms']}); "
        f"MCP overhead at p50: {result['mcp_overhead_p50_pct']} %; opening an MCP session: "
        f"p50 {result['mcp_session_open_p50_ms']} ms"
    )
