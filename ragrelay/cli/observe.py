"""CLI: ``ragrelay feedback export``, ``ragrelay replay``, ``ragrelay timeline``
(registered in ``ragrelay/cli/app.py``, ``LAZY_COMMANDS``)."""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from bus.settings import Settings

if TYPE_CHECKING:
    from workers.settings import WorkerSettings
from ragrelay.cli.settings import require_redis, workers_of
from ragrelay.cli.settings import settings_of as _settings

NEEDS_REDIS = (
    "{what} needs Redis: set RAGRELAY_REDIS_URL (e.g. redis://127.0.0.1:6379/0). Feedback "
    "is left through the HTTP gateway and kept in Redis."
)


def _client(settings: Settings, workers: WorkerSettings | None = None) -> Any:
    from ragrelay.client import RagrelayClient

    settings.ensure_data_dir()
    return RagrelayClient.from_settings(settings, workers)


# -- feedback export -------------------------------------------------------------------------


@click.group("feedback")
def feedback() -> None:
    """Feedback left on jobs (through the HTTP gateway), and the eval cases it becomes."""


@feedback.command("export")
@click.option(
    "--since",
    default=None,
    help="Only feedback from then on: 2026-11-01, 2026-11-01T12:00:00Z, 24h, 7d.",
)
@click.option("--tenant", default=None, help="Only this tenant's feedback.")
@click.option(
    "--all",
    "include_all",
    is_flag=True,
    help="Also cases without a reference answer (low rating, no correction).",
)
@click.pass_context
def feedback_export(
    ctx: click.Context, since: str | None, tenant: str | None, include_all: bool
) -> None:
    """Print feedback as eval cases, one JSON object per line, in the format `ragrelay eval qa`
    reads: {"_id", "question", "answers": [reference], ...}. The reference is the corrected
    answer, else the job's answer when rated 4-5. Redirect to a file: `> cases.jsonl`."""
    from ragrelay.feedback import FeedbackStore
    from ragrelay.observe.flywheel import export_cases, parse_since

    settings = _settings(ctx)
    client = require_redis(settings, NEEDS_REDIS.format(what="ragrelay feedback export"))
    cutoff = parse_since(since, now=time.time()) if since else None
    skipped: list[str] = []
    written = 0
    for case in export_cases(
        FeedbackStore(client, prefix=settings.key_prefix).all(tenant),
        since=cutoff,
        include_unreferenced=include_all,
        skipped=skipped,
    ):
        click.echo(json.dumps(case, ensure_ascii=False))
        written += 1
    note = f"exported {written} case(s)"
    if skipped:
        note += f"; skipped {len(skipped)} record(s) without a recorded question"
    click.echo(note, err=True)


# -- replay ----------------------------------------------------------------------------------


@click.command("replay")
@click.argument("job_id")
@click.option(
    "--prompt-version",
    "prompt_version",
    multiple=True,
    metavar="NAME=VERSION",
    help="Run with this prompt version (repeatable), e.g. generation=2.",
)
@click.option(
    "--fresh",
    is_flag=True,
    help="Call the model for every stage (default: reuse the recorded output of a "
    "stage whose input and prompt version did not change).",
)
@click.option("--query", default=None, help="Use this query (when the trace lacks it).")
@click.option("--json", "as_json", is_flag=True, help="Print the diff as one JSON object.")
@click.option(
    "--timeout",
    "timeout_s",
    type=float,
    default=None,
    help="Seconds to wait (default: the job's deadline + 10).",
)
@click.pass_context
def replay(
    ctx: click.Context,
    job_id: str,
    prompt_version: tuple[str, ...],
    fresh: bool,
    query: str | None,
    as_json: bool,
    timeout_s: float | None,
) -> None:
    """Re-run the recorded job JOB_ID through the embedded pipeline and print what changed:
    status, stop reason, iterations, answer, citations, scores, usage, prompt versions.

    With Claude, a stage whose input and prompt version are unchanged reuses the output the
    trace recorded (no call, no cost), so pinning a new generation prompt re-runs only
    generation and what depends on it. The offline provider is always re-run."""
    from ragrelay.observe.replay import (
        diff_results,
        recordings,
        recover_request,
        render_diff,
        reused_steps,
    )

    settings = _settings(ctx)
    workers = workers_of(ctx)
    prompts: dict[str, Any] = {}
    if prompt_version:
        from ragrelay.observe.flags import parse_prompt_versions

        prompts["prompt_versions"] = {
            **workers.prompts.prompt_versions,
            **parse_prompt_versions(prompt_version),
        }
    # Embedded: one in-process client reads the recorded job (data_dir/jobs) and runs the
    # replay. With Redis: the recorded job is read there, the replay still runs embedded.
    recorded = _client(settings, workers)
    before = recorded.result(job_id)
    if before is None:
        raise click.ClickException(
            f"no finished job {job_id} (unknown id, still running, or expired)"
        )
    trace = recorded.trace(job_id)
    loaded = None if settings.embedded else recorded.jobs.load(job_id)
    request = recover_request(job_id, trace, loaded[0] if loaded else None, query=query)
    recorded_outputs = [] if fresh else recordings(trace)
    with tempfile.TemporaryDirectory(prefix="ragrelay-replay-") as tmp:
        if recorded_outputs:
            path = Path(tmp) / "recordings.json"
            path.write_text(json.dumps(recorded_outputs), encoding="utf-8")
            prompts["replay_outputs"] = path
        runner = _client(
            settings.model_copy(update={"redis_url": None}), workers.replace(prompts=prompts)
        )
        after = runner.with_trace(
            runner.ask(request, timeout_s=timeout_s or request.budget.deadline_s + 10)
        )
    d = diff_results(before.model_copy(update={"trace": trace}), after)
    d.reused = reused_steps(after.trace, recorded_outputs)
    if as_json:
        click.echo(json.dumps(d.to_dict(), ensure_ascii=False))
    else:
        click.echo(render_diff(d))
    sys.exit(0 if after.status != "failed" else 1)


# -- timeline --------------------------------------------------------------------------------


@click.command("timeline")
@click.argument("job_id")
@click.option(
    "-o",
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the page here (default: stdout).",
)
@click.pass_context
def timeline(ctx: click.Context, job_id: str, out: Path | None) -> None:
    """Write the timeline page of JOB_ID (one self-contained HTML file)."""
    from ragrelay.observe.page import render_timeline

    client = _client(_settings(ctx))
    trace = client.trace(job_id)
    result = client.result(job_id)
    if not trace and result is None:
        raise click.ClickException(f"no job {job_id} (unknown id, or expired)")
    html = render_timeline(result, trace)
    if out is None:
        click.echo(html)
    else:
        out.write_text(html, encoding="utf-8")
        click.echo(f"wrote {out}", err=True)


__all__ = ["feedback", "replay", "timeline"]
