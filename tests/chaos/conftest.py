"""Fixtures for the chaos scenarios: a corpus, cluster env, scenario records for the summary.

Each scenario fills a ``ScenarioRecord`` (jobs, ledger, kills, restarts, figures). When
``RAGRELAY_CHAOS_LEDGER`` names a file, one JSON line per scenario is appended to it with
the test's outcome; ``python -m tests.chaos.run`` (``make chaos``) prints the summary.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from tests.chaos.procs import ChaosCluster, MakeCluster
from tests.chaos.record import FAST_ENV, LEDGER_ENV, ScenarioRecord
from tests.support.cluster import sample_corpus_env


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    rep = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"rep_{rep.when}", rep)


@pytest.fixture
def scenario(request: pytest.FixtureRequest) -> Iterator[ScenarioRecord]:
    record = ScenarioRecord(name=request.node.name)
    yield record
    path = os.environ.get(LEDGER_ENV)
    if not path:
        return
    rep = getattr(request.node, "rep_call", None)
    line = dict(
        record.__dict__,
        passed=bool(rep is not None and rep.passed),
        chaos=request.node.get_closest_marker("chaos") is not None,
    )
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(line, sort_keys=True, default=str) + "\n")


@pytest.fixture(scope="session")
def corpus_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample corpus indexed once per session (embedded ingest, no broker needed)."""
    data = tmp_path_factory.mktemp("chaos-data")
    sample_corpus_env(data, "demo", RAGRELAY_EMBEDDER=FAST_ENV["RAGRELAY_EMBEDDER"])
    return data


@pytest.fixture
def chaos_env(base_env: dict[str, str], corpus_dir: Path, redis_url: str) -> dict[str, str]:
    """Subprocess env: the shared corpus, a flushed private Redis, test-sized timings."""
    return dict(
        base_env, RAGRELAY_DATA_DIR=str(corpus_dir), RAGRELAY_REDIS_URL=redis_url, **FAST_ENV
    )


@pytest.fixture
def make_cluster(tmp_path: Path) -> Iterator[MakeCluster]:
    made: list[ChaosCluster] = []

    def make(env: Mapping[str, str]) -> ChaosCluster:
        c = ChaosCluster(env, tmp_path / "logs")
        made.append(c)
        return c

    yield make
    for c in made:
        c.stop()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The full scenarios run only when asked for (``-m chaos``, i.e. ``make chaos``).

    Without a marker expression naming ``chaos``, they are deselected (not skipped), so
    ``make test`` runs the fast subset only.
    """
    if "chaos" in (config.getoption("markexpr", "") or ""):
        return
    chaos = [item for item in items if item.get_closest_marker("chaos") is not None]
    if chaos:
        config.hook.pytest_deselected(items=chaos)
        items[:] = [item for item in items if item.get_closest_marker("chaos") is None]
