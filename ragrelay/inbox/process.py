"""The inbox loop: fetch → parse → claim → submit → wait → draft → mark → complete.

Exactly once per (tenant, message key): the ledger claim comes first, the job's
idempotency key is ``tenant:key``, the draft store is idempotent per key, the processed
keyword is set only after the draft is stored, and the ledger is completed last. A message
that cannot be parsed is recorded (with its reason) and marked, never retried forever; a
failing job releases its claim so the next poll retries it. Jobs run pipelined: up to
``window`` are submitted before the oldest is awaited.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from email.message import EmailMessage
from typing import Protocol

from bus.errors import InvalidMessage, RagrelayError, UsageError
from ragrelay.inbox.draft import build_draft, key_digest
from ragrelay.inbox.ledger import DEFAULT_LEASE_S, Claim, Ledger
from ragrelay.inbox.mailbox import Mailbox, RawMessage
from ragrelay.inbox.parse import ParsedEmail, content_hash, parse_message
from schemas import Budget, JobRequest, JobResult
from workers.email.reply import grounded_body, holding_reply

DRAFTABLE_STATUSES = frozenset({"succeeded", "budget_exhausted"})
DRAFTED_TRIAGE = frozenset({"needs_reply", "review"})  # review: drafted *and* flagged
REVIEW_KEYWORD = "$RagrelayReview"
TRIAGE_HEADER = "X-Ragrelay-Triage"
DRAFT_KIND_HEADER = "X-Ragrelay-Draft"  # grounded | holding
_KEYWORD = re.compile(r"^\$?[A-Za-z0-9_.-]{1,64}$")


def check_keyword(keyword: str) -> str:
    """An IMAP keyword (RFC 3501 atom, no system ``\\`` flags): ``$RagrelayReview``."""
    if not _KEYWORD.match(keyword):
        raise UsageError(
            f"review keyword {keyword!r}: use letters, digits, '_', '.', '-' "
            "(optionally a leading '$'), at most 64 characters"
        )
    return keyword


def is_grounded(result: JobResult) -> bool:
    """A draft worth sending as an answer: the evaluation accepted it and it cites the
    archive (at least one citation). Anything else becomes an honest holding reply."""
    return (
        result.status == "succeeded"
        and result.stop_reason == "accepted"
        and bool(result.citations)
        and bool(result.answer.strip())
    )


class JobClient(Protocol):
    """What the loop needs of ``ragrelay.client.RagrelayClient``."""

    def submit(self, request: JobRequest) -> tuple[str, bool]: ...

    def wait(self, job_id: str, timeout_s: float = 60.0) -> JobResult: ...


@dataclass
class Outcome:
    ref: str
    key: str
    status: str  # drafted | no_draft | duplicate | skipped | unparseable | failed
    triage: str | None = None
    job_id: str | None = None
    reason: str = ""
    elapsed_ms: float = 0.0
    draft_digest: str | None = None
    scores: dict[str, float] | None = None
    job_status: str | None = None
    stop_reason: str | None = None
    draft_kind: str | None = None  # grounded | holding (drafted mail only)
    draft_text: str | None = None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def idempotency_key(tenant: str, key: str) -> str:
    value = f"{tenant}:{key}"
    if len(value) <= 200:
        return value
    return f"{tenant}:sha256:{hashlib.sha256(key.encode('utf-8', 'surrogatepass')).hexdigest()}"


def job_request(
    parsed: ParsedEmail,
    tenant: str,
    budget: Budget | None = None,
    extra_email: dict[str, str] | None = None,
) -> JobRequest:
    metadata = dict(parsed.to_metadata())
    if extra_email:  # e.g. the spam filter's verdict (flat strings, as the worker reads them)
        metadata["email"] = {**metadata["email"], **extra_email}
    return JobRequest(
        query=parsed.question(),
        tenant=tenant,
        kind="email_reply",
        budget=budget or Budget(),
        idempotency_key=idempotency_key(tenant, parsed.key),
        metadata=metadata,
    )


@dataclass
class _InFlight:
    message: RawMessage
    parsed: ParsedEmail
    claim: Claim
    job_id: str
    started: float


class InboxProcessor:
    def __init__(
        self,
        mailbox: Mailbox,
        ledger: Ledger,
        client: JobClient,
        *,
        tenant: str = "default",
        mailbox_address: str | None = None,
        lease_s: float = DEFAULT_LEASE_S,
        job_timeout_s: float = 120.0,
        window: int = 8,
        on_outcome: Callable[[Outcome], None] | None = None,
        budget: Budget | None = None,
        spam_filter: Callable[[bytes], dict[str, str]] | None = None,
        review_keyword: str = REVIEW_KEYWORD,
    ) -> None:
        self.mailbox = mailbox
        self.ledger = ledger
        self.client = client
        self.tenant = tenant
        self.mailbox_address = mailbox_address
        self.lease_s = lease_s
        self.job_timeout_s = job_timeout_s
        self.window = max(1, window)
        self.on_outcome = on_outcome
        self.budget = budget
        self.spam_filter = spam_filter
        self.review_keyword = check_keyword(review_keyword)

    def _emit(self, outcome: Outcome, out: list[Outcome]) -> None:
        out.append(outcome)
        if self.on_outcome is not None:
            self.on_outcome(outcome)

    def run_once(self, messages: Iterable[RawMessage] | None = None) -> list[Outcome]:
        """One pass over the mailbox (or the given messages)."""
        out: list[Outcome] = []
        pending: deque[_InFlight] = deque()
        for message in self.mailbox.fetch() if messages is None else messages:
            started = time.perf_counter()
            try:
                parsed = parse_message(message.raw)
            except InvalidMessage as exc:
                self._unparseable(message, exc.reason, started, out)
                continue
            claim = self.ledger.claim(self.tenant, parsed.key, self.lease_s)
            if claim is None:
                self._emit(
                    Outcome(
                        message.ref,
                        parsed.key,
                        "skipped",
                        reason="already processed or claimed by another poller",
                    ),
                    out,
                )
                continue
            try:
                # the mail server's filter is asked first; its verdict travels with the job
                verdict = self.spam_filter(message.raw) if self.spam_filter else None
                request = job_request(parsed, self.tenant, self.budget, verdict)
                job_id, _created = self.client.submit(request)
            except (RagrelayError, ValueError) as exc:
                self.ledger.release(claim)
                self._emit(
                    Outcome(
                        message.ref,
                        parsed.key,
                        "failed",
                        reason=f"submit: {exc}",
                        elapsed_ms=_ms(started),
                    ),
                    out,
                )
                continue
            pending.append(_InFlight(message, parsed, claim, job_id, started))
            while len(pending) >= self.window:
                self._finish(pending.popleft(), out)
        while pending:
            self._finish(pending.popleft(), out)
        return out

    def _unparseable(
        self, message: RawMessage, reason: str, started: float, out: list[Outcome]
    ) -> None:
        key = f"sha256:{content_hash(message.raw)}"
        claim = self.ledger.claim(self.tenant, key, self.lease_s)
        if claim is None:
            self._emit(Outcome(message.ref, key, "skipped", reason="already recorded"), out)
            return
        with contextlib.suppress(RagrelayError):  # the ledger entry alone suffices
            self.mailbox.mark_processed(message.ref)
        self.ledger.complete(claim, {"status": "unparseable", "reason": reason})
        self._emit(
            Outcome(message.ref, key, "unparseable", reason=reason, elapsed_ms=_ms(started)), out
        )

    def _finish(self, job: _InFlight, out: list[Outcome]) -> None:
        parsed, claim = job.parsed, job.claim
        try:
            result = self.client.wait(job.job_id, timeout_s=self.job_timeout_s)
            digest: str | None = None
            body = ""
            status = "no_draft"
            draft_kind: str | None = None
            if result.triage in DRAFTED_TRIAGE and result.status in DRAFTABLE_STATUSES:
                digest = key_digest(self.tenant, parsed.key)
                draft_kind = "grounded" if is_grounded(result) else "holding"
                body = (
                    grounded_body(result)
                    if draft_kind == "grounded"
                    else holding_reply(parsed.from_name or None)
                )
                draft = build_draft(
                    parsed,
                    body,
                    tenant=self.tenant,
                    mailbox_address=self.mailbox_address,
                    job_id=job.job_id,
                )
                draft[TRIAGE_HEADER] = str(result.triage)
                draft[DRAFT_KIND_HEADER] = draft_kind
                stored = self.mailbox.store_draft(digest, draft)
                status = "drafted" if stored else "duplicate"
                self._remember_draft(parsed, digest, draft, result)
            if result.triage == "review":
                mark = getattr(self.mailbox, "mark_keyword", None)
                if mark is not None:  # IMAP; other mailboxes: the draft's header says it
                    mark(job.message.ref, self.review_keyword)
            self.mailbox.mark_processed(job.message.ref)
        except RagrelayError as exc:
            self.ledger.release(claim)
            self._emit(
                Outcome(
                    job.message.ref,
                    parsed.key,
                    "failed",
                    job_id=job.job_id,
                    reason=str(exc),
                    elapsed_ms=_ms(job.started),
                ),
                out,
            )
            return
        outcome = Outcome(
            job.message.ref,
            parsed.key,
            status,
            triage=result.triage,
            job_id=job.job_id,
            elapsed_ms=_ms(job.started),
            draft_digest=digest,
            scores=dict(result.scores),
            job_status=result.status,
            stop_reason=result.stop_reason,
            reason=result.error or ("" if status != "no_draft" else result.stop_reason),
            draft_kind=draft_kind,
            draft_text=body if draft_kind else None,
        )
        if not self.ledger.complete(
            claim, {"status": status, "job_id": job.job_id, "triage": result.triage}
        ):
            outcome.reason = (outcome.reason + "; lease expired before completion").strip("; ")
        self._emit(outcome, out)

    def _remember_draft(
        self, parsed: ParsedEmail, digest: str, draft: EmailMessage, result: JobResult
    ) -> None:
        """For edited-draft feedback (``sent.py``): what we drafted, findable by the
        original's key, the draft's Message-ID and its reply key."""
        draft_id = str(draft["Message-ID"] or "").strip()
        info = {
            "key": parsed.key,
            "question": parsed.question(),
            "draft": result.answer.strip(),
            "job_id": result.job_id,
            "draft_message_id": draft_id,
            "digest": digest,
            "cited_doc_ids": sorted({c.doc_id for c in result.citations}),
            "at": time.time(),
        }
        refs = [parsed.key, digest] + ([draft_id] if draft_id else [])
        self.ledger.record_draft(self.tenant, refs, info)


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000.0, 1)


__all__ = [
    "DRAFTABLE_STATUSES",
    "REVIEW_KEYWORD",
    "InboxProcessor",
    "JobClient",
    "Outcome",
    "check_keyword",
    "idempotency_key",
    "is_grounded",
    "job_request",
]
