"""What a running process shares with its tasks: settings, Redis, event log, dead letters."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import redis

from bus.events import DeadLetters, EventLog
from bus.keys import Keys
from bus.redis import connect
from bus.settings import Settings

#: What a process's tasks depend on (the workers' ``Deps``); bus knows only the factory.
D = TypeVar("D")


@dataclass
class Runtime(Generic[D]):
    """Built once per process (lazily after a prefork fork) and attached to the Celery app."""

    settings: Settings
    deps_factory: Callable[[Settings, redis.Redis], D] | None = None
    _redis: redis.Redis | None = None
    _deps: D | None = None
    _pid: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def keys(self) -> Keys:
        return Keys(self.settings.key_prefix)

    @property
    def redis(self) -> redis.Redis:
        if self._redis is None or self._pid != os.getpid():
            with self._lock:
                if self._redis is None or self._pid != os.getpid():
                    self._redis = connect(self.settings)
                    self._deps = None
                    self._pid = os.getpid()
        return self._redis

    @property
    def events(self) -> EventLog:
        return EventLog(self.redis, self.keys)

    @property
    def dead_letters(self) -> DeadLetters:
        return DeadLetters(self.redis, self.keys)

    def deps(self) -> D:
        client = self.redis
        if self._deps is None:
            with self._lock:
                if self._deps is None:
                    if self.deps_factory is None:
                        raise RuntimeError("this process has no worker dependencies")
                    self._deps = self.deps_factory(self.settings, client)
        return self._deps

    @property
    def host(self) -> str:
        return socket.gethostname()


def attach(app: Any, runtime: Runtime[D]) -> Runtime[D]:
    app.ragrelay_runtime = runtime
    return runtime


def runtime_of(app: Any) -> Runtime[Any]:
    rt: Runtime[Any] | None = getattr(app, "ragrelay_runtime", None)
    if rt is None:
        raise RuntimeError("no ragrelay runtime attached to this Celery app")
    return rt
