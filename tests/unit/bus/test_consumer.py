"""The worker's consumer closes its task channel itself when the broker connection is lost."""

from __future__ import annotations

from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from bus.consumer import DeadLetteringConsumer, _close_default_channel


class Channel:
    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.closed = 0

    def close(self) -> None:
        self.closed += 1
        if self.error is not None:
            raise self.error


class Connection:
    def __init__(self, channel: Channel | None) -> None:
        self._default_channel = channel


def test_the_channel_is_closed_and_a_dead_broker_does_not_escape() -> None:
    ok, dead = Channel(), Channel(RedisConnectionError("Connection refused"))
    _close_default_channel(Connection(ok))
    _close_default_channel(Connection(dead))
    assert (ok.closed, dead.closed) == (1, 1)
    _close_default_channel(Connection(None))
    _close_default_channel(None)


def test_the_consumer_closes_the_channel_before_celery_detaches_the_transport(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    order: list[str] = []
    channel = Channel()
    monkeypatch.setattr(channel, "close", lambda: order.append("channel.close"))

    def celery_handler(self: Any, exc: Exception) -> None:
        order.append("celery")

    monkeypatch.setattr(
        "celery.worker.consumer.Consumer.on_connection_error_after_connected", celery_handler
    )
    consumer = DeadLetteringConsumer.__new__(DeadLetteringConsumer)
    consumer.connection = Connection(channel)
    consumer.on_connection_error_after_connected(RedisConnectionError("lost"))
    assert order == ["channel.close", "celery"]
