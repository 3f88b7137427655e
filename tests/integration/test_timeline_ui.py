"""The timeline page mounted on the real gateway app over a real redis-server: keys in a
header, tenancy, rate limit, headers; `feedback export` on the same Redis; `replay` of
embedded and Redis-recorded jobs. Browser sign-in: tests/integration/test_ui_signin.py."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner
from fastapi.testclient import TestClient

from bus.keys import Keys
from bus.settings import Settings
from orchestrator.jobs import JobStore
from ragrelay.cli.observe import feedback, timeline
from ragrelay.gateway import GatewayConfig, create_app
from ragrelay.gateway.keys_store import ApiKeyStore
from schemas import JobRequest
from tests.conftest import REPO
from tests.unit.ragrelay.observe.test_timeline import result as final_result
from tests.unit.ragrelay.observe.test_timeline import two_iteration_trace

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(redis_url: str) -> Settings:
    return Settings(redis_url=redis_url)


def gateway(settings: Settings, **config: object) -> TestClient:
    cfg = GatewayConfig(**{"rate_per_s": 1000.0, "burst": 1000, **config})  # type: ignore[arg-type]
    return TestClient(create_app(settings, cfg), raise_server_exceptions=False)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with gateway(settings) as c:
        yield c


def recorded_job(rclient: redis.Redis, tenant: str = "acme") -> str:
    """A job as the orchestrator leaves it: submitted, traced step by step, finished."""
    jobs = JobStore(rclient, Keys())
    job_id, _ = jobs.submit(JobRequest(query="Capital of France?", tenant=tenant))
    for event in two_iteration_trace()[1:]:
        event = event.model_copy(
            update={
                "job_id": job_id,
                "step_id": (event.step_id.replace(event.job_id, job_id) if event.step_id else None),
            }
        )
        rclient.xadd(Keys().trace(job_id), {"event": event.to_json()})
    result = final_result().model_copy(update={"job_id": job_id, "tenant": tenant})
    rclient.set(Keys().result(job_id), result.to_json())
    return job_id


def step_bars(html: str) -> list[dict[str, str | None]]:
    found: list[dict[str, str | None]] = []

    class P(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            a = dict(attrs)
            if tag == "rect" and "step-bar" in (a.get("class") or ""):
                found.append(a)

    P().feed(html)
    return found


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_page_with_the_key_in_a_header(client: TestClient, rclient: redis.Redis) -> None:
    key = ApiKeyStore(rclient).create("acme")[1]
    job_id = recorded_job(rclient)
    resp = client.get(f"/ui/jobs/{job_id}", headers=bearer(key))
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in resp.headers["content-security-policy"]
    assert resp.headers["referrer-policy"] == "no-referrer"
    assert resp.headers["cache-control"] == "no-store"
    completed = [
        e for _, e in JobStore(rclient, Keys()).trace(job_id) if e.type == "step.completed"
    ]
    bars = step_bars(resp.text)
    assert len(bars) == len(completed) == 8
    assert {b["data-step-id"] for b in bars} == {e.step_id for e in completed}
    assert "Paris is the capital &lt;of&gt; France." in resp.text


def test_no_key_a_bad_key_another_tenant_and_an_unknown_job(
    client: TestClient, rclient: redis.Redis
) -> None:
    store = ApiKeyStore(rclient)
    acme = store.create("acme")[1]
    globex = store.create("globex")[1]
    job_id = recorded_job(rclient)
    resp = client.get(f"/ui/jobs/{job_id}")
    assert resp.status_code == 401 and resp.headers["www-authenticate"].startswith("Bearer")
    assert client.get(f"/ui/jobs/{job_id}", headers=bearer("rr_nope")).status_code == 401
    assert client.get(f"/ui/jobs/{job_id}", headers=bearer(globex)).status_code == 403
    assert client.get("/ui/jobs/0000", headers=bearer(acme)).status_code == 404
    assert client.get("/ui/jobs/bad id!", headers=bearer(acme)).status_code in (404, 422)
    record = store.list("acme")[0]
    store.revoke(record.key_id)
    assert client.get(f"/ui/jobs/{job_id}", headers=bearer(acme)).status_code == 401


def test_a_running_job_shows_its_trace_so_far(client: TestClient, rclient: redis.Redis) -> None:
    key = ApiKeyStore(rclient).create("acme")[1]
    job_id, _ = JobStore(rclient, Keys()).submit(JobRequest(query="q", tenant="acme"))
    resp = client.get(f"/ui/jobs/{job_id}", headers=bearer(key))
    assert resp.status_code == 200
    assert 'http-equiv="refresh"' in resp.text and "still running" in resp.text


def test_the_page_counts_against_the_tenant_rate_limit(
    settings: Settings, rclient: redis.Redis
) -> None:
    key = ApiKeyStore(rclient).create("acme")[1]
    job_id = recorded_job(rclient)
    with gateway(settings, rate_per_s=0.01, burst=2) as c:
        codes = [c.get(f"/ui/jobs/{job_id}", headers=bearer(key)).status_code for _ in range(3)]
        # a browser session draws on the same bucket: signing in takes one request
        other = ApiKeyStore(rclient).create("globex")[1]
        globex_job = recorded_job(rclient, "globex")
        signed_in = c.post("/ui/session", data={"key": other}, follow_redirects=False)
        pages = [c.get(f"/ui/jobs/{globex_job}").status_code for _ in range(2)]
    assert codes == [200, 200, 429]
    assert signed_in.status_code == 303 and pages == [200, 429]


def test_feedback_left_through_the_gateway_exports_as_eval_cases(
    client: TestClient,
    rclient: redis.Redis,
    settings: Settings,
) -> None:
    key = {"Authorization": f"Bearer {ApiKeyStore(rclient).create('acme')[1]}"}
    job_id = recorded_job(rclient)
    other = recorded_job(rclient)
    assert (
        client.post(
            f"/v1/jobs/{job_id}/feedback",
            headers=key,
            json={"rating": 2, "corrected_answer": "Paris."},
        ).status_code
        == 201
    )
    assert (
        client.post(
            f"/v1/jobs/{other}/feedback", headers=key, json={"rating": 1, "comment": "wrong"}
        ).status_code
        == 201
    )
    runner = CliRunner()
    out = runner.invoke(feedback, ["export", "--since", "1h"], obj=settings)
    assert out.exit_code == 0, out.output
    cases = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(cases) == 1
    case = cases[0]
    assert case["question"] == "Capital of France?" and case["answers"] == ["Paris."]
    assert (case["job_id"], case["tenant"], case["rating"]) == (job_id, "acme", 2)
    assert case["_id"].startswith("feedback-")
    everything = runner.invoke(feedback, ["export", "--all"], obj=settings)
    assert len(everything.stdout.splitlines()) == 2
    tomorrow = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 86_400))
    later = runner.invoke(feedback, ["export", "--since", tomorrow], obj=settings)
    assert later.exit_code == 0 and later.stdout == ""


def test_feedback_export_without_redis_says_what_to_set(tmp_path: object) -> None:
    out = CliRunner().invoke(feedback, ["export"], obj=Settings(redis_url=None))
    assert out.exit_code != 0
    assert "RAGRELAY_REDIS_URL" in str(out.exception)


# -- replay (subprocesses: each embedded pipeline lives in its own process) -----------------

CORPUS = REPO / "ragrelay" / "sample" / "corpus.jsonl"
REPLAY = "from ragrelay.cli.observe import replay; replay()"


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], env=env, capture_output=True, text=True, timeout=110, cwd=REPO
    )


@pytest.fixture
def embedded_env(base_env: dict[str, str]) -> dict[str, str]:
    env = dict(base_env, RAGRELAY_EMBEDDER="hashing", RAGRELAY_LOG_LEVEL="WARNING")
    out = run(env, "-m", "ragrelay", "ingest", str(CORPUS), "--tenant", "acme")
    assert out.returncode == 0, out.stderr
    return env


def test_replay_of_an_embedded_job_reruns_it_and_prints_the_diff(
    embedded_env: dict[str, str],
) -> None:
    asked = run(
        embedded_env,
        "-m",
        "ragrelay",
        "ask",
        "--json",
        "--tenant",
        "acme",
        "How does ragrelay make sure no job loops forever?",
    )
    assert asked.returncode == 0, asked.stderr
    job_id = json.loads(asked.stdout)["job_id"]
    # the query is recorded in the job.submitted trace event: no --query needed
    same = run(embedded_env, "-c", REPLAY, job_id, "--json")
    assert same.returncode == 0, same.stderr
    diff = json.loads(same.stdout)
    assert diff["before_job_id"] == job_id and diff["after_job_id"] != job_id
    assert diff["same"] is True, diff
    other = run(embedded_env, "-c", REPLAY, job_id, "--query", "What is a dead letter?")
    assert other.returncode == 0, other.stderr
    assert "outcome changed" in other.stdout and "+++ after" in other.stdout


def test_replay_of_a_redis_job_takes_the_query_from_its_state(
    embedded_env: dict[str, str],
    rclient: redis.Redis,
    redis_url: str,
) -> None:
    job_id = recorded_job(rclient)  # "Capital of France?", answered "Paris is ..."
    out = run(dict(embedded_env, RAGRELAY_REDIS_URL=redis_url), "-c", REPLAY, job_id, "--json")
    assert out.returncode == 0, out.stderr
    diff = json.loads(out.stdout)
    assert diff["before_job_id"] == job_id and not diff["same"]
    assert any(line.startswith("-Paris is the capital") for line in diff["answer_diff"])


def test_timeline_command_writes_the_page_of_a_redis_job(
    rclient: redis.Redis,
    settings: Settings,
    tmp_path: Path,
) -> None:
    job_id = recorded_job(rclient)
    page = tmp_path / "job.html"
    out = CliRunner().invoke(
        timeline, [job_id, "-o", str(page)], obj=settings.model_copy(update={"data_dir": tmp_path})
    )
    assert out.exit_code == 0, out.output
    assert len(step_bars(page.read_text())) == 8
    missing = CliRunner().invoke(timeline, ["0" * 32], obj=settings)
    assert missing.exit_code != 0 and "no job" in missing.output
