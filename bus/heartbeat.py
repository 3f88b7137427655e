"""A heartbeat file touched by a daemon thread: liveness without `celery inspect ping`."""

from __future__ import annotations

import threading
from pathlib import Path


class Heartbeat:
    def __init__(self, path: Path, interval_s: float) -> None:
        self.path = path
        self.interval_s = interval_s
        self._stop = threading.Event()

    def beat(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.touch()

    def start(self) -> None:
        self.beat()
        threading.Thread(target=self._run, daemon=True, name="ragrelay-heartbeat").start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.beat()
