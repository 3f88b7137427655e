"""The ingress side without servers: drafts, the ledger, file mailboxes, the loop, mbox."""

from __future__ import annotations

import email
import email.policy
import gzip
import multiprocessing
import sqlite3
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import fakeredis
import pytest

from bus.errors import ConfigError, TransientError
from ragrelay.inbox.draft import DRAFT_KEY_HEADER, build_draft, key_digest, reply_subject
from ragrelay.inbox.imap import parse_imap_url
from ragrelay.inbox.ledger import RedisLedger, SqliteLedger
from ragrelay.inbox.mailbox import EmlDirMailbox, MaildirMailbox, MboxMailbox, RawMessage
from ragrelay.inbox.mbox import iter_mbox_documents, iter_mbox_messages
from ragrelay.inbox.parse import parse_message
from ragrelay.inbox.process import InboxProcessor, idempotency_key, job_request
from schemas import JobRequest, JobResult

ORIGINAL = (
    b'From: "Doe, Jane" <jane@example.org>\r\nTo: Help Desk <help@example.com>\r\n'
    b"Subject: [users] printer jams\r\nDate: Mon, 1 Jul 2002 10:00:00 +0000\r\n"
    b"Message-ID: <q2@example.org>\r\nReferences: <q0@example.org> <q1@example.org>\r\n"
    b"In-Reply-To: <q1@example.org>\r\n\r\nMy printer jams. What should I do?\r\n\r\n"
    b"> earlier: it jammed last week\r\n-- \r\nJane\r\n"
)


def _message(i: int, subject: str = "question") -> bytes:
    return (
        f"From: u{i}@example.org\r\nTo: help@example.com\r\nSubject: {subject} {i}\r\n"
        f"Message-ID: <m{i}@example.org>\r\n\r\nHow do I fix thing {i}?\r\n"
    ).encode()


# --- drafts -------------------------------------------------------------------------------


def test_draft_threads_swaps_addresses_and_quotes() -> None:
    parsed = parse_message(ORIGINAL)
    draft = build_draft(parsed, "Hi Jane,\n\nClean the rollers.\n", tenant="acme", job_id="j1")
    assert draft["Subject"] == "Re: [users] printer jams"
    assert draft["To"] == '"Doe, Jane" <jane@example.org>'
    assert draft["From"] == "Help Desk <help@example.com>"
    assert draft["In-Reply-To"] == "<q2@example.org>"
    assert str(draft["References"]).split() == [
        "<q0@example.org>",
        "<q1@example.org>",
        "<q2@example.org>",
    ]
    assert draft[DRAFT_KEY_HEADER] == key_digest("acme", "<q2@example.org>")
    text = draft.get_content()
    assert text.startswith(
        "Hi Jane,\n\nClean the rollers.\n\nOn Mon, 01 Jul 2002 10:00:00 +0000, Doe, Jane wrote:\n"
    )
    assert "> My printer jams. What should I do?" in text
    assert "> > earlier: it jammed last week" in text  # the history stays in the quote
    assert reply_subject("RE: x") == "RE: x" and reply_subject("") == "Re: your message"


def test_draft_prefers_reply_to_and_configured_sender() -> None:
    raw = ORIGINAL.replace(b"Subject:", b"Reply-To: List <users@example.org>\r\nSubject:")
    draft = build_draft(parse_message(raw), "ok", tenant="t", mailbox_address="me@example.com")
    assert draft["To"] == "List <users@example.org>"
    assert draft["From"] == "me@example.com"


def test_header_injection_in_subject_is_neutralised() -> None:
    raw = _message(1, "hi\r\n Bcc: victim@example.com")
    draft = build_draft(parse_message(raw), "ok", tenant="t")
    assert "Bcc" not in [k for k in draft]
    assert "\n" not in str(draft["Subject"])


# --- ledger -------------------------------------------------------------------------------


def _ledgers(tmp_path: Path) -> list[SqliteLedger | RedisLedger]:
    return [SqliteLedger(tmp_path / "l.sqlite3"), RedisLedger(fakeredis.FakeRedis())]


@pytest.mark.parametrize("kind", [0, 1])
def test_ledger_claim_complete_release(tmp_path: Path, kind: int) -> None:
    ledger = _ledgers(tmp_path)[kind]
    claim = ledger.claim("t", "<a@x>", lease_s=60)
    assert claim is not None
    assert ledger.claim("t", "<a@x>", lease_s=60) is None  # leased
    assert ledger.claim("other", "<a@x>", lease_s=60) is not None  # per tenant
    ledger.release(claim)
    again = ledger.claim("t", "<a@x>", lease_s=60)
    assert again is not None
    assert not ledger.complete(claim, {"stale": True})  # an old token cannot complete
    assert ledger.complete(again, {"status": "drafted"})
    assert ledger.is_done("t", "<a@x>")
    assert ledger.claim("t", "<a@x>", lease_s=60) is None  # done is forever
    ledger.close()


@pytest.mark.parametrize("kind", [0, 1])
def test_expired_lease_can_be_taken_over(tmp_path: Path, kind: int) -> None:
    ledger = _ledgers(tmp_path)[kind]
    crashed = ledger.claim("t", "k", lease_s=0.05)
    assert crashed is not None
    time.sleep(0.12)
    survivor = ledger.claim("t", "k", lease_s=60)
    assert survivor is not None
    assert not ledger.complete(crashed, {})  # the crashed poller lost it
    assert ledger.complete(survivor, {})
    ledger.close()


def _claim_many(path: str, keys: list[str], out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    ledger = SqliteLedger(Path(path))
    won = [k for k in keys if ledger.claim("t", k, lease_s=60) is not None]
    ledger.close()
    out.put(won)


def test_sqlite_ledger_one_winner_across_processes(tmp_path: Path) -> None:
    keys = [f"<k{i}@x>" for i in range(60)]
    queue: multiprocessing.Queue = multiprocessing.get_context("spawn").Queue()  # type: ignore[type-arg]
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=_claim_many, args=(str(tmp_path / "l.sqlite3"), keys, queue))
        for _ in range(3)
    ]
    for p in procs:
        p.start()
    results = [queue.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    won = [k for r in results for k in r]
    assert sorted(won) == sorted(keys)  # every key claimed exactly once


def test_redis_errors_become_transient() -> None:
    class Down(fakeredis.FakeRedis):
        def set(self, *a: Any, **k: Any) -> Any:
            import redis

            raise redis.ConnectionError("down")

    with pytest.raises(TransientError):
        RedisLedger(Down()).claim("t", "k")


# --- mailboxes ------------------------------------------------------------------------------


def _draft_for(raw: bytes) -> EmailMessage:
    return build_draft(parse_message(raw), "ok", tenant="t")


def test_eml_dir_drafts_are_idempotent(tmp_path: Path) -> None:
    (tmp_path / "a.eml").write_bytes(_message(1))
    (tmp_path / "notes.txt").write_text("ignored")
    box = EmlDirMailbox(tmp_path)
    assert [m.ref for m in box.fetch()] == ["a.eml"]
    assert box.store_draft("d1", _draft_for(_message(1)))
    assert not box.store_draft("d1", _draft_for(_message(1)))
    assert [p.name for p in (tmp_path / "Drafts").iterdir()] == ["d1.eml"]
    stored = email.message_from_bytes(
        (tmp_path / "Drafts" / "d1.eml").read_bytes(), policy=email.policy.default
    )
    assert stored["In-Reply-To"] == "<m1@example.org>"


def test_maildir_delivery_draft_flag_and_processed_keyword(tmp_path: Path) -> None:
    for sub in ("cur", "new", "tmp"):
        (tmp_path / sub).mkdir()
    (tmp_path / "new" / "1000.M1.host").write_bytes(_message(1))
    (tmp_path / "cur" / "1001.M2.host:2,S").write_bytes(_message(2))
    (tmp_path / "dovecot-keywords").write_text("0 $Junk\n")
    box = MaildirMailbox(tmp_path)
    refs = [m.ref for m in box.fetch()]
    assert refs == ["new/1000.M1.host", "cur/1001.M2.host:2,S"]
    assert box.store_draft("abc", _draft_for(_message(1)))
    assert not box.store_draft("abc", _draft_for(_message(1)))
    # a dovecot-keywords file means Maildir++: the Drafts folder is ".Drafts"
    assert box.drafts == tmp_path / ".Drafts" and (box.drafts / "maildirfolder").exists()
    drafts = list((tmp_path / ".Drafts" / "cur").iterdir())
    assert len(drafts) == 1 and drafts[0].name.endswith(":2,DS")
    assert not list((tmp_path / ".Drafts" / "tmp").iterdir())
    box.mark_processed(refs[0])
    box.mark_processed(refs[1])
    assert (tmp_path / "dovecot-keywords").read_text() == "0 $Junk\n1 $RagrelayProcessed\n"
    assert sorted(p.name for p in (tmp_path / "cur").iterdir()) == [
        "1000.M1.host:2,b",
        "1001.M2.host:2,Sb",
    ]
    assert list(MaildirMailbox(tmp_path).fetch()) == []


def test_plain_maildir_gets_a_plain_drafts_folder(tmp_path: Path) -> None:
    for sub in ("cur", "new", "tmp"):
        (tmp_path / sub).mkdir()
    box = MaildirMailbox(tmp_path)
    assert box.drafts == tmp_path / "Drafts"
    assert box.store_draft("d", _draft_for(_message(1)))
    assert len(list((tmp_path / "Drafts" / "cur").iterdir())) == 1


def test_mbox_reader_and_documents(tmp_path: Path) -> None:
    path = tmp_path / "a.mbox.gz"
    body = (
        b"From a@x Mon Jul  1 10:00:00 2002\n"
        + _message(1).replace(b"\r\n", b"\n")
        + b"\n>From the top\nOn Mon, Bob wrote:\n> quoted\n\n"
        b"From b@x Mon Jul  1 10:00:00 2002\n"
        + _message(2).replace(b"\r\n", b"\n")
        + b"\nFrom c@x Mon Jul  1 10:00:00 2002\nnot mail at all\n"
    )
    path.write_bytes(gzip.compress(body))
    raws = list(iter_mbox_messages(path))
    assert len(raws) == 3
    assert b"\nFrom the top\n" in raws[0]  # one level of >From escaping undone
    problems: list[str] = []
    docs = list(iter_mbox_documents(path, problems))
    assert [d.title for d in docs] == ["question 1", "question 2"]
    assert docs[0].doc_id == "<m1@example.org>"
    assert "quoted" not in docs[0].text and "From the top" in docs[0].text
    assert len(problems) == 1 and "#2" in problems[0]
    box = MboxMailbox(path)
    assert len(list(box.fetch())) == 3


def test_imap_url_parsing() -> None:
    t = parse_imap_url("imaps://agent%40example.com:s%3Acret@mail.example.com/Support")
    assert (t.host, t.port, t.tls, t.user, t.password, t.mailbox) == (
        "mail.example.com",
        993,
        True,
        "agent@example.com",
        "s:cret",
        "Support",
    )
    assert parse_imap_url("imap://h:1143", "u", "p").mailbox == "INBOX"
    assert "s:cret" not in t.redacted()
    with pytest.raises(ConfigError, match="login missing"):
        parse_imap_url("imap://host/INBOX")
    with pytest.raises(ConfigError, match="imap://"):
        parse_imap_url("http://host/")


# --- the loop -------------------------------------------------------------------------------


class Client:
    """A test double for RagrelayClient with a scripted triage per subject word."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.jobs: dict[str, JobRequest] = {}
        self.fail_on = fail_on

    def submit(self, request: JobRequest) -> tuple[str, bool]:
        key = request.idempotency_key or ""
        created = key not in self.jobs
        self.jobs[key] = request
        return key, created

    def wait(self, job_id: str, timeout_s: float = 60.0) -> JobResult:
        request = self.jobs[job_id]
        if self.fail_on and self.fail_on in request.query:
            from ragrelay.client import JobTimeout

            raise JobTimeout("too slow")
        triage = "spam" if "spam" in request.query else "needs_reply"
        return JobResult(
            job_id=job_id,
            tenant=request.tenant,
            kind="email_reply",
            status="succeeded",
            answer="Answer.",
            stop_reason="accepted",
            triage=triage,
        )


def test_loop_drafts_skips_and_retries_failures(tmp_path: Path) -> None:
    box = EmlDirMailbox(tmp_path)
    messages = [
        RawMessage("1", _message(1)),
        RawMessage("2", _message(2, "spam offer")),
        RawMessage("3", b"\x00junk"),
        RawMessage("4", _message(4, "slow")),
    ]
    ledger = SqliteLedger(tmp_path / "l.sqlite3")
    processor = InboxProcessor(box, ledger, Client(fail_on="slow"), tenant="acme", window=2)
    statuses = {o.ref: o.status for o in processor.run_once(messages)}
    assert statuses == {"1": "drafted", "2": "no_draft", "3": "unparseable", "4": "failed"}
    # the failed one was released: the next pass retries it, the others are skipped
    processor.client = Client()
    again = {o.ref: o.status for o in processor.run_once(messages)}
    assert again == {"1": "skipped", "2": "skipped", "3": "skipped", "4": "drafted"}
    assert len(list((tmp_path / "Drafts").iterdir())) == 2


def test_job_request_shape() -> None:
    request = job_request(parse_message(ORIGINAL), "acme")
    assert request.kind == "email_reply"
    assert request.idempotency_key == "acme:<q2@example.org>"
    assert request.query == "printer jams\nWhat should I do?"  # subject + the question asked
    assert "earlier" not in request.metadata["email"]["body"]  # quotes stripped for analysis
    assert request.metadata["email"]["message_id"] == "<q2@example.org>"
    long_key = idempotency_key("t", "<" + "x" * 300 + "@y>")
    assert len(long_key) <= 200 and long_key.startswith("t:sha256:")


class _LockedAtFirst:
    """A connection whose WAL switch meets a lock ``n`` times (SQLite's immediate BUSY)."""

    def __init__(self, n: int, message: str = "database is locked") -> None:
        self.n, self.message, self.calls = n, message, 0

    def execute(self, sql: str) -> None:
        self.calls += 1
        if self.calls <= self.n:
            raise sqlite3.OperationalError(self.message)


def test_the_wal_switch_waits_for_a_ledger_another_poller_is_opening() -> None:
    from ragrelay.inbox.ledger import _set_wal

    db = _LockedAtFirst(3)
    _set_wal(db, pause_s=0.0)  # type: ignore[arg-type]
    assert db.calls == 4
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        _set_wal(_LockedAtFirst(10), attempts=5, pause_s=0.0)  # type: ignore[arg-type]
    other = _LockedAtFirst(1, "disk I/O error")
    with pytest.raises(sqlite3.OperationalError, match="disk I/O"):
        _set_wal(other, pause_s=0.0)  # type: ignore[arg-type]
    assert other.calls == 1
