from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from bus.settings import Settings
from tests.support.redis_server import RedisServer

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    client = redis_server.client()
    client.flushall()
    client.close()
    return redis_server.url


@pytest.fixture
def embedded_settings(tmp_path: Path) -> Settings:
    return Settings(redis_url=None, data_dir=tmp_path / "data")


@pytest.fixture
def base_env(tmp_path: Path) -> dict[str, str]:
    """The environment for subprocesses: no RAGRELAY_* leaking in from the developer's shell."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGRELAY_")}
    env["RAGRELAY_DATA_DIR"] = str(tmp_path / "data")
    env["PYTHONPATH"] = str(REPO)
    return env


@pytest.fixture
def rclient(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()
