"""Admission limits from settings (pure), and the submit script's check on fakeredis."""

from __future__ import annotations

import fakeredis
import pytest

from bus.errors import AdmissionRejected, ConfigError, CorruptRecord
from bus.keys import STAGE_QUEUES, Keys
from bus.settings import load_settings
from orchestrator.admission import AdmissionLimits
from orchestrator.jobs import JobStore
from schemas import JobRequest


def test_limits_are_off_unless_set() -> None:
    limits = AdmissionLimits.from_settings(load_settings(redis_url="redis://x"))
    assert not limits.active
    assert limits.script_args() == ([], ["-1", "300.0"])


def test_a_queue_max_applies_to_every_stage_queue_and_overrides_win() -> None:
    settings = load_settings(
        admission_queue_max=100,
        admission_queue_limits={"generation": 7},
        admission_tenant_in_flight=3,
    )
    limits = AdmissionLimits.from_settings(settings)
    assert limits.queue_depth == {**dict.fromkeys(STAGE_QUEUES, 100), "generation": 7}
    queues, argv = limits.script_args()
    assert queues == sorted(STAGE_QUEUES)
    assert argv[0] == "3" and argv[2:] == [str(limits.queue_depth[q]) for q in queues]


def test_an_unknown_queue_in_the_limits_is_a_config_error_naming_it() -> None:
    with pytest.raises(ConfigError, match="unknown queue 'generatoin'"):
        load_settings(admission_queue_limits={"generatoin": 5})
    with pytest.raises(ConfigError, match="at least 1"):
        load_settings(admission_queue_limits={"generation": 0})


def test_the_job_that_ends_frees_its_tenants_slot() -> None:
    client = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    store = JobStore(client, Keys("t"), admission=AdmissionLimits(tenant_in_flight=1))
    job_id, _ = store.submit(JobRequest(query="q", tenant="acme"))
    with pytest.raises(AdmissionRejected) as refused:
        store.submit(JobRequest(query="q2", tenant="acme"))
    assert (refused.value.limit, refused.value.current, refused.value.maximum) == (
        "tenant_in_flight",
        1,
        1,
    )
    assert store.submit(JobRequest(query="q3", tenant="globex"))[1]  # its own count
    store.quarantine(CorruptRecord(job_id, "test"), source="test")  # ends the job
    assert store.submit(JobRequest(query="q2", tenant="acme"))[1]
