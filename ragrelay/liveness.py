"""Is anything consuming the queues a command waits on? Read from the workers' heartbeats.

Every `ragrelay orchestrator` and `ragrelay worker STAGE` process writes the time of its
last beat (every ``RAGRELAY_HEARTBEAT_INTERVAL_S``, 5 s by default) to the Redis key
``<prefix>:heartbeat:<kind>:<host>-<pid>`` (expires after three intervals) and to that
field of the hash ``<prefix>:heartbeats`` (read here in one round trip); both go when the
process exits. A kind with no fresh key has no live process: a command
that waits on it says so within seconds (issue 22) instead of waiting out its timeout.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from bus.heartbeat import live_kinds
from bus.keys import Keys
from bus.settings import Settings
from schemas import STAGE_SPECS

#: What a question needs alive: the orchestrator and a worker of every pipeline stage.
PIPELINE: tuple[str, ...] = ("orchestrator", *STAGE_SPECS)

#: How long a command waits for heartbeats to appear (processes started a moment ago, e.g.
#: `ragrelay up &` on the line before, need a few seconds to import and beat once).
GRACE_S = 8.0


def not_alive(client: Any, settings: Settings, kinds: Iterable[str]) -> list[str]:
    """The kinds among ``kinds`` with no fresh heartbeat, in the order given."""
    keys = Keys(settings.key_prefix)
    alive = live_kinds(
        client, keys.heartbeats(), keys.heartbeat(""), 3 * settings.heartbeat_interval_s
    )
    return [k for k in kinds if k not in alive]


def wait_alive(
    client: Any, settings: Settings, kinds: Iterable[str], grace_s: float = GRACE_S
) -> list[str]:
    """Wait up to ``grace_s`` for every kind to have a heartbeat; the ones still missing."""
    kinds = list(kinds)
    deadline = time.monotonic() + grace_s
    while True:
        missing = not_alive(client, settings, kinds)
        if not missing or time.monotonic() >= deadline:
            return missing
        time.sleep(0.5)


def how_to_start(missing: list[str]) -> str:
    """What to run for the missing kinds."""
    each = [
        "`ragrelay orchestrator`" if k == "orchestrator" else f"`ragrelay worker {k}`"
        for k in missing
    ]
    return f"start them with `ragrelay up` (or {', '.join(each)})"


def describe(missing: list[str]) -> str:
    """``no orchestrator and no analysis, retrieval worker is alive``."""
    parts = []
    if "orchestrator" in missing:
        parts.append("no orchestrator")
    workers = [k for k in missing if k != "orchestrator"]
    if workers:
        parts.append(f"no {', '.join(workers)} worker")
    return " and ".join(parts) + (" is" if len(missing) == 1 else " are") + " alive"


def require_alive(client: Any, settings: Settings, kinds: Iterable[str], command: str) -> None:
    """Refuse (exit 2, before anything is submitted) when a kind ``command`` waits on has no
    live process after :data:`GRACE_S`, naming it and what to run."""
    from bus.errors import ConfigError

    missing = wait_alive(client, settings, kinds)
    if missing:
        raise ConfigError(
            f"`ragrelay {command}` would wait for nothing: {describe(missing)} "
            f"(no heartbeat in Redis within {GRACE_S:g} s); {how_to_start(missing)}, "
            "then run it again. Nothing was submitted."
        )
