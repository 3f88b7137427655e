"""API keys for the HTTP gateway: each maps to one tenant and is stored only as a hash.

A key is ``rr_<key id>_<secret>``: the key id (public, shown by ``ragrelay keys list``)
names it for revocation; the secret is 32 random bytes. Redis keeps, per key, only the
SHA-256 of the whole key (a slow hash buys nothing for 256 random bits) and its record:

    <prefix>:apikey:<sha256 hex>      hash  {key_id, tenant, name, created_at}
    <prefix>:apikeyid:<key id>        string  <sha256 hex>   (to revoke by id)
    <prefix>:apikeys:<tenant>         set   {key id, ...}    (to list per tenant)

The plain key is returned once, by ``create``, and never stored.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

import redis

from bus.errors import UsageError

KEY_PREFIX = "rr_"
_KEY_RE = re.compile(r"^rr_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
_TENANT_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True)
class ApiKeyRecord:
    key_id: str
    tenant: str
    name: str
    created_at: float


@dataclass(frozen=True)
class ApiKeyNames:
    """Redis key names of the API-key store (kept here, beside the only code that uses them)."""

    prefix: str = "ragrelay"

    def by_hash(self, digest: str) -> str:
        return f"{self.prefix}:apikey:{digest}"

    def by_id(self, key_id: str) -> str:
        return f"{self.prefix}:apikeyid:{key_id}"

    def tenant_index(self, tenant: str) -> str:
        return f"{self.prefix}:apikeys:{tenant}"


def hash_key(plain: str) -> str:
    return hashlib.sha256(plain.encode()).hexdigest()


def new_key() -> tuple[str, str]:
    """(key id, plain key)."""
    key_id = secrets.token_hex(6)
    return key_id, f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"


def looks_like_key(plain: str) -> bool:
    return _KEY_RE.fullmatch(plain) is not None


def key_id_of(plain: str) -> str | None:
    """The key id a well-formed key names (whether or not the key is valid)."""
    match = _KEY_RE.fullmatch(plain)
    return match.group(1) if match else None


class ApiKeyStore:
    def __init__(self, client: redis.Redis, *, prefix: str = "ragrelay") -> None:
        self.client = client
        self.names = ApiKeyNames(prefix)

    def create(self, tenant: str, name: str = "") -> tuple[ApiKeyRecord, str]:
        """A new key for ``tenant``: (its record, the plain key — shown once, never stored)."""
        if not _TENANT_RE.fullmatch(tenant):
            raise UsageError(
                f"invalid tenant {tenant!r}: 1-64 characters of letters, digits, '_', '.', '-'"
            )
        key_id, plain = new_key()
        record = ApiKeyRecord(key_id=key_id, tenant=tenant, name=name, created_at=time.time())
        digest = hash_key(plain)
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(
            self.names.by_hash(digest),
            mapping={
                "key_id": key_id,
                "tenant": tenant,
                "name": name,
                "created_at": repr(record.created_at),
            },
        )
        pipe.set(self.names.by_id(key_id), digest)
        pipe.sadd(self.names.tenant_index(tenant), key_id)
        pipe.execute()
        return record, plain

    def authenticate(self, plain: str) -> ApiKeyRecord | None:
        """The record of a valid, unrevoked key, else None."""
        if not looks_like_key(plain):
            return None
        raw: dict[bytes, bytes] = self.client.hgetall(self.names.by_hash(hash_key(plain)))  # type: ignore[assignment]
        return _record(raw) if raw else None

    def list(self, tenant: str | None = None) -> list[ApiKeyRecord]:
        """Every live key (of ``tenant`` if given), oldest first. Secrets are not recoverable."""
        if tenant is not None:
            tenants = [tenant]
        else:
            pattern = self.names.tenant_index("*")
            tenants = [_s(k).rsplit(":", 1)[1] for k in self.client.scan_iter(match=pattern)]
        records: list[ApiKeyRecord] = []
        for t in tenants:
            for key_id in sorted(_s(k) for k in self.client.smembers(self.names.tenant_index(t))):
                record = self.get(key_id)
                if record is not None:
                    records.append(record)
        return sorted(records, key=lambda r: (r.created_at, r.key_id))

    def get(self, key_id: str) -> ApiKeyRecord | None:
        digest = self.client.get(self.names.by_id(key_id))
        if digest is None:
            return None
        raw: dict[bytes, bytes] = self.client.hgetall(self.names.by_hash(_s(digest)))  # type: ignore[assignment]
        return _record(raw) if raw else None

    def revoke(self, key_id: str) -> ApiKeyRecord | None:
        """Revoke a key by its id; returns the revoked record, or None if there was none."""
        record = self.get(key_id)
        if record is None:
            return None
        digest = self.client.get(self.names.by_id(key_id))
        pipe = self.client.pipeline(transaction=True)
        pipe.delete(self.names.by_hash(_s(digest)), self.names.by_id(key_id))
        pipe.srem(self.names.tenant_index(record.tenant), key_id)
        pipe.execute()
        return record


def _record(raw: dict[bytes, bytes]) -> ApiKeyRecord:
    return ApiKeyRecord(
        key_id=_s(raw[b"key_id"]),
        tenant=_s(raw[b"tenant"]),
        name=_s(raw.get(b"name", b"")),
        created_at=float(_s(raw.get(b"created_at", b"0"))),
    )


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
