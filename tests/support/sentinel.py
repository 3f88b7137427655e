"""A primary, a replica and Sentinels on loopback (``redis-server --sentinel``: the binary
Debian's ``redis-sentinel`` package runs), each on a free port, for one test."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from pathlib import Path

import redis

from tests.support.redis_server import free_port

MASTER = "ragrelay"


class SentinelSet:
    def __init__(self, workdir: Path, *, sentinels: int = 3, down_after_ms: int = 1000) -> None:
        self.workdir = workdir
        self.data_ports = [free_port(), free_port()]  # [0] starts as primary, [1] as replica
        self.sentinel_ports = [free_port() for _ in range(sentinels)]
        self.down_after_ms = down_after_ms
        self.procs: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{MASTER}/0"

    def _start(self, port: int, args: list[str]) -> None:
        exe = shutil.which("redis-server")
        assert exe, "redis-server is not installed"
        log = self.workdir / f"{port}.log"
        self.procs[port] = subprocess.Popen(
            [exe, *args, "--logfile", str(log)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def start(self) -> SentinelSet:
        self.workdir.mkdir(parents=True, exist_ok=True)
        primary, replica = self.data_ports
        for port in self.data_ports:
            d = self.workdir / str(port)
            d.mkdir(exist_ok=True)
            extra = ["--replicaof", "127.0.0.1", str(primary)] if port == replica else []
            self._start(
                port,
                [
                    "--port",
                    str(port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(d),
                    *extra,
                ],
            )
        self.wait(lambda: self.role(replica) == "slave" and self.link_up(replica))
        quorum = max(1, len(self.sentinel_ports) // 2 + 1)
        for port in self.sentinel_ports:
            conf = self.workdir / f"sentinel-{port}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self.workdir}\n"
                f"sentinel monitor {MASTER} 127.0.0.1 {primary} {quorum}\n"
                f"sentinel down-after-milliseconds {MASTER} {self.down_after_ms}\n"
                f"sentinel failover-timeout {MASTER} 10000\n"
                f"sentinel parallel-syncs {MASTER} 1\n"
            )
            self._start(port, [str(conf), "--sentinel"])
        self.wait(lambda: all(self.sentinel_sees_replica(p) for p in self.sentinel_ports))
        return self

    def client(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, socket_timeout=2)

    def role(self, port: int) -> str | None:
        with contextlib.suppress(redis.exceptions.RedisError):
            return str(self.client(port).info("replication")["role"])
        return None

    def link_up(self, port: int) -> bool:
        with contextlib.suppress(redis.exceptions.RedisError):
            return self.client(port).info("replication").get("master_link_status") == "up"
        return False

    def sentinel_sees_replica(self, port: int) -> bool:
        with contextlib.suppress(redis.exceptions.RedisError):
            return bool(self.client(port).sentinel_slaves(MASTER))
        return False

    def primary_port(self) -> int:
        _host, port = self.client(self.sentinel_ports[0]).sentinel_get_master_addr_by_name(MASTER)
        return int(port)

    def failover(self) -> int:
        """A Sentinel-driven switch of primary (``SENTINEL FAILOVER``), complete once the old
        primary is a replica (until then it still takes writes that its resync will drop);
        the new primary's port."""
        old = self.primary_port()
        # a Sentinel that has listed the replica may not have its INFO yet (NOGOODSLAVE):
        # ask again until it has (bounded)
        deadline = time.monotonic() + 30
        while True:
            try:
                self.client(self.sentinel_ports[0]).execute_command("SENTINEL", "FAILOVER", MASTER)
                break
            except redis.exceptions.ResponseError as exc:
                if "NOGOODSLAVE" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        self.wait(lambda: self.primary_port() != old and self.role(self.primary_port()) == "master")
        self.wait(lambda: self.role(old) == "slave")
        return self.primary_port()

    def kill(self, port: int) -> None:
        proc = self.procs.pop(port)
        proc.kill()
        proc.wait(timeout=10)

    @staticmethod
    def wait(predicate: object, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not predicate():  # type: ignore[operator]
            if time.monotonic() > deadline:
                raise TimeoutError("the Sentinel set did not reach the expected state")
            time.sleep(0.1)

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.kill()
        for proc in self.procs.values():
            proc.wait(timeout=10)
        self.procs.clear()
