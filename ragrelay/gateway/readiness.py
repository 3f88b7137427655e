"""Is the system ready to take jobs? Redis reachable, an orchestrator consuming, workers alive.

Signals, all read from places that exist today:
- Redis: PING.
- Orchestrator: it blocks in XREADGROUP on the events stream (0.5 s at a time), and nothing
  else in ragrelay calls XREADGROUP, so a Redis client whose last command was XREADGROUP
  within the max age (``CLIENT LIST``) is a live orchestrator. Where ``CLIENT LIST`` is not
  allowed (ACLs), a consumer of the ``orchestrator`` group delivered to within the max age
  counts (Redis < 7.2 does not refresh a consumer's idle time on empty reads, so an idle
  system can look not ready there).
- Workers: heartbeat files in ``RAGRELAY_HEARTBEAT_DIR`` (when the gateway shares it), and
  the heartbeat registry ``<prefix>:heartbeats`` every orchestrator and worker process writes
  (``bus.heartbeat``; a process that stops removes its own field, so only processes that
  died without stopping show up as old).
Queue lengths are reported, not judged.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from bus.heartbeat import FORGET_AFTER_S, live_kinds
from bus.keys import ORCHESTRATOR_GROUP, QUEUES, STAGE_QUEUES, Keys


@dataclass
class Readiness:
    ready: bool
    checks: dict[str, Any] = field(default_factory=dict)


def assess(
    *,
    redis_ok: bool,
    orchestrators: int,
    heartbeat_ages: dict[str, float],
    max_age_s: float,
    require_workers: bool,
) -> tuple[bool, list[str]]:
    """Pure verdict: (ready, reasons it is not)."""
    problems: list[str] = []
    if not redis_ok:
        return False, ["redis unreachable"]
    if require_workers and orchestrators == 0:
        problems.append(f"no orchestrator read the events stream in the last {max_age_s:g} s")
    for kind, age in sorted(heartbeat_ages.items()):
        if age > max_age_s:
            problems.append(f"{kind}: heartbeat {age:.0f} s old")
    return not problems, problems


def heartbeat_files(directory: Path | None, now: float) -> dict[str, float]:
    if directory is None or not directory.is_dir():
        return {}
    ages: dict[str, float] = {}
    for path in directory.glob("*.heartbeat"):
        try:
            ages[path.stem] = max(0.0, now - path.stat().st_mtime)
        except OSError:
            continue
    return ages


def heartbeat_keys(client: redis.Redis, keys: Keys) -> dict[str, float]:
    """Youngest age per kind in the heartbeat registry (one HGETALL; fields of processes
    gone for an hour are dropped there)."""
    return live_kinds(client, keys.heartbeats(), keys.heartbeat(""), FORGET_AFTER_S)


def live_orchestrators(client: redis.Redis, keys: Keys, max_age_s: float) -> int:
    """How many Redis clients read the events stream within ``max_age_s``."""
    try:
        clients: Any = client.client_list()
        return sum(
            1
            for c in clients
            if c.get("cmd") == "xreadgroup" and int(c.get("idle", 1 << 30)) <= max_age_s
        )
    except redis.exceptions.ResponseError:  # CLIENT LIST not allowed: ask the group instead
        pass
    try:
        consumers: Any = client.xinfo_consumers(keys.events, ORCHESTRATOR_GROUP)
    except redis.exceptions.ResponseError:
        return 0  # no stream or no group yet: no orchestrator ever started
    return sum(1 for c in consumers if int(c["idle"]) <= max_age_s * 1000)


def check(
    client: redis.Redis,
    keys: Keys,
    *,
    heartbeat_dir: Path | None,
    max_age_s: float,
    require_workers: bool,
) -> Readiness:
    now = time.time()
    try:
        client.ping()
    except redis.exceptions.RedisError:
        return Readiness(False, {"redis": "unreachable", "problems": ["redis unreachable"]})
    orchestrators = live_orchestrators(client, keys, max_age_s)
    ages = heartbeat_files(heartbeat_dir, now)
    for kind, age in heartbeat_keys(client, keys).items():
        ages[kind] = min(age, ages.get(kind, age))
    ready, problems = assess(
        redis_ok=True,
        orchestrators=orchestrators,
        heartbeat_ages=ages,
        max_age_s=max_age_s,
        require_workers=require_workers,
    )
    queues = {q: int(client.llen(q)) for q in QUEUES}
    return Readiness(
        ready,
        {
            "redis": "ok",
            "orchestrators": orchestrators,
            "heartbeats_age_s": {k: round(v, 1) for k, v in sorted(ages.items())},
            "stages_without_heartbeat": [s for s in STAGE_QUEUES if s not in ages] if ages else [],
            "queues": queues,
            "problems": problems,
        },
    )
