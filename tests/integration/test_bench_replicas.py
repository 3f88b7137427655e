"""`ragrelay bench overhead --orchestrators 1,2`: replicas share the consumer group, every
comparison row carries CPU and Redis commands per job beside the raw chain's."""

from __future__ import annotations

import pytest

from tests.integration.test_bench import bench

pytestmark = pytest.mark.integration


def test_overhead_with_orchestrator_replicas_prints_comparison_rows(
    base_env: dict[str, str], redis_url: str
) -> None:
    env = dict(base_env, RAGRELAY_REDIS_URL=redis_url)
    lines = bench(
        env,
        "overhead",
        "--orchestrators",
        "1,2",
        "--jobs",
        "30",
        "--warmup",
        "4",
        "--inflight",
        "4",
        "--slices",
        "2",
        timeout=240,
    )
    kinds = [line["measurement"] for line in lines]
    assert kinds == ["raw_chain", "pipeline", "overhead"] * 2 + ["orchestrator_scaling"]
    for i, n in enumerate((1, 2)):
        raw, pipe, summary = lines[3 * i : 3 * i + 3]
        assert raw["statuses"] == {"SUCCESS": 30}
        assert pipe["statuses"] == {"succeeded": 30} and pipe["orchestrators"] == n
        assert summary["orchestrators"] == n
        for line in (raw, pipe):
            assert line["redis_commands_per_job"] > 4  # at least a push and a pop per task
            assert line["redis_net_in_bytes_per_job"] > 0
            assert line["cpu_ms_per_job_total"] > 0
        # the pipeline's transitions run the commit script; the chain never does
        assert pipe["redis_commands_per_job_by_command"].get("evalsha", 0) >= 4
        assert summary["pipeline_redis_commands_per_job"] == pipe["redis_commands_per_job"]
    # both replicas of the second run did work (one consumer group, shared)
    assert lines[4]["cpu_ms_per_job"]["orchestrator"] > 0
    assert lines[-1]["rows"] == [lines[2], lines[5]]


@pytest.mark.timeout(400)
def test_overhead_with_offline_stages_runs_the_real_handlers(
    base_env: dict[str, str], redis_url: str
) -> None:
    env = dict(base_env, RAGRELAY_REDIS_URL=redis_url, RAGRELAY_EMBEDDER="hashing")
    raw, pipe, _ = bench(
        env,
        "overhead",
        "--stages",
        "offline",
        "--jobs",
        "6",
        "--warmup",
        "1",
        "--inflight",
        "2",
        "--slices",
        "1",
        timeout=380,
    )
    assert pipe["stages"] == "offline" and "stages" not in raw
    assert pipe["statuses"] == {"succeeded": 6}  # answered from the ingested sample corpus
    # real handlers cost more than the zero-cost ones: generation does the extracting
    assert pipe["cpu_ms_per_job"]["generation"] > 0
    assert pipe["redis_net_in_bytes_per_job"] > raw["redis_net_in_bytes_per_job"]
