"""One bad record never blocks another: corrupt job records, events and running entries are
quarantined (dead-lettered, acknowledged, ended) while every other job runs to the end.

Runs the whole pipeline in one process on fakeredis (the embedded mode: the same Lua
scripts, streams and consumer group as on Redis, the same task code).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bus.errors import CorruptRecord
from bus.events import DeadLetters, EventLog
from bus.keys import ORCHESTRATOR_GROUP
from bus.settings import Settings
from orchestrator import engine as engine_module
from orchestrator.jobs import JobStore
from orchestrator.sweeper import sweep
from ragrelay.client import RagrelayClient
from schemas import Budget, JobEvent, JobRequest
from workers.settings import StoreSettings, load_worker_settings

Corrupt = Callable[[redis.Redis, str, str], None]  # (client, job key, job id)


def _state_field(value: bytes) -> Corrupt:
    return lambda c, key, _id: c.hset(key, "state", value)


def _budget_null(c: redis.Redis, key: str, _id: str) -> None:
    """The probe's record: a budget number stored as null (what 1e400 serialised to)."""
    state = json.loads(c.hget(key, "state") or b"{}")
    state["request"]["budget"]["max_cost_usd"] = None
    c.hset(key, "state", json.dumps(state))


def _pending_garbage(c: redis.Redis, key: str, _id: str) -> None:
    state = json.loads(c.hget(key, "state") or b"{}")
    state["pending"] = {"x": {"step_id": "x"}}
    c.hset(key, "state", json.dumps(state))


CORRUPTIONS: dict[str, Corrupt] = {
    "state null": _state_field(b"null"),
    "state not json": _state_field(b"{not json"),
    "state not utf-8": _state_field(b"\xff\xfe\x00garbage"),
    "state of another shape": _state_field(b'{"job_id": 1, "request": []}'),
    "budget number null": _budget_null,
    "pending step malformed": _pending_garbage,
    "version not a number": lambda c, key, _id: c.hset(key, "version", "abc"),
    "version missing": lambda c, key, _id: c.hdel(key, "version"),
    "state missing": lambda c, key, _id: c.hdel(key, "state"),
    "key is a string": lambda c, key, _id: (c.delete(key), c.set(key, b"junk")),
    "key is a list": lambda c, key, _id: (c.delete(key), c.rpush(key, b"a", b"b")),
}


def embedded(data: Path) -> RagrelayClient:
    """An embedded client with keys of its own (the in-process server is shared)."""
    return RagrelayClient(
        Settings(redis_url=None, data_dir=data, key_prefix=f"q{uuid.uuid4().hex[:12]}"),
        load_worker_settings(store=StoreSettings(embedder="hashing")),
    )


@pytest.fixture
def client(tmp_path: Path) -> Iterator[RagrelayClient]:
    c = embedded(tmp_path / "data")
    yield c
    c.close()


def submit(client: RagrelayClient, tag: str, tenant: str = "acme") -> str:
    request = JobRequest(
        query=f"How are transient errors retried? ({tag})",
        tenant=tenant,
        idempotency_key=tag,
        budget=Budget(max_iterations=1),
    )
    return client.submit(request)[0]


def pending_events(client: RagrelayClient) -> int:
    info: Any = client.redis.xpending(client.keys.events, ORCHESTRATOR_GROUP)
    return int(info["pending"])


def test_every_kind_of_corrupt_job_is_quarantined_once_and_the_rest_finish(
    client: RagrelayClient,
) -> None:
    good = [submit(client, f"good-{i}", tenant=("acme", "globex")[i % 2]) for i in range(6)]
    bad = {kind: submit(client, f"bad-{n}") for n, kind in enumerate(CORRUPTIONS)}
    for kind, job_id in bad.items():
        CORRUPTIONS[kind](client.redis, client.keys.job(job_id), job_id)

    for job_id in good:
        result = client.wait(job_id, timeout_s=60)
        assert result.status == "succeeded", (job_id, result.error)

    letters = DeadLetters(client.redis, client.keys).list(count=1000)
    quarantined = [d for d in letters if d["kind"] == "corrupt_job"]
    assert sorted(d["job_id"] for d in quarantined) == sorted(bad.values())  # each once
    for kind, job_id in bad.items():
        result = client.jobs.result(job_id)
        assert result is not None and result.status == "failed", kind
        assert result.stop_reason == "quarantined"
        assert "could not be read" in (result.error or "")
        # the owner is known from the plain field where the record was still a hash
        if not kind.startswith("key is"):
            assert result.tenant == "acme", kind
    assert client.redis.zcard(client.keys.running) == 0
    assert pending_events(client) == 0


def test_a_quarantined_record_is_kept_in_its_dead_letter(client: RagrelayClient) -> None:
    job_id = submit(client, "keep")
    client.redis.hset(client.keys.job(job_id), "state", b'{"half": "a rec')
    client._run_embedded()
    letter = next(d for d in DeadLetters(client.redis, client.keys).list() if d["job_id"] == job_id)
    assert letter["payload"]["record"] == '{"half": "a rec'
    assert "unreadable job state" in letter["reason"]
    assert not client.redis.exists(client.keys.job(job_id))


def test_events_that_are_not_job_events_are_dead_lettered_and_acknowledged(
    client: RagrelayClient,
) -> None:
    stream = client.keys.events
    for fields in (
        {"event": "not json"},
        {"other": "field"},
        {"event": '{"type": "job.submitted"}'},
        {"event": json.dumps({"type": "step.result", "job_id": "nobody", "at": 1.0})},
        {"event": '{"type": "no.such.type", "job_id": "j", "at": 1}'},
    ):
        client.redis.xadd(stream, fields)  # type: ignore[arg-type]
    job_id = submit(client, "after-junk")
    assert client.wait(job_id, timeout_s=60).status == "succeeded"
    invalid = [
        d for d in DeadLetters(client.redis, client.keys).list() if d["kind"] == "invalid_event"
    ]
    assert len(invalid) == 4  # the event for an unknown job is valid: logged, acknowledged
    assert {"event": "not json"} in [d["payload"] for d in invalid]
    assert pending_events(client) == 0


def test_a_transition_that_raises_quarantines_that_job_only(
    client: RagrelayClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    poisoned = submit(client, "raises")
    fine = submit(client, "fine")
    real = engine_module.advance

    def advance(state: Any, event: JobEvent, config: Any = None) -> Any:
        if state.job_id == poisoned:
            raise KeyError("a state the machine cannot handle")
        return real(state, event, config)

    monkeypatch.setattr(engine_module, "advance", advance)
    assert client.wait(fine, timeout_s=60).status == "succeeded"
    result = client.jobs.result(poisoned)
    assert result is not None and result.stop_reason == "quarantined"
    assert "cannot apply job.submitted: KeyError" in (result.error or "")


def test_the_sweeper_quarantines_unreadable_jobs_and_drops_orphans(
    client: RagrelayClient,
) -> None:
    job_id = submit(client, "sweep")
    client.redis.hset(client.keys.job(job_id), "state", b"null")
    client.redis.zadd(client.keys.running, {"ghost": time.time() + 3600, "late": 1.0})
    events = EventLog(client.redis, client.keys)
    counts = sweep(client.jobs, events, step_timeout_s=5)
    assert counts["quarantined"] == 1 and counts["orphans"] == 2 and counts["deadline"] == 0
    assert client.redis.zcard(client.keys.running) == 0
    again = sweep(client.jobs, events, step_timeout_s=5)  # nothing left to repeat
    assert again == {"deadline": 0, "timeout": 0, "quarantined": 0, "orphans": 0}


def test_quarantine_is_idempotent_across_replicas(client: RagrelayClient) -> None:
    job_id = submit(client, "twice")
    client.redis.hset(client.keys.job(job_id), "state", b"null")
    other = JobStore(client.redis, client.keys)
    with pytest.raises(CorruptRecord) as caught:
        client.jobs.load(job_id)
    assert client.jobs.quarantine(caught.value, source="a") is True
    assert other.quarantine(caught.value, source="b") is False
    assert len(DeadLetters(client.redis, client.keys).list()) == 1


def test_owner_is_read_without_parsing_the_state(client: RagrelayClient) -> None:
    job_id = submit(client, "owner", tenant="globex")
    client.redis.hset(client.keys.job(job_id), "state", b"null")
    assert client.jobs.owner(job_id) == "globex"
    assert client.jobs.owner("nobody") is None
    client.redis.set(client.keys.job("stringy"), b"junk")
    assert client.jobs.owner("stringy") is None


def test_a_corrupt_result_is_reported_as_such(client: RagrelayClient) -> None:
    job_id = submit(client, "result")
    client.redis.set(client.keys.result(job_id), b"{not a result")
    with pytest.raises(CorruptRecord, match="unreadable result"):
        client.jobs.result(job_id)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    kinds=st.lists(st.sampled_from(sorted(CORRUPTIONS)), min_size=1, max_size=6),
    junk=st.lists(st.binary(max_size=40), max_size=4),
    order=st.randoms(use_true_random=False),
)
def test_any_mix_of_corruption_leaves_every_good_job_finishing(
    tmp_path_factory: pytest.TempPathFactory,
    kinds: list[str],
    junk: list[bytes],
    order: Any,
) -> None:
    """Property: corrupt records and junk events, interleaved with good submissions in any
    order, never stop a good job and never leave an event pending."""
    data = tmp_path_factory.mktemp("mix")
    c = embedded(data)
    try:
        actions: list[tuple[str, Any]] = [("good", i) for i in range(3)]
        actions += [("bad", k) for k in kinds] + [("junk", j) for j in junk]
        order.shuffle(actions)
        good, bad = [], []
        for n, (what, arg) in enumerate(actions):
            if what == "good":
                good.append(submit(c, f"g{n}"))
            elif what == "bad":
                job_id = submit(c, f"b{n}")
                CORRUPTIONS[arg](c.redis, c.keys.job(job_id), job_id)
                bad.append(job_id)
            else:
                c.redis.xadd(c.keys.events, {"event": arg})
            c._run_embedded()  # the engine runs between writes, as under load
        for job_id in good:
            assert c.wait(job_id, timeout_s=60).status == "succeeded"
        for job_id in bad:
            c._run_embedded()
            result = c.jobs.result(job_id)
            assert result is not None and result.stop_reason == "quarantined"
        assert pending_events(c) == 0
    finally:
        c.close()
