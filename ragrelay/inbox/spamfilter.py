"""The mail world's own spam tools: a real SpamAssassin ``spamd``, and trusted upstream headers.

Production inboxes sit behind a filter the mail server already runs. The ingress asks it
(or reads its verdict) *before* the job is submitted, and passes the verdict to the triage
worker as flat strings in ``metadata["email"]``:

- ``filter_source``: ``spamd`` | ``upstream-header``
- ``filter_score`` / ``filter_required``: SpamAssassin points and the spam cut (5.0 default)
- ``filter_tests``: the rules that fired (comma-separated, may be empty)
- ``auth_result``: ``pass`` | ``fail`` | ``none`` from a *trusted* ``Authentication-Results``

Nothing here is trusted by default. A sender can write any ``X-Spam-*`` header into its own
message, so headers count only when the operator says an upstream filter wrote them
(``trust_headers``; the MTA must strip incoming copies) and only the topmost copy, the one
the nearest hop added; ``Authentication-Results`` count only when their authserv-id equals
the configured one (RFC 8601 §5). ``spamd`` is asked over its own protocol (SPAMC/1.5
``SYMBOLS`` on TCP), no ``spamc`` binary needed.
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import compat32

from bus.errors import ConfigError, RagrelayError

DEFAULT_SPAMD_PORT = 783
MAX_SPAMD_BYTES = 500 * 1024  # spamc's default size limit: larger mail is not scanned

_STATUS = re.compile(
    r"^\s*(yes|no)\b.*?\b(?:score|hits)=(-?\d+(?:\.\d+)?).*?\brequired=(-?\d+(?:\.\d+)?)"
    r"(?:.*?\btests=([^\s]*(?:\s*,\s*[^\s,]+)*))?",
    re.IGNORECASE | re.DOTALL,
)
_SPAMD_STATUS = re.compile(r"^SPAMD/\d+\.\d+\s+(\d+)\s+(.*)$")
_SPAM_LINE = re.compile(
    r"^Spam:\s*(True|False|Yes|No)\s*;\s*(-?\d+(?:\.\d+)?)\s*/\s*(-?\d+(?:\.\d+)?)", re.IGNORECASE
)
_AUTH_METHOD = re.compile(r"\b(spf|dkim|dmarc)\s*=\s*(\w+)", re.IGNORECASE)


class SpamdError(RagrelayError):
    """spamd could not be reached or answered outside its protocol."""


@dataclass(frozen=True)
class FilterVerdict:
    source: str  # "spamd" | "upstream-header"
    score: float
    required: float
    tests: tuple[str, ...] = ()

    @property
    def is_spam(self) -> bool:
        return self.score >= self.required

    def to_metadata(self) -> dict[str, str]:
        return {
            "filter_source": self.source,
            "filter_score": f"{self.score:.2f}",
            "filter_required": f"{self.required:.2f}",
            "filter_tests": ",".join(self.tests),
        }


def parse_address(value: str) -> tuple[str, int]:
    """``host:port`` / ``host`` / ``spamd://host:port`` → (host, port)."""
    text = value.strip()
    if text.startswith("spamd://"):
        text = text[len("spamd://") :]
    text = text.rstrip("/")
    if not text:
        raise ConfigError("spamd address is empty; expected HOST:PORT")
    host, sep, port = text.rpartition(":")
    if not sep:
        return text, DEFAULT_SPAMD_PORT
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"spamd address {value!r}: port must be 1-65535")
    return host.strip("[]") or "127.0.0.1", int(port)


class SpamdClient:
    """One ``SYMBOLS`` request per message over TCP (SPAMC/1.5), as ``spamc`` sends it."""

    def __init__(self, host: str, port: int, *, timeout_s: float = 30.0, user: str = "") -> None:
        self.host, self.port, self.timeout_s, self.user = host, port, timeout_s, user

    @classmethod
    def from_address(cls, address: str, *, timeout_s: float = 30.0) -> SpamdClient:
        host, port = parse_address(address)
        return cls(host, port, timeout_s=timeout_s)

    def ping(self) -> bool:
        try:
            reply = self._exchange(b"PING SPAMC/1.5\r\n\r\n")
        except SpamdError:
            return False
        return reply.startswith(b"SPAMD/") and b"PONG" in reply.split(b"\r\n", 1)[0]

    def check(self, raw: bytes) -> FilterVerdict | None:
        """spamd's verdict on one raw message; None when the message is too large to scan."""
        if len(raw) > MAX_SPAMD_BYTES:
            return None
        head = [b"SYMBOLS SPAMC/1.5", b"Content-length: %d" % len(raw)]
        if self.user:
            head.append(b"User: " + self.user.encode("ascii", "replace"))
        reply = self._exchange(b"\r\n".join(head) + b"\r\n\r\n" + raw)
        return parse_spamd_reply(reply)

    def _exchange(self, request: bytes) -> bytes:
        try:
            with socket.create_connection((self.host, self.port), timeout=self.timeout_s) as conn:
                conn.sendall(request)
                conn.shutdown(socket.SHUT_WR)
                chunks = []
                while chunk := conn.recv(65536):
                    chunks.append(chunk)
        except OSError as exc:
            raise SpamdError(f"spamd at {self.host}:{self.port}: {exc}") from exc
        return b"".join(chunks)


def parse_spamd_reply(reply: bytes) -> FilterVerdict:
    head, _sep, body = reply.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = _SPAMD_STATUS.match(lines[0]) if lines else None
    if status is None:
        raise SpamdError(f"not a spamd reply: {lines[0][:80] if lines else ''!r}")
    if status.group(1) != "0":
        raise SpamdError(f"spamd error {status.group(1)}: {status.group(2).strip()}")
    for line in lines[1:]:
        match = _SPAM_LINE.match(line)
        if match:
            tests = tuple(t for t in body.decode("latin-1").strip().split(",") if t)
            return FilterVerdict("spamd", float(match.group(2)), float(match.group(3)), tests)
    raise SpamdError("spamd reply has no Spam: line")


def header_verdict(raw: bytes) -> FilterVerdict | None:
    """The topmost ``X-Spam-Status`` (else ``X-Spam-Flag``) of ``raw``. Only call this when
    the operator trusts the upstream filter to have written (and stripped) them."""
    headers = BytesHeaderParser(policy=compat32).parsebytes(raw)
    status = headers.get("X-Spam-Status")
    if status:
        match = _STATUS.match(" ".join(str(status).split()))
        if match:
            tests = tuple(t.strip() for t in (match.group(4) or "").split(",") if t.strip())
            return FilterVerdict(
                "upstream-header", float(match.group(2)), float(match.group(3)), tests
            )
    flag = str(headers.get("X-Spam-Flag") or "").strip().lower()
    if flag in {"yes", "no"}:  # a bare flag: the cut itself on yes, clearly below on no
        return FilterVerdict("upstream-header", 5.0 if flag == "yes" else 0.0, 5.0)
    return None


def auth_result(raw: bytes, authserv_id: str) -> str:
    """``pass`` (DMARC, else DKIM, passes), ``fail`` (DMARC fails, or SPF fails without a
    DKIM pass) or ``none``, from ``Authentication-Results`` headers whose authserv-id is
    ``authserv_id`` only (others may be forged by the sender)."""
    headers = BytesHeaderParser(policy=compat32).parsebytes(raw)
    wanted = authserv_id.strip().lower()
    methods: dict[str, str] = {}
    for value in headers.get_all("Authentication-Results") or []:
        text = " ".join(str(value).split())
        server = text.split(";", 1)[0].strip().split()[0].lower() if text else ""
        if not wanted or server != wanted:
            continue
        for method, result in _AUTH_METHOD.findall(text.split(";", 1)[-1]):
            methods.setdefault(method.lower(), result.lower())
    if methods.get("dmarc") == "pass" or methods.get("dkim") == "pass":
        return "pass"
    if methods.get("dmarc") == "fail" or methods.get("spf") == "fail":
        return "fail"
    return "none"


@dataclass(frozen=True)
class SpamFilter:
    """What the ingress asks before it submits a job (all off by default)."""

    spamd: SpamdClient | None = None
    trust_headers: bool = False
    authserv_id: str = ""

    @property
    def enabled(self) -> bool:
        return self.spamd is not None or self.trust_headers or bool(self.authserv_id)

    def metadata(self, raw: bytes) -> dict[str, str]:
        """Flat ``metadata["email"]`` additions for one message ({} when nothing is known).
        spamd wins over headers (it is ours); a spamd failure raises ``SpamdError``."""
        out: dict[str, str] = {}
        verdict = self.spamd.check(raw) if self.spamd is not None else None
        if verdict is None and self.trust_headers:
            verdict = header_verdict(raw)
        if verdict is not None:
            out.update(verdict.to_metadata())
        if self.authserv_id:
            out["auth_result"] = auth_result(raw, self.authserv_id)
        return out


__all__ = [
    "DEFAULT_SPAMD_PORT",
    "FilterVerdict",
    "SpamFilter",
    "SpamdClient",
    "SpamdError",
    "auth_result",
    "header_verdict",
    "parse_address",
    "parse_spamd_reply",
]
