"""Redaction: secrets always, PII on request, in logs and in messages users see.

One set of pure functions, applied by ``bus/logging.py`` to every structlog event and to
every stdlib ``logging`` record (Celery, kombu, uvicorn, the Anthropic SDK, httpx, ...):

- **secrets** (:func:`redact_secrets`, always on): the password in a URL's userinfo
  (``scheme://user:pass@host`` → ``scheme://user:***@host``, ``redis://:pass@`` too), values
  of query parameters named like secrets (``key``, ``api_key``, ``token``, ``access_token``,
  ``password``, ``secret``, ``signature``, ``sig``, ``session``, ...), ``Authorization`` /
  ``x-api-key`` / cookie header values, ``Bearer``/``Basic`` credentials, ``password=...``
  style pairs, ragrelay API keys (``rr_<key id>_<secret>`` → ``rr_<key id>_***``: the key id
  is public and names the key), Anthropic keys (``sk-ant-...``) and JWTs;
- **PII** (:func:`redact_pii`, the ``redact_pii`` setting, on by default): emails, phone
  numbers and payment-card numbers (Luhn-valid, grouped like a card, with a card issuer's
  prefix and length, so Redis stream ids and timestamps are left alone).

:func:`display_url` is the one way a URL is shown to a user (error messages, banners).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, MutableMapping
from typing import Any

MASK = "***"

# --- secrets ---------------------------------------------------------------------------------

# Words that make a query parameter a secret, alone or as a part of its name separated by
# '_', '-' or '.': api_key, X-Amz-Signature, client_secret, session_id, ...
_SECRET_WORDS = (
    "key|apikey|token|accesstoken|password|passwd|pwd|pass|secret|signature|sig|session"
    "|sessionid|sid|auth|credential|credentials|jwt|code_verifier"
)
_SECRET_PARAM = re.compile(rf"(?:[\w.-]*[_.-])?(?:{_SECRET_WORDS})(?:[_.-][\w.-]*)?", re.IGNORECASE)
_URL_USERINFO = re.compile(
    # scheme://user:password@ — the password runs to the last '@' before the host part
    r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/?#@\"'<>]*:)(?P<secret>[^\s/?#\"'<>]+)@"
)
_QUERY_PARAM = re.compile(
    rf"(?P<head>[?&;](?:[\w.-]*[_.-])?(?:{_SECRET_WORDS})(?:[_.-][\w.-]*)?=)"
    r"(?P<secret>[^&#\s\"'<>]+)",
    re.IGNORECASE,
)
# A header or a key-value pair: Authorization: Basic abc, "x-api-key": "...", password=...
# (not a URL's host: redis://secret:6379 names a host called secret)
_PAIR = re.compile(
    r"(?P<head>(?<![\w/@.-])(?:[\w-]*?[_-])?"
    r"(?:authorization|api[_-]?key|x-api-key|x-auth-token|access[_-]?token|refresh[_-]?token"
    r"|auth[_-]?token|id[_-]?token|token|password|passwd|pwd|secret|client[_-]?secret"
    r"|private[_-]?key)"
    r"(?![\w-])[\"']?\s*[:=]\s*(?P<q>[\"'])?"
    r"(?:(?P<scheme>bearer|basic|token|digest)\s+)?)"
    r"(?P<secret>(?(q)[^\"'\r\n]+|[^\s\"',;&}\]]+))",
    re.IGNORECASE,
)
# Cookie headers: every cookie in them, to the end of the line.
_COOKIE = re.compile(
    r"(?P<head>(?<![\w-])(?:set-)?cookie[\"']?\s*[:=]\s*[\"']?)(?P<secret>[^\"'\r\n]+)",
    re.IGNORECASE,
)
_BEARER = re.compile(
    r"(?P<head>\b(?:bearer|basic)\s+)(?P<secret>[A-Za-z0-9._~+/-]{8,}=*)(?![\w.~+/=*-])",
    re.IGNORECASE,
)
# 43 characters by construction; a mistyped or cut key is masked too
_RAGRELAY_KEY = re.compile(r"(?<![\w-])(?P<head>rr_[0-9a-f]{12}_)(?P<secret>[A-Za-z0-9_-]{16,})")
_ANTHROPIC_KEY = re.compile(
    r"(?<![\w-])(?P<head>sk-ant-(?:[a-z]+\d\d-)?)(?P<secret>[A-Za-z0-9_-]{8,})"
)
_JWT = re.compile(r"(?<![\w-])eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")

_PAIR_HINTS = ("auth", "key", "token", "pass", "pwd", "secret")


def _mask(match: re.Match[str]) -> str:
    if match.group("secret") == MASK:
        return match.group()
    return match.group("head") + MASK


def _mask_userinfo(match: re.Match[str]) -> str:
    return match.group("head") + MASK + "@"


def redact_secrets(text: str) -> str:
    """``text`` with credentials in URLs, secret query parameters, auth headers, API keys and
    tokens replaced by ``***``. Idempotent; cheap when there is nothing to redact."""
    if not text:
        return text
    # Each pattern runs only when the text holds what it needs (most log lines hold none).
    lower = text.lower()
    if "://" in text and "@" in text:
        text = _URL_USERINFO.sub(_mask_userinfo, text)
    if "=" in text and ("?" in text or "&" in text or ";" in text):
        text = _QUERY_PARAM.sub(_mask, text)
    if "bearer" in lower or "basic" in lower:
        text = _BEARER.sub(_mask, text)
    if "cookie" in lower:
        text = _COOKIE.sub(_mask, text)
    if ("=" in text or ":" in text) and any(hint in lower for hint in _PAIR_HINTS):
        text = _PAIR.sub(_mask, text)
    if "rr_" in text:
        text = _RAGRELAY_KEY.sub(_mask, text)
    if "sk-ant-" in text:
        text = _ANTHROPIC_KEY.sub(_mask, text)
    if "eyJ" in text:
        text = _JWT.sub(MASK, text)
    return text


def is_secret_name(name: str) -> bool:
    """Whether a query parameter, header or field called ``name`` holds a secret."""
    return _SECRET_PARAM.fullmatch(name) is not None


def display_url(url: str | None) -> str:
    """``url`` as it may be shown to a user: no password, no secret query parameter.

    ``redis://:hunter2@cache:6379/0`` → ``redis://:***@cache:6379/0``. Also copes with URLs
    that would not parse (a password holding an unescaped ``@``): everything between
    ``://`` and the last ``@`` of the authority loses its password part.
    """
    if not url:
        return "(not set)"
    scheme, sep, rest = url.partition("://")
    if sep:
        head, qmark, query = rest.partition("?")
        at = head.rfind("@")
        if at >= 0:
            user, colon, _ = head[:at].partition(":")
            head = f"{user}{colon}{MASK if colon else ''}@{head[at + 1 :]}"
        if qmark:
            parts = []
            for part in query.split("&"):
                name, eq, value = part.partition("=")
                parts.append(f"{name}={MASK}" if eq and value and is_secret_name(name) else part)
            query = "&".join(parts)
        url = f"{scheme}://{head}{qmark}{query}"
    return redact_secrets(url)


# --- PII -------------------------------------------------------------------------------------

_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
# A card number is 13-19 digits written as cards print them: in one run, in groups of four
# (4-4-4-1..4, 4-4-4-4-1..3, 4-4-5) or Amex/Diners' 4-6-5 / 4-6-4, with one separator kept
# throughout. Not a part of a longer token: a Redis stream id (1700000000000-0), a uuid, a
# decimal or a version are never one.
_CARD = re.compile(
    r"(?<![\w.+:-])"
    r"(?:\d{13,19}"
    r"|\d{4}(?P<t>[ -])\d{4}(?P=t)\d{4}(?P=t)\d{4}(?P=t)\d{1,3}"
    r"|\d{4}(?P<s>[ -])\d{4}(?P=s)\d{4}(?P=s)\d{1,4}"
    r"|\d{4}(?P<u>[ -])\d{4}(?P=u)\d{5}"
    r"|\d{4}(?P<v>[ -])\d{6}(?P=v)\d{4,5})"
    r"(?![\w+]|[.,:-]\d)"
)
_PHONES = (
    re.compile(r"(?<![\w+])\+\d[\d ().-]{6,18}\d(?!\w)"),  # international: +49 30 1234567
    # Never inside a hyphenated token (a uuid's 0490-2648-1623 is not a phone number).
    re.compile(r"(?<![\w-])\(?\d{3}\)?[ .-]\d{3}[ .-]\d{4}(?![\w-])"),  # NANP: (555) 123-4567
    re.compile(r"(?<![\w.-])0\d{1,4}(?:[ -]\d{2,4}){2,4}(?![\w-])(?!\.\d)"),  # 030 1234 5678
)
_THREE_DIGITS = re.compile(r"\d\d\d")
EMAIL_PLACEHOLDER = "[EMAIL]"
PHONE_PLACEHOLDER = "[PHONE]"
CARD_PLACEHOLDER = "[CARD]"


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def issuer_ok(digits: str) -> bool:
    """Whether a card network issues numbers with this prefix and length (ISO/IEC 7812 IINs
    of the networks in use). Epoch timestamps (1…) and most other numbers are not cards."""
    n, p2, p3, p4 = len(digits), int(digits[:2]), int(digits[:3]), int(digits[:4])
    if digits[0] == "4":  # Visa
        return n in (13, 16, 19)
    if 51 <= p2 <= 55 or 2221 <= p4 <= 2720:  # Mastercard
        return n == 16
    if p2 in (34, 37):  # American Express
        return n == 15
    if 300 <= p3 <= 305 or p2 in (36, 38, 39):  # Diners Club
        return n in (14, 16)
    if 3528 <= p4 <= 3589:  # JCB
        return 16 <= n <= 19
    if p4 == 6011 or 644 <= p3 <= 649 or p2 == 65:  # Discover
        return n in (16, 19)
    if p2 == 62:  # UnionPay
        return 16 <= n <= 19
    if p2 == 60:  # RuPay
        return n == 16
    if p2 == 50 or 56 <= p2 <= 58 or p4 in (6759, 6761, 6762, 6763):  # Maestro
        return 13 <= n <= 19
    return False


def _is_card(text: str) -> bool:
    digits = re.sub(r"\D", "", text)
    return 13 <= len(digits) <= 19 and issuer_ok(digits) and luhn_ok(digits)


def _card(match: re.Match[str]) -> str:
    text = match.group()
    if _is_card(text):
        return CARD_PLACEHOLDER
    # "4111 1111 1111 1111 2 items": the grouping ran on into a number after the card
    cut = max(text.rfind(" "), text.rfind("-"))
    head = text[:cut] if cut > 0 else ""
    if head and _is_card(head):
        return CARD_PLACEHOLDER + text[len(head) :]
    return text


def _phone(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group())
    return PHONE_PLACEHOLDER if 9 <= len(digits) <= 15 else match.group()


def redact_pii(text: str) -> str:
    """``text`` with emails, card numbers and phone numbers replaced by placeholders."""
    if "@" in text:
        text = _EMAIL.sub(EMAIL_PLACEHOLDER, text)
    if _THREE_DIGITS.search(text):  # cards and phone numbers have runs of 3+ digits
        text = _CARD.sub(_card, text)
        for pattern in _PHONES:
            text = pattern.sub(_phone, text)
    return text


def redact_text(text: str, *, pii: bool = True) -> str:
    """Secrets always, then PII when ``pii``: the one function every log line goes through."""
    text = redact_secrets(text)
    return redact_pii(text) if pii else text


# --- structured values -----------------------------------------------------------------------

# Identifiers we generate; never rewritten as PII (a hex id could look like digits to a regex).
SAFE_KEYS: frozenset[str] = frozenset(
    {"job_id", "step_id", "task_id", "trace_id", "tenant", "timestamp", "level", "logger"}
)
# Field names whose string values are secrets whatever they look like.
_SECRET_FIELD = re.compile(
    r"(?:[\w-]*[_-])?(?:password|passwd|secret|api[_-]?key|apikey|token|authorization"
    r"|cookie|credentials?)",
    re.IGNORECASE,
)


def redact_value(value: Any, *, pii: bool = True, secrets: bool = True) -> Any:
    """``value`` with every string inside it (dicts, lists, tuples) redacted."""
    if isinstance(value, str):
        if secrets:
            value = redact_secrets(value)
        return redact_pii(value) if pii else value
    if isinstance(value, Mapping):
        return {k: _redact_field(k, v, pii=pii, secrets=secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact_value(v, pii=pii, secrets=secrets) for v in value)
    if value is None or isinstance(value, bool | int | float):
        return value
    # Any other object is rendered by its repr (structlog's renderers do): redact that text.
    text = repr(value)
    clean = redact_value(text, pii=pii, secrets=secrets)
    return clean if clean != text else value


def _redact_field(key: Any, value: Any, *, pii: bool, secrets: bool) -> Any:
    if (
        secrets
        and isinstance(value, str | bytes)
        and value
        and isinstance(key, str)
        and _SECRET_FIELD.fullmatch(key)
    ):
        return MASK
    return redact_value(value, pii=pii and key not in SAFE_KEYS, secrets=secrets)


class Redactor:
    """A structlog processor: secrets always, PII when ``pii``. Put it last before the
    renderer, after ``format_exc_info``, so tracebacks are redacted too."""

    def __init__(self, *, pii: bool = True) -> None:
        self.pii = pii

    def __call__(
        self, logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        for key, value in list(event_dict.items()):
            event_dict[key] = _redact_field(key, value, pii=self.pii, secrets=True)
        return event_dict


def redact_pii_processor(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """A structlog processor for PII only (secrets: :class:`Redactor`)."""
    for key, value in list(event_dict.items()):
        if key not in SAFE_KEYS:
            event_dict[key] = redact_value(value, secrets=False)
    return event_dict
