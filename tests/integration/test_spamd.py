"""A real SpamAssassin ``spamd`` (Debian ``spamd``), started by the test on a free loopback
port, asked over its own protocol; its verdict combined with the triage decision."""

from __future__ import annotations

import json
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from ragrelay.evals.spamd import running_spamd
from ragrelay.inbox.spamfilter import SpamdClient, SpamFilter
from workers.email.triage import classify_detailed

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "emails"
GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"


@pytest.fixture(scope="module")
def spamd() -> Iterator[SpamdClient]:
    with running_spamd(children=1) as address:
        yield SpamdClient.from_address(address, timeout_s=120.0)


def _mail(body: str, extra: dict[str, str] | None = None) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "Ann <ann@example.org>", "help@example.com", "hi"
    msg["Message-ID"] = "<t1@example.org>"
    for name, value in (extra or {}).items():
        msg[name] = value
    msg.set_content(body)
    return msg.as_bytes()


def test_spamd_scores_gtube_as_spam_and_plain_mail_as_ham(spamd: SpamdClient) -> None:
    assert spamd.ping()
    spam = spamd.check(_mail(f"Hello\n{GTUBE}\n"))
    assert spam is not None and spam.is_spam and spam.score >= 100 and "GTUBE" in spam.tests
    ham = spamd.check(_mail("Hi Bob, the build fails at the linker step; any idea why?\n"))
    assert ham is not None and not ham.is_spam and ham.required == 5.0


def test_spamd_wins_over_a_forged_header_and_drives_triage(spamd: SpamdClient) -> None:
    forged = _mail(
        "Hi, how do I configure exmh for a second mailbox?\n",
        {"X-Spam-Status": "Yes, score=99.0 required=5.0", "X-Spam-Flag": "YES"},
    )
    keys = SpamFilter(spamd=spamd, trust_headers=True).metadata(forged)
    assert keys["filter_source"] == "spamd" and float(keys["filter_score"]) < 5.0
    # no model: the filter alone decides spam; a clean verdict never makes spam
    email = {"subject": "exmh", "body": "how do I configure exmh?", **keys}
    assert classify_detailed(email, None).label != "spam"
    gtube = SpamFilter(spamd=spamd).metadata(_mail(GTUBE))
    assert classify_detailed({"subject": "x", "body": "y", **gtube}, None).label == "spam"


def test_spamd_on_real_spam_and_ham_from_the_shared_inbox(spamd: SpamdClient) -> None:
    rows = [json.loads(line) for line in (SHARED / "labels.jsonl").read_text().splitlines()]
    spam = [r for r in rows if r["label"] == "spam"][:6]
    ham = [r for r in rows if r["label"] == "needs_reply"][:6]
    spam_hits = sum(
        1 for r in spam if (v := spamd.check((SHARED / r["file"]).read_bytes())) and v.is_spam
    )
    ham_hits = sum(
        1 for r in ham if (v := spamd.check((SHARED / r["file"]).read_bytes())) and v.is_spam
    )
    assert spam_hits >= 3 and ham_hits == 0
