"""The Redis flow tells a newcomer within seconds when nothing consumes what it waits on
(issue 22, items 3, 5 and 6), from the workers' heartbeats, with real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis

from bus.keys import Keys
from tests.support.cluster import SAMPLE_CORPUS, Cluster

pytestmark = pytest.mark.integration


@pytest.fixture
def env(base_env: dict[str, str], redis_url: str) -> dict[str, str]:
    return dict(base_env, RAGRELAY_REDIS_URL=redis_url, RAGRELAY_EMBEDDER="hashing")


def ragrelay(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ragrelay", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def beat(client: redis.Redis, *kinds: str) -> None:
    """Heartbeats as `ragrelay worker KIND` writes them (a fresh time, a TTL)."""
    for kind in kinds:
        key = Keys().heartbeat(f"{kind}:test-{kind}")
        client.set(key, repr(time.time()), ex=60)
        client.hset(Keys().heartbeats(), key, repr(time.time()))


def test_ask_with_nothing_alive_says_what_to_start_and_submits_nothing(
    env: dict[str, str], rclient: redis.Redis
) -> None:
    started = time.monotonic()
    out = ragrelay(env, "ask", "What is ragrelay?", "--json")
    took = time.monotonic() - started
    assert out.returncode == 2, out.stderr
    assert took < 90  # the job's own timeout would be 130 s; the check gives up after 8
    (line,) = [x for x in out.stderr.splitlines() if x.strip()]
    assert "no orchestrator and no analysis, retrieval, generation, evaluation worker" in line
    assert "`ragrelay up`" in line and "`ragrelay worker retrieval`" in line
    assert "Nothing was submitted" in line and out.stdout == ""
    assert not rclient.keys("ragrelay:job:*")


def test_ask_names_only_the_stage_that_is_missing(
    env: dict[str, str], rclient: redis.Redis
) -> None:
    beat(rclient, "orchestrator", "analysis", "retrieval", "generation")
    # fresh for 3 intervals: long enough that a slow start on a loaded machine keeps them fresh
    env = dict(env, RAGRELAY_HEARTBEAT_INTERVAL_S="30")
    stale = Keys().heartbeat("evaluation:gone-1")  # an old beat is not a live worker
    rclient.hset(Keys().heartbeats(), stale, repr(time.time() - 600))
    out = ragrelay(env, "ask", "What is ragrelay?")
    assert out.returncode == 2, out.stderr
    assert "no evaluation worker is alive" in out.stderr
    assert "`ragrelay worker evaluation`" in out.stderr and "orchestrator" not in out.stderr


def test_a_tenant_with_no_documents_is_said_on_stderr_and_in_the_result(
    env: dict[str, str], base_env: dict[str, str], tmp_path: Path
) -> None:
    cluster = Cluster(env, tmp_path / "logs")
    ingested = ragrelay(base_env, "ingest", str(SAMPLE_CORPUS), "--tenant", "scifact")
    assert ingested.returncode == 0, ingested.stderr
    cluster.start_all(("analysis", "retrieval", "generation", "evaluation"))
    try:
        out = ragrelay(env, "ask", "What is ragrelay?", "--tenant", "scifcat", "--json")
        good = ragrelay(env, "ask", "What is ragrelay?", "--tenant", "scifact", "--json")
    finally:
        cluster.stop()
    result = json.loads(out.stdout)
    note = "tenant 'scifcat' holds no documents"
    assert [d for d in result["degraded"] if note in d] == [result["degraded"][0]]
    assert len(result["degraded"]) == len(set(result["degraded"]))  # said once per job
    assert f"warning: {note}" in out.stderr
    assert "--tenant scifcat" in out.stderr
    assert not result["citations"]
    assert note not in good.stdout and "holds no documents" not in good.stderr


def read_stderr(proc: subprocess.Popen[str], lines: list[str]) -> threading.Thread:
    def pump() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    return thread


def wait_for(lines: list[str], text: str, timeout: float = 60) -> float:
    started = time.monotonic()
    while not any(text in x for x in lines):
        assert time.monotonic() - started < timeout, "".join(lines)
        time.sleep(0.1)
    return time.monotonic() - started


def start_ingest(env: dict[str, str], tenant: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            *(sys.executable, "-m", "ragrelay", "ingest", str(SAMPLE_CORPUS)),
            *("--tenant", tenant, "--batch-size", "1", "--json"),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def close(proc: subprocess.Popen[str]) -> None:
    for pipe in (proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()


def test_ingest_with_no_worker_says_so_then_goes_on_when_one_starts(
    env: dict[str, str], rclient: redis.Redis, tmp_path: Path
) -> None:
    proc = start_ingest(env, "acme")
    lines: list[str] = []
    pump = read_stderr(proc, lines)
    cluster = Cluster(env, tmp_path / "logs")
    try:
        waited = wait_for(lines, "no ingest worker is alive")
        assert waited < 60  # said after about 5 s (the process's start-up comes first)
        line = next(x for x in lines if "no ingest worker is alive" in x)
        assert "`ragrelay worker ingest`" in line and "`ragrelay up`" in line
        assert rclient.llen("ingest") == 10  # queued, waiting
        cluster.start("ingest", "worker", "ingest")
        assert proc.stdout is not None
        stdout = proc.stdout.read()
        proc.wait(timeout=120)
    finally:
        cluster.stop()
        if proc.poll() is None:
            proc.kill()
    pump.join(timeout=5)
    close(proc)
    assert proc.returncode == 0, "".join(lines)
    assert json.loads(stdout)["documents"] == 10
    assert sum("no ingest worker is alive" in x for x in lines) == 1


def test_ctrl_c_takes_the_runs_queued_batches_off_the_queue(
    env: dict[str, str], rclient: redis.Redis
) -> None:
    other = {"headers": {"id": "someone-else"}, "body": ""}
    rclient.lpush("ingest", json.dumps(other))  # another run's message stays
    proc = start_ingest(env, "acme")
    lines: list[str] = []
    pump = read_stderr(proc, lines)
    try:
        wait_for(lines, "Ctrl-C cancels the queued batches")
        assert rclient.llen("ingest") == 11
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    pump.join(timeout=5)
    close(proc)
    assert proc.returncode == 130, "".join(lines)
    assert any("removed 10 queued batches" in x and "again to resume" in x for x in lines)
    assert rclient.lrange("ingest", 0, -1) == [json.dumps(other).encode()]


def test_a_worker_that_stops_takes_its_heartbeat_with_it(
    env: dict[str, str], rclient: redis.Redis, tmp_path: Path
) -> None:
    cluster = Cluster(env, tmp_path / "logs").start_all(("ingest",))
    pid = cluster.procs["ingest"].pid
    try:
        (key,) = rclient.keys(f"ragrelay:heartbeat:ingest:*-{pid}")
        assert rclient.hexists("ragrelay:heartbeats", key)
    finally:
        cluster.stop()  # SIGTERM: a warm shutdown
    assert not rclient.keys(f"ragrelay:heartbeat:ingest:*-{pid}")
    assert not rclient.hexists("ragrelay:heartbeats", key)
    assert os.environ.get("RAGRELAY_REDIS_URL") != env["RAGRELAY_REDIS_URL"]
