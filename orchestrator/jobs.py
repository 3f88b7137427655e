"""Job state in Redis: creation once per idempotency key, atomic transitions, traces, results.

Transitions are compare-and-set (a Lua script checks the version and writes the new state,
its trace events and, when final, the result in one step), never a bare read-modify-write.

A job record that cannot be read back is reported as :class:`CorruptRecord`, never as an
exception that takes its batch down with it, and :meth:`JobStore.quarantine` ends it: a
failed result for its owner, the raw record in the dead-letter store, out of the running
set (docs/reliability.md, "One bad job never blocks another").
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import redis
from pydantic import ValidationError

from bus.errors import AdmissionRejected, CorruptRecord, IdempotencyConflict
from bus.keys import Keys
from orchestrator.admission import NO_LIMITS, AdmissionLimits
from orchestrator.machine import Transition
from orchestrator.state import JobState
from schemas import JobEvent, JobRequest, JobResult, JobStatus, TraceEvent, new_job_id

Loaded = tuple[JobState, str]

_VERSION = re.compile(rb"^[0-9]{1,18}$")
RAW_KEEP_BYTES = 64 * 1024  # of an unreadable record, kept in its dead letter


def _script(name: str) -> str:
    return resources.files("orchestrator").joinpath("lua", name).read_text()


class JobStore:
    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        *,
        ttl_s: int = 7 * 24 * 3600,
        admission: AdmissionLimits = NO_LIMITS,
        wait_replicas: int = 0,
        wait_timeout_ms: int = 1000,
    ) -> None:
        self.client = client
        self.keys = keys
        self.ttl_s = ttl_s
        self.admission = admission
        # Replication is asynchronous: a job acknowledged before a replica has it can vanish
        # in a failover. WAIT makes the acknowledgement follow the copy (docs/deployment.md,
        # "Redis with Sentinel").
        self.wait_replicas = wait_replicas
        self.wait_timeout_ms = wait_timeout_ms
        self._submit = client.register_script(_script("submit.lua"))
        self._commit = client.register_script(_script("commit.lua"))
        self._quarantine = client.register_script(_script("quarantine.lua"))
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
        """Create the job (or return the one with the same idempotency key): (job_id, created).

        Raises ``IdempotencyConflict`` when the key names a job submitted with a different
        request, ``AdmissionRejected`` when a limit of ``self.admission`` refuses a new job,
        and ``ValueError`` when the state would not read back (nothing is written in
        either case).
        """
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
            job_id=job_id,
            type="job.submitted",
            at=now,
            outcome="accepted",
            detail={
                "tenant": request.tenant,
                "kind": request.kind,
                "query": request.query,
                "user_id": request.user_id,
                "metadata": request.metadata,
                "budget": request.budget.to_dict(),
                "idempotency_key": request.idempotency_key,
            },
        )
        state_json = state.model_dump_json()
        try:  # nothing is stored that cannot be read back
            JobState.model_validate_json(state_json)
        except ValidationError as exc:
            raise ValueError(f"the job would not read back: {exc}") from exc
        fp = request_fingerprint(request)
        queues, limits = self.admission.script_args()
        got = self._submit(
            keys=[
                idem,
                self.keys.job(job_id),
                self.keys.events,
                self.keys.running,
                self.keys.trace(job_id),
                self.keys.in_flight(request.tenant),
                *queues,
            ],
            args=[
                job_id,
                state_json,
                event.to_json(),
                state.deadline_at,
                trace.to_json(),
                self.ttl_s,
                request.tenant,
                fp,
                reply_task_id or "",
                repr(now),
                *limits,
            ],
        )
        if int(got[1]) == 2:
            raise AdmissionRejected(
                _s(got[2]),
                _s(got[3]),
                int(got[4]),
                int(got[5]),
                retry_after_s=self.admission.retry_after_s,
            )
        existing, created = _s(got[0]), bool(int(got[1]))
        if created and self.wait_replicas:
            self.client.wait(self.wait_replicas, self.wait_timeout_ms)
        if not created and request.idempotency_key is not None:
            stored = self.client.hget(self.keys.job(existing), "fp")
            if stored is not None and _s(stored) != fp:
                raise IdempotencyConflict(request.idempotency_key, existing)
        return existing, created

    def fail_unparseable(
        self,
        job_id: str,
        tenant: str,
        error: str,
        reply_task_id: str | None = None,
        *,
        stop_reason: str = "invalid_request",
        status: JobStatus = "failed",
    ) -> JobResult:
        """Record a job whose request was refused: ended at once (``failed`` for a bad
        request, ``rejected`` by admission control), with the reason."""
        now = time.time()
        result = JobResult(
            job_id=job_id, tenant=tenant, status=status, stop_reason=stop_reason, error=error
        )
        trace = TraceEvent(
            job_id=job_id,
            type="job.finished",
            at=now,
            outcome=status,
            detail={"stop_reason": stop_reason, "error": error},
        )
        pipe = self.client.pipeline(transaction=True)
        pipe.set(self.keys.result(job_id), result.to_json(), ex=self.ttl_s, nx=True)
        pipe.xadd(self.keys.trace(job_id), {"event": trace.to_json()})
        pipe.expire(self.keys.trace(job_id), self.ttl_s)
        if reply_task_id:  # the Celery result carries the trace, as `ask --json` does
            meta = celery_meta(reply_task_id, result.model_copy(update={"trace": [trace]}))
            pipe.set(self.keys.celery_meta(reply_task_id), meta, ex=self.ttl_s)
            pipe.publish(self.keys.celery_meta(reply_task_id), meta)
        pipe.execute()
        return result

    def follow(self, job_id: str, task_id: str) -> bool:
        """Celery task ``task_id`` submitted job ``job_id`` again (same idempotency key): its
        result key gets the job's final result (``job_id`` names the original job), now if
        the job has ended, else when it ends (:meth:`commit_many`). True if it had ended.

        The order makes the race harmless: this adds to the job's reply set, then reads
        the result; a commit writes the result, then reads the reply set.
        """
        pipe = self.client.pipeline(transaction=True)
        pipe.sadd(self.keys.replies(job_id), task_id)
        pipe.expire(self.keys.replies(job_id), self.ttl_s)
        pipe.get(self.keys.result(job_id))
        raw = pipe.execute()[2]
        if not raw:
            return False
        self._reply(job_id, JobResult.model_validate_json(raw), [task_id])
        return True

    def _reply(self, job_id: str, result: JobResult, task_ids: list[str]) -> None:
        """Write ``result`` with its trace to each task's Celery result key, and publish it."""
        full = result.model_copy(update={"trace": [e for _, e in self.trace(job_id)]})
        pipe = self.client.pipeline(transaction=False)
        for task_id in task_ids:
            meta = celery_meta(task_id, full)
            pipe.set(self.keys.celery_meta(task_id), meta, ex=self.ttl_s)
            pipe.publish(self.keys.celery_meta(task_id), meta)
        pipe.execute()

    def _reply_to_followers(self, finals: list[tuple[str, JobResult]]) -> None:
        """After final commits: the duplicate submissions waiting on these jobs get results."""
        pipe = self.client.pipeline(transaction=False)
        for job_id, _ in finals:
            pipe.smembers(self.keys.replies(job_id))
        for (job_id, result), members in zip(finals, pipe.execute(), strict=True):
            if members:
                self._reply(job_id, result, sorted(_s(m) for m in members))

    # -- reading ---------------------------------------------------------------------------
    def load(self, job_id: str) -> Loaded | None:
        """The job's state and version; None if there is no such job.

        Raises ``CorruptRecord`` when the record exists but cannot be read back.
        """
        got = self.load_many([job_id])[0]
        if isinstance(got, CorruptRecord):
            raise got
        return got

    def load_many(self, job_ids: list[str]) -> list[Loaded | CorruptRecord | None]:
        """Several jobs in one round trip; an unreadable one is a ``CorruptRecord`` in place."""
        pipe = self.client.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.hmget(self.keys.job(job_id), ["state", "version"])
        return [
            _parse_job(job_id, got)
            for job_id, got in zip(job_ids, pipe.execute(raise_on_error=False), strict=True)
        ]

    def owner(self, job_id: str) -> str | None:
        """The job's tenant, read without parsing its state (which may be unreadable).

        None when there is no such job, or when neither its record nor its result names a
        tenant that can be read.
        """
        try:
            tenant = self.client.hget(self.keys.job(job_id), "tenant")
        except redis.exceptions.ResponseError:  # the key holds another type: not a job
            tenant = None
        if tenant:
            return _s(tenant)
        try:  # a job from before the tenant field, or only its result is left
            loaded = self.load(job_id)
        except CorruptRecord:
            loaded = None
        if loaded is not None:
            return loaded[0].request.tenant
        try:
            result = self.result(job_id)
        except CorruptRecord:
            return None
        return result.tenant if result is not None else None

    def result(self, job_id: str) -> JobResult | None:
        """The job's final result; ``CorruptRecord`` if it is stored but unreadable."""
        try:
            raw = self.client.get(self.keys.result(job_id))
            return JobResult.model_validate_json(raw) if raw else None
        except (redis.exceptions.ResponseError, ValidationError) as exc:
            raise CorruptRecord(job_id, f"unreadable result: {_first_line(exc)}") from exc

    def trace(self, job_id: str, after: str = "-") -> list[tuple[str, TraceEvent]]:
        start = after if after == "-" else f"({after}"
        rows: Any = self.client.xrange(self.keys.trace(job_id), min=start)
        return [(_s(eid), TraceEvent.model_validate_json(f[b"event"])) for eid, f in rows]

    def running(self, limit: int = 10_000) -> list[tuple[str, float]]:
        rows: Any = self.client.zrange(self.keys.running, 0, limit - 1, withscores=True)
        return [(_s(job), float(score)) for job, score in rows]

    # -- transitions -----------------------------------------------------------------------
    def commit(self, state: JobState, version: str, t: Transition) -> bool:
        """One job's compare-and-set; ``CorruptRecord`` if Redis refuses its record."""
        ok = self.commit_many([(state, version, t)])[0]
        if isinstance(ok, CorruptRecord):
            raise ok
        return ok

    def commit_many(
        self, items: list[tuple[JobState, str, Transition]]
    ) -> list[bool | CorruptRecord]:
        """Compare-and-set several jobs in one round trip (each atomically on its own).

        Per job: True (applied), False (lost the race: reload and retry), or a
        ``CorruptRecord`` when Redis refused the write for that job alone (its key holds
        another type, its version is not a number): the others are not held up by it.
        """
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
        out: list[bool | CorruptRecord] = []
        finals: list[tuple[str, JobResult]] = []
        for (state, _, t), r in zip(items, got, strict=True):
            if isinstance(r, redis.exceptions.ResponseError):
                out.append(CorruptRecord(state.job_id, f"commit refused: {_first_line(r)}"))
            elif isinstance(r, Exception):
                raise r  # the connection, not the record: the batch is retried as a whole
            else:
                out.append(bool(int(r)))
                final = _final(t)
                if out[-1] and final is not None:
                    finals.append((state.job_id, final))
        if finals:
            self._reply_to_followers(finals)
        return out

    # -- quarantine --------------------------------------------------------------------------
    def quarantine(self, bad: CorruptRecord, *, source: str) -> bool:
        """End a job whose record cannot be loaded or applied. True if this call did it.

        Its owner gets a failed result naming the reason; the raw record goes to the
        dead-letter store (``ragrelay dlq list --kind corrupt_job``); the job leaves the
        running set, so neither the sweeper nor any batch meets it again. Idempotent.
        """
        job_id = bad.job_id
        fields = self._raw_fields(job_id)
        tenant = fields.get("tenant") or "unknown"
        reply = fields.get("reply") or ""
        error = (
            f"the job's stored state could not be read ({bad.reason}); it was "
            "quarantined in the dead-letter store"
        )
        result = JobResult(
            job_id=job_id, tenant=tenant, status="failed", stop_reason="quarantined", error=error
        )
        now = time.time()
        trace = TraceEvent(
            job_id=job_id,
            type="job.finished",
            at=now,
            outcome="failed",
            detail={"stop_reason": "quarantined", "error": error},
        )
        raw = bad.raw if bad.raw is not None else fields.get("state", "").encode()
        letter = {
            "task": "ragrelay.orchestrator",
            "queue": "orchestrator",
            "payload": json.dumps(
                {
                    "job_id": job_id,
                    "found_by": source,
                    "record": raw[:RAW_KEEP_BYTES].decode("utf-8", "replace"),
                }
            ),
            "reason": bad.reason,
            "kind": "corrupt_job",
            "job_id": job_id,
            "task_id": reply,
            "at": repr(now),
        }
        meta_key = self.keys.celery_meta(reply) if reply else "unused"
        got = self._quarantine(
            keys=[
                self.keys.job(job_id),
                self.keys.result(job_id),
                self.keys.running,
                self.keys.trace(job_id),
                self.keys.dlq,
                meta_key,
                self.keys.in_flight(tenant),
            ],
            args=[
                job_id,
                result.to_json(),
                self.ttl_s,
                trace.to_json(),
                celery_meta(reply, result) if reply else "",
                *(x for kv in letter.items() for x in kv),
            ],
        )
        return bool(int(got))

    def drop_orphan(self, job_id: str) -> int:
        """Remove a running-set entry with no job record behind it (1 if removed).

        A running job's record has no expiry, and creation writes both at once, so such an
        entry was written by something else; the sweeper would otherwise meet it forever.
        """
        if self.client.exists(self.keys.job(job_id)):
            return 0
        return int(self.client.zrem(self.keys.running, job_id))

    def _raw_fields(self, job_id: str) -> dict[str, str]:
        """What can be read of a job key without parsing it (a hash, or nothing)."""
        try:
            got: Any = self.client.hgetall(self.keys.job(job_id))
        except redis.exceptions.ResponseError:
            return {}
        return {
            _s(k): v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
            for k, v in got.items()
        }

    def _commit_one(self, state: JobState, version: str, t: Transition, pipe: Any) -> None:
        final = _final(t)
        result_json = final.to_json() if final else ""
        meta_key = ""
        meta_json = ""
        if final and state.reply_task_id:
            # the Celery result carries the trace, as `ask --json` does: the events stored
            # so far and this transition's (the version check keeps them in step)
            trace = [e for _, e in self.trace(state.job_id)] + list(t.trace)
            meta_key = self.keys.celery_meta(state.reply_task_id)
            meta_json = celery_meta(state.reply_task_id, final.model_copy(update={"trace": trace}))
        keys = [
            self.keys.job(state.job_id),
            self.keys.trace(state.job_id),
            self.keys.result(state.job_id),
            self.keys.running,
            meta_key or "unused",
            self.keys.in_flight(state.request.tenant),
        ]
        # EVALSHA straight on the pipeline: a Script object would add a SCRIPT EXISTS
        # round trip to every batch
        pipe.evalsha(
            self._commit_sha,
            len(keys),
            *keys,
            version,
            t.state.model_dump_json(),
            result_json,
            self.ttl_s,
            state.job_id,
            meta_json,
            *(e.to_json() for e in t.trace),
        )


def _final(t: Transition) -> JobResult | None:
    from orchestrator.machine import Finish

    final = next((c for c in t.commands if isinstance(c, Finish)), None)
    return final.result if final is not None else None


def celery_meta(task_id: str, result: JobResult) -> str:
    """A Celery result-backend record, so any Celery client's ``AsyncResult.get()`` works."""
    return json.dumps(
        {
            "status": "SUCCESS",
            "result": result.to_dict(),
            "traceback": None,
            "children": [],
            "date_done": datetime.now(UTC).isoformat(),
            "task_id": task_id,
        }
    )


def request_fingerprint(request: JobRequest) -> str:
    """What makes two submissions the same request (the idempotency key aside)."""
    body = request.model_dump_json(exclude={"idempotency_key", "schema_version"})
    return hashlib.sha256(body.encode()).hexdigest()[:32]


def _parse_job(job_id: str, got: Any) -> Loaded | CorruptRecord | None:
    if isinstance(got, Exception):
        return CorruptRecord(job_id, f"unreadable job record: {_first_line(got)}")
    raw, version = got
    if raw is None and version is None:
        return None
    if raw is None or version is None or not _VERSION.match(_b(version)):
        return CorruptRecord(
            job_id,
            f"job record without a state or a numeric version (version={version!r})",
            raw=_b(raw) if raw else None,
        )
    try:
        return JobState.model_validate_json(raw), _s(version)
    except ValidationError as exc:
        return CorruptRecord(job_id, f"unreadable job state: {_first_line(exc)}", raw=_b(raw))


def _first_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:300]


def _b(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
