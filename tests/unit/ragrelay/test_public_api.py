"""``from ragrelay import Client, JobRequest, JobResult, Budget``: the door for a Python
service, light to import."""

from __future__ import annotations

import subprocess
import sys

import ragrelay
from schemas import Budget, JobRequest, JobResult


def test_all_is_exactly_what_the_package_exports() -> None:
    assert sorted(ragrelay.__all__) == ragrelay.__all__
    assert {"Client", "JobRequest", "JobResult", "Budget"} <= set(ragrelay.__all__)
    for name in ragrelay.__all__:
        assert getattr(ragrelay, name) is not None, name
    assert not hasattr(ragrelay, "NotExported")


def test_the_exports_are_the_contracts_and_the_client() -> None:
    from ragrelay.client import JobTimeout, RagrelayClient

    assert ragrelay.Client is RagrelayClient and ragrelay.JobTimeout is JobTimeout
    assert (ragrelay.JobRequest, ragrelay.JobResult, ragrelay.Budget) == (
        JobRequest,
        JobResult,
        Budget,
    )


def test_importing_ragrelay_loads_no_web_framework_or_learning_library() -> None:
    heavy = ["fastapi", "uvicorn", "sklearn", "matplotlib", "celery", "ragrelay.client"]
    code = f"import sys, ragrelay; print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


def test_a_client_runs_a_job_embedded(tmp_path: object) -> None:
    from bus.settings import Settings
    from workers.settings import StoreSettings, load_worker_settings

    client = ragrelay.Client(
        Settings(redis_url=None, data_dir=tmp_path),  # type: ignore[arg-type]
        load_worker_settings(store=StoreSettings(embedder="hashing")),
    )
    try:
        result = client.ask(
            ragrelay.JobRequest(query="What is ragrelay?", budget=ragrelay.Budget(max_iterations=1))
        )
    finally:
        client.close()
    assert isinstance(result, ragrelay.JobResult) and result.status != "failed"
