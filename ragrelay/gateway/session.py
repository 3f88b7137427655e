"""Browser sessions for ``/ui``: a short-lived token, HMAC-signed, carried in a cookie.

Pure (no I/O): ``sign_session(claims, secret)`` and ``verify_session(token, secret, now=)``.
A token is ``v1.<payload>.<signature>``, both parts unpadded base64url; the payload is JSON
``{"t": tenant, "k": key id, "s": session id, "e": expiry (epoch s)}`` and the signature
is HMAC-SHA256 over ``"ragrelay-ui-session." + "v1." + payload`` (the label keeps this
secret's MACs from meaning anything elsewhere). It holds no key: the API key the user signed
in with stays in their hands, and the token names it by its public key id, so the caller
(``ragrelay.gateway.ui_signin``) can check that it is still live and of the same tenant
on every request: revoking the key ends its sessions at once.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass

VERSION = "v1"
MAX_TOKEN_CHARS = 512
_LABEL = b"ragrelay-ui-session."
_TOKEN = re.compile(r"^v1\.([A-Za-z0-9_-]{1,400})\.([A-Za-z0-9_-]{43})$")


@dataclass(frozen=True)
class SessionClaims:
    """Who the browser is (tenant, the key it signed in with) and until when."""

    tenant: str
    key_id: str
    session_id: str
    expires_at: int  # epoch seconds

    @classmethod
    def new(cls, tenant: str, key_id: str, *, now: float, ttl_s: int) -> SessionClaims:
        return cls(
            tenant=tenant,
            key_id=key_id,
            session_id=secrets.token_urlsafe(12),
            expires_at=int(now) + ttl_s,
        )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, signed: str) -> bytes:
    return hmac.new(secret, _LABEL + signed.encode("ascii"), hashlib.sha256).digest()


def sign_session(claims: SessionClaims, secret: bytes) -> str:
    """The cookie value for ``claims``."""
    payload = _b64(
        json.dumps(
            {
                "t": claims.tenant,
                "k": claims.key_id,
                "s": claims.session_id,
                "e": claims.expires_at,
            },
            separators=(",", ":"),
        ).encode()
    )
    signed = f"{VERSION}.{payload}"
    return f"{signed}.{_b64(_mac(secret, signed))}"


def verify_session(token: str | None, secret: bytes, *, now: float) -> SessionClaims | None:
    """The claims of a well-formed, untampered, unexpired token; None for anything else."""
    if not token or len(token) > MAX_TOKEN_CHARS:
        return None
    match = _TOKEN.fullmatch(token)
    if match is None:
        return None
    payload, signature = match.groups()
    try:
        expected = _mac(secret, f"{VERSION}.{payload}")
        if not hmac.compare_digest(_unb64(signature), expected):
            return None
        data = json.loads(_unb64(payload))
    except (binascii.Error, ValueError):  # undecodable: JSONDecodeError is a ValueError
        return None
    if not isinstance(data, dict):
        return None
    tenant, key_id, session_id, expires_at = (data.get(k) for k in ("t", "k", "s", "e"))
    if not (
        isinstance(tenant, str)
        and isinstance(key_id, str)
        and isinstance(session_id, str)
        and type(expires_at) is int
    ):
        return None
    if expires_at <= now:
        return None
    return SessionClaims(tenant=tenant, key_id=key_id, session_id=session_id, expires_at=expires_at)


__all__ = ["MAX_TOKEN_CHARS", "SessionClaims", "sign_session", "verify_session"]
