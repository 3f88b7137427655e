"""Browser sessions for /ui: the signed token (pure) and the checks against the key store
(fakeredis): tampered, expired, foreign-secret, revoked-key and signed-out sessions fail."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import fakeredis
import pytest

from bus.settings import Settings
from ragrelay.gateway.config import GatewayConfig
from ragrelay.gateway.services import Services
from ragrelay.gateway.session import (
    MAX_TOKEN_CHARS,
    SessionClaims,
    _mac,
    sign_session,
    verify_session,
)
from ragrelay.gateway.ui_signin import BrowserSessions, login_location, safe_next

SECRET = b"s" * 32
NOW = 1_800_000_000.0
CLAIMS = SessionClaims(
    tenant="acme", key_id="0123456789ab", session_id="sid-1", expires_at=int(NOW) + 3600
)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def resigned(payload: dict[str, object], secret: bytes = SECRET) -> str:
    """A token with any payload and a valid MAC (what only the secret's holder can make)."""
    body = f"v1.{b64(json.dumps(payload).encode())}"
    return f"{body}.{b64(_mac(secret, body))}"


def test_a_signed_session_verifies_to_its_claims() -> None:
    token = sign_session(CLAIMS, SECRET)
    assert verify_session(token, SECRET, now=NOW) == CLAIMS
    assert len(token) < MAX_TOKEN_CHARS


def test_a_tampered_session_is_refused() -> None:
    token = sign_session(CLAIMS, SECRET)
    version, payload, signature = token.split(".")
    other = b64(
        json.dumps(
            {"t": "globex", "k": "0123456789ab", "s": "sid-1", "e": CLAIMS.expires_at}
        ).encode()
    )
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    for bad in (
        f"{version}.{other}.{signature}",  # another tenant, old signature
        f"{version}.{payload}.{flipped}",  # one signature character changed
        f"v2.{payload}.{signature}",  # another version
        f"{version}.{payload}",  # no signature
        token + "A",
        " " + token,
        token.replace(".", "..", 1),
        "",
        "garbage",
        "v1.." + "A" * 43,
        "x" * (MAX_TOKEN_CHARS + 1),
    ):
        assert verify_session(bad, SECRET, now=NOW) is None, bad
    assert verify_session(None, SECRET, now=NOW) is None


def test_a_session_signed_with_another_secret_is_refused() -> None:
    assert verify_session(sign_session(CLAIMS, b"t" * 32), SECRET, now=NOW) is None


def test_an_expired_session_is_refused() -> None:
    token = sign_session(CLAIMS, SECRET)
    assert verify_session(token, SECRET, now=CLAIMS.expires_at - 1) == CLAIMS
    assert verify_session(token, SECRET, now=CLAIMS.expires_at) is None
    assert verify_session(token, SECRET, now=CLAIMS.expires_at + 86_400) is None


@pytest.mark.parametrize(
    "payload",
    [
        {"t": "acme", "k": "0123456789ab", "s": "sid", "e": "1900000000"},  # expiry as text
        {"t": "acme", "k": "0123456789ab", "s": "sid", "e": 1.9e9},  # expiry as a float
        {"t": "acme", "k": "0123456789ab", "s": "sid", "e": True},
        {"t": "acme", "k": "0123456789ab", "s": "sid"},  # no expiry: never "forever"
        {"t": ["acme"], "k": "0123456789ab", "s": "sid", "e": 1_900_000_000},
        ["acme", "0123456789ab"],
    ],
)
def test_a_validly_signed_but_malformed_payload_is_refused(payload: object) -> None:
    assert verify_session(resigned(payload), SECRET, now=NOW) is None  # type: ignore[arg-type]


def test_a_new_session_expires_after_its_ttl_and_gets_a_fresh_id() -> None:
    one = SessionClaims.new("acme", "k1", now=NOW, ttl_s=600)
    two = SessionClaims.new("acme", "k1", now=NOW, ttl_s=600)
    assert one.expires_at == int(NOW) + 600 and one.session_id != two.session_id


@pytest.fixture
def sessions() -> Iterator[BrowserSessions]:
    server = fakeredis.FakeServer()
    client = fakeredis.FakeRedis(server=server)
    svc = Services.build(
        Settings(redis_url="redis://fake"),
        GatewayConfig(),
        client,
        fakeredis.aioredis.FakeRedis(server=server),
    )
    yield BrowserSessions(
        svc=svc, secret=SECRET, ttl_s=3600, force_secure=False, public_origin=None
    )
    client.close()


def test_a_session_ends_when_its_key_is_revoked(sessions: BrowserSessions) -> None:
    record, _ = sessions.svc.api_keys.create("acme")
    token, claims = sessions.start(record)
    assert sessions.check(token) == claims
    sessions.svc.api_keys.revoke(record.key_id)
    assert sessions.check(token) is None


def test_a_session_naming_another_tenant_for_a_live_key_is_refused(
    sessions: BrowserSessions,
) -> None:
    record, _ = sessions.svc.api_keys.create("acme")
    forged = SessionClaims(
        tenant="globex", key_id=record.key_id, session_id="s", expires_at=CLAIMS.expires_at + 10**6
    )
    assert sessions.check(sign_session(forged, SECRET)) is None


def test_a_signed_out_session_stays_out_even_with_a_copy_of_the_cookie(
    sessions: BrowserSessions,
) -> None:
    record, _ = sessions.svc.api_keys.create("acme")
    token, claims = sessions.start(record)
    other_token, _ = sessions.start(record)
    sessions.end(claims)
    assert sessions.check(token) is None
    assert sessions.check(other_token) is not None  # only that session ended
    ttl = sessions.svc.redis.ttl(sessions._ended(claims.session_id))
    assert 0 < int(ttl) <= 3601  # type: ignore[arg-type]  # kept no longer than the session


@pytest.mark.parametrize(
    ("value", "kept"),
    [
        ("/ui/jobs/0123abc", True),
        ("/ui/jobs/a.b_c-d", True),
        ("https://evil.example/ui/jobs/x", False),
        ("//evil.example/ui/jobs/x", False),
        ("/ui/jobs/x/../../v1/jobs", False),
        ("/ui/jobs/x?y=1", False),
        ("/ui/login", False),
        ("/v1/jobs", False),
        ("javascript:alert(1)", False),
        ("/ui/jobs/x\n", False),
        ("", False),
        (None, False),
    ],
)
def test_after_sign_in_only_a_job_page_of_this_gateway_is_a_destination(
    value: str | None,
    kept: bool,
) -> None:
    assert safe_next(value) == (value if kept else None)
    assert login_location(value) == (
        "/ui/login?next=%2Fui%2Fjobs%2F" + value.split("/")[-1] if kept and value else "/ui/login"
    )
