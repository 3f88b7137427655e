"""`ragrelay eval ...`: the measurement harnesses, each loaded only when it runs."""

from __future__ import annotations

import click

from ragrelay.cli.lazy import LazyGroup, Loader


def _retrieval() -> click.Command:
    from ragrelay.evals.retrieval import retrieval_command

    return retrieval_command


def _qa() -> click.Command:
    from ragrelay.evals.qa import qa_command

    return qa_command


def _inbox() -> click.Command:
    from ragrelay.evals.inbox import eval_inbox_command

    return eval_inbox_command


def _rationale() -> click.Command:
    from ragrelay.evals.rationale import rationale_command

    return rationale_command


def _report() -> click.Command:
    from ragrelay.evals.report import report_command

    return report_command


def _ab() -> click.Command:
    from ragrelay.evals.report import ab_command

    return ab_command


EVAL_COMMANDS: dict[str, Loader] = {
    "retrieval": _retrieval,
    "qa": _qa,
    "inbox": _inbox,
    "rationale": _rationale,
    "report": _report,
    "ab": _ab,
}


@click.group("eval", cls=LazyGroup, lazy=EVAL_COMMANDS)
def eval_group() -> None:
    """Measure the pipeline on real data: retrieval (BEIR), qa (SQuAD), inbox (triage+drafts),
    rationale (SciFact: do answers state the evidence?)."""
