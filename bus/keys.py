"""Every Redis key and stream name ragrelay uses, in one place."""

from __future__ import annotations

from dataclasses import dataclass

from schemas.stages import STAGE_SPECS

#: One queue per stage (from the stage registry), in pipeline order.
STAGE_QUEUES: tuple[str, ...] = tuple(spec.queue for spec in STAGE_SPECS.values())
#: Every queue: the orchestrator's (ingress by ``send_task``), the stages', ingest's.
QUEUES: tuple[str, ...] = ("orchestrator", *STAGE_QUEUES, "ingest")

SUBMIT_TASK = "ragrelay.submit"
INGEST_TASK = "ragrelay.ingest"
DOCUMENTS_TASK = "ragrelay.documents"  # the documents API's files, on the ingest queue


def task_name(stage: str) -> str:
    return f"ragrelay.{stage}"


ORCHESTRATOR_GROUP = "orchestrator"


@dataclass(frozen=True)
class Keys:
    prefix: str = "ragrelay"

    @property
    def events(self) -> str:
        return f"{self.prefix}:events"

    @property
    def running(self) -> str:
        return f"{self.prefix}:running"

    @property
    def sweep_turn(self) -> str:
        """Which orchestrator replica sweeps this interval (a key that expires)."""
        return f"{self.prefix}:sweep-turn"

    @property
    def dlq(self) -> str:
        return f"{self.prefix}:dlq"

    def job(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}"

    def result(self, job_id: str) -> str:
        return f"{self.prefix}:result:{job_id}"

    def trace(self, job_id: str) -> str:
        return f"{self.prefix}:trace:{job_id}"

    def in_flight(self, tenant: str) -> str:
        """A tenant's running jobs (zset: job id -> deadline), for admission control."""
        return f"{self.prefix}:inflight:{tenant}"

    def idempotency(self, tenant: str, key: str) -> str:
        return f"{self.prefix}:idem:{tenant}:{key}"

    def step_done(self, step_id: str) -> str:
        return f"{self.prefix}:done:{step_id}"

    def deliveries(self, task_id: str) -> str:
        return f"{self.prefix}:deliveries:{task_id}"

    def user_context(self, tenant: str, user_id: str) -> str:
        return f"{self.prefix}:userctx:{tenant}:{user_id}"

    def ingest_done(self, run_id: str) -> str:
        return f"{self.prefix}:ingest:{run_id}:done"

    def heartbeat(self, name: str) -> str:
        return f"{self.prefix}:heartbeat:{name}"

    def heartbeats(self) -> str:
        """One hash: every process's heartbeat key -> the time of its last beat."""
        return f"{self.prefix}:heartbeats"

    def replies(self, job_id: str) -> str:
        """Celery task ids that submitted this job again (same idempotency key): each gets
        the job's final result in its own ``celery-task-meta-<task id>``."""
        return f"{self.prefix}:replies:{job_id}"

    def celery_meta(self, task_id: str) -> str:
        """Celery's result-backend key, so foreign Celery clients can read a job's result."""
        return f"celery-task-meta-{task_id}"
