"""IDLE's wire protocol and the Sent → feedback logic, without Dovecot (the integration
tests in tests/integration/test_inbox_idle_sent.py run both against a real one)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import fakeredis
import pytest

from ragrelay.feedback import FeedbackStore
from ragrelay.inbox.draft import build_draft, key_digest
from ragrelay.inbox.idle import IdleIMAP4, IdleUnsupported, SocketReader, has_idle, idle
from ragrelay.inbox.ledger import RedisLedger, SqliteLedger
from ragrelay.inbox.mailbox import MaildirMailbox
from ragrelay.inbox.parse import parse_message
from ragrelay.inbox.sent import (
    ACCEPTED_RATING,
    SentScanner,
    edited_rating,
    feedback_for,
    normalise,
    reply_refs,
    similarity,
)

# --- IDLE over a scripted IMAP peer ------------------------------------------------------------


class ScriptedImap:
    """A loopback IMAP peer that plays one IDLE script (the real server is Dovecot in the
    integration tests; here the protocol's edge cases are reproducible)."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn, conn.makefile("rb") as lines:
            conn.sendall(b"* OK [CAPABILITY IMAP4rev1 IDLE] scripted ready\r\n")
            for raw in lines:
                tag, _, command = raw.decode().strip().partition(" ")
                if raw.strip() == b"DONE":
                    conn.sendall(self.idle_tag + b" OK Idle completed.\r\n")
                elif command == "IDLE":
                    self.idle_tag = tag.encode()
                    if self.mode == "refuse":
                        conn.sendall(tag.encode() + b" BAD Unknown command\r\n")
                        continue
                    conn.sendall(b"+ idling\r\n")
                    if self.mode == "quiet":  # not new mail: no wake-up
                        conn.sendall(b"* 0 RECENT\r\n* 2 FETCH (FLAGS (\\Seen))\r\n")
                    if self.mode == "wake":
                        time.sleep(0.6)  # several read timeouts pass first
                        conn.sendall(b"* OK Still here\r\n* 4 EXISTS\r\n* 1 RECENT\r\n")
                elif command == "CAPABILITY":
                    conn.sendall(
                        b"* CAPABILITY IMAP4rev1 IDLE\r\n" + tag.encode() + b" OK done\r\n"
                    )
                elif command == "LOGOUT":
                    conn.sendall(b"* BYE\r\n" + tag.encode() + b" OK bye\r\n")
                    return
                else:
                    conn.sendall(tag.encode() + b" OK " + command.encode() + b" done\r\n")


@pytest.fixture
def peer(request: pytest.FixtureRequest) -> Iterator[tuple[ScriptedImap, IdleIMAP4]]:
    server = ScriptedImap(request.param)
    conn = IdleIMAP4("127.0.0.1", server.port, timeout=10)
    yield server, conn
    conn.logout()
    server.listener.close()


@pytest.mark.parametrize("peer", ["wake"], indirect=True)
def test_idle_wakes_on_exists_and_the_connection_stays_usable(
    peer: tuple[ScriptedImap, IdleIMAP4],
) -> None:
    _, conn = peer
    assert isinstance(conn.file, SocketReader) and has_idle(conn)
    assert idle(conn, max_s=60, tick_s=0.05) is True
    assert conn.noop()[0] == "OK"  # imaplib carries on after timeouts inside IDLE


@pytest.mark.parametrize("peer", ["quiet"], indirect=True)
def test_idle_ends_on_stop_request_with_done(peer: tuple[ScriptedImap, IdleIMAP4]) -> None:
    _, conn = peer
    calls = iter(range(1_000_000))
    assert idle(conn, max_s=60, tick_s=0.01, should_stop=lambda: next(calls) >= 3) is False
    assert idle(conn, max_s=0.05, tick_s=0.01) is False  # time limit, then DONE
    assert conn.noop()[0] == "OK"


@pytest.mark.parametrize("peer", ["refuse"], indirect=True)
def test_refused_idle_raises_idle_unsupported(peer: tuple[ScriptedImap, IdleIMAP4]) -> None:
    _, conn = peer
    with pytest.raises(IdleUnsupported, match="BAD"):
        idle(conn, max_s=60)
    assert conn.noop()[0] == "OK"


def test_socket_reader_survives_a_timeout_and_reads_literals() -> None:
    a, b = socket.socketpair()
    with a, b:
        reader = SocketReader(a)
        b.sendall(b"* 1 FETCH (BODY[] {5}\r\nhel")
        assert reader.poll_line(0.05) == b"* 1 FETCH (BODY[] {5}\r\n"
        assert reader.poll_line(0.05) is None  # timed out; nothing lost
        b.sendall(b"lo)\r\n")
        assert reader.read(5) == b"hello" and reader.readline() == b")\r\n"


# --- Sent → feedback ---------------------------------------------------------------------------

ORIGINAL = (
    b"From: Jo <jo@example.org>\r\nTo: help@example.com\r\nSubject: printer jams\r\n"
    b"Date: Mon, 1 Jul 2002 10:00:00 +0000\r\nMessage-ID: <q1@example.org>\r\n\r\n"
    b"My printer jams. What should I do?\r\n"
)
DRAFT = "Hi Jo,\n\nClean the rollers and try again."


def _sent(body: str, *, headers: str = "In-Reply-To: <q1@example.org>\r\n") -> bytes:
    return (
        f"From: help@example.com\r\nTo: jo@example.org\r\nSubject: Re: printer jams\r\n"
        f"Message-ID: <s{abs(hash(body))}@example.com>\r\n{headers}\r\n"
        f"{body}\r\n\r\nOn Mon, 1 Jul 2002, Jo wrote:\r\n> My printer jams.\r\n"
        f"-- \r\nHelp desk\r\n"
    ).encode()


def test_normalise_and_similarity() -> None:
    assert normalise("Hi,\n\n  fine.\n\nOn Monday, Jo wrote:\n> q\n-- \nsig") == "Hi, fine."
    assert similarity("a b c d", "a b c d") == 1.0 and similarity("a b", "x y") == 0.0
    assert edited_rating(0.95) == 4 and edited_rating(0.5) == 3 and edited_rating(0.0) == 1


def test_feedback_for_edited_and_unchanged() -> None:
    info = {
        "question": "printer jams What should I do?",
        "draft": DRAFT,
        "job_id": "j1",
        "digest": "d",
        "cited_doc_ids": ["kb#1"],
    }
    edited, sim = feedback_for(
        parse_message(_sent("Hi Jo,\n\nClean the rollers, then update the driver.")),
        info,
        tenant="t",
    )
    assert edited.corrected_answer == "Hi Jo,\n\nClean the rollers, then update the driver."
    assert edited.answer == DRAFT and edited.query == info["question"] and 0 < sim < 1
    assert edited.rating == edited_rating(sim) and edited.cited_doc_ids == ["kb#1"]
    same, sim = feedback_for(
        parse_message(_sent(DRAFT.replace("\n\n", "\n\n  "))), info, tenant="t"
    )
    assert same.corrected_answer is None and same.rating == ACCEPTED_RATING and sim == 1.0
    again, _ = feedback_for(parse_message(_sent(DRAFT.replace("\n\n", "\n\n  "))), info, tenant="t")
    assert again.feedback_id == same.feedback_id  # one id per (tenant, sent message)


def test_reply_refs_order() -> None:
    raw = _sent(
        "x",
        headers="In-Reply-To: <a@x> (junk)\r\nReferences: <z@x> <b@x>\r\n"
        "X-Ragrelay-Reply-Key: abc\r\n",
    )
    refs = reply_refs(parse_message(raw), raw)
    assert refs[:2] == ["<a@x>", "<b@x>"] and refs[-1] == "abc" and len(refs) == 4


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_ledger_remembers_drafts_under_every_ref(kind: str, tmp_path: Path) -> None:
    ledger = (
        SqliteLedger(tmp_path / "l.sqlite3")
        if kind == "sqlite"
        else RedisLedger(fakeredis.FakeRedis())
    )
    ledger.record_draft("t", ["<q1@x>", "digest", "<d1@x>"], {"draft": "v1"})
    ledger.record_draft("t", ["<q1@x>", "digest"], {"draft": "v2"})
    assert ledger.find_draft("t", "<q1@x>") == {"draft": "v2"}
    assert ledger.find_draft("t", "<d1@x>") == {"draft": "v1"}
    assert ledger.find_draft("other", "<q1@x>") is None and ledger.find_draft("t", "nope") is None
    ledger.close()


def _maildir(path: Path) -> Path:
    for sub in ("cur", "new", "tmp"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    return path


def test_sent_scanner_over_a_maildir_records_once(tmp_path: Path) -> None:
    root = _maildir(tmp_path / "Maildir")
    sent_dir = _maildir(root / ".Sent")
    box = MaildirMailbox(root)
    sent_box = box.sent_box()
    assert sent_box is not None and sent_box.directory == sent_dir
    assert MaildirMailbox(root).sent_box("Elsewhere") is None

    parsed = parse_message(ORIGINAL)
    ledger = SqliteLedger(tmp_path / "l.sqlite3")
    draft = build_draft(parsed, DRAFT, tenant="t")
    ledger.record_draft(
        "t",
        [parsed.key, key_digest("t", parsed.key), str(draft["Message-ID"])],
        {"question": parsed.question(), "draft": DRAFT, "job_id": "j1"},
    )
    (sent_dir / "new" / "1.edited").write_bytes(_sent("Hi Jo,\n\nPlease call us."))
    (sent_dir / "new" / "2.unrelated").write_bytes(_sent("Lunch?", headers=""))
    (sent_dir / "new" / "3.kept-id").write_bytes(
        _sent(DRAFT, headers="")
        .replace(b"Message-ID: <s", b"X-Old: <s", 1)
        .replace(b"From:", f"Message-ID: {draft['Message-ID']}\r\nFrom:".encode(), 1)
    )
    store = FeedbackStore(fakeredis.FakeRedis(), prefix="p")
    scanner = SentScanner(sent_box, ledger, store, tenant="t")
    outcomes = scanner.run_once()
    assert sorted(o.status for o in outcomes) == ["accepted", "edited", "unrelated"]
    assert scanner.run_once() == []  # all marked
    assert SentScanner(MaildirMailbox(sent_dir), ledger, store, tenant="t").run_once() == []
    records = store.for_tenant("t")
    assert sorted(r.rating == ACCEPTED_RATING for r in records) == [False, True]
    assert {r.job_id for r in records} == {"j1"}
    ledger.close()
