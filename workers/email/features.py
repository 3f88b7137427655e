"""Triage features: one email (a flat ``str → str`` mapping) → a list of feature strings.

The same function feeds training (scikit-learn's TF-IDF with this analyzer) and prediction
(the JSON model applied with numpy), so the two can never drift apart. Field prefixes keep
subject, body and header evidence apart: ``s:free`` is not ``b:free``.

Features fall into two **blocks**, each TF-IDF-weighted and L2-normalised on its own
(``BLOCKS``, ``block_of``): ``text`` (subject/body words and bigrams) and ``meta`` (headers,
sender, shape). With one shared norm a long body drowns the header evidence — a feed
item's ``fl:rssfeeds`` weighs almost nothing next to 500 body words — so the blocks keep
"who sent it, how" as loud as "what it says", whatever the length.

Expected keys (all optional): ``subject``, ``from``, ``body`` (quotes already stripped),
``to``, ``html_only``, ``attachments`` and flattened headers (``list_id``, ``precedence``,
``x_mailing_list``, ``mailing_list``, ``list_unsubscribe``, ``auto_submitted``, ``x_mailer``,
``content_type``, ``in_reply_to``, ``references``, ``reply_to``, ``x_priority``...).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping

_WORD = re.compile(r"[a-z0-9$€£][a-z0-9'$€£%-]{0,30}")
_URL = re.compile(r"https?://|www\.", re.IGNORECASE)
_MONEY = re.compile(r"[$€£]\s?\d|\d+\s?(?:usd|dollars)\b", re.IGNORECASE)
_LIST_TAG = re.compile(r"^\s*(?:(?:re|aw|fwd?)\s*:\s*)*\[[^\]]{1,40}\]", re.IGNORECASE)
_REPLY_PREFIX = re.compile(r"^\s*(?:re|aw)\s*:", re.IGNORECASE)
_FWD_PREFIX = re.compile(r"^\s*fwd?\s*:", re.IGNORECASE)
_EMAIL_DOMAIN = re.compile(r"@([A-Za-z0-9.-]+)")
_ADDRESS = re.compile(r"[\w.+=-]+@[\w-]+(?:\.[\w-]+)+")
_ATTRIBUTION = re.compile(r"^.{0,100}\b(?:wrote|writes|said):\s*$", re.MULTILINE)
_ASKS_ANYONE = re.compile(r"\b(?:anyone|anybody|someone|somebody)\b", re.IGNORECASE)
_SECOND_PERSON = re.compile(r"\b(?:you|your)\b", re.IGNORECASE)
_PARAGRAPH = re.compile(r"\n\s*\n")

TEXT_PREFIXES: tuple[str, ...] = ("s:", "s2:", "b:", "b2:")
BLOCKS: tuple[str, ...] = ("text", "meta")

BODY_CHARS = 6000


def _bucket(value: float, edges: tuple[float, ...]) -> int:
    for index, edge in enumerate(edges):
        if value <= edge:
            return index
    return len(edges)


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _domain(value: str) -> str:
    match = _EMAIL_DOMAIN.search(value)
    if not match:
        return ""
    parts = match.group(1).lower().rstrip(".").split(".")
    return ".".join(parts[-2:])


def email_features(email: Mapping[str, str]) -> list[str]:
    """Feature strings of one email. Pure; never raises on missing keys."""
    subject = email.get("subject", "") or ""
    body = (email.get("body", "") or "")[:BODY_CHARS]
    sender = email.get("from", "") or ""
    feats: list[str] = []

    subject_words = _words(_LIST_TAG.sub(" ", subject))
    feats += [f"s:{w}" for w in subject_words]
    feats += [f"s2:{a}_{b}" for a, b in itertools.pairwise(subject_words)]
    body_words = _words(body)
    feats += [f"b:{w}" for w in body_words]
    feats += [f"b2:{a}_{b}" for a, b in itertools.pairwise(body_words)]

    # subject shape
    if _REPLY_PREFIX.match(subject):
        feats.append("x:subject_re")
    if _FWD_PREFIX.match(subject):
        feats.append("x:subject_fwd")
    if _LIST_TAG.match(subject):
        feats.append("x:subject_list_tag")
    letters = [c for c in subject if c.isalpha()]
    if letters and sum(c.isupper() for c in letters) / len(letters) > 0.6 and len(letters) > 6:
        feats.append("x:subject_shouting")
    if "!" in subject:
        feats.append("x:subject_bang")
    if not subject.strip():
        feats.append("x:subject_empty")

    # body shape
    feats.append(f"x:body_len_{_bucket(len(body), (0, 80, 300, 1000, 3000))}")
    questions = body.count("?") + subject.count("?")
    feats.append(f"x:questions_{_bucket(questions, (0, 1, 3))}")
    feats.append(f"x:urls_{_bucket(len(_URL.findall(body)), (0, 1, 4))}")
    if _MONEY.search(body) or _MONEY.search(subject):
        feats.append("x:money")
    if body.count("!") >= 3:
        feats.append("x:bangs")
    if (email.get("html_only") or "").strip():
        feats.append("x:html_only")
    if (email.get("attachments") or "").strip():
        feats.append("x:attachments")

    # thread and conversation shape
    if _ATTRIBUTION.search(body):
        feats.append("x:attribution")  # "On ..., X wrote:" left above the new text
    paragraphs = sum(1 for p in _PARAGRAPH.split(body) if p.strip())
    feats.append(f"x:paras_{_bucket(paragraphs, (1, 2, 4, 8))}")
    if "?" in body.strip()[-300:]:
        feats.append("x:ends_question")
    if _ASKS_ANYONE.search(body):
        feats.append("x:asks_anyone")
    if _SECOND_PERSON.search(body):
        feats.append("x:second_person")
    references = len((email.get("references") or "").split())
    feats.append(f"x:refs_{_bucket(references, (0, 1, 2, 4))}")
    sample = body[:3000]
    non_ascii = sum(1 for c in sample if ord(c) > 127) / max(1, len(sample))
    feats.append(f"x:non_ascii_{_bucket(non_ascii, (0, 0.01, 0.05, 0.2))}")

    # sender and recipients
    domain = _domain(sender)
    if domain:
        feats.append(f"f:{domain}")
    address = (email.get("from_email") or "").strip().lower()
    if address:
        feats.append(f"fa:{address}")  # who writes (per-sender habits)
        feats.append(f"fl:{address.split('@', 1)[0]}")  # rssfeeds@, news@, webmaster@...
    to = (email.get("to") or "").lower()
    feats.append(f"x:to_count_{_bucket(len(_ADDRESS.findall(to)), (0, 1, 2, 4))}")
    list_address = _ADDRESS.search(
        f"{email.get('list_post') or ''} {email.get('mailing_list') or ''}".lower()
    )
    if list_address:
        feats.append("x:to_list" if list_address.group(0) in to else "x:to_not_list")
        if list_address.group(0) in (email.get("reply_to") or "").lower():
            feats.append("x:reply_to_list")
    if "<" not in sender:
        feats.append("x:from_bare_address")
    if re.search(r"\d{3,}", sender.split("@", 1)[0]):
        feats.append("x:from_digits")

    # headers (presence and a few values)
    for name in (
        "list_id",
        "list_unsubscribe",
        "list_post",
        "x_mailing_list",
        "mailing_list",
        "in_reply_to",
        "references",
        "reply_to",
        "organization",
        "user_agent",
    ):
        if (email.get(name) or "").strip():
            feats.append(f"h:{name}")
    list_id = (email.get("list_id") or "").lower()
    match = re.search(r"<([^>]+)>", list_id)
    if match:
        feats.append(f"l:{match.group(1)}")
    precedence = (email.get("precedence") or "").strip().lower()
    if precedence:
        feats.append(f"h:precedence={precedence}")
    mailer = (email.get("x_mailer") or email.get("user_agent") or "").strip().lower()
    if mailer:
        feats.append(f"h:mailer={_words(mailer)[0] if _words(mailer) else 'other'}")
    ctype = (email.get("content_type") or "").split(";", 1)[0].strip().lower()
    if ctype:
        feats.append(f"h:ctype={ctype}")
    priority = (email.get("x_priority") or "").strip()[:1]
    if priority:
        feats.append(f"h:priority={priority}")
    return feats


def block_of(feature: str) -> int:
    """Index in ``BLOCKS`` of a feature: 0 for subject/body words, 1 for the rest."""
    return 0 if feature.startswith(TEXT_PREFIXES) else 1


def identity(features: list[str]) -> list[str]:
    """The analyzer handed to scikit-learn: features are computed beforehand."""
    return features


def text_block(features: list[str]) -> list[str]:
    """Analyzer of the ``text`` block (scikit-learn side)."""
    return [f for f in features if block_of(f) == 0]


def meta_block(features: list[str]) -> list[str]:
    """Analyzer of the ``meta`` block (scikit-learn side)."""
    return [f for f in features if block_of(f) == 1]


BLOCK_ANALYZERS = (text_block, meta_block)

__all__ = [
    "BLOCKS",
    "BLOCK_ANALYZERS",
    "TEXT_PREFIXES",
    "block_of",
    "email_features",
    "identity",
    "meta_block",
    "text_block",
]
