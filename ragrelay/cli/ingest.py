"""`ragrelay ingest`: read corpus files and index them, in-process or on the ingest queue.

With Redis configured, documents go out in batches as tasks on the ``ingest`` queue (the
embedding is the CPU-heavy part, spread over ingest workers). A run is identified by its
inputs, so running it again skips the batches already done: resumable and idempotent.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import click
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from bus.errors import ConfigError, UsageError
from bus.keys import INGEST_TASK
from bus.settings import Settings
from ragrelay.cli.ingest_watch import IngestWatch, cancel_queued
from ragrelay.cli.settings import workers_of
from ragrelay.corpus import ReadReport, expand, read_documents
from schemas import Document, IngestResult, IngestTask, Usage

#: ``--timeout``'s default: how long a run may go without a batch finishing. A 64-document
#: batch of SciFact takes 5-20 s on a loaded 2-core machine (docs/benchmarks-ingest.md).
STALL_TIMEOUT_S = 600.0


def run_id_for(files: list[Path], tenant: str, batch_size: int, contextualize: bool = False) -> str:
    h = hashlib.sha256(f"{tenant}|{batch_size}{'|contextual' if contextualize else ''}".encode())
    for f in files:
        st = f.stat()
        h.update(f"|{f.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


@click.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--tenant", default="default", show_default=True)
@click.option("--batch-size", type=int, default=64, show_default=True)
@click.option("--strict", is_flag=True, help="Reject a file with any bad line (default: skip).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(min=0, min_open=True),
    default=STALL_TIMEOUT_S,
    show_default=True,
    help="With Redis: give up when no batch has finished for this many seconds (a run "
    "that keeps progressing is never cut short, however long the corpus). Run the same "
    "command again to resume.",
)
@click.option(
    "--store",
    type=click.Choice(["auto", "embedded", "weaviate"]),
    default="auto",
    show_default=True,
    help="auto: the store RAGRELAY_STORE names (default embedded); weaviate needs "
    "RAGRELAY_WEAVIATE_URL. With Redis, the ingest workers' settings decide.",
)
@click.option(
    "--contextualize",
    is_flag=True,
    help="Contextual retrieval: Claude writes one or two sentences situating each "
    "chunk in its document, indexed with the chunk (one call per chunk, the "
    "document cached; needs RAGRELAY_ANTHROPIC_API_KEY).",
)
@click.pass_context
def ingest(
    ctx: click.Context,
    paths: tuple[str, ...],
    tenant: str,
    batch_size: int,
    strict: bool,
    as_json: bool,
    timeout_s: float,
    store: str,
    contextualize: bool,
) -> None:
    """Ingest PATHS (.jsonl/.jsonl.gz with _id,title,text; .md; .txt; .mbox) into TENANT."""
    from ragrelay.client import RagrelayClient
    from workers.settings import StoreSettings, load_worker_settings

    settings: Settings = ctx.find_root().obj
    # --store overrides RAGRELAY_STORE; the store and the Weaviate URL must still agree
    workers = (
        workers_of(ctx)
        if store == "auto"
        else load_worker_settings(store=StoreSettings(kind=store))
    )
    if contextualize and settings.embedded and workers.anthropic.api_key is None:
        raise ConfigError(
            "--contextualize needs Claude: set RAGRELAY_ANTHROPIC_API_KEY "
            "(offline, every chunk is already indexed with its title and section)"
        )
    settings.ensure_data_dir()
    files = expand(list(paths))
    report = ReadReport()
    docs: list[Document] = []
    for f in files:
        docs.extend(read_documents(f, report, strict=strict))
    for problem in report.problems[:50]:
        click.echo(f"skipped {problem}", err=True)
    if len(report.problems) > 50:
        click.echo(f"... and {len(report.problems) - 50} more problems", err=True)
    if not docs:
        raise UsageError(
            "no documents to ingest"
            + (f" ({len(report.problems)} problems; see above)" if report.problems else "")
        )
    batches = [docs[i : i + batch_size] for i in range(0, len(docs), batch_size)]
    run_id = run_id_for(files, tenant, batch_size, contextualize)
    client = RagrelayClient.from_settings(settings, workers)
    started = time.perf_counter()
    done, before = _run(client, settings, run_id, tenant, batches, timeout_s, contextualize)
    seconds = time.perf_counter() - started
    # a resumed run: only the documents this run ingested, over this run's time
    this_run = sum(len(batches[i]) for i in done if i not in before)
    chunks = sum(r.chunks for r in done.values())
    failed = [f for r in done.values() for f in r.failed_chunks]
    for failure in failed[:50]:
        click.echo(f"not written: {failure}", err=True)
    summary: dict[str, Any] = {
        "run_id": run_id,
        "tenant": tenant,
        "files": len(files),
        "documents": len(docs),
        "chunks": chunks,
        "batches": len(batches),
        "skipped_lines": len(report.problems),
        "failed_chunks": len(failed),
        **(_contextual_summary(list(done.values())) if contextualize else {}),
        "resumed_documents": len(docs) - this_run,
        "seconds": round(seconds, 3),
        "docs_per_s": round(this_run / seconds, 1) if seconds and this_run else None,
    }
    if as_json:
        click.echo(json.dumps(summary))
    else:
        click.echo(
            f"Ingested {len(docs)} documents ({chunks} chunks) into tenant {tenant!r} "
            f"in {seconds:.1f} s; {len(report.problems)} lines skipped."
        )


def _contextual_summary(results: list[IngestResult]) -> dict[str, Any]:
    usage = sum((r.usage for r in results), Usage())
    return {
        "contextualized_chunks": sum(r.contextualized for r in results),
        "llm_calls": usage.llm_calls,
        "tokens": usage.tokens,
        "cost_usd": round(usage.cost_usd, 6),
    }


def _run(
    client: Any,
    settings: Settings,
    run_id: str,
    tenant: str,
    batches: list[list[Document]],
    timeout_s: float,
    contextualize: bool = False,
) -> tuple[dict[int, IngestResult], set[int]]:
    """Every batch's result, and the batches already done before this run (a resume)."""
    key = client.keys.ingest_done(run_id)

    def finished() -> dict[int, IngestResult]:
        raw = client.redis.hgetall(key)
        return {int(k): IngestResult.model_validate_json(v) for k, v in raw.items()}

    done = finished()
    before = set(done)
    todo = [i for i in range(len(batches)) if i not in done]
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} docs"),
        TimeRemainingColumn(),
        console=None,
        transient=False,
        disable=not sys.stderr.isatty(),
    ) as bar:
        task = bar.add_task(
            "ingesting",
            total=sum(len(b) for b in batches),
            completed=sum(len(batches[i]) for i in done),
        )
        sent: list[str] = []
        try:
            for i in todo:
                payload = IngestTask(
                    run_id=run_id,
                    batch=i,
                    tenant=tenant,
                    documents=batches[i],
                    contextualize=contextualize,
                ).to_dict()
                sent.append(f"{run_id}-{i}-{uuid.uuid4().hex[:8]}")
                client.run_task(INGEST_TASK, payload, task_id=sent[-1])
                if settings.embedded:
                    bar.update(task, advance=len(batches[i]))
            watch = IngestWatch(client.redis, settings, lambda m: click.echo(m, err=True))
            deadline = time.monotonic() + timeout_s
            progress = len(done)
            while not settings.embedded:
                done = finished()
                bar.update(task, completed=sum(len(batches[i]) for i in done))
                if len(done) >= len(batches):
                    break
                if len(done) > progress:  # progressing: the stall clock starts again
                    progress = len(done)
                    deadline = time.monotonic() + timeout_s
                watch.poll(len(done))
                if time.monotonic() > deadline:
                    raise UsageError(
                        f"ingest run {run_id}: no batch finished in {timeout_s:g} s "
                        f"({len(batches) - len(done)} of {len(batches)} left); is "
                        "`ragrelay worker ingest` running? Run the same command again to "
                        "resume."
                    )
                time.sleep(0.2)
        except KeyboardInterrupt:
            if settings.embedded:
                raise
            removed = cancel_queued(client.redis, sent)
            n = len(finished())
            click.echo(
                f"interrupted: removed {removed} queued batches of run {run_id} from the "
                f"`ingest` queue; {n}/{len(batches)} batches are done (any a worker had "
                "already taken finish and count). Run the same command again to resume.",
                err=True,
            )
            raise click.exceptions.Exit(130) from None
    return finished(), before
