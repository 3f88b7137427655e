"""`ragrelay sync dir|postgres`: mirror a directory tree or a PostgreSQL query into a tenant.

Each run reports added/updated/deleted/unchanged/failed; unchanged content is not sent to
the workers (so never re-parsed or re-embedded). A run is idempotent, and resumable: the
manifest records only what the workers confirmed. ``--interval`` repeats the run forever.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import click

from bus.settings import Settings
from ragrelay.cli.settings import workers_of
from ragrelay.sync import Manifest, SyncReport, run_sync

COMMON = [
    click.option("--tenant", default="default", show_default=True),
    click.option("--json", "as_json", is_flag=True, help="Print each run's report as JSON."),
    click.option(
        "--interval",
        type=float,
        default=None,
        help="Seconds between runs; without it, run once and exit.",
    ),
    click.option(
        "--timeout",
        "timeout_s",
        type=float,
        default=3600,
        show_default=True,
        help="Seconds to wait for the ingest workers per run.",
    ),
]


def common(fn: Callable[..., None]) -> Callable[..., None]:
    for option in reversed(COMMON):
        fn = option(fn)
    return fn


@click.group()
def sync() -> None:
    """Keep a directory or a PostgreSQL table mirrored into a tenant's documents."""


def _loop(
    ctx: click.Context, as_json: bool, interval: float | None, once: Callable[..., SyncReport]
) -> None:
    from ragrelay.client import RagrelayClient

    settings: Settings = ctx.find_root().obj
    settings.ensure_data_dir()
    client = RagrelayClient.from_settings(settings, workers_of(ctx))
    failed = 0
    while True:
        report = once(client, settings.data_dir)
        failed = report.failed
        if as_json:
            click.echo(json.dumps(report.to_dict()), nl=True)
        else:
            click.echo(
                f"{report.source} -> {report.tenant}: {report.added} added, {report.updated} "
                f"updated, {report.deleted} deleted, {report.unchanged} unchanged, "
                f"{report.failed} failed ({report.seconds:.1f} s)"
            )
            for f in report.failures[:50]:
                click.echo(f"failed {f['doc_id']}: {f['reason']}", err=True)
        if interval is None:
            break
        time.sleep(interval)
    ctx.exit(1 if failed else 0)


@sync.command("dir")
@click.argument("path", type=click.Path(file_okay=False, path_type=Path))
@click.option("--source", default=None, help="Source name on the documents (default: dir).")
@click.option("--ocr", is_flag=True, help="Read scanned PDFs and images with Tesseract.")
@common
@click.pass_context
def sync_dir(
    ctx: click.Context,
    path: Path,
    source: str | None,
    ocr: bool,
    tenant: str,
    as_json: bool,
    interval: float | None,
    timeout_s: float,
) -> None:
    """Mirror the PDF/DOCX/HTML/Markdown/text/.eml files under PATH into TENANT.

    New and changed files are ingested, deleted files' documents deleted; a file's doc id
    is its path under PATH. Exit 1 when a file failed (its reason is printed)."""
    from ragrelay.sync.sources import dir_candidates

    root = path.resolve()

    def once(client: object, data_dir: Path) -> SyncReport:
        manifest = Manifest.load(data_dir, tenant, f"dir:{root}")
        return run_sync(
            client,
            source=f"dir:{root}",
            tenant=tenant,
            manifest=manifest,
            current=dir_candidates(root, source or "dir"),
            timeout_s=timeout_s,
            ocr=ocr,
        )

    _loop(ctx, as_json, interval, once)


@sync.command("postgres")
@click.option("--dsn", required=True, help="e.g. postgresql://user@127.0.0.1:5432/db")
@click.option("--query", required=True, help="SELECT whose rows become documents.")
@click.option("--id-column", required=True)
@click.option("--text-column", required=True)
@click.option("--title-column", default=None)
@click.option(
    "--updated-column",
    default=None,
    help="Incremental: only rows whose value changed since the last run are read in full.",
)
@click.option("--metadata-column", "metadata_columns", multiple=True, help="Repeatable.")
@click.option("--source", default="postgres", show_default=True)
@common
@click.pass_context
def sync_postgres(
    ctx: click.Context,
    dsn: str,
    query: str,
    id_column: str,
    text_column: str,
    title_column: str | None,
    updated_column: str | None,
    metadata_columns: tuple[str, ...],
    source: str,
    tenant: str,
    as_json: bool,
    interval: float | None,
    timeout_s: float,
) -> None:
    """Mirror the rows of QUERY into TENANT: one document per row (id, text, title and
    metadata columns named), deleted rows' documents deleted."""
    from ragrelay.sync.sources import PgQuery, pg_candidates

    q = PgQuery(dsn, query, id_column, text_column, title_column, updated_column, metadata_columns)
    key = f"postgres:{dsn}:{query}:{id_column}"

    def once(client: object, data_dir: Path) -> SyncReport:
        manifest = Manifest.load(data_dir, tenant, key)
        current, unchanged, all_ids = pg_candidates(q, manifest, source)
        return run_sync(
            client,
            source=source,
            tenant=tenant,
            manifest=manifest,
            current=current,
            unchanged_ids=unchanged,
            all_ids=all_ids,
            timeout_s=timeout_s,
        )

    _loop(ctx, as_json, interval, once)
