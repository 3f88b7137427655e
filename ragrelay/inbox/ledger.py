"""The exactly-once ledger: which (tenant, message key) has been processed, and who holds it.

A poller ``claim``s a message before any work, with a lease; only one claimant wins while
the lease runs. ``complete`` marks it done for good (after the draft is stored); ``release``
gives it back on failure. A crashed poller's lease expires and another one takes over —
the draft store is idempotent per key, so the takeover cannot produce a second draft.

The ledger also remembers each stored draft (``record_draft``: the question, the draft's
text, the job) under the original's key and the draft's aliases (its Message-ID, its reply
key), so a reply found later in Sent can be matched to it (``find_draft``).

Two implementations with one contract: Redis (``SET NX PX`` + compare-and-set Lua) when a
Redis URL is configured, else SQLite under the data dir (``BEGIN IMMEDIATE`` transactions,
WAL), safe across processes on one machine and across restarts.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from bus.errors import ConfigError, TransientError

DEFAULT_LEASE_S = 300.0


@dataclass(frozen=True)
class Claim:
    tenant: str
    key: str
    token: str


class Ledger(Protocol):
    def claim(self, tenant: str, key: str, lease_s: float = DEFAULT_LEASE_S) -> Claim | None:
        """Take the message, or None if it is done or leased by someone else."""
        ...

    def complete(self, claim: Claim, outcome: dict[str, Any]) -> bool:
        """Mark done (permanently). False if the lease was lost to another claimant."""
        ...

    def release(self, claim: Claim) -> None:
        """Give the message back (it will be retried by the next poll)."""
        ...

    def is_done(self, tenant: str, key: str) -> bool: ...

    def record_draft(self, tenant: str, refs: list[str], info: dict[str, Any]) -> None:
        """Remember a stored draft under every one of ``refs`` (replaces older entries)."""
        ...

    def find_draft(self, tenant: str, ref: str) -> dict[str, Any] | None: ...

    def close(self) -> None: ...


def _now() -> float:
    return time.time()


def _set_wal(db: sqlite3.Connection, *, attempts: int = 300, pause_s: float = 0.1) -> None:
    """Switch the file to WAL. Two processes opening a new ledger at once can both ask;
    the switch needs the file to itself and SQLite answers "database is locked" at once,
    without waiting for its busy timeout, so wait here (seen with two `ragrelay inbox`
    pollers started together)."""
    for attempt in range(attempts):
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(pause_s)


class SqliteLedger:
    """One SQLite file; every state change is one ``BEGIN IMMEDIATE`` transaction."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, timeout=30.0, isolation_level=None)
            _set_wal(self._db)
            self._db.execute("PRAGMA busy_timeout=30000")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS inbox_ledger ("
                " tenant TEXT NOT NULL, key TEXT NOT NULL, state TEXT NOT NULL,"
                " token TEXT, lease_until REAL, outcome TEXT, updated_at REAL NOT NULL,"
                " PRIMARY KEY (tenant, key))"
            )
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS inbox_drafts ("
                " tenant TEXT NOT NULL, ref TEXT NOT NULL, info TEXT NOT NULL,"
                " PRIMARY KEY (tenant, ref))"
            )
        except sqlite3.Error as exc:
            raise ConfigError(f"cannot open inbox ledger {path}: {exc}") from exc

    def _tx(self, sql: str, params: tuple[Any, ...], *more: tuple[Any, ...]) -> int:
        """Run ``sql`` once per parameter tuple in one transaction; rows changed."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                changed = sum(self._db.execute(sql, p).rowcount for p in (params, *more))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return changed
        except sqlite3.OperationalError as exc:
            raise TransientError(f"inbox ledger busy: {exc}") from exc

    def claim(self, tenant: str, key: str, lease_s: float = DEFAULT_LEASE_S) -> Claim | None:
        token = uuid.uuid4().hex
        now = _now()
        changed = self._tx(
            "INSERT INTO inbox_ledger (tenant, key, state, token, lease_until, updated_at)"
            " VALUES (?, ?, 'leased', ?, ?, ?)"
            " ON CONFLICT (tenant, key) DO UPDATE SET token = excluded.token,"
            "  lease_until = excluded.lease_until, updated_at = excluded.updated_at,"
            "  state = 'leased'"
            " WHERE inbox_ledger.state = 'released'"
            "  OR (inbox_ledger.state = 'leased' AND inbox_ledger.lease_until < ?)",
            (tenant, key, token, now + lease_s, now, now),
        )
        return Claim(tenant, key, token) if changed == 1 else None

    def complete(self, claim: Claim, outcome: dict[str, Any]) -> bool:
        changed = self._tx(
            "UPDATE inbox_ledger SET state = 'done', outcome = ?, lease_until = NULL,"
            " updated_at = ? WHERE tenant = ? AND key = ? AND state = 'leased' AND token = ?",
            (json.dumps(outcome), _now(), claim.tenant, claim.key, claim.token),
        )
        return changed == 1

    def release(self, claim: Claim) -> None:
        self._tx(
            "UPDATE inbox_ledger SET state = 'released', lease_until = NULL, updated_at = ?"
            " WHERE tenant = ? AND key = ? AND state = 'leased' AND token = ?",
            (_now(), claim.tenant, claim.key, claim.token),
        )

    def is_done(self, tenant: str, key: str) -> bool:
        row = self._db.execute(
            "SELECT state FROM inbox_ledger WHERE tenant = ? AND key = ?", (tenant, key)
        ).fetchone()
        return bool(row and row[0] == "done")

    def record_draft(self, tenant: str, refs: list[str], info: dict[str, Any]) -> None:
        if not refs:
            return
        raw = json.dumps(info)
        rows = [(tenant, ref, raw) for ref in dict.fromkeys(refs)]
        self._tx("INSERT OR REPLACE INTO inbox_drafts (tenant, ref, info) VALUES (?, ?, ?)", *rows)

    def find_draft(self, tenant: str, ref: str) -> dict[str, Any] | None:
        row = self._db.execute(
            "SELECT info FROM inbox_drafts WHERE tenant = ? AND ref = ?", (tenant, ref)
        ).fetchone()
        return _info(row[0]) if row else None

    def close(self) -> None:
        self._db.close()


_COMPLETE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2])
  return 1
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisLedger:
    """``<prefix>:inbox:<tenant>:<sha256(key)>`` = ``lease:<token>`` (with a TTL) or
    ``done:<json>`` (no TTL). Claim is ``SET NX PX``; complete/release compare the token."""

    def __init__(self, client: Any, prefix: str = "ragrelay") -> None:
        self.redis = client
        self.prefix = prefix
        self._complete = client.register_script(_COMPLETE)
        self._release = client.register_script(_RELEASE)

    def _key(self, tenant: str, key: str, kind: str = "inbox") -> str:
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
        return f"{self.prefix}:{kind}:{tenant}:{digest}"

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        import redis

        try:
            return fn(*args, **kwargs)
        except redis.RedisError as exc:
            raise TransientError(f"inbox ledger (redis): {exc}") from exc

    def claim(self, tenant: str, key: str, lease_s: float = DEFAULT_LEASE_S) -> Claim | None:
        token = uuid.uuid4().hex
        ok = self._call(
            self.redis.set,
            self._key(tenant, key),
            f"lease:{token}",
            nx=True,
            px=max(1, int(lease_s * 1000)),
        )
        return Claim(tenant, key, token) if ok else None

    def complete(self, claim: Claim, outcome: dict[str, Any]) -> bool:
        done = self._call(
            self._complete,
            keys=[self._key(claim.tenant, claim.key)],
            args=[f"lease:{claim.token}", "done:" + json.dumps(outcome)],
        )
        return bool(done)

    def release(self, claim: Claim) -> None:
        self._call(
            self._release,
            keys=[self._key(claim.tenant, claim.key)],
            args=[f"lease:{claim.token}"],
        )

    def is_done(self, tenant: str, key: str) -> bool:
        value = self._call(self.redis.get, self._key(tenant, key))
        if isinstance(value, bytes):
            value = value.decode()
        return isinstance(value, str) and value.startswith("done:")

    def record_draft(self, tenant: str, refs: list[str], info: dict[str, Any]) -> None:
        if not refs:
            return
        raw = json.dumps(info)
        pipe = self.redis.pipeline(transaction=True)
        for ref in dict.fromkeys(refs):
            pipe.set(self._key(tenant, ref, "inbox-draft"), raw)
        self._call(pipe.execute)

    def find_draft(self, tenant: str, ref: str) -> dict[str, Any] | None:
        value = self._call(self.redis.get, self._key(tenant, ref, "inbox-draft"))
        return _info(value) if value is not None else None

    def close(self) -> None:
        self.redis.close()


def _info(raw: str | bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def open_ledger(*, redis_url: str | None, data_dir: Path, prefix: str = "ragrelay") -> Ledger:
    """Redis when a URL is configured, else ``<data_dir>/inbox/ledger.sqlite3``."""
    if redis_url:
        from bus.redis import client_for_url, ping

        client = client_for_url(redis_url)
        ping(client, redis_url)
        return RedisLedger(client, prefix)
    return SqliteLedger(data_dir / "inbox" / "ledger.sqlite3")


__all__ = ["DEFAULT_LEASE_S", "Claim", "Ledger", "RedisLedger", "SqliteLedger", "open_ledger"]
