"""Helpers for the gateway and interop tests: a uvicorn server in a thread, a cluster."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from tests.support.cluster import Cluster
from tests.support.redis_server import free_port

PIPELINE = ("analysis", "retrieval", "generation", "evaluation")


@contextmanager
def serve_in_thread(app: FastAPI, **options: Any) -> Iterator[str]:
    """Run ``app`` on a real uvicorn on loopback (``options``: more uvicorn.Config
    arguments); yields its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", **options
        )
    )
    thread = threading.Thread(target=server.run, daemon=True, name="test-uvicorn")
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def start_pipeline(env: dict[str, str], logdir: Path) -> Cluster:
    """The orchestrator and the four stage workers, each its own OS process."""
    return Cluster(env, logdir).start_all(PIPELINE)


def wait_http(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer 200 within {timeout} s")
