"""The ``ragrelay`` command line: the one composition root allowed to reach every package.

``ask``, ``trace`` and ``demo`` live here; every other command is a module of this package,
imported only when it runs (``LAZY_COMMANDS``, see ``ragrelay/cli/lazy.py``).
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import click
from pydantic import ValidationError

from bus.errors import RagrelayError
from bus.logging import configure_logging
from bus.settings import Settings, load_settings
from ragrelay.cli.lazy import LazyGroup, Loader
from ragrelay.cli.settings import settings_of as _settings
from schemas import Budget, JobRequest, JobResult


def _worker() -> click.Command:
    from ragrelay.cli.run import worker

    return worker


def _orchestrator() -> click.Command:
    from ragrelay.cli.run import orchestrator_command

    return orchestrator_command


def _up() -> click.Command:
    from ragrelay.cli.run import up

    return up


def _healthcheck() -> click.Command:
    from ragrelay.cli.health import healthcheck

    return healthcheck


def _ingest() -> click.Command:
    from ragrelay.cli.ingest import ingest

    return ingest


def _sync() -> click.Command:
    from ragrelay.cli.sync import sync

    return sync


def _serve() -> click.Command:
    from ragrelay.cli.gateway import serve

    return serve


def _keys() -> click.Command:
    from ragrelay.cli.gateway import keys

    return keys


def _feedback() -> click.Command:
    from ragrelay.cli.observe import feedback

    return feedback


def _replay() -> click.Command:
    from ragrelay.cli.observe import replay

    return replay


def _timeline() -> click.Command:
    from ragrelay.cli.observe import timeline

    return timeline


def _eval() -> click.Command:
    from ragrelay.cli.evals import eval_group

    return eval_group


def _inbox() -> click.Command:
    from ragrelay.cli.inbox import inbox_command

    return inbox_command


def _train_triage() -> click.Command:
    from ragrelay.evals.inbox import train_triage_command

    return train_triage_command


def _prompts() -> click.Command:
    from ragrelay.cli.prompts import prompts_group

    return prompts_group


def _bench() -> click.Command:
    from ragrelay.cli.bench import bench

    return bench


def _dlq() -> click.Command:
    from ragrelay.cli.dlq import dlq

    return dlq


def _mcp() -> click.Command:
    from ragrelay.cli.mcp import mcp_command

    return mcp_command


# Loaded only when that command runs (a probe or `ask` does not import FastAPI or sklearn).
LAZY_COMMANDS: dict[str, Loader] = {
    "worker": _worker,
    "orchestrator": _orchestrator,
    "up": _up,
    "healthcheck": _healthcheck,
    "ingest": _ingest,
    "sync": _sync,
    "serve": _serve,
    "keys": _keys,
    "feedback": _feedback,
    "replay": _replay,
    "timeline": _timeline,
    "eval": _eval,
    "inbox": _inbox,
    "train-triage": _train_triage,
    "prompts": _prompts,
    "bench": _bench,
    "dlq": _dlq,
    "mcp": _mcp,
}


@click.group(
    cls=LazyGroup, lazy=LAZY_COMMANDS, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.version_option(package_name="ragrelay")
@click.option(
    "--log-level", default=None, help="DEBUG, INFO, WARNING or ERROR (logs go to stderr)."
)
@click.pass_context
def cli(ctx: click.Context, log_level: str | None) -> None:
    """ragrelay: agentic RAG as a distributed pipeline on Celery + Redis.

    Without RAGRELAY_REDIS_URL every command runs embedded, in one process. With it, jobs go
    through Redis to worker processes started by `ragrelay up` or `ragrelay worker STAGE`.
    """
    if ctx.invoked_subcommand == "healthcheck":  # a probe: no settings, no logging set-up
        return
    overrides: dict[str, Any] = {"log_level": log_level} if log_level else {}
    settings = load_settings(**overrides)
    if not log_level and ctx.invoked_subcommand in (
        "ask",
        "demo",
        "trace",
        "ingest",
        "sync",
        "replay",
        "timeline",
        "eval",
        "inbox",
        "train-triage",
        "mcp",
    ):
        settings.log_level = "WARNING"
    configure_logging(
        settings.log_level,
        json=settings.log_json,
        redact=settings.redact_pii,
        sdk_debug=settings.log_sdk_debug,
    )
    ctx.obj = settings


def _client(settings: Settings) -> Any:
    from ragrelay.client import RagrelayClient

    settings.ensure_data_dir()
    return RagrelayClient.from_settings(settings)


@cli.command()
@click.argument("question")
@click.option("--json", "as_json", is_flag=True, help="Print the JobResult as one JSON object.")
@click.option("--tenant", default="default", show_default=True)
@click.option("--user-id", default=None, help="User whose real-time context may be used.")
@click.option("--max-iterations", type=int, default=None, help="Evaluate→rewrite loops at most.")
@click.option("--max-llm-calls", type=int, default=None)
@click.option("--max-tokens", type=int, default=None)
@click.option("--max-cost-usd", type=float, default=None)
@click.option("--deadline-s", type=float, default=None, help="Seconds before the job stops.")
@click.option("--idempotency-key", default=None)
@click.option(
    "--timeout",
    "timeout_s",
    type=float,
    default=None,
    help="Seconds to wait for the result (default: the deadline + 10).",
)
@click.pass_context
def ask(
    ctx: click.Context,
    question: str,
    as_json: bool,
    tenant: str,
    user_id: str | None,
    max_iterations: int | None,
    max_llm_calls: int | None,
    max_tokens: int | None,
    max_cost_usd: float | None,
    deadline_s: float | None,
    idempotency_key: str | None,
    timeout_s: float | None,
) -> None:
    """Ask QUESTION and print the JobResult (answer, citations, stop reason, usage, trace)."""
    settings = _settings(ctx)
    limits = {
        "max_iterations": max_iterations,
        "max_llm_calls": max_llm_calls,
        "max_tokens": max_tokens,
        "max_cost_usd": max_cost_usd,
        "deadline_s": deadline_s,
    }
    from bus.task import describe_validation_error

    try:
        budget = Budget.model_validate({k: v for k, v in limits.items() if v is not None})
        request = JobRequest(
            query=question,
            tenant=tenant,
            user_id=user_id,
            budget=budget,
            idempotency_key=idempotency_key,
        )
    except ValidationError as exc:
        raise click.UsageError(describe_validation_error(exc)) from exc
    client = _client(settings)
    if not settings.embedded:  # say within seconds when nothing would run the job
        from ragrelay.liveness import PIPELINE, require_alive

        require_alive(client.redis, settings, PIPELINE, "ask")
    result = client.with_trace(client.ask(request, timeout_s=timeout_s or budget.deadline_s + 10))
    _print_result(result, as_json)
    for note in result.degraded if as_json else ():  # e.g. the tenant holds no documents
        click.echo(f"warning: {note}", err=True)
    sys.exit(0 if result.status != "failed" else 1)


@cli.command()
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True, help="Print the events as JSON lines.")
@click.pass_context
def trace(ctx: click.Context, job_id: str, as_json: bool) -> None:
    """Print the trace of JOB_ID: every step, where it ran, how long, what it cost."""
    client = _client(_settings(ctx))
    events = client.trace(job_id)
    if not events:
        raise click.ClickException(f"no trace for job {job_id} (unknown id, or expired)")
    if as_json:
        for event in events:
            click.echo(event.to_json())
        return
    _print_trace(events)


@cli.command()
@click.option(
    "--question", default="How does ragrelay make sure no job loops forever?", show_default=True
)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def demo(ctx: click.Context, question: str, as_json: bool) -> None:
    """Run the whole pipeline in one process on a small sample corpus, offline."""
    from importlib import resources

    from schemas import Document, IngestTask

    settings = _settings(ctx)
    if not settings.embedded:
        click.echo("note: demo runs embedded; ignoring RAGRELAY_REDIS_URL", err=True)
        settings.redis_url = None
    client = _client(settings)
    docs = [
        Document(doc_id=row["_id"], title=row["title"], text=row["text"])
        for row in map(
            json.loads,
            resources.files("ragrelay").joinpath("sample", "corpus.jsonl").read_text().splitlines(),
        )
    ]
    client.run_task(
        "ragrelay.ingest",
        IngestTask(run_id="demo", batch=0, tenant="demo", documents=docs).to_dict(),
    )
    if not as_json:
        click.echo(
            f"Ingested {len(docs)} sample documents into tenant 'demo' ({settings.data_dir}).\n"
        )
        click.echo(f"Question: {question}\n")
    started = time.perf_counter()
    result = client.with_trace(client.ask(JobRequest(query=question, tenant="demo")))
    _print_result(result, as_json)
    if not as_json:
        click.echo(f"\nWall time: {(time.perf_counter() - started) * 1000:.0f} ms")
    sys.exit(0 if result.status == "succeeded" and result.citations else 1)


# -- output --------------------------------------------------------------------------------


def _print_result(result: JobResult, as_json: bool) -> None:
    if as_json:
        click.echo(result.to_json())
        return
    click.echo(
        f"Status: {result.status} (stop reason: {result.stop_reason}, "
        f"iterations: {result.iterations})"
    )
    if result.error:
        click.echo(f"Error: {result.error}")
    if result.triage:
        click.echo(f"Triage: {result.triage}")
    click.echo(f"\nAnswer:\n  {result.answer or '(none)'}")
    if result.citations:
        click.echo("\nCitations:")
        for i, c in enumerate(result.citations, 1):
            where = "".join(
                f", {part}" for part in (c.page and f"page {c.page}", c.section) if part
            )
            click.echo(f"  [{i}] {c.chunk_id} — {c.title or c.doc_id}{where}")
    if result.scores:
        click.echo("\nScores: " + ", ".join(f"{k} {v:.2f}" for k, v in result.scores.items()))
    if result.degraded:
        click.echo("Degraded: " + "; ".join(result.degraded))
    u = result.usage
    click.echo(f"Budget used: {u.llm_calls} LLM calls, {u.tokens} tokens, ${u.cost_usd:.4f}")
    if result.trace:
        click.echo("\nTrace:")
        _print_trace(result.trace)


def _print_trace(events: list[Any]) -> None:
    t0 = events[0].at
    for e in events:
        where = f"{e.worker_host}:{e.worker_pid}" if e.worker_pid else ""
        took = f"{e.duration_ms:.1f} ms" if e.duration_ms is not None else ""
        click.echo(
            f"  +{(e.at - t0) * 1000:8.1f} ms  {e.type:<18} {e.stage or '':<11} "
            f"{(e.step_id or '').partition('/')[2]:<16} {e.outcome or '':<9} {took:>10}  {where}"
        )


def main() -> None:
    try:
        cli(standalone_mode=True)
    except RagrelayError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
