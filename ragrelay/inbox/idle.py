"""IMAP IDLE (RFC 2177) over ``imaplib``, which has none before Python 3.14.

``imaplib`` reads through ``socket.makefile('rb')``, and a socket file that has timed out
once refuses every later read ("cannot read from timed out object"), so an IDLE loop that
wakes up every second to check for a stop request cannot be built on it. The connection
classes here swap that file for ``SocketReader``: the same ``readline``/``read`` surface,
its own buffer, and a timeout that leaves the connection usable. ``imaplib`` itself is
otherwise untouched (every other command goes through it as before).

``idle(conn, ...)``: send ``TAG IDLE``, wait for the ``+`` continuation, then read untagged
lines with a short socket timeout until ``* n EXISTS`` / ``* n RECENT`` (n > 0) arrives, the time
limit passes (the caller keeps it under 29 minutes, as RFC 2177 asks) or ``should_stop()``
says so; then ``DONE`` and the tagged completion. A server that answers ``IDLE`` with NO
or BAD raises ``IdleUnsupported`` (the caller falls back to polling).
"""

from __future__ import annotations

import imaplib
import itertools
import re
import socket
import ssl
import time
from collections.abc import Callable

MAX_IDLE_S = 29 * 60  # RFC 2177: re-issue IDLE at least every 29 minutes
_MAXLINE = 1_000_000
_LITERAL = re.compile(rb"\{(\d+)\+?\}\r\n$")
_NEW_MAIL = re.compile(rb"^\* (?:\d+ EXISTS|[1-9]\d* RECENT)\b", re.IGNORECASE)
_TAGS = itertools.count(1)


class IdleUnsupported(Exception):
    """The server does not advertise IDLE, or refused it."""


class SocketReader:
    """A buffered line reader over a socket whose timeouts are not fatal.

    ``readline``/``read`` block up to the socket's timeout like a socket file would;
    ``poll_line(timeout)`` returns None when no whole line arrived within ``timeout``
    (the bytes read so far stay buffered)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()

    def _fill(self, timeout: float | None = None) -> None:
        if timeout is not None:
            saved = self.sock.gettimeout()
            self.sock.settimeout(timeout)
            try:
                chunk = self.sock.recv(65536)
            finally:
                self.sock.settimeout(saved)
        else:
            chunk = self.sock.recv(65536)
        if not chunk:
            raise imaplib.IMAP4.abort("socket closed by the server")
        self.buf += chunk

    def readline(self, limit: int = -1) -> bytes:
        while True:
            end = self.buf.find(b"\n")
            if end >= 0 or (0 < limit <= len(self.buf)):
                n = end + 1 if end >= 0 else limit
                if 0 < limit < n:
                    n = limit
                line = bytes(self.buf[:n])
                del self.buf[:n]
                return line
            try:
                self._fill()
            except imaplib.IMAP4.abort:
                line = bytes(self.buf)  # EOF: hand back what is left, as a file would
                self.buf.clear()
                return line

    def read(self, size: int) -> bytes:
        while len(self.buf) < size:
            try:
                self._fill()
            except imaplib.IMAP4.abort:
                break
        data = bytes(self.buf[:size])
        del self.buf[:size]
        return data

    def poll_line(self, timeout: float) -> bytes | None:
        """One whole line if it arrives within ``timeout`` seconds, else None."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                self._fill(left)
            except (TimeoutError, ssl.SSLWantReadError):
                return None
            if len(self.buf) > _MAXLINE:
                raise imaplib.IMAP4.error(f"got more than {_MAXLINE} bytes without a newline")
        return self.readline()

    def close(self) -> None:
        self.buf.clear()


def _swap_reader(conn: imaplib.IMAP4) -> None:
    """Replace the socket file ``imaplib`` opened with a ``SocketReader`` (from ``open``,
    before the greeting is read, so nothing can be lost in the swap)."""
    conn.file.close()
    conn.file = SocketReader(conn.sock)  # type: ignore[assignment]


class IdleIMAP4(imaplib.IMAP4):
    def open(self, host: str = "", port: int = 143, timeout: float | None = None) -> None:
        super().open(host, port, timeout)
        _swap_reader(self)


class IdleIMAP4_SSL(imaplib.IMAP4_SSL):
    def open(self, host: str = "", port: int | None = 993, timeout: float | None = None) -> None:
        super().open(host, port, timeout)
        _swap_reader(self)


def has_idle(conn: imaplib.IMAP4) -> bool:
    """Whether the logged-in server advertises IDLE (asks CAPABILITY again: servers may
    advertise more after login than in their greeting)."""
    status, data = conn.capability()
    if status != "OK":
        return False
    words = b" ".join(d for d in data if isinstance(d, bytes)).upper().split()
    return b"IDLE" in words


def _line(reader: SocketReader, conn: imaplib.IMAP4, timeout: float) -> bytes | None:
    """One response line (literals folded in), or None on ``timeout``."""
    line = reader.poll_line(timeout)
    if line is None:
        return None
    while (match := _LITERAL.search(line)) is not None:
        line += conn.read(int(match.group(1))) + conn.readline()
    return line


def idle(
    conn: imaplib.IMAP4,
    *,
    max_s: float = MAX_IDLE_S,
    should_stop: Callable[[], bool] = lambda: False,
    tick_s: float = 1.0,
    reply_timeout_s: float = 30.0,
) -> bool:
    """Wait in IDLE on the selected mailbox. True when the server reported new mail
    (EXISTS/RECENT), False on the time limit or a stop request. Raises
    ``IdleUnsupported`` when the server refuses IDLE, ``imaplib.IMAP4.abort`` when the
    connection breaks or the server stays silent where it must answer."""
    reader = conn.file
    if not isinstance(reader, SocketReader):
        raise IdleUnsupported("connection was not opened with a SocketReader")
    tag = f"RRI{next(_TAGS)}".encode()
    conn.send(tag + b" IDLE\r\n")
    new_mail = False
    while True:  # until the continuation (untagged data may come first)
        line = _line(reader, conn, reply_timeout_s)
        if line is None:
            raise imaplib.IMAP4.abort("no answer to IDLE")
        if line.startswith(b"+"):
            break
        if line.startswith(tag + b" "):
            raise IdleUnsupported(line.decode(errors="replace").strip())
        new_mail = new_mail or bool(_NEW_MAIL.match(line))
    deadline = time.monotonic() + min(max_s, MAX_IDLE_S)
    while not new_mail and not should_stop():
        left = deadline - time.monotonic()
        if left <= 0:
            break
        line = _line(reader, conn, min(tick_s, left))
        if line is not None and _NEW_MAIL.match(line):
            new_mail = True
        elif line is not None and line.upper().startswith(b"* BYE"):
            raise imaplib.IMAP4.abort(line.decode(errors="replace").strip())
    conn.send(b"DONE\r\n")
    while True:  # until the tagged completion of IDLE
        line = _line(reader, conn, reply_timeout_s)
        if line is None:
            raise imaplib.IMAP4.abort("no completion after DONE")
        if line.startswith(tag + b" "):
            if not line[len(tag) + 1 :].upper().startswith(b"OK"):
                raise imaplib.IMAP4.abort(line.decode(errors="replace").strip())
            return new_mail
        new_mail = new_mail or bool(_NEW_MAIL.match(line))


__all__ = [
    "MAX_IDLE_S",
    "IdleIMAP4",
    "IdleIMAP4_SSL",
    "IdleUnsupported",
    "SocketReader",
    "has_idle",
    "idle",
]
