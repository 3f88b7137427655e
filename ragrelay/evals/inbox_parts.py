"""``eval inbox`` figures beyond the pipeline run: the filter, the model and both combined;
the in-distribution triage beside the out-of-distribution one; what the drafts say."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from workers.email.train import fit, metrics
from workers.email.triage import TriageModel

if TYPE_CHECKING:
    from ragrelay.evals.inbox import Labelled
    from ragrelay.inbox.process import Outcome

FILTER_KEYS = ("filter_source", "filter_score", "filter_required", "filter_tests", "auth_result")


def collect_filter(
    evaluated: Sequence[Labelled], ask: Callable[[bytes], dict[str, str]], workers: int = 2
) -> dict[int, dict[str, str]]:
    """The filter's verdict on every evaluated message (asked once, ``workers`` at a time)."""
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        verdicts = list(pool.map(lambda item: ask(item.raw), evaluated))
    return dict(enumerate(verdicts))


def without_filter(email: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in email.items() if k not in FILTER_KEYS}


def filter_label(verdict: Mapping[str, str]) -> str:
    """The filter alone: spam at score ≥ required, otherwise not spam (``needs_reply``
    stands in for "ham", which is all a spam filter says)."""
    try:
        score = float(verdict.get("filter_score", ""))
        required = float(verdict.get("filter_required") or 5.0)
    except ValueError:
        return "needs_reply"
    return "spam" if score >= required else "needs_reply"


def spam_figures(truth: Sequence[str], predicted: Sequence[str]) -> dict[str, float]:
    figures = metrics(truth, predicted)
    return {
        "spam_precision": round(figures["spam_precision"], 4),
        "spam_recall": round(figures["spam_recall"], 4),
        "needs_reply_recall": round(figures["needs_reply_recall"], 4),
        "review_share": round(figures["review_share"], 4),
        "false_spam": sum(1 for t, p in zip(truth, predicted, strict=True) if p == "spam" != t),
        "review": sum(1 for p in predicted if p == "review"),
    }


def in_distribution(
    evaluated: Sequence[Labelled],
    plans: Sequence[tuple[list[int], list[Labelled]]],
    emails: Mapping[int, dict[str, str]],
    train: Callable[[Sequence[Labelled]], TriageModel] | None = None,
) -> dict[str, Any]:
    """Triage figures (model alone, and combined when ``emails`` carry filter verdicts) from
    random stratified folds: the in-distribution figure the old eval reported."""
    make = train or (lambda items: fit(_examples(items), folds=3))
    model_only: dict[int, str] = {}
    combined: dict[int, str] = {}
    for indices, items in plans:
        model = make(items)
        for index in indices:
            email = emails.get(index)
            if email is None:
                continue
            model_only[index] = model.decide(without_filter(email)).label
            combined[index] = model.decide(email).label
    truth = [item.label for item in evaluated]
    out: dict[str, Any] = {
        "split": "stratified",
        "model": spam_figures(truth, [model_only.get(i, "none") for i in range(len(truth))]),
    }
    if any(email.get("filter_source") for email in emails.values()):
        out["combined"] = spam_figures(truth, [combined.get(i, "none") for i in range(len(truth))])
    return out


def _examples(items: Sequence[Labelled]) -> list[tuple[dict[str, str], str]]:
    return [(i.parsed.to_metadata()["email"], i.label) for i in items if i.parsed is not None]


def draft_figures(outcomes: Sequence[Outcome], examples: int = 2) -> dict[str, Any]:
    """Shares of grounded and holding drafts, with a few examples of each."""
    drafted = [o for o in outcomes if o.status == "drafted"]
    grounded = [o for o in drafted if o.draft_kind == "grounded"]
    holding = [o for o in drafted if o.draft_kind == "holding"]
    total = len(drafted) or 1
    return {
        "drafts_holding": round(len(holding) / total, 4) if drafted else 0.0,
        "drafts_other": len(drafted) - len(grounded) - len(holding),
        "draft_examples": {
            "grounded": [_clip(o.draft_text) for o in grounded[:examples]],
            "holding": [_clip(o.draft_text) for o in holding[:1]],
        },
    }


def _clip(text: str | None, limit: int = 700) -> str:
    text = (text or "").strip()
    return text if len(text) <= limit else text[:limit] + " …"


__all__ = [
    "collect_filter",
    "draft_figures",
    "filter_label",
    "in_distribution",
    "spam_figures",
    "without_filter",
]
