"""No secret reaches any log: a whole run at LOG_LEVEL=DEBUG, then every byte it wrote is
searched for the secrets it used.

The run, as a user would make it: a redis-server that wants a password and speaks TLS
(``rediss://...?ssl_cert_reqs=CERT_REQUIRED``), ``ragrelay up`` (the orchestrator and the
four stage workers, each its own process), ``ragrelay serve`` (uvicorn with access logs),
stages calling Claude's Messages API on a loopback double with an ``sk-ant-`` key and the
SDK's DEBUG logging switched on (``RAGRELAY_LOG_SDK_DEBUG``, the worst case), an API key
sent as a bearer token and in query strings, a wrong API key, a wrong Redis password, and
``ragrelay trace`` / ``ragrelay keys``, a browser sign-in to ``/ui`` (its session cookie and
the secret that signs it). Every process's stdout and stderr and the Redis log
are kept; none may hold the Redis password, an API key, the Anthropic key, the wrong ones.
Control lines prove the scan saw the places secrets pass through (access log, broker URL,
SDK request logs), redacted. With the redaction step taken out of bus/logging.py this test
fails on the access log (the API key in ``?token=`` and ``?key=``).

About 30 CPU seconds in all (the three LLM workers' start-up is most of it); the wall time
depends on how busy the machine is.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from ragrelay.gateway.keys_store import new_key
from tests.fakes.anthropic_server import FakeAnthropicServer
from tests.interop.support import wait_http
from tests.support.cluster import sample_corpus_env
from tests.support.redis_server import free_port
from tests.support.secure_redis import SecureRedis

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]

REDIS_PASSWORD = "rpw-" + secrets.token_hex(12)
ANTHROPIC_KEY = "sk-ant-api03-" + secrets.token_urlsafe(60)
WRONG_PASSWORD = "wrongpw-" + secrets.token_hex(12)
WRONG_KEY = new_key()[1]
UI_SESSION_SECRET = "ui-" + secrets.token_hex(20)
STAGES = ("orchestrator", "analysis", "retrieval", "generation", "evaluation")


class Run:
    """Processes of the run, each with its own stdout and stderr files."""

    def __init__(self, env: dict[str, str], logdir: Path) -> None:
        self.env = env
        self.logdir = logdir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        logdir.mkdir(parents=True, exist_ok=True)

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        out = (self.logdir / f"{name}.stdout").open("wb")
        err = (self.logdir / f"{name}.stderr").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "ragrelay", *args],
            env=self.env,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
        out.close()
        err.close()
        self.procs[name] = proc
        return proc

    def run(
        self, name: str, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        done = subprocess.run(
            [sys.executable, "-m", "ragrelay", *args],
            env=env or self.env,
            capture_output=True,
            timeout=120,
        )
        (self.logdir / f"{name}.stdout").write_bytes(done.stdout)
        (self.logdir / f"{name}.stderr").write_bytes(done.stderr)
        return done

    def text(self, name: str) -> str:
        return "".join(
            (self.logdir / f"{name}.{s}").read_text(errors="replace") for s in ("stdout", "stderr")
        )

    def stop(self) -> None:
        for proc in self.procs.values():  # `up` passes SIGTERM on to its children
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[SecureRedis]:
    server = SecureRedis(tmp_path / "redis", REDIS_PASSWORD).start()
    yield server
    server.stop()


@pytest.fixture
def llm() -> Iterator[FakeAnthropicServer]:
    with FakeAnthropicServer(api_key=ANTHROPIC_KEY) as server:
        yield server


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def test_no_secret_reaches_any_log_of_a_whole_run(
    redis_server: SecureRedis, llm: FakeAnthropicServer, tmp_path: Path
) -> None:
    assert redis_server.tls is not None
    url = redis_server.tls_url(f"ssl_cert_reqs=CERT_REQUIRED&ssl_ca_certs={redis_server.tls.ca}")
    # embedded ingest before any secret is set; the hashing embedder keeps start-up short
    env = sample_corpus_env(tmp_path / "data", "acme", RAGRELAY_EMBEDDER="hashing")
    env.update(
        RAGRELAY_REDIS_URL=url,
        RAGRELAY_LOG_LEVEL="DEBUG",
        RAGRELAY_LOG_SDK_DEBUG="true",
        RAGRELAY_ANTHROPIC_API_KEY=ANTHROPIC_KEY,
        RAGRELAY_ANTHROPIC_BASE_URL=llm.base_url,
        RAGRELAY_HEARTBEAT_DIR=str(tmp_path / "heartbeats"),
        RAGRELAY_GATEWAY_UI_SESSION_SECRET=UI_SESSION_SECRET,
    )
    run = Run(env, tmp_path / "logs")

    port = free_port()
    try:
        # each process's own log goes to run.logdir/<name>.log: scanned below like the rest
        run.start("up", "up", "--workers", "ingest=0", "--log-dir", str(run.logdir))
        run.start("serve", "serve", "--port", str(port))
        created = run.run("keys-create", "keys", "create", "--tenant", "acme")
        assert created.returncode == 0, created.stderr[-2000:]
        api_key = created.stdout.decode().splitlines()[-1]  # printed once, on purpose
        (run.logdir / "keys-create.stdout").write_text(  # the key is the command's output
            "\n".join(created.stdout.decode().splitlines()[:-1])
        )
        wait_for(lambda: f"all {len(STAGES)} processes ready" in run.text("up"), "all ready")
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/healthz")

        bearer = {"Authorization": f"Bearer {api_key}"}
        with httpx.Client(base_url=base, timeout=60) as http:
            accepted = http.post(
                "/v1/jobs",
                headers=bearer,
                json={
                    "query": "How does ragrelay stop a job that loops?",
                    "budget": {"max_iterations": 1},
                },
            )
            assert accepted.status_code == 202, accepted.text
            job_id = accepted.json()["job_id"]
            with http.stream(
                "GET", f"/v1/jobs/{job_id}/events?token={api_key}", headers=bearer
            ) as events:
                assert events.status_code == 200
                assert any("event: result" in chunk for chunk in events.iter_text())
            view = http.get(f"/v1/jobs/{job_id}?api_key={api_key}&sig=abc", headers=bearer)
            assert view.json()["status"] == "succeeded", view.text
            http.get(f"/ui/jobs/{job_id}?key={api_key}")  # a stale link: refused, logged
            signed_in = http.post(
                "/ui/session",
                data={"key": api_key},
                headers={"Origin": base},
                follow_redirects=False,
            )
            session = signed_in.cookies.get("ragrelay_ui")
            assert session, signed_in.text
            http.cookies.clear()
            page = http.get(f"/ui/jobs/{job_id}", headers={"Cookie": f"ragrelay_ui={session}"})
            assert page.status_code == 200, page.text[:500]
            assert (
                http.get(
                    f"/v1/jobs/{job_id}", headers={"Authorization": f"Bearer {WRONG_KEY}"}
                ).status_code
                == 401
            )
            http.get(f"/readyz?key={WRONG_KEY}")

        traced = run.run("trace", "--log-level", "DEBUG", "trace", job_id)
        assert traced.returncode == 0, traced.stderr[-2000:]
        refused = run.run(
            "keys-list-wrong-password",
            "keys",
            "list",
            env=dict(env, RAGRELAY_REDIS_URL=url.replace(REDIS_PASSWORD, WRONG_PASSWORD)),
        )
        assert refused.returncode == 2 and b"refused the password" in refused.stderr
    finally:
        run.stop()
    assert llm.message_requests(), "the stages did not call the Messages API"

    logs = {p: p.read_text(errors="replace") for p in sorted(run.logdir.iterdir())}
    logs[redis_server.log] = redis_server.log.read_text(errors="replace")
    secrets_used = {
        "Redis password": REDIS_PASSWORD,
        "wrong Redis password": WRONG_PASSWORD,
        "API key": api_key[len("rr_") + 13 :],
        "wrong API key": WRONG_KEY[len("rr_") + 13 :],
        "Anthropic key": ANTHROPIC_KEY[len("sk-ant-api03-") :],
        "UI session secret": UI_SESSION_SECRET,
        "UI session cookie": session,
    }
    leaks = [
        f"{what} in {path.name} line {text.count(chr(10), 0, text.index(secret)) + 1}"
        for path, text in logs.items()
        for what, secret in secrets_used.items()
        if secret in text
    ]
    assert not leaks, leaks

    every = "\n".join(logs.values())
    # The scan saw the places these secrets pass through, redacted:
    assert "?token=*** HTTP/1.1" in every and "?api_key=***&sig=*** HTTP/1.1" in every
    assert "/ui/jobs/" in every and "?key=***" in every  # access log, browser-style URL
    assert re.search(r"Connected to rediss://:\*\*\*@localhost:\d+/0", every)  # the broker
    assert '"logger": "anthropic._base_client"' in every  # the SDK's DEBUG request logs
    assert "Request options" in every and "HTTP Request: POST" in every
    assert "rediss://:***@localhost" in run.text("keys-list-wrong-password")
    assert sum(len(t) for t in logs.values()) > 100_000  # DEBUG: a lot was written
