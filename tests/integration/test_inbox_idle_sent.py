"""IMAP IDLE and edited-draft feedback, against a real Dovecot (and a real Redis).

* ``ragrelay inbox --imap URL`` waits in IDLE: a message appended while it waits gets its
  draft (asserted on the outcome, with a generous deadline, not on timing); ``--no-idle``
  polls instead.
* A person edits a draft and sends it: the next pass finds it in Sent and records
  feedback; ``ragrelay feedback export`` emits the case with the person's text as the
  reference, ``ragrelay eval qa`` accepts the file, and nothing is recorded twice.
"""

from __future__ import annotations

import email
import email.policy
import json
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import pytest
import redis

from ragrelay.feedback import FeedbackStore
from ragrelay.inbox.draft import DRAFT_KEY_HEADER
from ragrelay.inbox.imap import ImapMailbox, parse_imap_url
from ragrelay.inbox.ledger import RedisLedger
from ragrelay.inbox.parse import parse_message
from ragrelay.inbox.process import InboxProcessor
from ragrelay.inbox.sent import SentScanner
from tests.integration.test_inbox_imap import INBOX, SAMPLES, ScriptedClient
from tests.support.dovecot import DovecotServer

pytestmark = pytest.mark.integration

DEADLINE_S = 120.0  # generous: the first job loads the models on a busy 2-core machine


@pytest.fixture(scope="module")
def dovecot() -> Iterator[DovecotServer]:
    """Its own server (plain IMAP only), one fresh account per test."""
    server = DovecotServer(users={f"idle{i}@example.com": "pw" for i in range(6)}, tls=False)
    yield server.start()
    server.stop()


@pytest.fixture
def user(dovecot: DovecotServer) -> str:
    fresh = sorted(set(dovecot.users) - _USED)[0]
    _USED.add(fresh)
    return fresh


_USED: set[str] = set()


def _drafts(dovecot: DovecotServer, user: str) -> list[EmailMessage]:
    out = []
    for _flags, raw in dovecot.messages(user, "Drafts"):
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        out.append(msg)
    return out


class Agent:
    """``ragrelay inbox`` running in the background; stderr lines collected as they come."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ragrelay", "inbox", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.stderr: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.put(line)

    def wait_for(self, text: str, timeout: float = DEADLINE_S) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                assert self.proc.poll() is None, f"agent exited: {''.join(self.stderr)}"
                continue
            self.stderr.append(line)
            if text in line:
                return
        raise AssertionError(f"no {text!r} on stderr: {''.join(self.stderr)}")

    def stop(self) -> str:
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=60)
        assert self.proc.returncode == 0, "".join(self.stderr)
        return out


def _wait_for_drafts(dovecot: DovecotServer, user: str, n: int) -> list[EmailMessage]:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        drafts = _drafts(dovecot, user)
        if len(drafts) >= n:
            return drafts
        time.sleep(0.5)
    raise AssertionError(f"fewer than {n} drafts after {DEADLINE_S:g} s")


QUESTION = (
    b"From: Jo Bloggs <jo@example.org>\r\nTo: agent@example.com\r\n"
    b"Subject: how do I reset my password?\r\nMessage-ID: <idle-%s@example.org>\r\n\r\n"
    b"Hi, how do I reset my password? The link in the email does not work.\r\n"
)


def _draft_while_waiting(
    server: DovecotServer, user: str, env: dict[str, str], ready: list[str], *args: str
) -> list[dict[str, object]]:
    """Start the agent, wait until it says it waits, append a question, wait for its draft
    (or fail with everything the agent and Dovecot said), stop it; its JSON outcomes."""
    agent = Agent(env, "--imap", server.url(user), "--json", "--tenant", "acme", *args)
    try:
        for text in ready:  # the first (empty) pass is over; the agent waits
            agent.wait_for(text)
        server.append(user, QUESTION % uuid.uuid4().hex.encode())
        try:
            drafts = _wait_for_drafts(server, user, 1)
        except AssertionError as exc:
            agent.proc.send_signal(signal.SIGTERM)
            out, _ = agent.proc.communicate(timeout=60)
            raise AssertionError(
                f"{exc}\nstdout: {out}\nstderr: {''.join(agent.stderr)}"
                f"{''.join(list(agent.lines.queue))}\n"
                f"dovecot log: {server.log()[-3000:]}"
            ) from exc
    finally:
        out = agent.stop() if agent.proc.returncode is None else ""
    assert len(drafts) == 1 and drafts[0]["In-Reply-To"].startswith("<idle-")
    assert all(b"$RagrelayProcessed" in flags for flags, _ in server.messages(user))
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def test_new_mail_while_in_idle_gets_its_draft(
    dovecot: DovecotServer, user: str, base_env: dict[str, str]
) -> None:
    """The poll interval is an hour, so only IDLE can bring the message in in time."""
    outcomes = _draft_while_waiting(dovecot, user, base_env, ["IMAP IDLE"], "--poll", "3600")
    assert [o["status"] for o in outcomes] == ["drafted"]


def test_server_without_idle_falls_back_to_polling(
    base_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Dovecot that does not advertise IDLE: the agent says so, polls, and drafts."""
    from tests.support import dovecot as dovecot_support

    monkeypatch.setattr(
        dovecot_support,
        "CONFIG",
        dovecot_support.CONFIG
        + "protocol imap {{\n  imap_capability = IMAP4rev1 LITERAL+ SASL-IR\n}}\n",
    )
    with DovecotServer(users={"plain@example.com": "pw"}, tls=False) as server:
        conn = server.connect("plain@example.com")
        assert b"IDLE" not in b" ".join(conn.capability()[1])
        conn.logout()
        outcomes = _draft_while_waiting(
            server,
            "plain@example.com",
            base_env,
            ["no IMAP IDLE", "polling every 0.5 s"],
            "--poll",
            "0.5",
        )
    assert [o["status"] for o in outcomes] == ["drafted"]


# --- edited drafts → feedback ---------------------------------------------------------------

CORRECTED = (
    "Hi,\n\nThanks for the detailed report. Please update to version 2.4.1, which "
    "fixes this, and tell us if it happens again.\n\nBest regards"
)


def _sent_version(
    draft: EmailMessage, body: str, *, keep_ids: bool = True, message_id: str | None = None
) -> bytes:
    """What a mail client puts in Sent when a person sends the draft: new Message-ID
    (unless it keeps the draft's), the draft's threading, the person's text, the quote."""
    quoted = draft.get_body(("plain",))
    assert quoted is not None
    text = quoted.get_content().replace("\r\n", "\n")
    quote = text[text.index("\n\nOn ") if "\n\nOn " in text else len(text) :]
    sent = EmailMessage()
    for header in ("From", "To", "Subject"):
        sent[header] = str(draft[header])
    sent["Date"] = "Sun, 29 Nov 2026 09:00:00 +0000"
    sent["Message-ID"] = message_id or make_msgid(domain="client.example.com")
    if keep_ids:
        sent["In-Reply-To"] = str(draft["In-Reply-To"])
        sent["References"] = str(draft["References"])
    sent.set_content(f"{body}\n{quote}\n-- \nSupport team\n")
    return sent.as_bytes(policy=email.policy.SMTP)


def test_edited_draft_in_sent_becomes_an_eval_case(
    dovecot: DovecotServer,
    user: str,
    base_env: dict[str, str],
    redis_url: str,
    rclient: redis.Redis,
    tmp_path: Path,
) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}"
    env = {**base_env, "RAGRELAY_REDIS_URL": redis_url, "RAGRELAY_KEY_PREFIX": prefix}
    for name in SAMPLES[:2]:  # two needs_reply messages
        dovecot.append(user, (INBOX / name).read_bytes())
    # 1. the agent drafts (the pipeline is a scripted double here: the subject of this test
    #    is the Sent side; real drafting is covered by the IDLE test and test_inbox_imap)
    mailbox = ImapMailbox(parse_imap_url(dovecot.url(user)))
    processor = InboxProcessor(
        mailbox,
        RedisLedger(redis.Redis.from_url(redis_url), prefix),
        ScriptedClient(),
        tenant="acme",
    )
    assert [o.status for o in processor.run_once()] == ["drafted", "drafted"]
    mailbox.close()
    drafts = {str(d["In-Reply-To"]): d for d in _drafts(dovecot, user)}
    first, second = (
        drafts[parse_message((INBOX / n).read_bytes()).message_id] for n in SAMPLES[:2]
    )
    draft_text = "Hi,\n\nHere is what we found."  # ScriptedClient's answer

    # 2. a person edits the first draft and sends it; sends the second unchanged from a
    #    client that keeps the draft's Message-ID and drops the threading headers; and
    #    sends an unrelated message
    conn = dovecot.connect(user)
    conn.create("Sent")
    conn.logout()
    dovecot.append(user, _sent_version(first, CORRECTED), "Sent")
    dovecot.append(
        user,
        _sent_version(second, draft_text, keep_ids=False, message_id=str(second["Message-ID"])),
        "Sent",
    )
    unrelated = EmailMessage()
    unrelated["From"], unrelated["To"], unrelated["Subject"] = (
        "agent@example.com",
        "x@example.org",
        "lunch?",
    )
    unrelated["Message-ID"] = make_msgid(domain="client.example.com")
    unrelated.set_content("Lunch at noon?\n")
    dovecot.append(user, unrelated.as_bytes(), "Sent")

    # 3. the next pass of `ragrelay inbox` (no new inbox mail: no job, no worker needed)
    cmd = [
        sys.executable,
        "-m",
        "ragrelay",
        "inbox",
        "--imap",
        dovecot.url(user),
        "--once",
        "--json",
        "--tenant",
        "acme",
    ]
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    sent = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    assert sorted(o["status"] for o in sent) == ["accepted", "edited", "unrelated"]
    assert all(o["sent"] for o in sent)
    edited = next(o for o in sent if o["status"] == "edited")
    assert 0 < edited["similarity"] < 1
    assert all(b"$RagrelayProcessed" in flags for flags, _ in dovecot.messages(user, "Sent"))

    # 4. feedback export: the edited draft's case has the person's text as the reference
    export = subprocess.run(
        [sys.executable, "-m", "ragrelay", "feedback", "export", "--since", "1h"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert export.returncode == 0, export.stderr
    cases = [json.loads(line) for line in export.stdout.splitlines()]
    assert len(cases) == 2
    by_kind = {c["reference_kind"]: c for c in cases}
    corrected = by_kind["corrected"]
    assert corrected["answers"] == [CORRECTED]  # quote and signature stripped
    assert corrected["job_answer"].startswith(draft_text)
    assert corrected["question"] == parse_message((INBOX / SAMPLES[0]).read_bytes()).question()
    assert by_kind["confirmed"]["answers"][0].startswith(draft_text)
    assert by_kind["confirmed"]["rating"] == 5 and corrected["rating"] <= 4

    # 5. once only: another pass, even after the keyword is lost, records nothing new
    conn = dovecot.connect(user)
    conn.select("Sent")
    conn.uid("STORE", "1:*", "-FLAGS.SILENT", "($RagrelayProcessed)")
    conn.logout()
    mailbox = ImapMailbox(parse_imap_url(dovecot.url(user)))
    again = SentScanner(
        mailbox.sent_box(),
        RedisLedger(redis.Redis.from_url(redis_url), prefix),
        FeedbackStore(rclient, prefix=prefix),
        tenant="acme",
    ).run_once()
    mailbox.close()
    assert sorted(o.status for o in again) == ["skipped", "skipped", "unrelated"]
    assert len(rclient.lrange(f"{prefix}:feedback:tenant:acme", 0, -1)) == 2

    # 6. `ragrelay eval qa` accepts the exported file
    cases_file = tmp_path / "cases.jsonl"
    cases_file.write_text(export.stdout)
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(
        json.dumps(
            {"_id": "kb#0", "title": "Updates", "text": "Version 2.4.1 fixes the crash on start."}
        )
        + "\n"
    )
    qa = subprocess.run(
        [
            sys.executable,
            "-m",
            "ragrelay",
            "eval",
            "qa",
            "--corpus",
            str(corpus),
            "--questions",
            str(cases_file),
            "--json",
        ],
        env=base_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert qa.returncode == 0, qa.stderr
    assert json.loads(qa.stdout.strip().splitlines()[-1])["questions"] == 2


def test_reply_key_header_alone_matches_the_draft(
    dovecot: DovecotServer, user: str, redis_url: str, tmp_path: Path
) -> None:
    """A client that keeps our X-Ragrelay-Reply-Key but neither threading nor Message-ID."""
    from ragrelay.inbox.ledger import SqliteLedger

    dovecot.append(user, (INBOX / SAMPLES[1]).read_bytes())
    ledger = SqliteLedger(tmp_path / "l.sqlite3")
    mailbox = ImapMailbox(parse_imap_url(dovecot.url(user)), sent_folder="Outbox")
    assert [o.status for o in InboxProcessor(mailbox, ledger, ScriptedClient()).run_once()] == [
        "drafted"
    ]
    (draft,) = _drafts(dovecot, user)
    raw = _sent_version(draft, "Hi,\n\nSee the manual, chapter 3.", keep_ids=False)
    raw = f"{DRAFT_KEY_HEADER}: {draft[DRAFT_KEY_HEADER]}\r\n".encode() + raw
    conn = dovecot.connect(user)
    conn.create("Outbox")  # a configured name (no \\Sent special-use in this Dovecot)
    conn.logout()
    dovecot.append(user, raw, "Outbox")
    store = FeedbackStore(redis.Redis.from_url(redis_url), prefix=f"t{uuid.uuid4().hex[:8]}")
    scanner = SentScanner(mailbox.sent_box(), ledger, store)
    assert [o.status for o in scanner.run_once()] == ["edited"]
    assert scanner.run_once() == []
    (record,) = store.for_tenant("default")
    assert record.corrected_answer == "Hi,\n\nSee the manual, chapter 3."
    mailbox.close()
