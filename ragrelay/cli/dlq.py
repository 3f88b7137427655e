"""``ragrelay dlq``: list, show, replay and purge dead letters.

A dead letter is a task the workers gave up on (invalid message, permanent error, a handler
crash, transient errors past the retry policy), kept with its payload and the reason in the
``<prefix>:dlq`` Redis Stream. ``replay`` re-submits the task by name to its queue with the
same payload, through Celery ``send_task``, once the cause is fixed.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
import redis

from bus.errors import ConfigError, CorruptRecord
from bus.events import DeadLetters
from bus.keys import Keys
from bus.redis import describe_redis_error
from bus.settings import Settings
from ragrelay.cli.settings import require_redis
from ragrelay.cli.settings import settings_of as _settings

REASON_WIDTH = 70
# kept for inspection only: the engine's quarantine of unreadable job records and events
RECORDS_NOT_TASKS = frozenset({"corrupt_job", "invalid_event"})


@contextmanager
def _client(settings: Settings) -> Iterator[redis.Redis]:
    client = require_redis(
        settings,
        (
            "ragrelay dlq reads the dead letters kept in Redis: set RAGRELAY_REDIS_URL "
            "(e.g. redis://127.0.0.1:6379/0). Embedded runs keep no dead letters after they exit."
        ),
    )
    try:
        yield client
    except redis.exceptions.ConnectionError as exc:
        raise ConfigError(describe_redis_error(exc, settings.redis_url)) from exc
    finally:
        client.close()


def _letters(settings: Settings, client: redis.Redis) -> DeadLetters:
    return DeadLetters(client, Keys(settings.key_prefix))


def _get(letters: DeadLetters, entry_id: str) -> dict[str, Any]:
    try:
        entry = letters.get(entry_id)
    except redis.exceptions.ResponseError as exc:
        raise click.BadParameter(
            f"{entry_id!r} is not a dead-letter id (like 1700000000000-0)", param_hint="ID"
        ) from exc
    if entry is None:
        raise click.ClickException(f"no dead letter {entry_id} (see `ragrelay dlq list`)")
    return entry


def _when(entry: dict[str, Any]) -> str:
    try:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(float(entry.get("at", ""))))
    except ValueError:
        return "?"


def _short(text: str, width: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


@click.group("dlq")
def dlq() -> None:
    """Dead letters: tasks given up on, with their payload and the reason."""


@dlq.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option("--limit", type=click.IntRange(1), default=100, show_default=True)
@click.option(
    "--kind",
    default=None,
    help="Only this kind (invalid, permanent, crash, transient_exhausted, ...).",
)
@click.pass_context
def list_command(ctx: click.Context, as_json: bool, limit: int, kind: str | None) -> None:
    """List dead letters, oldest first."""
    settings = _settings(ctx)
    with _client(settings) as client:
        letters = _letters(settings, client)
        rows = letters.list(count=limit if kind is None else 1_000_000)
        total = int(client.xlen(letters.keys.dlq))
    if kind is not None:
        rows = [r for r in rows if r.get("kind") == kind][:limit]
    if as_json:
        for row in rows:
            click.echo(json.dumps(row, sort_keys=True, default=str))
        return
    if not rows:
        click.echo("no dead letters")
        return
    click.echo(f"{'ID':<17} {'AT (UTC)':<19} {'TASK':<20} {'KIND':<19} {'JOB':<12} REASON")
    for r in rows:
        click.echo(
            f"{r['id']:<17} {_when(r):<19} {_short(r.get('task', ''), 20):<20} "
            f"{_short(r.get('kind', ''), 19):<19} {(r.get('job_id') or '-')[:12]:<12} "
            f"{_short(r.get('reason', ''), REASON_WIDTH)}"
        )
    if total > len(rows) and kind is None:
        click.echo(f"({len(rows)} of {total}; --limit to see more)")


@dlq.command("show")
@click.argument("entry_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="The entry as one JSON object.")
@click.pass_context
def show(ctx: click.Context, entry_id: str, as_json: bool) -> None:
    """Show one dead letter: task, queue, reason, job and the full payload."""
    settings = _settings(ctx)
    with _client(settings) as client:
        entry = _get(_letters(settings, client), entry_id)
    if as_json:
        click.echo(json.dumps(entry, sort_keys=True, default=str))
        return
    for key in ("id", "task", "queue", "kind", "job_id", "task_id"):
        click.echo(f"{key + ':':<9} {entry.get(key) or '-'}")
    click.echo(f"{'at:':<9} {_when(entry)} UTC")
    click.echo(f"{'reason:':<9} {entry.get('reason', '')}")
    click.echo("payload:")
    click.echo(json.dumps(entry.get("payload"), indent=2, sort_keys=True, default=str))


@dlq.command("replay")
@click.argument("entry_ids", metavar="ID...", nargs=-1, required=True)
@click.option("--keep", is_flag=True, help="Keep the entries in the dead-letter store.")
@click.pass_context
def replay(ctx: click.Context, entry_ids: tuple[str, ...], keep: bool) -> None:
    """Re-submit dead-lettered tasks to their queues, same task name and payload.

    Run it once the cause is fixed (a deployed handler fix, a restored dependency). Each
    replay gets a new task id (header ``replay_of`` names the entry); the entry is removed
    once the task is published, unless --keep. A stage step of a job that has already
    ended is re-run, but its result no longer changes that job: the command says so.
    """
    from bus.app import create_app
    from orchestrator.jobs import JobStore

    settings = _settings(ctx)
    with _client(settings) as client:
        letters = _letters(settings, client)
        entries = [_get(letters, entry_id) for entry_id in entry_ids]
        jobs = JobStore(client, letters.keys, ttl_s=settings.result_ttl_s)
        app = create_app(settings)
        try:
            for entry in entries:
                task_id = replay_entry(app, entry)
                if not keep:
                    letters.delete(entry["id"])
                click.echo(
                    f"replayed {entry['id']}: {entry['task']} -> queue "
                    f"{entry['queue']} as task {task_id}"
                )
                note = _ended_job_note(jobs, entry)
                if note:
                    click.echo(note, err=True)
        finally:
            app.close()


def replay_entry(app: Any, entry: dict[str, Any]) -> str:
    """Publish the dead-lettered task again by name, same payload; returns the new task id."""
    task = entry.get("task") or ""
    queue = entry.get("queue") or ""
    if entry.get("kind") in RECORDS_NOT_TASKS:
        raise click.ClickException(
            f"dead letter {entry['id']} is a quarantined {entry['kind'].replace('_', ' ')}, "
            f"not a task: there is nothing to run again. `ragrelay dlq show {entry['id']}` "
            "shows the record; submit the job again if its answer is still wanted"
        )
    if not task or not queue:
        raise click.ClickException(
            f"dead letter {entry['id']} names no task or queue: it cannot be replayed"
        )
    task_id = uuid.uuid4().hex
    app.send_task(
        task,
        args=[entry.get("payload")],
        queue=queue,
        task_id=task_id,
        headers={
            "replay_of": entry["id"],
            "job_id": entry.get("job_id") or None,
            "trace_id": entry.get("job_id") or None,
        },
    )
    return task_id


def _ended_job_note(jobs: Any, entry: dict[str, Any]) -> str | None:
    job_id = entry.get("job_id")
    if not job_id or entry.get("task") == "ragrelay.submit":
        return None
    try:
        result = jobs.result(job_id)
    except CorruptRecord:
        return None
    if result is None:
        return None
    return (
        f"note: job {job_id} already ended ({result.status}, {result.stop_reason}); the "
        "replayed step runs again but cannot change that result. Submit the job again "
        "(a new idempotency key) to get a new answer."
    )


@dlq.command("purge")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def purge(ctx: click.Context, yes: bool) -> None:
    """Delete every dead letter."""
    settings = _settings(ctx)
    with _client(settings) as client:
        letters = _letters(settings, client)
        n = int(client.xlen(letters.keys.dlq))
        if n and not yes:
            click.confirm(f"Delete {n} dead letters?", abort=True)
        removed = letters.purge() if n else 0
    click.echo(f"purged {removed} dead letters")
