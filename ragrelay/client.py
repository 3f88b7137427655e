"""Submit jobs and wait for their results: in-process (embedded) or against Redis."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bus import logging as blog
from bus.app import create_app
from bus.dispatch import CeleryDispatcher, LocalDispatcher
from bus.errors import RagrelayError
from bus.events import EventLog
from bus.keys import Keys
from bus.redis import connect, ping
from bus.settings import Settings, load_settings
from orchestrator.engine import Engine, wait_result
from orchestrator.jobs import JobStore
from orchestrator.loop import machine_config
from orchestrator.sweeper import sweep
from schemas import JobRequest, JobResult, TraceEvent

if TYPE_CHECKING:
    from workers.settings import WorkerSettings

log = blog.get_logger("ragrelay.client")


class JobTimeout(RagrelayError):
    """The job did not finish in the time the caller was willing to wait."""


class RagrelayClient:
    """``submit`` a JobRequest, ``wait`` for its JobResult, read its ``trace``.

    ``settings`` default to ``RAGRELAY_*`` (``load_settings()``). Without a Redis URL the
    client runs the whole cluster in this process, its workers built from ``workers``
    (default: ``load_worker_settings()``).
    """

    def __init__(
        self, settings: Settings | None = None, workers: WorkerSettings | None = None
    ) -> None:
        settings = settings if settings is not None else load_settings()
        self.settings = settings
        self.keys = Keys(settings.key_prefix)
        self.redis = connect(settings)
        if not settings.embedded:
            ping(self.redis, settings.redis_url)
        self.jobs = JobStore(self.redis, self.keys, ttl_s=settings.result_ttl_s)
        self.app = create_app(settings)
        self._local: LocalDispatcher | None = None
        self._engine: Engine | None = None
        if settings.embedded:
            from workers.settings import load_worker_settings
            from workers.tasks import register  # the embedded cluster runs the workers here

            register(self.app, settings, workers or load_worker_settings())
            self._local = LocalDispatcher(self.app)
            self._engine = Engine(
                self.redis,
                self.jobs,
                self._local,
                keys=self.keys,
                config=machine_config(settings),
                batch=settings.events_batch,
            )

    @classmethod
    def from_settings(
        cls, settings: Settings, workers: WorkerSettings | None = None
    ) -> RagrelayClient:
        return cls(settings, workers)

    # -- jobs ------------------------------------------------------------------------------
    def submit(self, request: JobRequest) -> tuple[str, bool]:
        return self.jobs.submit(request)

    def wait(self, job_id: str, timeout_s: float = 60.0) -> JobResult:
        poll = self._run_embedded if self._engine is not None else None
        result = wait_result(self.jobs, job_id, timeout_s=timeout_s, poll=poll)
        if result is None:
            raise JobTimeout(f"job {job_id} did not finish within {timeout_s:g} s")
        if self.settings.embedded:
            self._persist(result)
        return result

    def ask(self, request: JobRequest, timeout_s: float = 120.0) -> JobResult:
        job_id, _ = self.submit(request)
        return self.wait(job_id, timeout_s=timeout_s)

    def trace(self, job_id: str) -> list[TraceEvent]:
        events = [e for _, e in self.jobs.trace(job_id)]
        if events or not self.settings.embedded:
            return events
        path = self._job_file(job_id)
        if path.exists():
            return JobResult.model_validate_json(path.read_text()).trace
        return []

    def result(self, job_id: str) -> JobResult | None:
        result = self.jobs.result(job_id)
        if result is None and self.settings.embedded:
            path = self._job_file(job_id)
            if path.exists():
                return JobResult.model_validate_json(path.read_text())
        return result

    def with_trace(self, result: JobResult) -> JobResult:
        return result.model_copy(update={"trace": self.trace(result.job_id)})

    def close(self) -> None:
        self.redis.close()

    # -- embedded mode -----------------------------------------------------------------------
    def _run_embedded(self) -> None:
        """One round of the in-process cluster: orchestrator events, then queued tasks."""
        if self._engine is None or self._local is None:
            return
        handled = self._engine.poll(block_ms=None)
        ran = self._local.drain()
        if not handled and not ran:
            sweep(
                self.jobs,
                EventLog(self.redis, self.keys),
                step_timeout_s=self.settings.step_timeout_s,
            )
            time.sleep(0.01)

    def _job_file(self, job_id: str) -> Path:
        return self.settings.data_dir / "jobs" / f"{job_id}.json"

    def _persist(self, result: JobResult) -> None:
        """Embedded state lives in memory; keep each finished job (with its trace) on disk."""
        path = self._job_file(result.job_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(self.with_trace(result).to_json())
        tmp.replace(path)

    def run_task(self, name: str, payload: dict[str, Any], task_id: str | None = None) -> None:
        """Run a task through the same task code: in-process (embedded) or on its queue."""
        if self.settings.embedded:
            self.app.tasks[name].apply(args=[payload])
        else:
            CeleryDispatcher(self.app).send(
                name.split(".", 1)[1], payload, task_id=task_id or uuid.uuid4().hex, headers={}
            )
