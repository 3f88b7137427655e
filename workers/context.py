"""Real-time user data in Redis (or the embedded in-process server), per tenant."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import redis

from bus.errors import PermanentError
from bus.keys import Keys
from schemas import limits


class RedisUserContext:
    def __init__(self, client: redis.Redis, keys: Keys, *, ttl_s: int | None = None) -> None:
        self.client = client
        self.keys = keys
        self.ttl_s = ttl_s

    def get(self, tenant: str, user_id: str) -> dict[str, Any] | None:
        raw = self.client.get(self.keys.user_context(tenant, user_id))
        if not raw:
            return None
        try:
            value = json.loads(raw)
            return limits.user_context(value if isinstance(value, dict) else {"value": value})
        except (ValueError, RecursionError) as exc:
            raise PermanentError(f"user context of {user_id} cannot be read: {exc}") from exc

    def put(self, tenant: str, user_id: str, context: Mapping[str, Any]) -> None:
        """Store the context; ``ValueError`` (naming the path) before writing a bad one."""
        value = limits.user_context(dict(context))
        self.client.set(self.keys.user_context(tenant, user_id), json.dumps(value), ex=self.ttl_s)
