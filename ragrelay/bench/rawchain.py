"""The baseline: a hand-written Celery ``chain`` of four no-op tasks, Redis result backend.

Same broker settings as ragrelay's app (JSON, ``acks_late``, prefetch 1), one queue per
task so the topology matches the pipeline's four stage queues, and results stored (and
published) by Celery's Redis result backend for every task of the chain.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from celery import Celery, chain
from kombu import Queue  # type: ignore[attr-defined]

from bus.redis_url import celery_conf_for

RAW_STAGES: tuple[str, ...] = ("raw1", "raw2", "raw3", "raw4")


def raw_task_name(stage: str) -> str:
    return f"bench.{stage}"


def chain_conf(stages: Sequence[str], task_name: Callable[[str], str]) -> dict[str, Any]:
    """What a Celery user sets for a reliable chain (JSON, ``acks_late``, prefetch 1, no
    events), one queue per task: shared by both baselines."""
    return {
        "task_ignore_result": False,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "worker_hijack_root_logger": False,
        "worker_send_task_events": False,
        "task_send_sent_event": False,
        "broker_connection_retry_on_startup": True,
        "task_queues": [Queue(q, routing_key=q) for q in stages],  # type: ignore[no-untyped-call]
        "task_default_queue": stages[0],
        "task_routes": {task_name(q): {"queue": q} for q in stages},
    }


def create_raw_app(redis_url: str, *, store_results: bool = True) -> Celery:
    """The baseline's app; the submitting side passes ``store_results=False`` (it waits on
    the result channel itself, as Celery's own result consumer does)."""
    app = Celery("ragrelay-bench-raw", set_as_current=False)
    app.conf.update(
        **celery_conf_for(redis_url, result_backend=store_results),
        **chain_conf(RAW_STAGES, raw_task_name),
    )
    for stage in RAW_STAGES:
        app.task(name=raw_task_name(stage))(_noop)
    return app


def _noop(payload: Any) -> Any:
    return payload


def send_chain(app: Celery, payload: dict[str, Any], task_id: str) -> None:
    """Send one four-task chain; ``task_id`` is the id of its last task (its result)."""
    sigs = [app.signature(raw_task_name(s), queue=s) for s in RAW_STAGES]
    sigs[0] = sigs[0].clone(args=(payload,))
    chain(*sigs).apply_async(task_id=task_id)
