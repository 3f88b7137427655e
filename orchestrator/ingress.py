"""Ingress by the Celery protocol: ``ragrelay.submit`` on the ``orchestrator`` queue.

Any Celery client, in any language, can send ``send_task("ragrelay.submit",
args=[<JobRequest as JSON object>], queue="orchestrator")``. The task validates the request
and creates the job (idempotent by ``idempotency_key``); the job's final ``JobResult`` is
written to Celery's result key of that task id (``celery-task-meta-<task id>``) so the
client's ``AsyncResult(task_id).get()`` returns it. A request that does not validate gives
a failed job with the validation error as its reason; one that admission control refuses
gives a ``rejected`` result at once, its ``error`` naming the limit and its ``stop_reason``
``rejected:<limit>`` (docs/deployment.md, "Admission control").
"""

from __future__ import annotations

from typing import Any, ClassVar

from celery import Celery

from bus.errors import AdmissionRejected, IdempotencyConflict
from bus.keys import SUBMIT_TASK
from bus.runtime import Runtime, attach
from bus.settings import Settings
from bus.task import RagrelayTask
from orchestrator.admission import AdmissionLimits
from orchestrator.jobs import JobStore
from schemas import JobRequest, Message


class SubmitTask(RagrelayTask):
    abstract = True
    message_model: ClassVar[type[Message]] = JobRequest
    stage = "orchestrator"

    def on_invalid(self, payload: Any, exc: Any) -> None:
        if getattr(exc, "job_id", None) is None:  # the task id is the job id: the dead
            exc.job_id = self.request.id  # letter names it (`ragrelay dlq list`, JOB)
        super().on_invalid(payload, exc)
        tenant = payload.get("tenant") if isinstance(payload, dict) else None
        job_store(self.runtime).fail_unparseable(
            self.request.id,
            tenant if isinstance(tenant, str) else "unknown",
            exc.reason,
            reply_task_id=self.request.id,
        )


def job_store(runtime: Runtime[Any]) -> JobStore:
    return JobStore(
        runtime.redis,
        runtime.keys,
        ttl_s=runtime.settings.result_ttl_s,
        admission=AdmissionLimits.from_settings(runtime.settings),
        wait_replicas=runtime.settings.redis_wait_replicas,
        wait_timeout_ms=runtime.settings.redis_wait_timeout_ms,
    )


def register(app: Celery, settings: Settings) -> None:
    """Register ``ragrelay.submit``; reuses the app's runtime or attaches one."""
    if getattr(app, "ragrelay_runtime", None) is None:
        attach(app, Runtime(settings=settings))

    def submit(self: SubmitTask, request: JobRequest) -> str:
        store = job_store(self.runtime)
        try:
            job_id, _created = store.submit(
                request, job_id=self.request.id, reply_task_id=self.request.id
            )
        except IdempotencyConflict as exc:  # the caller's result names the job it collided with
            store.fail_unparseable(
                self.request.id,
                request.tenant,
                str(exc),
                reply_task_id=self.request.id,
                stop_reason="idempotency_conflict",
            )
            return exc.job_id
        except AdmissionRejected as exc:  # shed at the door: the caller's result says why
            store.fail_unparseable(
                self.request.id,
                request.tenant,
                str(exc),
                reply_task_id=self.request.id,
                stop_reason=f"rejected:{exc.limit}",
                status="rejected",
            )
            return str(self.request.id)
        if job_id != self.request.id:  # a second submission of the same idempotency key:
            store.follow(job_id, self.request.id)  # it gets the original job's result
        return job_id

    app.task(name=SUBMIT_TASK, base=SubmitTask, bind=True, shared=False)(submit)
