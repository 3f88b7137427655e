"""eval inbox's out-of-distribution split: a fold's model never saw the fold's sources."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

from ragrelay.evals.inbox import Labelled, group_of, plan_models
from ragrelay.evals.inbox_parts import draft_figures, filter_label, spam_figures
from ragrelay.inbox.parse import parse_message
from ragrelay.inbox.process import Outcome


def _item(n: int, label: str, source: str) -> Labelled:
    msg = EmailMessage()
    msg["From"], msg["Subject"] = f"u{n}@{source}", f"message {n}"
    msg["Message-ID"] = f"<{n}@{source}>"
    if source.startswith("list"):
        msg["List-Id"] = f"<{source}>"
    msg.set_content(f"body {n}\n")
    raw = msg.as_bytes()
    return Labelled(f"{n}.eml", label, Path(f"{n}.eml"), raw, parse_message(raw))


def test_group_split_never_trains_on_the_evaluated_fold_sources() -> None:
    sources = ["list-a.org", "list-b.org", "spam1.biz", "spam2.biz", "c.org", "list-d.org"]
    items = [
        _item(n, "spam" if "spam" in s else "needs_reply", s)
        for n, s in enumerate(s for s in sources for _ in range(4))
    ]
    plans, overlap = plan_models(items, items, 3, "group")
    assert overlap == len(items)
    assert sorted(i for fold, _ in plans for i in fold) == list(range(len(items)))
    for fold, train in plans:
        fold_groups = {group_of(items[i]) for i in fold}
        assert fold_groups and not fold_groups & {group_of(t) for t in train}
        assert not {items[i].file for i in fold} & {t.file for t in train}
    # stratified folds (in distribution) do share sources between train and test
    strat, _ = plan_models(items, items, 3, "stratified")
    assert any(
        {group_of(items[i]) for i in fold} & {group_of(t) for t in train} for fold, train in strat
    )


def test_component_figures_and_draft_shares() -> None:
    assert filter_label({"filter_score": "7.5", "filter_required": "5.0"}) == "spam"
    assert filter_label({}) == "needs_reply"
    truth = ["spam", "spam", "needs_reply", "no_reply"]
    figures = spam_figures(truth, ["spam", "review", "review", "spam"])
    assert figures["spam_precision"] == 0.5 and figures["spam_recall"] == 0.5
    assert figures["review"] == 2 and figures["false_spam"] == 1
    assert figures["needs_reply_recall"] == 1.0  # review is drafted: the reply is not lost
    outcomes = [
        Outcome("1", "k1", "drafted", draft_kind="grounded", draft_text="Hi,\n\nA.\n"),
        Outcome("2", "k2", "drafted", draft_kind="holding", draft_text="Hi,\n\nNo answer.\n"),
        Outcome("3", "k3", "drafted", draft_kind="holding", draft_text="Hi,\n\nNo answer.\n"),
        Outcome("4", "k4", "no_draft"),
    ]
    shares = draft_figures(outcomes)
    assert shares["drafts_holding"] == round(2 / 3, 4) and shares["drafts_other"] == 0
    assert shares["draft_examples"]["grounded"] == ["Hi,\n\nA."]
