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
LLM_POOLS = click.Choice(["threads", "gevent", "prefork", "solo"])


def _replicas(spec: str) -> list[int]:
    """``1,2,4`` → [1, 2, 4]: orchestrator replica counts, each measured in turn."""
    parts = [p.strip() for p in spec.split(",")]
    if not parts or not all(p.isdigit() and 1 <= int(p) <= 64 for p in parts):
        raise click.BadParameter(
            f"expected N or N,M,... with each N from 1 to 64: {spec!r}",
            param_hint="--orchestrators",
        )
    return list(dict.fromkeys(int(p) for p in parts))


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
    "--stages",
    "stage_mode",
    type=click.Choice(["noop", "offline"]),
    default="noop",
    show_default=True,
    help="noop: zero-cost stages (what the orchestration costs); offline: the real handlers "
    "with the offline provider on the sample corpus (what a job costs).",
)
@click.option(
    "--orchestrators",
    "replicas_spec",
    default="1",
    show_default=True,
    metavar="N[,M,...]",
    help="Orchestrator replicas sharing the consumer group. Several counts (1,2,4) are "
    "measured one after the other, each beside a fresh raw-chain measurement, and a "
    "final `orchestrator_scaling` line compares them.",
)
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
    stage_mode: str,
    replicas_spec: str,
    slices: int,
    timeout_s: float,
    keep_logs: Path | None,
    as_json: bool,
) -> None:
    """Zero-cost stages through the full pipeline vs. a raw Celery chain of 4 no-op tasks.

    Both run in this invocation on the same Redis (a private redis-server, or
    RAGRELAY_REDIS_URL: then use an idle one, its stage queues are consumed here), both
    fleets up at once, measured in alternating slices so both see the same machine load.
    Each line carries CPU per job per process kind and Redis commands and bytes per job
    (INFO deltas over its slices).
    """
    settings = _settings(ctx)
    counts = _counts(spec)
    replicas = _replicas(replicas_spec)
    mode = "real" if stage_mode == "offline" else "noop"
    stages = {s: StageSpec(mode, counts[s], pool, concurrency) for s in STAGE_QUEUES}
    common = {"inflight": inflight, "pool": pool, "concurrency": concurrency}
    rows: list[dict[str, object]] = []
    try:
        with (
            bench_run(settings.redis_url, os.environ, keep_logs) as run,
            raw_chain_side(run, pool=pool, concurrency=concurrency) as raw_side,
        ):
            if stage_mode == "offline":
                from ragrelay.bench.offline import ingest_sample

                ingest_sample(run)
            for n in replicas:
                raw_side.reset()
                with pipeline_side(run, stages, tag=f"o{n}", orchestrators=n) as pipe_side:
                    raw, pipe = alternate(
                        [raw_side, pipe_side],
                        jobs=jobs,
                        slices=slices,
                        warmup=warmup,
                        inflight=inflight,
                        timeout_s=timeout_s,
                    )
                rows.append(
                    _compare(raw, pipe, n, jobs, slices, counts, common, run, as_json, stage_mode)
                )
            if len(replicas) > 1:
                emit({"measurement": "orchestrator_scaling", "rows": rows}, as_json)
    except (BenchError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from exc
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


def _compare(
    raw: Any,
    pipe: Any,
    n: int,
    jobs: int,
    slices: int,
    counts: dict[str, int],
    common: dict[str, Any],
    run: Any,
    as_json: bool,
    stage_mode: str = "noop",
) -> dict[str, object]:
    """Print one replica count's raw-chain, pipeline and overhead lines; return the last."""
    raw_line = raw.line(
        measurement="raw_chain", tasks_per_job=4, result_backend="redis", slices=slices, **common
    )
    emit(_first(raw_line, "measurement"), as_json)
    pipe_line = pipe.line(
        measurement="pipeline",
        stages=stage_mode,
        iterations=1,
        retrieval_shards=1,
        workers=counts,
        orchestrators=n,
        slices=slices,
        **common,
    )
    emit(_first(pipe_line, "measurement"), as_json)
    summary: dict[str, object] = {
        "measurement": "overhead",
        "orchestrators": n,
        "pipeline_vs_raw_chain": ratio(pipe_line["jobs_per_s"], raw_line["jobs_per_s"]),
        "pipeline_jobs_per_s": pipe_line["jobs_per_s"],
        "raw_chain_jobs_per_s": raw_line["jobs_per_s"],
        "pipeline_p50_ms": pipe_line["p50_ms"],
        "raw_chain_p50_ms": raw_line["p50_ms"],
        "pipeline_p99_ms": pipe_line["p99_ms"],
        "raw_chain_p99_ms": raw_line["p99_ms"],
        "pipeline_cpu_ms_per_job": pipe_line["cpu_ms_per_job_total"],
        "raw_chain_cpu_ms_per_job": raw_line["cpu_ms_per_job_total"],
        "pipeline_redis_commands_per_job": pipe_line["redis_commands_per_job"],
        "raw_chain_redis_commands_per_job": raw_line["redis_commands_per_job"],
        "jobs": jobs,
        "redis": run.redis_kind,
        "machine": machine(),
    }
    emit(summary, as_json)
    return summary


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
@click.option(
    "--pool",
    type=LLM_POOLS,
    default=None,
    help="Pool of the LLM stages' workers (default: what `ragrelay worker` uses for them).",
)
@click.option(
    "--raw-chain/--no-raw-chain",
    default=True,
    show_default=True,
    help="With the anthropic path, also measure a hand-written 3-task Celery chain making "
    "the same SDK calls to the same server, alternating with the pipeline in slices.",
)
@click.option(
    "--raw-pool",
    type=LLM_POOLS,
    default=None,
    help="The raw chain's pool (default: the same as --pool), with -c threads/greenlets.",
)
@click.option(
    "--slices",
    type=click.IntRange(1),
    default=5,
    show_default=True,
    help="With --raw-chain: alternate the two sides in at most this many slices of whole "
    "waves of --inflight (same background load for both).",
)
@click.option(
    "--orchestrators",
    type=click.IntRange(1),
    default=1,
    show_default=True,
    help="`ragrelay orchestrator` processes of the pipeline (one consumer group).",
)
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
    pool: str | None,
    raw_chain: bool,
    raw_pool: str | None,
    slices: int,
    orchestrators: int,
    timeout_s: float,
    keep_logs: Path | None,
    as_json: bool,
) -> None:
    """Achieved jobs/s vs. the Little's-law bound with I/O-bound LLM stages.

    With the anthropic path (the loopback Messages API through the real SDK) a raw Celery
    chain making the same three calls is measured in the same invocation (a `raw_chain`
    line, then a `latency_vs_raw_chain` line with the ratios).
    """
    from ragrelay.bench import latency as lat
    from ragrelay.cli.run import DEFAULT_POOLS

    settings = _settings(ctx)
    pool = pool or DEFAULT_POOLS[lat.LLM_STAGES[0]]
    raw_pool = raw_pool or pool
    plan = lat.LatencyPlan(
        llm_delay_ms, inflight, jobs, _counts(spec), concurrency, timeout_s, pool, orchestrators
    )
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
            raw_line: dict[str, Any] | None = None
            if mode == "anthropic" and raw_chain and url is not None:
                m, raw_line = _with_raw_chain(lat, run, plan, url, raw_pool, slices)
            else:
                m = lat.measure(run, plan, mode, url=url)
            line = lat.latency_line(
                m,
                plan,
                mode,
                workers=dict(plan.counts),
                concurrency=concurrency,
                pool=pool,
                orchestrators=orchestrators,
            )
            line["redis"] = run.redis_kind
            line["machine"] = machine()
            emit(_first(line, "measurement"), as_json)
            if raw_line is not None:
                emit(_first(raw_line, "measurement"), as_json)
                emit(lat.comparison(line, raw_line), as_json)
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


def _with_raw_chain(
    lat: Any, run: Any, plan: Any, url: str, raw_pool: str, slices: int
) -> tuple[Any, dict[str, Any]]:
    """Both fleets up at once, measured in alternating slices of whole waves."""
    waves = plan.rounded_jobs // plan.inflight
    n = max(d for d in range(1, min(slices, waves) + 1) if waves % d == 0)
    with (
        lat.raw_llm_chain_side(run, url, pool=raw_pool, concurrency=plan.concurrency) as raw_side,
        pipeline_side(
            run,
            lat.stage_specs("anthropic", plan),
            extra_env=lat.anthropic_env(url),
            tag="l",
            orchestrators=plan.orchestrators,
        ) as pipe_side,
    ):
        raw, pipe = alternate(
            [raw_side, pipe_side],
            jobs=plan.rounded_jobs,
            slices=n,
            warmup=min(plan.inflight, 20),
            inflight=plan.inflight,
            timeout_s=plan.timeout_s,
        )
    raw_line = lat.raw_chain_line(raw, plan, pool=raw_pool, concurrency=plan.concurrency)
    raw_line["slices"] = n
    return pipe, raw_line


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
