"""``ragrelay dlq list|show|replay|purge`` against a real Redis (and a real worker for replay)."""

from __future__ import annotations

import base64
import json

import pytest
import redis
from click.testing import CliRunner, Result

from bus.events import DeadLetters
from bus.keys import Keys
from bus.settings import Settings
from orchestrator.jobs import JobStore
from ragrelay.cli.dlq import dlq
from tests.chaos.helpers import submit, wait_for
from tests.chaos.procs import ChaosCluster, MakeCluster

pytestmark = pytest.mark.integration


def run(redis_url: str | None, *args: str, input: str | None = None) -> Result:
    settings = Settings(redis_url=redis_url)
    return CliRunner().invoke(dlq, list(args), obj=settings, input=input)


def put(client: redis.Redis, **fields: object) -> str:
    base: dict[str, object] = dict(
        task="ragrelay.analysis",
        queue="analysis",
        payload={"job_id": "j1", "query": 42},
        reason="invalid message: query: Input should be a valid string",
        kind="invalid",
        job_id="j1",
        task_id="j1/1/analysis/0@1",
    )
    base.update(fields)
    return DeadLetters(client, Keys()).put(**base)  # type: ignore[arg-type]


def test_list_and_show_dead_letters_as_text_and_json(redis_url: str, rclient: redis.Redis) -> None:
    assert run(redis_url, "list").output.strip() == "no dead letters"
    first = put(rclient)
    second = put(
        rclient,
        task="ragrelay.generation",
        queue="generation",
        kind="crash",
        reason="handler crashed: RuntimeError: boom",
        payload={"job_id": "j2"},
        job_id="j2",
    )
    out = run(redis_url, "list")
    assert out.exit_code == 0, out.output
    assert first in out.output and second in out.output
    assert "handler crashed: RuntimeError: boom" in out.output
    rows = [json.loads(line) for line in run(redis_url, "list", "--json").output.splitlines()]
    assert [r["id"] for r in rows] == [first, second]
    assert rows[0]["payload"] == {"job_id": "j1", "query": 42}
    only = run(redis_url, "list", "--json", "--kind", "crash").output.splitlines()
    assert [json.loads(x)["id"] for x in only] == [second]
    shown = json.loads(run(redis_url, "show", first, "--json").output)
    assert shown["reason"].startswith("invalid message: query")
    assert shown["queue"] == "analysis" and shown["task_id"] == "j1/1/analysis/0@1"
    text = run(redis_url, "show", second).output
    assert "reason:   handler crashed" in text and '"job_id": "j2"' in text


def test_show_unknown_or_malformed_id_is_a_clear_error(redis_url: str) -> None:
    missing = run(redis_url, "show", "1-0")
    assert missing.exit_code == 1 and "no dead letter 1-0" in missing.output
    bad = run(redis_url, "show", "not-an-id")
    assert bad.exit_code == 2 and "is not a dead-letter id" in bad.output


def test_without_redis_dlq_says_what_to_set() -> None:
    out = run(None, "list")
    assert out.exit_code != 0 and "RAGRELAY_REDIS_URL" in str(out.exception)


def test_purge_asks_then_deletes_everything(redis_url: str, rclient: redis.Redis) -> None:
    put(rclient)
    put(rclient)
    declined = run(redis_url, "purge", input="n\n")
    assert declined.exit_code == 1 and rclient.xlen("ragrelay:dlq") == 2
    out = run(redis_url, "purge", "--yes")
    assert out.exit_code == 0 and "purged 2 dead letters" in out.output
    assert rclient.xlen("ragrelay:dlq") == 0


def test_replay_publishes_the_same_payload_to_the_queue_by_name(
    redis_url: str, rclient: redis.Redis
) -> None:
    jobs = JobStore(rclient, Keys(), ttl_s=600)
    jobs.fail_unparseable("j1", "demo", "analysis step failed")  # the job already ended
    entry = put(rclient)
    out = run(redis_url, "replay", entry)
    assert out.exit_code == 0, out.output
    assert f"replayed {entry}: ragrelay.analysis -> queue analysis" in out.output
    assert "job j1 already ended (failed" in out.output
    assert rclient.xlen("ragrelay:dlq") == 0
    raw = rclient.lrange("analysis", 0, -1)
    assert len(raw) == 1
    message = json.loads(raw[0])
    assert message["headers"]["task"] == "ragrelay.analysis"
    assert message["headers"]["replay_of"] == entry
    args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
    assert args == [{"job_id": "j1", "query": 42}]
    kept = put(rclient)
    assert run(redis_url, "replay", "--keep", kept).exit_code == 0
    assert rclient.xlen("ragrelay:dlq") == 1


@pytest.mark.chaos
def test_replay_after_a_fix_runs_the_task_on_a_real_worker(
    chaos_env: dict[str, str],
    redis_url: str,
    rclient: redis.Redis,
    make_cluster: MakeCluster,
) -> None:
    # The generation handler crashes on the first attempt of each step (a bug), then is
    # "fixed": the replayed task runs to completion on the real worker.
    c: ChaosCluster = make_cluster(dict(chaos_env, RAGRELAY_FAULTS="generation=crash:1")).up()
    [job_id] = submit(rclient, 1, tag="replay")
    wait_for(lambda: rclient.exists(f"ragrelay:result:{job_id}"), 60, "the job to fail")
    [row] = [json.loads(x) for x in run(redis_url, "list", "--json").output.splitlines()]
    assert row["kind"] == "crash" and "injected crash 1/1" in row["reason"]
    assert row["job_id"] == job_id and row["task"] == "ragrelay.generation"
    step = row["payload"]["step_id"]
    assert not rclient.exists(f"ragrelay:done:{step}")
    out = run(redis_url, "replay", row["id"])
    assert out.exit_code == 0, out.output
    assert "already ended (failed, step_failed:generation)" in out.output
    wait_for(lambda: rclient.exists(f"ragrelay:done:{step}"), 30, "the replayed step to run")
    assert rclient.xlen("ragrelay:dlq") == 0
    assert c.log("generation").count("succeeded") >= 1


def test_a_quarantined_job_is_listed_shown_and_not_replayed(
    redis_url: str,
    rclient: redis.Redis,
) -> None:
    jobs = JobStore(rclient, Keys())
    job_id = submit(rclient, 1, tag="quarantine")[0]
    rclient.hset(Keys().job(job_id), "state", "null")
    from bus.errors import CorruptRecord

    try:
        jobs.load(job_id)
    except CorruptRecord as bad:
        assert jobs.quarantine(bad, source="test")
    rows = [
        json.loads(x)
        for x in run(redis_url, "list", "--json", "--kind", "corrupt_job").output.splitlines()
    ]
    assert [r["job_id"] for r in rows] == [job_id]
    assert rows[0]["payload"]["record"] == "null"
    assert job_id[:12] in run(redis_url, "list").output
    out = run(redis_url, "replay", rows[0]["id"])
    assert out.exit_code == 1 and "not a task" in out.output
    assert rclient.xlen(Keys().dlq) == 1  # kept
