"""`ragrelay feedback export` is what docs/gateway.md and docs/observability.md show (issue 22,
item 9): the same fields, a low rating without a correction only with ``--all``, and one
implementation of the command."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import click

from ragrelay.cli.app import LAZY_COMMANDS
from ragrelay.feedback import FeedbackRecord
from ragrelay.observe.flywheel import export_cases, to_case

ROOT = Path(__file__).resolve().parents[4]


def _documented_cases(doc: str) -> list[dict[str, object]]:
    """The JSON objects a doc shows as `feedback export` output (one line or pretty)."""
    text = (ROOT / "docs" / doc).read_text()
    found = []
    blocks = re.split(r"^```.*$", text, flags=re.M)[1::2]  # the insides of the fences
    for raw in blocks:
        block = raw.strip("\n")
        if '"reference_kind"' not in block:
            continue
        body = block.split("\n", 1)[1] if block.startswith("$ ") else block
        body = body.split("\nexported ")[0]
        found.append(json.loads(body.replace("…", "")))
    return found


def _record(rating: int, corrected: str | None = None) -> FeedbackRecord:
    return FeedbackRecord(
        feedback_id="f1",
        job_id="j1",
        tenant="acme",
        at=0.0,
        rating=rating,
        comment="c",
        corrected_answer=corrected,
        query="Q?",
        answer="A.",
        status="succeeded",
        cited_doc_ids=["d"],
    )


def test_the_documented_export_has_the_fields_the_command_writes() -> None:
    for doc in ("gateway.md", "observability.md"):
        shown = _documented_cases(doc)
        assert shown, f"docs/{doc} shows no feedback export output"
        for case in shown:
            written = to_case(_record(int(str(case["rating"])), corrected="x"))
            assert set(case) == set(written), doc


def test_a_low_rating_without_correction_is_exported_only_with_all() -> None:
    low = _record(2)
    assert list(export_cases([low])) == []
    (case,) = export_cases([low], include_unreferenced=True)
    assert case["answers"] == [] and case["rejected_answers"] == ["A."]
    gateway = (ROOT / "docs" / "gateway.md").read_text()
    assert "only with `--all`" in gateway  # what the docs promise


def test_one_feedback_export_command() -> None:
    group = LAZY_COMMANDS["feedback"]()
    assert isinstance(group, click.Group) and "export" in group.commands
    defining = []
    for path in (ROOT / "ragrelay").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") in (
                "command",
                "group",
            ):
                args = [a.value for a in node.args if isinstance(a, ast.Constant)]
                if args[:1] == ["feedback"] or (
                    args[:1] == ["export"] and "feedback" in ast.unparse(node.func)
                ):
                    defining.append(str(path.relative_to(ROOT)))
    assert defining == ["ragrelay/cli/observe.py", "ragrelay/cli/observe.py"], defining
