"""Drafts people edited before sending → feedback records → eval cases.

The inbox agent only drafts; a person reviews, edits and sends. The sent version is the
best reference answer there is. Each pass over the Sent folder looks at the messages not
yet marked, matches each to a draft of ours — its ``In-Reply-To`` (or last
``References`` entry) is the original's Message-ID, or its own Message-ID /
``X-Ragrelay-Reply-Key`` is the draft's (clients that keep them) — through the ledger's
draft memory (``Ledger.find_draft``), and compares the text (quotes, attribution lines and
signature stripped on both sides, whitespace collapsed):

* edited → a feedback record with the question, our draft as the answer and the person's
  text as ``corrected_answer`` (``ragrelay feedback export`` turns it into an eval case
  with that text as the reference); the rating is a rough measure of how much was kept
  (``1 + 4 * similarity``, at most 4);
* sent unchanged → an "accepted" record, rating 5, no correction (exported with our draft
  as a confirmed reference);
* not a reply to a draft of ours → nothing.

Once per sent message: a ledger claim on ``sent:<its key>`` comes first, the message gets
``$RagrelayProcessed`` after the record is stored, the claim is completed last. The
feedback id is derived from the tenant and the sent message's key, so even a crash between
storing and completing yields the same record id again (and the export keeps one case per
job).
"""

from __future__ import annotations

import difflib
import hashlib
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from typing import Any, Protocol

import redis

from bus.errors import InvalidMessage, RagrelayError
from ragrelay.feedback import FeedbackRecord
from ragrelay.inbox.draft import DRAFT_KEY_HEADER
from ragrelay.inbox.ledger import DEFAULT_LEASE_S, Ledger
from ragrelay.inbox.mailbox import RawMessage
from ragrelay.inbox.parse import ParsedEmail, parse_message
from ragrelay.inbox.text import strip_for_analysis

ACCEPTED_RATING = 5
MAX_EDITED_RATING = 4
_MSGID = re.compile(r"<[^<>\s]+>")


class SentFolder(Protocol):
    def fetch(self) -> Iterator[RawMessage]: ...

    def mark_processed(self, ref: str) -> None: ...


class FeedbackSink(Protocol):
    """What the scanner needs of ``ragrelay.feedback.FeedbackStore``."""

    def store(self, record: FeedbackRecord) -> FeedbackRecord: ...


@dataclass
class SentOutcome:
    ref: str
    key: str
    status: str  # edited | accepted | unrelated | skipped | unparseable | failed
    job_id: str | None = None
    similarity: float | None = None
    feedback_id: str | None = None
    reason: str = ""

    def to_dict(self) -> dict[str, object]:
        return {"sent": True, **asdict(self)}


def normalise(text: str) -> str:
    """What a reply says: quotes, attribution, signature stripped; whitespace collapsed."""
    return " ".join(strip_for_analysis(text).split())


def similarity(a: str, b: str) -> float:
    """Share of words kept, in order (difflib ratio over word lists), 0..1."""
    return round(difflib.SequenceMatcher(None, a.split(), b.split(), autojunk=False).ratio(), 3)


def edited_rating(sim: float) -> int:
    return max(1, min(MAX_EDITED_RATING, round(1 + 4 * sim)))


def reply_refs(parsed: ParsedEmail, raw: bytes) -> list[str]:
    """Where a sent message may point at one of our drafts, most specific first."""
    refs = _MSGID.findall(parsed.in_reply_to)[:1]
    if parsed.references:
        refs.append(parsed.references[-1])
    if parsed.message_id:
        refs.append(parsed.message_id)
    headers = BytesHeaderParser(policy=default_policy).parsebytes(raw)
    reply_key = str(headers.get(DRAFT_KEY_HEADER, "") or "").strip()
    if reply_key:
        refs.append(reply_key)
    return list(dict.fromkeys(refs))


def feedback_id(tenant: str, sent_key: str) -> str:
    return hashlib.sha256(
        f"sent\x00{tenant}\x00{sent_key}".encode("utf-8", "surrogatepass")
    ).hexdigest()[:32]


def feedback_for(
    parsed: ParsedEmail, draft: dict[str, Any], *, tenant: str, now: float | None = None
) -> tuple[FeedbackRecord, float]:
    """The feedback record a sent reply makes about our draft, and the similarity."""
    ours = normalise(str(draft.get("draft") or ""))
    theirs = normalise(parsed.body_clean)
    sim = similarity(ours, theirs)
    edited = ours != theirs
    sent_as = parsed.message_id or "a message without Message-ID"
    record = FeedbackRecord(
        rating=edited_rating(sim) if edited else ACCEPTED_RATING,
        comment=(
            f"inbox: draft edited before sending (similarity {sim:.2f}); sent as {sent_as}"
            if edited
            else f"inbox: draft sent unchanged as {sent_as}"
        ),
        corrected_answer=parsed.body_clean.strip()
        if edited and parsed.body_clean.strip()
        else None,
        feedback_id=feedback_id(tenant, parsed.key),
        job_id=str(draft.get("job_id") or f"inbox:{draft.get('digest', '')}"),
        tenant=tenant,
        at=time.time() if now is None else now,
        query=str(draft.get("question") or "") or None,
        answer=str(draft.get("draft") or "") or None,
        cited_doc_ids=[str(d) for d in draft.get("cited_doc_ids") or []],
    )
    return record, sim


class SentScanner:
    """One pass over the Sent folder: each new reply to a draft of ours becomes feedback."""

    def __init__(
        self,
        folder: SentFolder,
        ledger: Ledger,
        feedback: FeedbackSink,
        *,
        tenant: str = "default",
        lease_s: float = DEFAULT_LEASE_S,
        on_outcome: Callable[[SentOutcome], None] | None = None,
    ) -> None:
        self.folder = folder
        self.ledger = ledger
        self.feedback = feedback
        self.tenant = tenant
        self.lease_s = lease_s
        self.on_outcome = on_outcome

    def _emit(self, outcome: SentOutcome, out: list[SentOutcome]) -> None:
        out.append(outcome)
        if self.on_outcome is not None:
            self.on_outcome(outcome)

    def _match(self, parsed: ParsedEmail, raw: bytes) -> dict[str, Any] | None:
        for ref in reply_refs(parsed, raw):
            found = self.ledger.find_draft(self.tenant, ref)
            if found is not None:
                return found
        return None

    def run_once(self) -> list[SentOutcome]:
        out: list[SentOutcome] = []
        for message in self.folder.fetch():
            try:
                parsed = parse_message(message.raw)
            except InvalidMessage as exc:
                self.folder.mark_processed(message.ref)
                self._emit(SentOutcome(message.ref, "", "unparseable", reason=exc.reason), out)
                continue
            draft = self._match(parsed, message.raw)
            if draft is None:
                self.folder.mark_processed(message.ref)  # not ours: never look again
                self._emit(SentOutcome(message.ref, parsed.key, "unrelated"), out)
                continue
            self._record(message, parsed, draft, out)
        return out

    def _record(
        self,
        message: RawMessage,
        parsed: ParsedEmail,
        draft: dict[str, Any],
        out: list[SentOutcome],
    ) -> None:
        key = f"sent:{parsed.key}"
        claim = self.ledger.claim(self.tenant, key, self.lease_s)
        if claim is None:
            if self.ledger.is_done(self.tenant, key):
                self.folder.mark_processed(message.ref)
            self._emit(
                SentOutcome(
                    message.ref,
                    parsed.key,
                    "skipped",
                    reason="already recorded or claimed by another poller",
                ),
                out,
            )
            return
        try:
            record, sim = feedback_for(parsed, draft, tenant=self.tenant)
            self.feedback.store(record)
            self.folder.mark_processed(message.ref)
        except (RagrelayError, redis.RedisError, OSError) as exc:
            self.ledger.release(claim)
            self._emit(
                SentOutcome(
                    message.ref,
                    parsed.key,
                    "failed",
                    job_id=str(draft.get("job_id") or "") or None,
                    reason=str(exc),
                ),
                out,
            )
            return
        status = "accepted" if record.rating == ACCEPTED_RATING else "edited"
        self.ledger.complete(
            claim, {"status": status, "feedback_id": record.feedback_id, "job_id": record.job_id}
        )
        self._emit(
            SentOutcome(
                message.ref,
                parsed.key,
                status,
                job_id=record.job_id,
                similarity=sim,
                feedback_id=record.feedback_id,
            ),
            out,
        )


__all__ = [
    "ACCEPTED_RATING",
    "FeedbackSink",
    "SentFolder",
    "SentOutcome",
    "SentScanner",
    "edited_rating",
    "feedback_for",
    "normalise",
    "reply_refs",
    "similarity",
]
