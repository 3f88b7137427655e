"""The thin Celery tasks: validate (in the base), call the stage's pure handler, report."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis
from celery import Celery
from celery.signals import worker_process_init, worker_ready

from bus.documents import DocumentRegistry
from bus.keys import DOCUMENTS_TASK, INGEST_TASK
from bus.runtime import Runtime, attach
from bus.settings import Settings
from bus.task import RagrelayTask, StageTaskBase
from schemas import (
    STAGE_SPECS,
    DocumentsTask,
    IngestRecord,
    IngestResult,
    IngestTask,
    Message,
    Stage,
)
from workers import analysis, documents, evaluation, generation, indexing, retrieval
from workers.deps import build_deps
from workers.ports import Deps
from workers.settings import WorkerSettings

#: The pure handler of every registered stage (``schemas.STAGE_SPECS``).
HANDLERS: dict[Stage, Callable[[Any, Deps], Any]] = {
    "analysis": analysis.handle,
    "retrieval": retrieval.handle,
    "generation": generation.handle,
    "evaluation": evaluation.handle,
}


class IngestTaskBase(RagrelayTask):
    abstract = True
    message_model = IngestTask
    stage = "ingest"

    def on_result(self, msg: Message, result: Any, started: float) -> None:
        if isinstance(msg, IngestTask) and isinstance(result, IngestResult):
            rt = self.runtime
            rt.redis.hset(rt.keys.ingest_done(msg.run_id), str(msg.batch), result.to_json())
            rt.redis.expire(rt.keys.ingest_done(msg.run_id), rt.settings.result_ttl_s)


class DocumentsTaskBase(RagrelayTask):
    """Uploaded files and deletions of the documents API (on the ``ingest`` queue)."""

    abstract = True
    message_model = DocumentsTask
    stage = "ingest"


def register(
    app: Celery, settings: Settings, workers: WorkerSettings, *, warm_embedder: bool = True
) -> Runtime[Deps]:
    """Register every stage's task and the ingest task on ``app``; attach the runtime.

    ``warm_embedder=False`` (an LLM-stage worker on Claude, which never embeds) leaves the
    embedding model unloaded: about 110 MB of RSS per process.
    """

    def deps_factory(settings: Settings, client: redis.Redis) -> Deps:
        return build_deps(settings, workers, client)

    runtime: Runtime[Deps] = attach(app, Runtime(settings=settings, deps_factory=deps_factory))
    for stage, handler in HANDLERS.items():
        _register_stage(app, runtime, stage, handler)

    def run_ingest(self: RagrelayTask, msg: IngestTask) -> IngestResult:
        return indexing.handle(msg, runtime.deps())

    app.task(name=INGEST_TASK, base=IngestTaskBase, bind=True, shared=False)(run_ingest)

    def run_documents(self: RagrelayTask, msg: DocumentsTask) -> IngestRecord:
        registry = DocumentRegistry(runtime.redis, runtime.settings.key_prefix)
        ttl_s = runtime.settings.result_ttl_s
        return documents.handle(msg, runtime.deps().store, registry, ttl_s=ttl_s)

    app.task(name=DOCUMENTS_TASK, base=DocumentsTaskBase, bind=True, shared=False)(run_documents)

    def warm(sender: Any = None, **_: Any) -> None:
        """Build the deps (and load the embedding model) before the first task, not in it."""
        pool = getattr(sender, "pool", None)
        if pool is not None and type(pool).__module__.endswith("prefork"):
            return  # the prefork parent runs no task; its children warm themselves
        deps = runtime.deps()
        if warm_embedder:
            getattr(deps.store, "embedder", None)

    worker_process_init.connect(warm, weak=False)  # each prefork child
    worker_ready.connect(warm, weak=False)  # threads/solo pools: the one process
    return runtime


def _register_stage(
    app: Celery, runtime: Runtime[Deps], stage: Stage, handler: Callable[[Any, Deps], Any]
) -> None:
    spec = STAGE_SPECS[stage]
    base = type(
        f"{stage.title()}Task",
        (StageTaskBase,),
        {"abstract": True, "message_model": spec.task_model, "stage": stage},
    )

    def run(self: StageTaskBase, msg: Any) -> Any:
        deps = runtime.deps()  # the runtime attached to ``app``, which is ``self.runtime``
        if deps.faults is None:
            return handler(msg, deps)
        deps.faults.before(stage, msg)
        return deps.faults.after(stage, handler(msg, deps))

    run.__name__ = f"run_{stage}"
    app.task(name=spec.task_name, base=base, bind=True, shared=False)(run)
