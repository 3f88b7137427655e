"""Out-of-distribution calibration of the spam threshold: grouped cross-validation.

A threshold chosen on a *random* k-fold of one inbox is tuned on mail from the same
lists and senders it is tested on; on mail from lists and senders it has never seen the
model is less sure, and the same threshold buries real messages (the held-out check: spam
precision 0.94 where the random k-fold promised 0.99). So thresholds are chosen on
**grouped** out-of-fold probabilities: messages are grouped by where they come from
(``mail_group``: the mailing list, else the sender's domain) and no group is ever on
both sides of a fold. Every out-of-fold probability is then a prediction about a source
the model has not seen — the situation of a new inbox.

Two thresholds come out:
- ``spam_threshold``: the lowest P(spam) whose grouped out-of-fold spam precision reaches
  the target (0.99), counting as *false positives* everything a grouped fold calls spam;
- ``review_threshold``: below it the model is confident the mail is not spam; between the
  two the message is *uncertain* and goes to ``review`` (drafted, flagged for a person),
  never to spam.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping, Sequence

_LIST_ID = re.compile(r"<([^>]+)>")
_ADDRESS_DOMAIN = re.compile(r"@([A-Za-z0-9.-]+)")
_LIST_NAME = re.compile(r"list\s+([\w.+-]+@[\w.-]+)", re.IGNORECASE)

SPAM_GRID: tuple[float, ...] = tuple(round(0.30 + 0.025 * step, 3) for step in range(28))
REVIEW_PRECISION = 0.80  # P(spam) from which grouped out-of-fold precision is ≥ this → review


def _registered_domain(host: str) -> str:
    parts = [p for p in host.lower().rstrip(".").split(".") if p]
    return ".".join(parts[-2:]) if parts else ""


def mail_group(email: Mapping[str, str]) -> str:
    """Where a message comes from: ``list:<list id>`` for list mail, else
    ``domain:<sender's registered domain>``, else ``unknown``."""
    for key in ("list_id", "x_mailing_list", "mailing_list"):
        value = (email.get(key) or "").strip()
        if not value:
            continue
        match = _LIST_ID.search(value) or _LIST_NAME.search(value)
        name = (match.group(1) if match else value).strip().lower()
        return f"list:{name[:80]}"
    sender = email.get("from_email") or email.get("from") or ""
    match = _ADDRESS_DOMAIN.search(sender)
    if match:
        return f"domain:{_registered_domain(match.group(1))}"
    return "unknown"


def group_folds(groups: Sequence[str], folds: int) -> list[list[int]]:
    """Indices split into ``folds`` parts, whole groups only, sizes balanced (largest
    group first into the smallest fold; deterministic)."""
    members: dict[str, list[int]] = defaultdict(list)
    for index, group in enumerate(groups):
        members[group].append(index)
    out: list[list[int]] = [[] for _ in range(max(1, folds))]
    for _group, indices in sorted(members.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        smallest = min(range(len(out)), key=lambda f: (len(out[f]), f))
        out[smallest].extend(indices)
    return [sorted(f) for f in out if f]


def precision_at(
    probabilities: Sequence[Mapping[str, float]], labels: Sequence[str], threshold: float
) -> tuple[float, int]:
    """(spam precision, messages flagged) when spam = P(spam) ≥ threshold."""
    flagged = [p.get("spam", 0.0) >= threshold for p in probabilities]
    hits = sum(1 for f, y in zip(flagged, labels, strict=True) if f and y == "spam")
    count = sum(flagged)
    return (hits / count if count else 1.0), count


def choose_thresholds(
    probabilities: Sequence[Mapping[str, float]],
    labels: Sequence[str],
    target: float = 0.99,
    review_precision: float = REVIEW_PRECISION,
) -> tuple[float, float]:
    """(spam_threshold, review_threshold) from grouped out-of-fold probabilities.

    The spam threshold is the lowest grid value from which precision stays ≥ ``target``
    at *every* higher grid value too (a single lucky point does not count). The review
    threshold is the lowest value from which precision stays ≥ ``review_precision``,
    capped at the spam threshold."""
    spam = _lowest_stable(probabilities, labels, target)
    review = min(spam, _lowest_stable(probabilities, labels, review_precision))
    return spam, review


def _lowest_stable(
    probabilities: Sequence[Mapping[str, float]], labels: Sequence[str], target: float
) -> float:
    best = SPAM_GRID[-1]
    for threshold in reversed(SPAM_GRID):
        precision, _count = precision_at(probabilities, labels, threshold)
        if precision < target:
            break
        best = threshold
    return best


def group_summary(groups: Sequence[str], labels: Sequence[str]) -> dict[str, int]:
    """How many groups, and the largest group's size (for reports)."""
    sizes: dict[str, int] = defaultdict(int)
    for group in groups:
        sizes[group] += 1
    return {
        "groups": len(sizes),
        "largest_group": max(sizes.values()) if sizes else 0,
        "messages": len(labels),
        "spam_groups": len({g for g, y in zip(groups, labels, strict=True) if y == "spam"}),
    }


__all__ = [
    "REVIEW_PRECISION",
    "SPAM_GRID",
    "choose_thresholds",
    "group_folds",
    "group_summary",
    "mail_group",
    "precision_at",
]
