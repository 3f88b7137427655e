"""The IMAP connector (``imaplib``): TLS (``imaps://``) or plain (``imap://``); new mail by
IDLE (``idle.py``, when the server has it) or polling.

``imap://user:pass@host:port/INBOX`` — user and password may also come from options.
Fetch: ``UID SEARCH UNKEYWORD $RagrelayProcessed`` (plus ``UNSEEN`` if asked), bodies read
with ``BODY.PEEK[]`` so ``\\Seen`` is never changed. Drafts: ``APPEND`` to the mailbox with
the ``\\Drafts`` special-use (else ``Drafts``, created if missing) with ``\\Draft``; before
appending, ``SEARCH HEADER X-Ragrelay-Reply-Key`` makes the store idempotent. Sent mail (for
edited-draft feedback): the ``\\Sent`` special-use mailbox, else the configured name, read
the same way on a third connection (never created). Errors from imaplib/socket/ssl are
translated here, once.
"""

from __future__ import annotations

import contextlib
import imaplib
import re
import ssl
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from bus.errors import ConfigError, PermanentError, TransientError
from bus.redaction import display_url
from ragrelay.inbox.draft import DRAFT_KEY_HEADER
from ragrelay.inbox.idle import IdleIMAP4, IdleIMAP4_SSL, IdleUnsupported, has_idle, idle
from ragrelay.inbox.mailbox import PROCESSED_KEYWORD, RawMessage, draft_bytes

T = TypeVar("T")
_NEW_MAIL = ("EXISTS", "RECENT")  # untagged responses that mean new mail
_LIST_LINE = re.compile(rb'^\((?P<flags>[^)]*)\) (?:"(?P<sep>[^"]*)"|NIL) (?P<name>.+)$')


@dataclass(frozen=True)
class ImapTarget:
    host: str
    port: int
    tls: bool
    user: str
    password: str
    mailbox: str = "INBOX"

    def redacted(self) -> str:
        scheme = "imaps" if self.tls else "imap"
        return f"{scheme}://{self.user}@{self.host}:{self.port}/{self.mailbox}"


def parse_imap_url(url: str, user: str | None = None, password: str | None = None) -> ImapTarget:
    """``imap[s]://[user[:pass]@]host[:port][/MAILBOX]``; options fill what the URL lacks."""
    parts = urlsplit(url)
    if parts.scheme not in ("imap", "imaps"):
        raise ConfigError(f"--imap must start with imap:// or imaps:// (got {display_url(url)})")
    if not parts.hostname:
        raise ConfigError(f"--imap URL has no host: {display_url(url)}")
    tls = parts.scheme == "imaps"
    login = user or (unquote(parts.username) if parts.username else None)
    secret = password or (unquote(parts.password) if parts.password else None)
    if not login or secret is None:
        raise ConfigError(
            "IMAP login missing: put it in the URL (imap://user:pass@host/INBOX) or pass "
            "--imap-user and --imap-password (or RAGRELAY_IMAP_PASSWORD)"
        )
    mailbox = unquote(parts.path.lstrip("/")) or "INBOX"
    return ImapTarget(
        parts.hostname, parts.port or (993 if tls else 143), tls, login, secret, mailbox
    )


def _quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


class ImapMailbox:
    """One IMAP account; a second connection is opened lazily for the Drafts folder."""

    def __init__(
        self,
        target: ImapTarget,
        *,
        unseen_only: bool = False,
        tls_context: ssl.SSLContext | None = None,
        timeout_s: float = 30.0,
        sent_folder: str = "Sent",
    ) -> None:
        self.target = target
        self.unseen_only = unseen_only
        self.sent_folder = sent_folder
        self.tls_context = tls_context
        self.timeout_s = timeout_s
        self.name = f"imap:{target.redacted()}"
        self._inbox = self._connect()
        self._call(lambda: self._ok(self._inbox.select(_quote(target.mailbox)), "SELECT"))
        self._drafts_conn: imaplib.IMAP4 | None = None
        self._drafts_name: str | None = None
        self._sent_conn: imaplib.IMAP4 | None = None
        self._no_sent = False
        self._idle: bool | None = None

    # -- plumbing --------------------------------------------------------------------------
    def _call(self, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except (imaplib.IMAP4.abort, TimeoutError, ConnectionError, ssl.SSLError) as exc:
            raise TransientError(f"IMAP {self.target.redacted()}: {exc}") from exc
        except imaplib.IMAP4.error as exc:
            raise PermanentError(f"IMAP {self.target.redacted()}: {exc}") from exc
        except OSError as exc:
            raise TransientError(f"IMAP {self.target.redacted()}: {exc}") from exc

    @staticmethod
    def _ok(response: tuple[str, Sequence[Any]], what: str) -> list[Any]:
        status, data = response
        if status != "OK":
            detail = b" ".join(d for d in data if isinstance(d, bytes)).decode(errors="replace")
            raise imaplib.IMAP4.error(f"{what} failed: {detail}")
        return list(data)

    def _connect(self) -> imaplib.IMAP4:
        t = self.target
        try:
            conn: imaplib.IMAP4
            if t.tls:
                context = self.tls_context or ssl.create_default_context()
                conn = IdleIMAP4_SSL(t.host, t.port, ssl_context=context, timeout=self.timeout_s)
            else:
                conn = IdleIMAP4(t.host, t.port, timeout=self.timeout_s)
        except (OSError, imaplib.IMAP4.error) as exc:
            raise TransientError(f"cannot connect to {t.redacted()}: {exc}") from exc
        try:
            conn.login(t.user, t.password)
        except imaplib.IMAP4.error as exc:
            with contextlib.suppress(OSError):
                conn.shutdown()
            raise ConfigError(f"IMAP login failed for {t.redacted()}: {exc}") from exc
        return conn

    # -- special folders -------------------------------------------------------------------
    def _find_folder(self, conn: imaplib.IMAP4, special_use: bytes, fallback: str) -> str | None:
        """The mailbox with the ``special_use`` attribute, else the one named ``fallback``
        (last hierarchy level, case-insensitive), else None."""
        data = self._ok(conn.list(), "LIST")
        names: list[str] = []
        for line in data:
            if not isinstance(line, bytes):
                continue
            match = _LIST_LINE.match(line)
            if not match:
                continue
            name = match.group("name").decode("utf-8", "replace").strip().strip('"')
            names.append(name)
            if special_use in match.group("flags"):
                return name
        for name in names:
            if name.split("/")[-1].split(".")[-1].lower() == fallback.lower():
                return name
        return None

    def _find_drafts(self, conn: imaplib.IMAP4) -> str:
        name = self._find_folder(conn, b"\\Drafts", "Drafts")
        if name is not None:
            return name
        self._ok(conn.create(_quote("Drafts")), "CREATE Drafts")
        return "Drafts"

    def _drafts(self) -> tuple[imaplib.IMAP4, str]:
        if self._drafts_conn is None or self._drafts_name is None:
            conn = self._connect()
            name = self._call(lambda: self._find_drafts(conn))
            self._call(lambda: self._ok(conn.select(_quote(name)), "SELECT Drafts"))
            self._drafts_conn, self._drafts_name = conn, name
        return self._drafts_conn, self._drafts_name

    # -- Mailbox ---------------------------------------------------------------------------
    def fetch(self) -> Iterator[RawMessage]:
        return self._unmarked(self._inbox, unseen_only=self.unseen_only)

    def _unmarked(self, conn: imaplib.IMAP4, *, unseen_only: bool) -> Iterator[RawMessage]:
        criteria = ["UNKEYWORD", PROCESSED_KEYWORD, "NOT", "DELETED"]
        if unseen_only:
            criteria.append("UNSEEN")
        self._call(lambda: self._ok(conn.noop(), "NOOP"))
        for name in _NEW_MAIL:  # what arrives from here on is reported to ``idle``
            conn.untagged_responses.pop(name, None)
        data = self._call(lambda: self._ok(conn.uid("SEARCH", *criteria), "SEARCH"))
        uids = b" ".join(d for d in data if isinstance(d, bytes)).split()
        for uid in uids:
            fetched = self._fetch_one(conn, uid.decode())
            raw = next(
                (part[1] for part in fetched if isinstance(part, tuple) and len(part) > 1), None
            )
            if isinstance(raw, bytes):
                yield RawMessage(uid.decode(), raw)

    def _fetch_one(self, conn: imaplib.IMAP4, uid: str) -> list[Any]:
        return self._call(lambda: self._ok(conn.uid("FETCH", uid, "(BODY.PEEK[])"), "FETCH"))

    def store_draft(self, digest: str, draft: EmailMessage) -> bool:
        conn, name = self._drafts()
        self._call(lambda: self._ok(conn.noop(), "NOOP"))
        found = self._call(
            lambda: self._ok(conn.uid("SEARCH", "HEADER", DRAFT_KEY_HEADER, digest), "SEARCH")
        )
        if b" ".join(d for d in found if isinstance(d, bytes)).strip():
            return False
        payload = draft_bytes(draft)
        self._call(
            lambda: self._ok(
                conn.append(
                    _quote(name),
                    "(\\Draft \\Seen)",
                    imaplib.Time2Internaldate(time.time()),
                    payload,
                ),
                "APPEND",
            )
        )
        return True

    def mark_processed(self, ref: str) -> None:
        self._mark(self._inbox, ref)

    def mark_keyword(self, ref: str, keyword: str) -> None:
        """Set an IMAP keyword (e.g. ``$RagrelayReview``) on the original message."""
        self._call(
            lambda: self._ok(
                self._inbox.uid("STORE", ref, "+FLAGS.SILENT", f"({keyword})"), "STORE"
            )
        )

    def _mark(self, conn: imaplib.IMAP4, ref: str) -> None:
        self._call(
            lambda: self._ok(
                conn.uid("STORE", ref, "+FLAGS.SILENT", f"({PROCESSED_KEYWORD})"), "STORE"
            )
        )

    # -- new mail: IDLE ---------------------------------------------------------------------
    def supports_idle(self) -> bool:
        if self._idle is None:
            self._idle = self._call(lambda: has_idle(self._inbox))
        return self._idle

    def idle(self, max_s: float, should_stop: Callable[[], bool]) -> bool:
        """Wait in IDLE on the inbox: True on new mail, False on time limit or stop.
        Raises ``IdleUnsupported`` (poll instead) or ``TransientError``."""
        if not self.supports_idle():
            raise IdleUnsupported(f"{self.target.redacted()} does not advertise IDLE")
        exists, recent = (self._inbox.untagged_responses.pop(n, None) for n in _NEW_MAIL)
        if exists or any(r not in (b"0", "0") for r in recent or []):
            return True  # mail arrived during the last pass: imaplib took the news
        self._close_helpers()  # idle for minutes: servers log silent sessions out
        return self._call(lambda: idle(self._inbox, max_s=max_s, should_stop=should_stop))

    # -- sent mail -------------------------------------------------------------------------
    def sent_box(self) -> ImapSent:
        """The Sent folder as a small mailbox (``fetch``, ``mark_processed``)."""
        return ImapSent(self)

    def _sent(self) -> imaplib.IMAP4 | None:
        if self._sent_conn is None and not self._no_sent:
            conn = self._connect()
            name = self._call(lambda: self._find_folder(conn, b"\\Sent", self.sent_folder))
            if name is None:  # no Sent folder: not looked for again on this connection
                self._no_sent = True
                with contextlib.suppress(imaplib.IMAP4.error, OSError):
                    conn.logout()
                return None
            self._call(lambda: self._ok(conn.select(_quote(name)), "SELECT Sent"))
            self._sent_conn = conn
        return self._sent_conn

    def fetch_sent(self) -> Iterator[RawMessage]:
        """Sent messages not yet looked at (no Sent folder: nothing)."""
        conn = self._sent()
        if conn is not None:
            yield from self._unmarked(conn, unseen_only=False)

    def mark_sent(self, ref: str) -> None:
        conn = self._sent()
        if conn is not None:
            self._mark(conn, ref)

    def _close_helpers(self) -> None:
        """Log out of the Drafts and Sent connections (reopened when next needed)."""
        for conn in (self._drafts_conn, self._sent_conn):
            if conn is not None:
                with contextlib.suppress(imaplib.IMAP4.error, OSError):
                    conn.logout()
        self._drafts_conn = self._drafts_name = self._sent_conn = None

    def close(self) -> None:
        self._close_helpers()
        with contextlib.suppress(imaplib.IMAP4.error, OSError):
            self._inbox.logout()


class ImapSent:
    """The Sent folder of an ``ImapMailbox``: unmarked messages, marked once looked at."""

    def __init__(self, owner: ImapMailbox) -> None:
        self.owner = owner
        self.name = f"{owner.name} (sent)"

    def fetch(self) -> Iterator[RawMessage]:
        return self.owner.fetch_sent()

    def mark_processed(self, ref: str) -> None:
        self.owner.mark_sent(ref)


__all__ = ["ImapMailbox", "ImapSent", "ImapTarget", "parse_imap_url"]
