"""Job state in Redis: creation once per idempotency key, atomic transitions, traces, results.

Transitions are compare-and-set (a Lua script checks the version and writes the new state,
its trace events and, when final, the result in one step), never a bare read-modify-write.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import redis

from bus.keys import Keys
from orchestrator.machine import Transition
from orchestrator.state import JobState
from schemas import JobEvent, JobRequest, JobResult, TraceEvent, new_job_id


def _script(name: str) -> str:
    return resources.files("orchestrator").joinpath("lua", name).read_text()


class JobStore:
    def __init__(self, client: redis.Redis, keys: Keys, *, ttl_s: int = 7 * 24 * 3600) -> None:
        self.client = client
        self.keys = keys
        self.ttl_s = ttl_s
        self._submit = client.register_script(_script("submit.lua"))
        self._commit = client.register_script(_script("commit.lua"))
        self._commit_sha: str = self._commit.sha

    # -- creation --------------------------------------------------------------------------
    def submit(
        self,
        request: JobRequest,
        *,
        job_id: str | None = None,
        reply_task_id: str | None = None,
        now: float | None = None,
    ) -> tuple[str, bool]:
        """Create the job (or return the one with the same idempotency key): (job_id, created)."""
        now = time.time() if now is None else now
        job_id = job_id or new_job_id()
        state = JobState(
            job_id=job_id,
            request=request,
            created_at=now,
            deadline_at=now + request.budget.deadline_s,
            reply_task_id=reply_task_id,
        )
        idem = self.keys.idempotency(request.tenant, request.idempotency_key or f"job:{job_id}")
        event = JobEvent(type="job.submitted", job_id=job_id, at=now)
        trace = TraceEvent(
            job_id=job_id, type="job.submitted", at=now, outcome="accepted",
            detail={"tenant": request.tenant, "kind": request.kind, "query": request.query,
                    "user_id": request.user_id, "metadata": request.metadata,
                    "budget": request.budget.to_dict(),
                    "idempotency_key": request.idempotency_key},
        )
        got = self._submit(
            keys=[idem, self.keys.job(job_id), self.keys.events, self.keys.running,
                  self.keys.trace(job_id)],
            args=[job_id, state.model_dump_json(), event.to_json(), state.deadline_at,
                  trace.to_json(), self.ttl_s],
        )
        existing, created = got
        return _s(existing), bool(int(created))

    def fail_unparseable(self, job_id: str, tenant: str, error: str,
                         reply_task_id: str | None = None) -> JobResult:
        """Record a job whose request never validated: failed at once, with the reason."""
        now = time.time()
        result = JobResult(job_id=job_id, tenant=tenant, status="failed",
                           stop_reason="invalid_request", error=error)
        trace = TraceEvent(job_id=job_id, type="job.finished", at=now, outcome="failed",
                           detail={"stop_reason": "invalid_request", "error": error})
        pipe = self.client.pipeline(transaction=True)
        pipe.set(self.keys.result(job_id), result.to_json(), ex=self.ttl_s, nx=True)
        pipe.xadd(self.keys.trace(job_id), {"event": trace.to_json()})
        pipe.expire(self.keys.trace(job_id), self.ttl_s)
        if reply_task_id:
            meta = celery_meta(reply_task_id, result)
            pipe.set(self.keys.celery_meta(reply_task_id), meta, ex=self.ttl_s)
            pipe.publish(self.keys.celery_meta(reply_task_id), meta)
        pipe.execute()
        return result

    # -- reading ---------------------------------------------------------------------------
    def load(self, job_id: str) -> tuple[JobState, str] | None:
        raw, version = self.client.hmget(self.keys.job(job_id), ["state", "version"])
        if raw is None or version is None:
            return None
        return JobState.model_validate_json(raw), _s(version)

    def load_many(self, job_ids: list[str]) -> list[tuple[JobState, str] | None]:
        """Several jobs in one round trip."""
        pipe = self.client.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.hmget(self.keys.job(job_id), ["state", "version"])
        out: list[tuple[JobState, str] | None] = []
        for raw, version in pipe.execute():
            out.append(None if raw is None or version is None
                       else (JobState.model_validate_json(raw), _s(version)))
        return out

    def result(self, job_id: str) -> JobResult | None:
        raw = self.client.get(self.keys.result(job_id))
        return JobResult.model_validate_json(raw) if raw else None

    def trace(self, job_id: str, after: str = "-") -> list[tuple[str, TraceEvent]]:
        start = after if after == "-" else f"({after}"
        rows: Any = self.client.xrange(self.keys.trace(job_id), min=start)
        return [(_s(eid), TraceEvent.model_validate_json(f[b"event"])) for eid, f in rows]

    def running(self, limit: int = 10_000) -> list[tuple[str, float]]:
        rows: Any = self.client.zrange(self.keys.running, 0, limit - 1, withscores=True)
        return [(_s(job), float(score)) for job, score in rows]

    # -- transitions -----------------------------------------------------------------------
    def commit(self, state: JobState, version: str, t: Transition) -> bool:
        return self.commit_many([(state, version, t)])[0]

    def commit_many(self, items: list[tuple[JobState, str, Transition]]) -> list[bool]:
        """Compare-and-set several jobs in one round trip (each atomically on its own)."""
        if not items:
            return []
        for _ in range(2):
            pipe = self.client.pipeline(transaction=False)
            for state, version, t in items:
                self._commit_one(state, version, t, pipe)
            got = pipe.execute(raise_on_error=False)
            if not any(isinstance(r, redis.exceptions.NoScriptError) for r in got):
                break
            self._commit_sha = self.client.script_load(self._commit.script)  # Redis restarted
        for r in got:
            if isinstance(r, Exception):
                raise r
        return [bool(int(ok)) for ok in got]

    def _commit_one(self, state: JobState, version: str, t: Transition, pipe: Any) -> None:
        from orchestrator.machine import Finish

        final = next((c for c in t.commands if isinstance(c, Finish)), None)
        result_json = final.result.to_json() if final else ""
        meta_key = ""
        meta_json = ""
        if final and state.reply_task_id:
            meta_key = self.keys.celery_meta(state.reply_task_id)
            meta_json = celery_meta(state.reply_task_id, final.result)
        keys = [self.keys.job(state.job_id), self.keys.trace(state.job_id),
                self.keys.result(state.job_id), self.keys.running, meta_key or "unused"]
        # EVALSHA straight on the pipeline: a Script object would add a SCRIPT EXISTS
        # round trip to every batch
        pipe.evalsha(self._commit_sha, len(keys), *keys, version, t.state.model_dump_json(),
                     result_json, self.ttl_s, state.job_id, meta_json,
                     *(e.to_json() for e in t.trace))


def celery_meta(task_id: str, result: JobResult) -> str:
    """A Celery result-backend record, so any Celery client's ``AsyncResult.get()`` works."""
    return json.dumps({
        "status": "SUCCESS",
        "result": result.to_dict(),
        "traceback": None,
        "children": [],
        "date_done": datetime.now(UTC).isoformat(),
        "task_id": task_id,
    })


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
