"""The orchestrator process's engine thread: events, reclaim, sweep, until told to stop."""

from __future__ import annotations

import threading
import time

import redis
from celery import Celery

from bus import logging as blog
from bus import metrics
from bus.dispatch import CeleryDispatcher
from bus.events import EventLog
from bus.keys import QUEUES, Keys
from bus.redis import connect
from bus.settings import Settings
from orchestrator.engine import Engine
from orchestrator.jobs import JobStore
from orchestrator.machine import MachineConfig
from orchestrator.sweeper import sweep

log = blog.get_logger("ragrelay.orchestrator")


def machine_config(settings: Settings) -> MachineConfig:
    """The state machine's knobs, from the process settings."""
    return MachineConfig(
        step_max_attempts=settings.step_max_attempts,
        retrieval_k=settings.retrieval_k,
        context_k=settings.context_k,
    )


def take_sweep_turn(client: redis.Redis, keys: Keys, consumer: str, interval_s: float) -> bool:
    """True for one replica per sweep interval: the others skip the pass.

    Several sweepers are safe (a timeout names its attempt, so a second one changes nothing:
    tests/integration/test_sweeper_replicas.py) but each pass loads every running job, so N
    replicas sweeping would cost N times the reads. The turn expires a little before the
    interval ends, so a replica that died holds it for less than one interval.
    """
    ttl_ms = max(1, int(interval_s * 900))
    return bool(client.set(keys.sweep_turn, consumer, nx=True, px=ttl_ms))


def run_loop(app: Celery, settings: Settings, stop: threading.Event) -> None:
    keys = Keys(settings.key_prefix)
    client = connect(settings)
    jobs = JobStore(client, keys, ttl_s=settings.result_ttl_s)
    engine = Engine(
        client,
        jobs,
        CeleryDispatcher(app),
        keys=keys,
        config=machine_config(settings),
        batch=settings.events_batch,
    )
    events = EventLog(client, keys)
    next_sweep = 0.0
    log.info("orchestrator.started", consumer=engine.consumer)
    while not stop.is_set():
        try:
            engine.poll(block_ms=500)
            now = time.monotonic()
            if now >= next_sweep:
                engine.reclaim(min_idle_ms=int(settings.step_timeout_s * 1000 / 4) or 1000)
                if take_sweep_turn(client, keys, engine.consumer, settings.sweep_interval_s):
                    sweep(jobs, events, step_timeout_s=settings.step_timeout_s)
                for queue in QUEUES:
                    metrics.QUEUE_DEPTH.labels(queue).set(client.llen(queue))
                next_sweep = now + settings.sweep_interval_s
        except redis.exceptions.ConnectionError as exc:
            log.warning("orchestrator.redis_unavailable", error=str(exc))
            stop.wait(1.0)
        except Exception:  # keep the loop alive; the event stays pending and is reclaimed
            log.exception("orchestrator.loop_error")
            stop.wait(0.5)
