"""Which ``ragrelay worker`` command lines get gevent's monkey-patching, before any import."""

from __future__ import annotations

import pytest

from ragrelay.cli.greenlets import patch_if_gevent, worker_pool
from schemas import STAGE_SPECS


@pytest.mark.parametrize(
    ("argv", "pool"),
    [
        (["worker", "analysis", "--pool", "gevent"], "gevent"),
        (["worker", "analysis", "--pool=threads"], "threads"),
        (
            ["--log-level", "INFO", "worker", "generation", "-c", "50"],
            STAGE_SPECS["generation"].default_pool,
        ),
        (["worker", "retrieval"], STAGE_SPECS["retrieval"].default_pool),
        (["worker", "evaluation", "--concurrency", "8"], STAGE_SPECS["evaluation"].default_pool),
        (["worker", "ingest"], None),  # not a stage: the CLI's own default (prefork)
        (["orchestrator", "-c", "4"], None),
        (["ask", "worker"], None),
    ],
)
def test_worker_pool_reads_the_command_line(argv: list[str], pool: str | None) -> None:
    assert worker_pool(argv) == pool


def test_no_default_pool_patches_the_process() -> None:
    # threads measured better than gevent for the LLM stages (docs/benchmarks-speed.md)
    assert all(worker_pool(["worker", s]) != "gevent" for s in STAGE_SPECS)


def test_a_test_runner_importing_the_cli_is_never_patched(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.argv", ["/usr/bin/pytest", "worker", "analysis", "--pool", "gevent"])
    assert patch_if_gevent() is False
    assert patch_if_gevent(["worker", "retrieval", "--pool", "threads"]) is False
