"""`ragrelay eval ...`: the measurement harnesses, each loaded only when it runs."""

from __future__ import annotations

import importlib

import click

EVAL_COMMANDS: dict[str, str] = {
    "retrieval": "ragrelay.evals.retrieval:retrieval_command",
    "qa": "ragrelay.evals.qa:qa_command",
    "inbox": "ragrelay.evals.inbox:eval_inbox_command",
    "report": "ragrelay.evals.report:report_command",
    "ab": "ragrelay.evals.report:ab_command",
}


class _Lazy(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(EVAL_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = EVAL_COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, _, attr = target.partition(":")
        try:
            command: click.Command = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError):
            return None
        return command


@click.group("eval", cls=_Lazy)
def eval_group() -> None:
    """Measure the pipeline on real data: retrieval (BEIR), qa (SQuAD), inbox (triage+drafts)."""
