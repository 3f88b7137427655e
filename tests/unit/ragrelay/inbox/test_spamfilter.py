"""Upstream spam headers (trusted only when configured), spamd replies, review drafts."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import pytest

from bus.errors import ConfigError, UsageError
from ragrelay.inbox.ledger import SqliteLedger
from ragrelay.inbox.mailbox import EmlDirMailbox, RawMessage
from ragrelay.inbox.process import REVIEW_KEYWORD, InboxProcessor, check_keyword
from ragrelay.inbox.spamfilter import (
    SpamdError,
    SpamFilter,
    auth_result,
    header_verdict,
    parse_address,
    parse_spamd_reply,
)
from schemas import Citation, JobRequest, JobResult
from workers.email.reply import HOLDING_TEXT

RAW = (
    b"X-Spam-Status: Yes, score=14.3 required=5.0 tests=BAYES_99,HTML_MESSAGE\r\n"
    b"    autolearn=no version=4.0.1\r\n"
    b"X-Spam-Status: No, score=0.1 required=5.0\r\n"
    b"Authentication-Results: mx.example.com; spf=pass smtp.mailfrom=a.org; dkim=pass\r\n"
    b"Authentication-Results: evil.example; dmarc=fail\r\n"
    b"From: a@a.org\r\nSubject: hi\r\nMessage-ID: <m1@a.org>\r\n\r\nbody\r\n"
)


def test_header_verdict_reads_the_topmost_status() -> None:
    verdict = header_verdict(RAW)
    assert verdict is not None and verdict.source == "upstream-header"
    assert (verdict.score, verdict.required, verdict.is_spam) == (14.3, 5.0, True)
    assert verdict.tests == ("BAYES_99", "HTML_MESSAGE")
    assert header_verdict(b"X-Spam-Flag: YES\r\nSubject: x\r\n\r\nb").is_spam  # type: ignore[union-attr]
    assert header_verdict(b"Subject: x\r\n\r\nb") is None


def test_authentication_results_only_from_the_configured_server() -> None:
    assert auth_result(RAW, "mx.example.com") == "pass"
    assert auth_result(RAW, "evil.example") == "fail"
    assert auth_result(RAW, "other.example") == "none"


def test_nothing_is_trusted_unless_configured() -> None:
    assert not SpamFilter().enabled
    assert SpamFilter().metadata(RAW) == {}
    trusted = SpamFilter(trust_headers=True, authserv_id="mx.example.com").metadata(RAW)
    assert trusted["filter_source"] == "upstream-header"
    assert trusted["filter_score"] == "14.30" and trusted["auth_result"] == "pass"


def test_spamd_replies_and_addresses() -> None:
    reply = (
        b"SPAMD/1.1 0 EX_OK\r\nContent-length: 20\r\nSpam: True ; 9.4 / 5.0\r\n\r\nA_RULE,B_RULE"
    )
    verdict = parse_spamd_reply(reply)
    assert (verdict.score, verdict.required, verdict.tests) == (9.4, 5.0, ("A_RULE", "B_RULE"))
    with pytest.raises(SpamdError, match="spamd error 76"):
        parse_spamd_reply(b"SPAMD/1.0 76 Bad header line\r\n\r\n")
    with pytest.raises(SpamdError, match="not a spamd reply"):
        parse_spamd_reply(b"HTTP/1.1 200 OK\r\n\r\n")
    assert parse_address("spamd://127.0.0.1:7830") == ("127.0.0.1", 7830)
    assert parse_address("localhost") == ("localhost", 783)
    with pytest.raises(ConfigError, match="port"):
        parse_address("host:99999")


def test_review_keyword_must_be_an_imap_atom() -> None:
    assert check_keyword(REVIEW_KEYWORD) == "$RagrelayReview"
    for bad in ("two words", "(x)", "\\Seen", ""):
        with pytest.raises(UsageError, match="review keyword"):
            check_keyword(bad)


class _Client:
    """Scripted results: the subject names the triage; 'cited' makes it grounded."""

    def __init__(self) -> None:
        self.jobs: dict[str, JobRequest] = {}

    def submit(self, request: JobRequest) -> tuple[str, bool]:
        self.jobs[request.idempotency_key or ""] = request
        return request.idempotency_key or "", True

    def wait(self, job_id: str, timeout_s: float = 60.0) -> JobResult:
        request = self.jobs[job_id]
        cited = "cited" in request.query
        return JobResult(
            job_id=job_id,
            tenant=request.tenant,
            kind="email_reply",
            status="succeeded" if cited else "budget_exhausted",
            answer="Hi,\n\nRun make clean first.\n\nBest regards,\n",
            stop_reason="accepted" if cited else "budget_exhausted",
            triage="review" if "unsure" in request.query else "needs_reply",
            citations=[Citation(chunk_id="c1", doc_id="d1", title="Re: build fails")]
            if cited
            else [],
        )


class _KeywordBox(EmlDirMailbox):
    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self.keywords: list[tuple[str, str]] = []

    def mark_keyword(self, ref: str, keyword: str) -> None:
        self.keywords.append((ref, keyword))


def _mail(n: int, subject: str) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "Ann Lee <ann@a.org>", "help@b.org", subject
    msg["Message-ID"] = f"<m{n}@a.org>"
    msg.set_content("How do I fix the build?\n")
    return msg.as_bytes()


def test_review_is_drafted_and_flagged_drafts_are_grounded_or_honest(tmp_path: Path) -> None:
    box = _KeywordBox(tmp_path)
    seen: list[dict[str, str]] = []
    client = _Client()
    processor = InboxProcessor(
        box,
        SqliteLedger(tmp_path / "l.sqlite3"),
        client,
        tenant="t",
        spam_filter=lambda raw: {"filter_source": "spamd", "filter_score": "0.50"},
        review_keyword="$NeedsHuman",
    )
    messages = [
        RawMessage("1", _mail(1, "cited build question")),
        RawMessage("2", _mail(2, "unsure offer")),
    ]
    outcomes = {o.ref: o for o in processor.run_once(messages)}
    seen = [r.metadata["email"] for r in client.jobs.values()]
    assert all(e["filter_score"] == "0.50" for e in seen)  # the verdict travels with the job
    assert outcomes["1"].draft_kind == "grounded" and outcomes["2"].draft_kind == "holding"
    assert "From our archive:\n- Re: build fails" in (outcomes["1"].draft_text or "")
    assert HOLDING_TEXT in (outcomes["2"].draft_text or "")
    assert "make clean" not in (outcomes["2"].draft_text or "")  # nothing unverified sent
    assert box.keywords == [("2", "$NeedsHuman")]  # only the review mail is flagged
    drafts = sorted((tmp_path / "Drafts").iterdir())
    headers = {p.read_text().split("X-Ragrelay-Triage: ")[1].split("\n")[0] for p in drafts}
    assert headers == {"review", "needs_reply"}
