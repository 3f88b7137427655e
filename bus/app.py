"""The Celery app factory: queues, routes and reliability settings from one Settings."""

from __future__ import annotations

from celery import Celery
from kombu import Queue  # type: ignore[attr-defined]

from bus.keys import QUEUES
from bus.redis_url import celery_conf_for
from bus.settings import Settings

BROKER_MAX_CONNECTIONS = 2048


def create_app(settings: Settings) -> Celery:
    """A Celery app on Redis (or the in-memory transport in embedded mode).

    At-least-once: ``acks_late`` + ``reject_on_worker_lost`` + a visibility timeout longer
    than the longest step. No result backend on the hot path: results travel as events.
    """
    app = Celery("ragrelay", set_as_current=False)
    transport_options = {
        "visibility_timeout": settings.visibility_timeout_s,
        "unacked_restore_interval": settings.unacked_restore_interval_s,
        # kombu scans only every Nth interval (default 10): make the interval the period.
        "unacked_restore_throttle": 1,
        # kombu's broker pool holds 10 connections and raises MaxConnectionsError past them:
        # with hundreds of tasks acking at once (a gevent pool waiting on Claude) acks were
        # lost ("Couldn't ack ... MaxConnectionsError") and the tasks sat unacked until the
        # visibility timeout. Connections are opened only when needed; a URL's
        # ?max_connections= still wins.
        "max_connections": BROKER_MAX_CONNECTIONS,
    }
    # The URL's TLS and socket options reach kombu through the one translation in
    # bus/redis_url.py (kombu would misread them in the URL); a redis+sentinel:// URL becomes
    # kombu's sentinel:// transport (bus/sentinel_url.py).
    broker = (
        celery_conf_for(settings.redis_url, transport_options=transport_options)
        if settings.redis_url
        else {"broker_url": "memory://", "broker_transport_options": transport_options}
    )
    app.conf.update(
        **broker,
        result_backend=None,
        task_ignore_result=True,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        task_send_sent_event=False,
        broker_connection_retry_on_startup=True,
        # Celery's own plugin hook, resolved by name in worker processes only: importing the
        # class here would load celery.worker (~0.7 s) into every CLI call and the gateway.
        worker_consumer="bus.consumer:DeadLetteringConsumer",
        # On a broker connection loss, running acks_late tasks cannot be acknowledged on the
        # dead channel (acking them later crashed workers after a Redis restart): cancel
        # them; they are redelivered.
        worker_cancel_long_running_tasks_on_connection_loss=True,
        task_queues=[Queue(q, routing_key=q) for q in QUEUES],  # type: ignore[no-untyped-call]
        task_default_queue="orchestrator",
        task_routes=routes(),
        task_create_missing_queues=False,
    )
    return app


def routes() -> dict[str, dict[str, str]]:
    """Route by task name: ``ragrelay.<stage>`` to its queue, everything else to orchestrator."""
    table = {f"ragrelay.{q}": {"queue": q} for q in QUEUES if q != "orchestrator"}
    table["ragrelay.documents"] = {"queue": "ingest"}  # the documents API's work
    table["ragrelay.*"] = {"queue": "orchestrator"}
    return table
