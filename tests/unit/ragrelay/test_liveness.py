"""Which process kinds are alive, read from heartbeat keys (issue 22, items 3 and 5)."""

from __future__ import annotations

import time

import fakeredis

from bus.heartbeat import Heartbeat
from bus.keys import Keys
from bus.settings import Settings
from ragrelay.liveness import PIPELINE, describe, how_to_start, not_alive, wait_alive


def test_fresh_beats_count_and_old_or_foreign_ones_do_not() -> None:
    client = fakeredis.FakeRedis()
    settings = Settings(redis_url=None, heartbeat_interval_s=5)
    keys = Keys(settings.key_prefix)
    registry = keys.heartbeats()
    client.hset(registry, keys.heartbeat("orchestrator:h-1"), repr(time.time()))
    client.hset(registry, keys.heartbeat("analysis:h-2"), repr(time.time() - 60))  # gone
    client.hset(registry, keys.heartbeat("retrieval:h-3"), "not a time")
    client.hset(registry, keys.heartbeat("evaluation:h-5"), repr(time.time() - 7200))
    client.hset(registry, Keys("other").heartbeat("generation:h-4"), repr(time.time()))
    assert not_alive(client, settings, PIPELINE) == [
        "analysis",
        "retrieval",
        "generation",
        "evaluation",
    ]
    assert wait_alive(client, settings, ["orchestrator"], grace_s=0) == []
    # long-dead processes' fields and unreadable ones are pruned; recent ones stay
    assert sorted(client.hkeys(registry)) == sorted(
        k.encode()
        for k in (
            keys.heartbeat("orchestrator:h-1"),
            keys.heartbeat("analysis:h-2"),
            Keys("other").heartbeat("generation:h-4"),
        )
    )


def test_the_message_names_each_missing_kind_and_the_command_for_it() -> None:
    assert describe(["orchestrator"]) == "no orchestrator is alive"
    assert describe(["ingest"]) == "no ingest worker is alive"
    assert describe(["orchestrator", "analysis", "evaluation"]) == (
        "no orchestrator and no analysis, evaluation worker are alive"
    )
    assert how_to_start(["orchestrator", "retrieval"]) == (
        "start them with `ragrelay up` (or `ragrelay orchestrator`, `ragrelay worker retrieval`)"
    )


def test_a_stopped_heartbeat_takes_its_key_with_it() -> None:
    client = fakeredis.FakeRedis()
    key, registry = "ragrelay:heartbeat:ingest:h-1", "ragrelay:heartbeats"
    beat = Heartbeat(None, 60, redis_client=client, redis_key=key, registry_key=registry)
    beat.beat()
    assert client.exists(key) and client.hexists(registry, key)
    beat._pid = -1  # as in a forked pool child: not the process that started it
    beat.stop()
    assert client.exists(key) and client.hexists(registry, key)
    beat._pid = __import__("os").getpid()
    beat.stop()
    assert not client.exists(key) and not client.hexists(registry, key)
