"""Scenario: a worker host cut off from Redis for 30 s mid-step (network namespaces).

The generation worker runs in its own network namespace (``ip netns``), reaching Redis over
a veth pair; everything else runs in the root namespace. While it holds a task, the link is
taken down for 30 s: the task stays in kombu's unacked set, comes back after the visibility
timeout to a generation worker on another "host", and the job finishes. When the link heals
the cut-off worker may still report its step: applying it again changes nothing (ledger:
lost 0, duplicated effects 0). Everything is torn down at the end, also on failure.

Needs root (``ip netns``, veth); ``tc netem`` is not used (this kernel has no netem qdisc).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.chaos.helpers import close, steps, submit, unacked_for, wait_for
from tests.chaos.procs import ChaosCluster, MakeCluster
from tests.chaos.record import ScenarioRecord
from tests.support.ledger import wait_all_final
from tests.support.redis_server import free_port

pytestmark = pytest.mark.integration

CUT_S = 30.0


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


class Host:
    """A network namespace joined to the root namespace by a veth pair (a /30 of its own)."""

    def __init__(self) -> None:
        tag = secrets.token_hex(3)
        self.ns = f"rr{tag}"
        self.root_if, self.ns_if = f"rrh{tag}", f"rrn{tag}"
        octet = int(tag[:2], 16)
        self.root_ip, self.ns_ip = f"10.231.{octet}.1", f"10.231.{octet}.2"

    def up(self) -> Host:
        ip("netns", "add", self.ns)
        ip("link", "add", self.root_if, "type", "veth", "peer", "name", self.ns_if)
        ip("link", "set", self.ns_if, "netns", self.ns)
        ip("addr", "add", f"{self.root_ip}/30", "dev", self.root_if)
        ip("link", "set", self.root_if, "up")
        ip("-n", self.ns, "addr", "add", f"{self.ns_ip}/30", "dev", self.ns_if)
        ip("-n", self.ns, "link", "set", self.ns_if, "up")
        ip("-n", self.ns, "link", "set", "lo", "up")
        return self

    def cut(self) -> None:
        ip("link", "set", self.root_if, "down")

    def heal(self) -> None:
        ip("link", "set", self.root_if, "up")

    def down(self) -> None:
        subprocess.run(["ip", "link", "del", self.root_if], capture_output=True, timeout=30)
        subprocess.run(["ip", "netns", "del", self.ns], capture_output=True, timeout=30)


@pytest.fixture
def host() -> Iterator[Host]:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.fail("this scenario needs root and iproute2 (ip netns)")
    h = Host()
    try:
        yield h.up()
    finally:
        h.down()


@pytest.fixture
def redis_on_both(host: Host, tmp_path: Path) -> Iterator[tuple[str, int, str]]:
    """A private redis-server on loopback and on the root end of the veth (address, port,
    password: off loopback Redis answers only a client that authenticates)."""
    port = free_port()
    password = secrets.token_hex(16)
    exe = shutil.which("redis-server")
    assert exe
    proc = subprocess.Popen(
        [
            exe,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            host.root_ip,
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
            "--logfile",
            str(tmp_path / "r.log"),
            "--requirepass",
            password,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port, password=password)
    wait_for(lambda: _pings(client), 30, "redis-server up")
    client.close()
    try:
        yield host.root_ip, port, password
    finally:
        proc.kill()
        proc.wait(timeout=10)


def _exited(proc: subprocess.Popen[bytes], log: Path) -> bool:
    if proc.poll() is not None:
        raise AssertionError(f"the namespaced worker exited: {log.read_text()[-1500:]}")
    return False


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.exceptions.ConnectionError:
        return False


@pytest.mark.chaos
@pytest.mark.timeout(400)
def test_worker_host_cut_off_from_redis_for_30_s_mid_step(
    chaos_env: dict[str, str],
    make_cluster: MakeCluster,
    host: Host,
    redis_on_both: tuple[str, int, str],
    scenario: ScenarioRecord,
    tmp_path: Path,
) -> None:
    addr, port, password = redis_on_both
    env = dict(chaos_env, RAGRELAY_FAULTS="generation=sleep:3")
    env["RAGRELAY_REDIS_URL"] = f"redis://:{password}@127.0.0.1:{port}/0"
    rclient = redis.Redis(port=port, password=password)
    c: ChaosCluster = make_cluster(env)
    c.orchestrator(wait=False)
    for stage in ("analysis", "retrieval", "evaluation"):
        c.worker(stage, wait=False)
    log = (tmp_path / "generation-netns.log").open("ab")
    remote = subprocess.Popen(  # the generation worker on its own "host"
        [
            "ip",
            "netns",
            "exec",
            host.ns,
            sys.executable,
            "-m",
            "ragrelay",
            "worker",
            "generation",
            "--concurrency",
            "2",
        ],
        env=dict(env, RAGRELAY_REDIS_URL=f"redis://:{password}@{addr}:{port}/0"),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        c.wait_ready(timeout=180)
        wait_for(
            lambda: (
                (
                    remote.poll() is None
                    and b"ready." in (tmp_path / "generation-netns.log").read_bytes()
                )
                or _exited(remote, tmp_path / "generation-netns.log")
            ),
            180,
            "the namespaced worker ready",
        )
        ids = submit(rclient, 4, tag="netns", deadline_s=900.0)
        wait_for(lambda: unacked_for(rclient, "generation") > 0, 120, "a generation task held")
        host.cut()
        cut_at = time.monotonic()
        c.worker("generation", wait=False)  # another host takes the queue
        final_s = None
        while time.monotonic() - cut_at < CUT_S:  # the partition lasts CUT_S whatever happens
            if final_s is None and not wait_all_final(rclient, ids, timeout_s=0):
                final_s = round(time.monotonic() - cut_at, 1)
            time.sleep(0.5)
        host.heal()
        report = close(rclient, scenario, ids, timeout_s=240)
        scenario.figures.update(
            cut_s=CUT_S,
            all_final_during_cut_s=final_s,
            recover_s=final_s if final_s is not None else round(time.monotonic() - cut_at, 1),
            generation_steps_resent=sum(
                steps(rclient, j, "step.timeout", "generation") for j in ids
            ),
        )
        assert "failed" not in report.statuses, report.stop_reasons
    finally:
        if remote.poll() is None:
            os.killpg(remote.pid, signal.SIGKILL)
        remote.wait(timeout=30)
        log.close()
        rclient.close()
