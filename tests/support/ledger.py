"""The chaos ledger: did every submitted job reach exactly one final result, once?

``audit`` is pure (it takes what was read from Redis); ``collect`` does the reading.

Checks, per the reliability promise:
  * every submitted job id has exactly one final result (the result key, and exactly one
    ``job.finished`` event in its trace); a job without one is *lost*;
  * every step's effect was applied once: one ``step.completed`` per step id in the trace
    (``applied - 1`` per step counts as *duplicated effects*);
  * no orphaned state: once every job is final, every ragrelay key except the shared
    streams and the running set carries a TTL no longer than the configured one, and the
    running set holds none of the finished jobs.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import redis

from bus.keys import Keys
from schemas import JobResult, TraceEvent

NO_TTL = -1


@dataclass
class LedgerReport:
    jobs: int = 0
    final_results: int = 0
    lost: list[str] = field(default_factory=list)
    finished_twice: list[str] = field(default_factory=list)
    duplicated_effects: int = 0
    duplicated_steps: list[str] = field(default_factory=list)
    steps_applied: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    stop_reasons: dict[str, int] = field(default_factory=dict)
    orphans: list[str] = field(default_factory=list)
    dead_lettered: int = 0

    @property
    def ok(self) -> bool:
        return (
            not self.lost
            and not self.finished_twice
            and self.duplicated_effects == 0
            and not self.orphans
            and self.final_results == self.jobs
        )

    def problems(self) -> str:
        """A short human description of what is wrong (empty when ``ok``)."""
        parts = []
        if self.lost:
            parts.append(f"{len(self.lost)} lost: {self.lost[:5]}")
        if self.finished_twice:
            parts.append(f"finished twice: {self.finished_twice[:5]}")
        if self.duplicated_effects:
            parts.append(
                f"{self.duplicated_effects} duplicated effects: {self.duplicated_steps[:5]}"
            )
        if self.orphans:
            parts.append(f"{len(self.orphans)} orphaned keys: {self.orphans[:5]}")
        if self.final_results != self.jobs:
            parts.append(f"{self.final_results} final results for {self.jobs} jobs")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["lost"] = len(self.lost)
        out["ok"] = self.ok
        return out


def audit(
    job_ids: Iterable[str],
    results: Mapping[str, JobResult | None],
    traces: Mapping[str, list[TraceEvent]],
    *,
    key_ttls: Mapping[str, int] | None = None,
    running: Iterable[str] = (),
    keys: Keys | None = None,
    max_ttl_s: int | None = None,
    dead_lettered: int = 0,
) -> LedgerReport:
    """Check the ledger of the given jobs. Pure."""
    keys = keys or Keys()
    ids = list(dict.fromkeys(job_ids))
    report = LedgerReport(jobs=len(ids), dead_lettered=dead_lettered)
    statuses: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    for job_id in ids:
        trace = traces.get(job_id, [])
        finishes = sum(1 for e in trace if e.type == "job.finished")
        result = results.get(job_id)
        if result is None or finishes == 0:
            report.lost.append(job_id)
        else:
            report.final_results += 1
            statuses[result.status] += 1
            reasons[result.stop_reason] += 1
        if finishes > 1:
            report.finished_twice.append(job_id)
        applied = Counter(e.step_id for e in trace if e.type == "step.completed" and e.step_id)
        report.steps_applied += len(applied)
        for step, n in sorted(applied.items()):
            if n > 1:
                report.duplicated_effects += n - 1
                report.duplicated_steps.append(step)
    report.statuses = dict(statuses)
    report.stop_reasons = dict(reasons)
    report.orphans = orphaned_keys(key_ttls or {}, keys=keys, max_ttl_s=max_ttl_s)
    finished = set(ids) - set(report.lost)
    report.orphans += [f"{keys.running} still holds {j}" for j in running if j in finished]
    return report


def orphaned_keys(
    key_ttls: Mapping[str, int], *, keys: Keys, max_ttl_s: int | None = None
) -> list[str]:
    """Keys under the prefix that would outlive their TTL (or have none). Pure.

    The shared streams (events, dead letters), the running set and the gateway's API keys
    are meant to persist.
    """
    shared = {keys.events, keys.dlq, keys.running}
    persistent = tuple(f"{keys.prefix}:{kind}:" for kind in ("apikey", "apikeyid", "apikeys"))
    out = []
    for key, ttl in sorted(key_ttls.items()):
        if not key.startswith(keys.prefix + ":") or key in shared or key.startswith(persistent):
            continue
        if ttl == NO_TTL:
            out.append(f"{key} (no TTL)")
        elif max_ttl_s is not None and ttl > max_ttl_s:
            out.append(f"{key} (TTL {ttl} s > {max_ttl_s} s)")
    return out


# -- reading Redis ---------------------------------------------------------------------------


def collect(
    client: redis.Redis,
    job_ids: Iterable[str],
    *,
    keys: Keys | None = None,
    max_ttl_s: int | None = None,
) -> LedgerReport:
    """Read results, traces, key TTLs and the running set from Redis, then ``audit``."""
    keys = keys or Keys()
    ids = list(dict.fromkeys(job_ids))
    results: dict[str, JobResult | None] = {}
    traces: dict[str, list[TraceEvent]] = {}
    for chunk in _chunks(ids, 200):
        pipe = client.pipeline(transaction=False)
        for job_id in chunk:
            pipe.get(keys.result(job_id))
            pipe.xrange(keys.trace(job_id))
        replies: Any = pipe.execute()
        for i, job_id in enumerate(chunk):
            raw, rows = replies[2 * i], replies[2 * i + 1]
            results[job_id] = JobResult.model_validate_json(raw) if raw else None
            traces[job_id] = [TraceEvent.model_validate_json(f[b"event"]) for _, f in rows]
    ttls: dict[str, int] = {}
    names = [_s(k) for k in client.scan_iter(match=f"{keys.prefix}:*", count=1000)]
    for chunk in _chunks(names, 500):
        pipe = client.pipeline(transaction=False)
        for name in chunk:
            pipe.ttl(name)
        ttls.update(zip(chunk, (int(t) for t in pipe.execute()), strict=True))
    running = [_s(j) for j in client.zrange(keys.running, 0, -1)]
    return audit(
        ids,
        results,
        traces,
        key_ttls=ttls,
        running=running,
        keys=keys,
        max_ttl_s=max_ttl_s,
        dead_lettered=int(client.xlen(keys.dlq)),
    )


def wait_all_final(
    client: redis.Redis,
    job_ids: Iterable[str],
    *,
    timeout_s: float,
    keys: Keys | None = None,
    interval_s: float = 0.2,
) -> list[str]:
    """Wait until every job has a result; returns the ids still without one at the end."""
    import time

    keys = keys or Keys()
    missing = list(dict.fromkeys(job_ids))
    deadline = time.monotonic() + timeout_s
    while missing:
        pipe = client.pipeline(transaction=False)
        for job_id in missing:
            pipe.exists(keys.result(job_id))
        missing = [j for j, there in zip(missing, pipe.execute(), strict=True) if not there]
        if not missing or time.monotonic() >= deadline:
            break
        time.sleep(interval_s)
    return missing


def _chunks(items: list[str], n: int) -> Iterable[list[str]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def dumps(report: LedgerReport) -> str:
    return json.dumps(report.to_dict(), sort_keys=True)
