"""The one task base: validation, log context, retry classification, idempotency.

Every ragrelay task is a thin wrapper around a plain function. This base does, for all of
them: validate the input message (invalid → dead letter, never retried); bind ``job_id``,
``step``, ``tenant``, ``task_id`` and ``trace_id`` to the log context; classify errors
(transient → retry with backoff + jitter; permanent or exhausted → dead letter and a
``step.failed`` event); skip a step already reported (redelivery); emit the result event.
"""

from __future__ import annotations

import os
import time
import traceback
from typing import Any, ClassVar

import redis
from celery import Task
from celery.exceptions import Retry
from pydantic import ValidationError

from bus import logging as blog
from bus import metrics
from bus.backoff import compute_backoff
from bus.errors import InvalidMessage, PermanentError, TransientError
from bus.runtime import Runtime, runtime_of
from schemas import JobEvent, Message, StageResultBase, TaskEnvelope

log = blog.get_logger("ragrelay.task")

TRANSIENT: tuple[type[BaseException], ...] = (
    TransientError,
    redis.exceptions.ConnectionError,  # infrastructure hiccups are worth a retry
    redis.exceptions.TimeoutError,
    ConnectionError,
    TimeoutError,
)


def describe_validation_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err["loc"]) or "(message)"
        parts.append(f"{loc}: {err['msg']}")
    more = "" if exc.error_count() <= 5 else f" (+{exc.error_count() - 5} more)"
    return "invalid message: " + "; ".join(parts) + more


def validate_payload(model: type[Message], payload: Any) -> Message:
    """Validate a raw payload (dict or JSON text) as ``model`` or raise ``InvalidMessage``."""
    job_id = payload.get("job_id") if isinstance(payload, dict) else None
    try:
        if isinstance(payload, str | bytes):
            return model.model_validate_json(payload)
        if not isinstance(payload, dict):
            raise InvalidMessage(
                f"invalid message: expected a JSON object, got {type(payload).__name__}",
                job_id=None,
            )
        return model.model_validate(payload)
    except ValidationError as exc:
        raise InvalidMessage(
            describe_validation_error(exc), job_id=job_id if isinstance(job_id, str) else None
        ) from exc


class RagrelayTask(Task):  # type: ignore[misc]
    """Base of every ragrelay task. Subclasses set ``message_model`` and implement ``run``."""

    abstract = True
    acks_late = True
    reject_on_worker_lost = True
    typing = False  # the payload is validated by pydantic, not by Celery's signature check
    message_model: ClassVar[type[Message]] = Message
    stage: ClassVar[str] = ""

    @property
    def runtime(self) -> Runtime[Any]:
        return runtime_of(self.app)

    # -- the chain ---------------------------------------------------------------------------
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        payload = args[0] if args else kwargs.get("payload")
        request = self.request
        headers = _headers(request)
        blog.clear()
        blog.bind(
            task_id=request.id,
            trace_id=headers.get("trace_id"),
            traceparent=headers.get("traceparent"),
            stage=self.stage or None,
        )
        started = time.time()
        try:
            try:
                msg = validate_payload(self.message_model, payload)
            except InvalidMessage as exc:
                self.on_invalid(payload, exc)
                return None
            blog.bind(
                job_id=getattr(msg, "job_id", None),
                step=getattr(msg, "step_id", None),
                tenant=getattr(msg, "tenant", None),
            )
            if self.already_done(msg):
                log.info("step.duplicate_skipped")
                self._count("duplicate", started)
                return None
            if self.poisoned(msg, payload):
                self._count("dead_letter", started)
                return None
            try:
                result = self.run(msg)
            except Retry:
                self._count("retry", started)
                raise
            except TRANSIENT as exc:
                self._count("retry", started)
                return self.on_transient(msg, payload, exc)
            except PermanentError as exc:
                self.give_up(msg, payload, f"permanent error: {exc}", "permanent")
                self._count("dead_letter", started)
                return None
            except InvalidMessage as exc:
                self.give_up(msg, payload, exc.reason, "invalid")
                self._count("dead_letter", started)
                return None
            except Exception as exc:  # a bug in a handler: dead-letter it, never loop on it
                tb = traceback.format_exception_only(type(exc), exc)[-1].strip()
                log.error("step.crashed", error=tb, exc_info=True)
                self.give_up(msg, payload, f"handler crashed: {tb}", "crash")
                self._count("dead_letter", started)
                return None
            self.on_result(msg, result, started)
            self._count("ok", started)
            return None
        finally:
            blog.clear()

    def _count(self, outcome: str, started: float) -> None:
        stage = self.stage or self.name
        metrics.TASKS.labels(stage, outcome).inc()
        metrics.STAGE_SECONDS.labels(stage, outcome).observe(time.time() - started)

    # -- hooks -------------------------------------------------------------------------------
    def redelivered(self) -> bool:
        """Whether the broker put this message back after a delivery (worker lost, visibility
        timeout, connection loss): the only way it can have been started before."""
        info = getattr(self.request, "delivery_info", None) or {}
        return bool(info.get("redelivered"))

    def already_done(self, msg: Message) -> bool:
        return False

    def on_result(self, msg: Message, result: Any, started: float) -> None:
        """Called with what ``run`` returned."""

    def poisoned(self, msg: Message, payload: Any) -> bool:
        """Dead-letter a task attempt that was already started ``max_deliveries`` times.

        A task that kills its worker (segfault, OOM kill, ``os._exit``) is redelivered by
        ``reject_on_worker_lost`` or the visibility timeout and would kill the next worker,
        for ever. Runs are counted per task id and retry number, so retries don't count.

        Only a redelivered message can have been started before, and kombu marks every
        message it puts back (``redelivered``): a first delivery makes no round trip. The
        first redelivery counts the uncounted first start too (``SET NX 1`` then ``INCR``),
        so ``runs`` is what it was when every start was counted.
        """
        if not self.redelivered():
            return False
        rt = self.runtime
        key = rt.keys.deliveries(f"{self.request.id}:{self.request.retries}")
        pipe = rt.redis.pipeline(transaction=False)
        pipe.set(key, 1, nx=True)
        pipe.incr(key)
        pipe.expire(key, rt.settings.result_ttl_s)
        runs = int(pipe.execute()[1])
        if runs <= rt.settings.max_deliveries:
            return False
        self.give_up(
            msg,
            payload,
            f"started {runs - 1} times without finishing (the worker "
            "died each time): poison message",
            "poison",
        )
        return True

    def on_transient(self, msg: Message, payload: Any, exc: BaseException) -> Any:
        settings = self.runtime.settings
        attempt = self.request.retries + 1
        if self.request.retries >= settings.max_retries:
            self.give_up(
                msg,
                payload,
                f"transient error, {attempt} attempts spent: {exc}",
                "transient_exhausted",
            )
            return None
        delay = compute_backoff(
            attempt,
            base=settings.backoff_base_s,
            maximum=settings.backoff_max_s,
            retry_after=getattr(exc, "retry_after", None),
        )
        log.warning("step.retry", attempt=attempt, delay_s=round(delay, 3), error=str(exc))
        raise self.retry(
            args=(payload,), countdown=delay, max_retries=settings.max_retries, exc=exc
        )

    def on_invalid(self, payload: Any, exc: InvalidMessage) -> None:
        log.error("message.invalid", reason=exc.reason)
        metrics.TASKS.labels(self.stage or self.name, "invalid").inc()
        metrics.DEAD_LETTERS.labels(self.stage or self.name, "invalid").inc()
        self.runtime.dead_letters.put(
            task=self.name,
            queue=self.stage or "orchestrator",
            payload=payload,
            reason=exc.reason,
            kind="invalid",
            job_id=exc.job_id,
            task_id=self.request.id,
        )
        if exc.job_id and isinstance(payload, dict) and isinstance(payload.get("step_id"), str):
            self.emit_failure(exc.job_id, payload["step_id"], exc.reason, "invalid")

    def give_up(self, msg: Message, payload: Any, reason: str, kind: str) -> None:
        log.error("step.dead_lettered", reason=reason, kind=kind)
        metrics.DEAD_LETTERS.labels(self.stage or self.name, kind).inc()
        job_id = getattr(msg, "job_id", None)
        self.runtime.dead_letters.put(
            task=self.name,
            queue=self.stage or "orchestrator",
            payload=payload,
            reason=reason,
            kind=kind,
            job_id=job_id,
            task_id=self.request.id,
        )
        step = getattr(msg, "step_id", None)
        if job_id and step:
            self.emit_failure(job_id, step, reason, kind)

    def emit_failure(self, job_id: str, step_id: str, reason: str, kind: str) -> None:
        self.runtime.events.emit(
            JobEvent(
                type="step.failed",
                job_id=job_id,
                step_id=step_id,
                stage=self.stage,
                at=time.time(),
                error=reason,
                error_kind=kind,
                worker_host=self.runtime.host,
                worker_pid=os.getpid(),
            )
        )


class StageTaskBase(RagrelayTask):
    """A pipeline stage: its result becomes a ``step.result`` event for the orchestrator."""

    abstract = True
    message_model: ClassVar[type[Message]] = TaskEnvelope

    def already_done(self, msg: Message) -> bool:
        """Only a step that may have run before needs the round trip to check."""
        if not isinstance(msg, TaskEnvelope):
            return False
        maybe_repeat = msg.attempt > 1 or bool(self.request.retries) or self.redelivered()
        return maybe_repeat and self.runtime.events.is_done(msg.step_id)

    def on_result(self, msg: Message, result: Any, started: float) -> None:
        if not isinstance(msg, TaskEnvelope) or not isinstance(result, StageResultBase):
            raise TypeError(f"{self.name} must return a StageResultBase")
        result.job_id = msg.job_id
        result.step_id = msg.step_id
        result.worker_host = self.runtime.host
        result.worker_pid = os.getpid()
        result.started_at = started
        result.ended_at = time.time()
        events = self.runtime.events
        events.emit_result(
            JobEvent(
                type="step.result",
                job_id=msg.job_id,
                step_id=msg.step_id,
                stage=self.stage,
                at=result.ended_at,
                payload=result.to_dict(),
                worker_host=result.worker_host,
                worker_pid=result.worker_pid,
            ),
            msg.step_id,
            self.runtime.settings.result_ttl_s,
        )


def _headers(request: Any) -> dict[str, Any]:
    headers = getattr(request, "headers", None) or {}
    out = dict(headers) if isinstance(headers, dict) else {}
    for key in ("trace_id", "job_id", "traceparent"):
        value = getattr(request, key, None)
        if value is not None:
            out.setdefault(key, value)
    return out
