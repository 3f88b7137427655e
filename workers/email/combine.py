"""The spam decision: the learned model's P(spam) combined with the mail server's filter.

The filter's verdict arrives in the email mapping (``filter_score``, ``filter_required``,
``filter_source``, ``auth_result``; set by the ingress, see ``ragrelay.inbox.spamfilter``)
only when the operator configured one. The rule, in words — *spam needs confidence,
uncertainty goes to a person*:

| filter | model P(spam) | verdict |
| --- | --- | --- |
| none | ≥ spam threshold | spam |
| none | review … spam threshold | review |
| says spam (score ≥ required) | ≥ spam threshold | spam (both agree) |
| says spam | below spam threshold | review (the model is not sure: a person looks) |
| unsure (1 ≤ score < required) | ≥ spam threshold | spam |
| unsure | review … spam threshold | review |
| confident ham (score < 1) or trusted DKIM/DMARC pass | ≥ review threshold | review (never spam on the model alone) |
| any | below review threshold (and filter not spam) | not spam |

``review`` means: drafted like ``needs_reply`` and flagged (IMAP keyword) for a person.
"""

from __future__ import annotations

from collections.abc import Mapping

FILTER_HAM_BELOW = 1.0  # SpamAssassin points under which the filter is confident it is ham


def filter_score(email: Mapping[str, str]) -> tuple[float, float] | None:
    """(score, required) from the ingress's filter keys, or None when no filter spoke."""
    if not (email.get("filter_source") or "").strip():
        return None
    try:
        return float(email.get("filter_score", "")), float(email.get("filter_required") or 5.0)
    except ValueError:
        return None


def spam_verdict(
    p_spam: float | None,
    spam_threshold: float,
    review_threshold: float,
    email: Mapping[str, str],
) -> tuple[str, str]:
    """(``spam`` | ``review`` | ``ham``, what decided). ``p_spam`` None = no model."""
    verdict = filter_score(email)
    authenticated = (email.get("auth_result") or "").strip().lower() == "pass"
    review_threshold = min(review_threshold, spam_threshold)
    if p_spam is None:  # the filter alone
        if verdict is not None and verdict[0] >= verdict[1]:
            return "spam", "filter"
        return "ham", "filter" if verdict is not None else "none"
    if verdict is None:
        if p_spam >= spam_threshold:
            return ("review", "model+auth-pass") if authenticated else ("spam", "model")
        if p_spam >= review_threshold:
            return "review", "model-uncertain"
        return "ham", "model"
    score, required = verdict
    if score >= required:
        # measured (eval inbox, grouped split, first run): "filter spam + model in the review
        # band → spam" added 4 real spam and 4 false spam — a coin toss, so a person looks
        if p_spam >= spam_threshold:
            return "spam", "filter+model"
        return "review", "filter-spam-model-unsure"
    if score < FILTER_HAM_BELOW or authenticated:
        if p_spam >= review_threshold:
            return "review", "filter-ham-model-spam"
        return "ham", "filter+model"
    if p_spam >= spam_threshold:
        return "spam", "model (filter unsure)"
    if p_spam >= review_threshold:
        return "review", "model-uncertain"
    return "ham", "filter+model"


__all__ = ["FILTER_HAM_BELOW", "filter_score", "spam_verdict"]
