"""A real redis-server with a password and a TLS port: every kind of client ragrelay builds
(redis-py, asyncio, the Celery broker, Celery's result backend, the orchestrator process)
works over ``rediss://`` with each spelling of ``ssl_cert_reqs``; each way of getting the
URL wrong ends the CLI with exit code 2 and one line naming the URL without its password."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bus.app import create_app
from bus.redis import connect, connect_async, ping
from bus.settings import Settings
from ragrelay.bench.rawchain import create_raw_app
from tests.conftest import REPO
from tests.support.redis_server import free_port
from tests.support.secure_redis import SecureRedis

pytestmark = pytest.mark.integration

PASSWORD = "tls-test-" + os.urandom(8).hex()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureRedis]:
    srv = SecureRedis(tmp_path_factory.mktemp("secure-redis"), PASSWORD).start()
    yield srv
    srv.stop()


def _query(server: SecureRedis, spelling: str) -> str:
    assert server.tls is not None
    ca = f"&ssl_ca_certs={server.tls.ca}"
    return f"ssl_cert_reqs={spelling}" + ("" if spelling.lower().endswith("none") else ca)


@pytest.mark.parametrize("spelling", ["CERT_REQUIRED", "required", "CERT_OPTIONAL", "none"])
def test_every_client_talks_to_redis_over_tls(server: SecureRedis, spelling: str) -> None:
    url = server.tls_url(_query(server, spelling))
    settings = Settings(redis_url=url)

    client = connect(settings)
    ping(client, url)
    client.set("tls:probe", spelling)
    assert client.get("tls:probe") == spelling.encode()

    async def async_roundtrip(max_connections: int | None) -> Any:
        aclient = connect_async(settings, max_connections=max_connections)
        try:
            return await aclient.get("tls:probe")
        finally:
            await aclient.aclose()

    assert asyncio.run(async_roundtrip(None)) == spelling.encode()
    assert asyncio.run(async_roundtrip(2)) == spelling.encode()  # the gateway's bounded pool

    app = create_app(settings)
    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1)
        app.send_task(
            "ragrelay.tls_probe", args=[spelling], queue="analysis", connection=conn
        )  # published over TLS: it is on the queue
    assert client.llen("analysis") == 1
    client.delete("analysis")

    backend = create_raw_app(url).backend
    backend.set("tls:backend", b"ok")
    assert backend.get("tls:backend") == b"ok"
    client.close()


def test_the_orchestrator_runs_over_rediss_with_cert_required(
    server: SecureRedis, tmp_path: Path
) -> None:
    """`?ssl_cert_reqs=CERT_REQUIRED` — Celery's spelling — crashed the orchestrator."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGRELAY_")}
    env.update(
        PYTHONPATH=str(REPO),
        RAGRELAY_DATA_DIR=str(tmp_path / "data"),
        RAGRELAY_REDIS_URL=server.tls_url(_query(server, "CERT_REQUIRED")),
    )
    log = tmp_path / "orchestrator.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ragrelay", "orchestrator"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 60
            while b"ready." not in log.read_bytes():
                assert proc.poll() is None, log.read_text()[-3000:]
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.1)
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
    text = log.read_text()
    assert f"Connected to rediss://:***@localhost:{server.tls_port}/0" in text
    assert PASSWORD not in text


def _cli(url: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGRELAY_")}
    env.update(PYTHONPATH=str(REPO), RAGRELAY_DATA_DIR=str(tmp_path), RAGRELAY_REDIS_URL=url)
    return subprocess.run(
        [sys.executable, "-m", "ragrelay", *(args or ("keys", "list"))],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("case", "says"),
    [
        ("wrong password", "refused the password: check RAGRELAY_REDIS_URL"),
        ("no password", "refused the password: check RAGRELAY_REDIS_URL"),
        ("nothing listening", "connection refused. Start redis-server"),
        ("unknown CA", "the server's certificate did not verify"),
        ("plain text to the TLS port", "if it only accepts TLS, use a rediss:// URL"),
        ("TLS to the plain port", "does the server speak TLS on this port?"),
        ("CERT_REQUIRED in a redis:// URL", "use a rediss:// URL for TLS"),
    ],
)
def test_a_wrong_url_ends_the_cli_with_one_line_and_no_password(
    server: SecureRedis, tmp_path: Path, case: str, says: str
) -> None:
    wrong = "wrong-" + PASSWORD
    url = {
        "wrong password": server.url.replace(PASSWORD, wrong),
        "no password": f"redis://127.0.0.1:{server.port}/0",
        "nothing listening": f"redis://:{PASSWORD}@127.0.0.1:{free_port()}/0",
        "unknown CA": server.tls_url(),
        "plain text to the TLS port": f"redis://:{PASSWORD}@127.0.0.1:{server.tls_port}/0",
        "TLS to the plain port": f"rediss://:{PASSWORD}@127.0.0.1:{server.port}/0?ssl_cert_reqs=none"
        "&socket_connect_timeout=1",
        "CERT_REQUIRED in a redis:// URL": server.url + "?ssl_cert_reqs=CERT_REQUIRED",
    }[case]
    out = _cli(url, tmp_path)
    assert out.returncode == 2, out.stderr
    assert out.stdout == ""
    [line] = out.stderr.splitlines()
    assert line.startswith("error: ") and says in line
    assert PASSWORD not in line and "Traceback" not in out.stderr
    if case != "no password":
        assert ":***@" in line


@pytest.mark.parametrize("command", [("serve", "--port", "0"), ("worker", "analysis")])
def test_serve_and_workers_report_a_refused_password_as_such(
    server: SecureRedis, tmp_path: Path, command: tuple[str, ...]
) -> None:
    url = server.tls_url(_query(server, "CERT_REQUIRED")).replace(PASSWORD, "not-it")
    out = _cli(url, tmp_path, *command)
    assert out.returncode == 2, out.stderr
    [line] = out.stderr.splitlines()
    assert line.startswith(f"error: Redis at rediss://:***@localhost:{server.tls_port}/0")
    assert "refused the password: check RAGRELAY_REDIS_URL" in line and "not-it" not in line
