"""The inbox agent against a real Dovecot on loopback: drafts, threading, exactly once."""

from __future__ import annotations

import email
import email.policy
import json
import subprocess
import sys
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from ragrelay.inbox.draft import DRAFT_KEY_HEADER
from ragrelay.inbox.imap import ImapMailbox, parse_imap_url
from ragrelay.inbox.ledger import RedisLedger, SqliteLedger
from ragrelay.inbox.parse import parse_message
from ragrelay.inbox.process import InboxProcessor
from schemas import Citation, JobRequest, JobResult
from tests.support.dovecot import DovecotServer

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
INBOX = REPO.parent / "shared" / "data" / "emails" / "inbox"
SAMPLES = [
    "00005.bf27cdeaf0b8c4647ecd61b1d09da613.eml",  # needs_reply (list mail, quoted history)
    "00027.4d456dd9ce0afde7629f94dc3034e0bb.eml",  # needs_reply (a question)
    "00013.81c34741dbed59c6dde50777e27e7ea3.eml",  # ham_other
    "00001.7848dde101aa985090474a91ec93fcf0.eml",  # spam
]
BROKEN = b"\x00\x01\x02 this is not mail \xff\xfe\r\n"
NO_MESSAGE_ID = (
    b"From: Jo Bloggs <jo@example.org>\r\nTo: agent@example.com\r\n"
    b"Subject: where is my invoice?\r\n\r\nHi, can you resend the invoice for March?\r\n"
)


class ScriptedClient:
    """A test double of RagrelayClient: answers every job at once, triage by subject
    keyword. Honest about being a double: it counts submissions per idempotency key."""

    def __init__(self) -> None:
        self.requests: dict[str, JobRequest] = {}
        self.submissions = 0

    def submit(self, request: JobRequest) -> tuple[str, bool]:
        self.submissions += 1
        key = request.idempotency_key or str(self.submissions)
        created = key not in self.requests
        self.requests[key] = request
        return key, created

    def wait(self, job_id: str, timeout_s: float = 60.0) -> JobResult:
        request = self.requests[job_id]
        spam = "insurance" in request.query.lower()
        return JobResult(
            job_id=job_id,
            tenant=request.tenant,
            kind="email_reply",
            status="succeeded",
            answer="Hi,\n\nHere is what we found.\n",
            stop_reason="accepted",
            triage="spam" if spam else "needs_reply",
            citations=[Citation(chunk_id="c1", doc_id="d1", title="an archived answer")],
        )


ACCOUNTS = [f"user{i}@example.com" for i in range(12)]


@pytest.fixture(scope="module")
def dovecot() -> Iterator[DovecotServer]:
    server = DovecotServer(users={u: "pw" for u in ACCOUNTS}).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def _accounts() -> Iterator[str]:
    return iter(ACCOUNTS)


@pytest.fixture
def mailbox_user(dovecot: DovecotServer, _accounts: Iterator[str]) -> str:
    """A fresh, empty account per test."""
    return next(_accounts)


def _deliver(dovecot: DovecotServer, user: str, *extra: bytes) -> None:
    for name in SAMPLES:
        dovecot.append(user, (INBOX / name).read_bytes())
    for raw in extra:
        dovecot.append(user, raw)


def _drafts(dovecot: DovecotServer, user: str) -> list[tuple[bytes, EmailMessage]]:
    out = []
    for flags, raw in dovecot.messages(user, "Drafts"):
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        out.append((flags, msg))
    return out


def _processor(
    dovecot: DovecotServer, user: str, ledger: SqliteLedger | RedisLedger, client: ScriptedClient
) -> InboxProcessor:
    mailbox = ImapMailbox(parse_imap_url(dovecot.url(user)))
    return InboxProcessor(
        mailbox, ledger, client, tenant="acme", mailbox_address="Support <agent@example.com>"
    )


def test_drafts_land_in_drafts_with_threading_headers(
    dovecot: DovecotServer, mailbox_user: str, tmp_path: Path
) -> None:
    _deliver(dovecot, mailbox_user, NO_MESSAGE_ID)
    ledger = SqliteLedger(tmp_path / "ledger.sqlite3")
    processor = _processor(dovecot, mailbox_user, ledger, ScriptedClient())
    outcomes = processor.run_once()
    processor.mailbox.close()

    by_status = sorted(o.status for o in outcomes)
    assert by_status == ["drafted"] * 4 + ["no_draft"]  # the spam gets no draft
    drafts = _drafts(dovecot, mailbox_user)
    assert len(drafts) == 4
    originals = {parse_message((INBOX / n).read_bytes()).message_id: n for n in SAMPLES}
    for flags, draft in drafts:
        assert b"\\Draft" in flags
        assert draft["From"] == "Support <agent@example.com>"
        assert str(draft["Subject"]).lower().startswith("re:")
        assert draft[DRAFT_KEY_HEADER]
        in_reply_to = draft["In-Reply-To"]
        if in_reply_to is None:  # the message without a Message-ID: nothing to thread on
            assert draft["To"] == "Jo Bloggs <jo@example.org>"
            continue
        assert in_reply_to in originals
        original = parse_message((INBOX / originals[in_reply_to]).read_bytes())
        assert str(draft["References"]).split()[-1] == original.message_id
        assert list(original.references) == str(draft["References"]).split()[:-1]
        assert original.from_email in str(draft["To"]).lower() or original.reply_to
        body = draft.get_body(("plain",))
        assert body is not None
        text = body.get_content().replace("\r\n", "\n")
        assert text.startswith("Hi,\n\nHere is what we found.")
        assert "\n> " in text  # the original, quoted
    # every original is marked, only after its draft was stored
    for flags, _raw in dovecot.messages(mailbox_user):
        assert b"$RagrelayProcessed" in flags
    ledger.close()


def test_second_poller_and_restart_do_not_draft_twice(
    dovecot: DovecotServer, mailbox_user: str, tmp_path: Path
) -> None:
    _deliver(dovecot, mailbox_user)
    ledger_path = tmp_path / "ledger.sqlite3"
    client = ScriptedClient()
    first = _processor(dovecot, mailbox_user, SqliteLedger(ledger_path), client)
    second = _processor(dovecot, mailbox_user, SqliteLedger(ledger_path), client)
    # both pollers list the same unmarked messages before either processes any
    listed_first = list(first.mailbox.fetch())
    listed_second = list(second.mailbox.fetch())
    assert len(listed_first) == len(listed_second) == len(SAMPLES)
    out_first = first.run_once(listed_first)
    out_second = second.run_once(listed_second)
    assert [o.status for o in out_second] == ["skipped"] * len(SAMPLES)
    assert sorted(o.status for o in out_first).count("drafted") == 3
    # a restart: new connections, new ledger handle, same data
    restarted = _processor(dovecot, mailbox_user, SqliteLedger(ledger_path), client)
    assert restarted.run_once() == []  # everything carries $RagrelayProcessed now
    # even if the keyword were lost, the ledger holds: re-run over all messages
    ledger = SqliteLedger(ledger_path)
    again = _processor(dovecot, mailbox_user, ledger, client)
    outcomes = again.run_once(listed_first)
    assert [o.status for o in outcomes] == ["skipped"] * len(SAMPLES)
    assert len(_drafts(dovecot, mailbox_user)) == 3
    again.mailbox.close()
    for p in (first, second, restarted):
        p.mailbox.close()
        p.ledger.close()
    ledger.close()


def test_lost_keyword_and_expired_lease_still_one_draft(
    dovecot: DovecotServer, mailbox_user: str, tmp_path: Path
) -> None:
    """A poller that crashed after storing the draft but before marking: the next one
    takes the expired lease and finds the draft already there (idempotent store)."""
    dovecot.append(mailbox_user, (INBOX / SAMPLES[1]).read_bytes())
    ledger = SqliteLedger(tmp_path / "ledger.sqlite3")
    client = ScriptedClient()
    crashed = _processor(dovecot, mailbox_user, ledger, client)
    crashed.lease_s = 0.01
    message = next(iter(crashed.mailbox.fetch()))
    parsed = parse_message(message.raw)
    claim = ledger.claim("acme", parsed.key, lease_s=0.01)
    assert claim is not None
    from ragrelay.inbox.draft import build_draft, key_digest

    digest = key_digest("acme", parsed.key)
    assert crashed.mailbox.store_draft(digest, build_draft(parsed, "Hi", tenant="acme"))
    crashed.mailbox.close()  # ... and it dies here: no keyword, no ledger completion

    import time

    time.sleep(0.05)
    survivor = _processor(dovecot, mailbox_user, ledger, client)
    outcomes = survivor.run_once()
    survivor.mailbox.close()
    assert [o.status for o in outcomes] == ["duplicate"]
    assert len(_drafts(dovecot, mailbox_user)) == 1
    assert ledger.is_done("acme", parsed.key)


def test_broken_message_does_not_block_the_rest(
    dovecot: DovecotServer, mailbox_user: str, tmp_path: Path
) -> None:
    dovecot.append(mailbox_user, BROKEN)
    _deliver(dovecot, mailbox_user)
    processor = _processor(
        dovecot, mailbox_user, SqliteLedger(tmp_path / "l.sqlite3"), ScriptedClient()
    )
    outcomes = processor.run_once()
    processor.mailbox.close()
    assert outcomes[0].status == "unparseable" and "not an RFC 822" in outcomes[0].reason
    assert [o.status for o in outcomes[1:]].count("drafted") == 3
    assert all(b"$RagrelayProcessed" in f for f, _ in dovecot.messages(mailbox_user))


def test_redis_ledger_shared_by_two_pollers(
    dovecot: DovecotServer, mailbox_user: str, rclient: object
) -> None:
    _deliver(dovecot, mailbox_user)
    client = ScriptedClient()
    first = _processor(dovecot, mailbox_user, RedisLedger(rclient), client)
    second = _processor(dovecot, mailbox_user, RedisLedger(rclient), client)
    listed = list(second.mailbox.fetch())
    first.run_once()
    assert [o.status for o in second.run_once(listed)] == ["skipped"] * len(SAMPLES)
    assert len(_drafts(dovecot, mailbox_user)) == 3
    first.mailbox.close()
    second.mailbox.close()


def test_imaps_with_tls(dovecot: DovecotServer, mailbox_user: str, tmp_path: Path) -> None:
    import ssl

    dovecot.append(mailbox_user, (INBOX / SAMPLES[1]).read_bytes())
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    mailbox = ImapMailbox(parse_imap_url(dovecot.url(mailbox_user, tls=True)), tls_context=context)
    processor = InboxProcessor(mailbox, SqliteLedger(tmp_path / "l.sqlite3"), ScriptedClient())
    assert [o.status for o in processor.run_once()] == ["drafted"]
    mailbox.close()


def test_cli_end_to_end_with_the_embedded_pipeline(
    dovecot: DovecotServer, mailbox_user: str, base_env: dict[str, str]
) -> None:
    """`ragrelay inbox --imap URL --once` twice in parallel, then once more: the real
    pipeline (embedded), real IMAP, one draft per needs_reply message in total."""
    _deliver(dovecot, mailbox_user)
    cmd = [
        sys.executable,
        "-m",
        "ragrelay.cli.inbox",
        "--imap",
        dovecot.url(mailbox_user),
        "--once",
        "--json",
        "--tenant",
        "acme",
    ]
    procs = [
        subprocess.Popen(
            cmd, env=base_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=100) for p in procs]
    for p, (_out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err
    outcomes = [
        json.loads(line) for out, _ in outputs for line in out.splitlines() if line.startswith("{")
    ]
    drafted = [o for o in outcomes if o["status"] == "drafted"]
    processed = [o for o in outcomes if o["status"] in ("drafted", "no_draft")]
    assert len(processed) == len(SAMPLES)  # each message processed by exactly one poller
    assert len(_drafts(dovecot, mailbox_user)) == len(drafted)
    assert all(o["triage"] in ("spam", "needs_reply", "no_reply", "review") for o in processed)
    again = subprocess.run(cmd, env=base_env, capture_output=True, text=True, timeout=100)
    assert again.returncode == 0, again.stderr
    assert not [line for line in again.stdout.splitlines() if line.startswith("{")]
    assert len(_drafts(dovecot, mailbox_user)) == len(drafted)


def test_maildir_connector_is_dovecot_compatible(
    dovecot: DovecotServer, mailbox_user: str, tmp_path: Path
) -> None:
    """Work on Dovecot's own Maildir on disk, then look through IMAP: the draft is in
    Drafts with \\Draft, the originals carry $RagrelayProcessed (dovecot-keywords)."""
    from ragrelay.inbox.mailbox import MaildirMailbox

    _deliver(dovecot, mailbox_user)
    assert dovecot.dir is not None
    maildir = dovecot.dir / "mail" / mailbox_user / "Maildir"
    box = MaildirMailbox(maildir)
    assert box.drafts == maildir / ".Drafts"  # Maildir++ layout, as Dovecot created it
    processor = InboxProcessor(
        box, SqliteLedger(tmp_path / "l.sqlite3"), ScriptedClient(), tenant="acme"
    )
    assert sorted(o.status for o in processor.run_once()).count("drafted") == 3
    drafts = _drafts(dovecot, mailbox_user)
    assert len(drafts) == 3 and all(b"\\Draft" in flags for flags, _ in drafts)
    assert all(b"$RagrelayProcessed" in flags for flags, _ in dovecot.messages(mailbox_user))
    assert list(MaildirMailbox(maildir).fetch()) == []


class ReviewClient(ScriptedClient):
    """Every job comes back uncertain (``review``), answered without citations."""

    def wait(self, job_id: str, timeout_s: float = 60.0) -> JobResult:
        return (
            super().wait(job_id, timeout_s).model_copy(update={"triage": "review", "citations": []})
        )


def test_review_mail_gets_the_review_keyword_and_an_honest_draft(
    dovecot: DovecotServer, mailbox_user: str, tmp_path: Path
) -> None:
    dovecot.append(mailbox_user, (INBOX / SAMPLES[0]).read_bytes())
    mailbox = ImapMailbox(parse_imap_url(dovecot.url(mailbox_user)))
    processor = InboxProcessor(
        mailbox,
        SqliteLedger(tmp_path / "ledger.sqlite3"),
        ReviewClient(),
        tenant="acme",
        review_keyword="$NeedsHuman",
    )
    [outcome] = processor.run_once()
    mailbox.close()
    assert outcome.status == "drafted" and outcome.draft_kind == "holding"  # no citation
    [(flags, _raw)] = dovecot.messages(mailbox_user, "INBOX")
    assert b"$NeedsHuman" in flags and b"$RagrelayProcessed" in flags
    [(_flags, draft)] = _drafts(dovecot, mailbox_user)
    assert draft["X-Ragrelay-Triage"] == "review" and draft["X-Ragrelay-Draft"] == "holding"
