"""The timeline page in a real headless Chromium: a real cluster runs a two-iteration job
(orchestrator + four worker processes on a private Redis, Claude-shaped calls to a loopback
Messages API), the real gateway with the UI
router serves the page on uvicorn, Chromium signs in through the form and loads it, we count
the bars and screenshot it. Then the browser surface of issue 19: a document whose
``metadata.url`` is ``javascript:...`` or ``data:...`` is cited, and clicking the citation
runs nothing, while the page's own script still works under its strict CSP.

Needs Debian's ``chromium`` and ``chromium-driver`` (``make system-deps``); never downloads a
browser. Set ``RAGRELAY_SCREENSHOT_DIR`` to keep the screenshot (docs/img/timeline.png).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from bus.keys import Keys
from bus.settings import Settings
from orchestrator.jobs import JobStore
from ragrelay.gateway import GatewayConfig, create_app
from ragrelay.gateway.keys_store import ApiKeyStore
from ragrelay.gateway.ui_signin import COOKIE
from tests.fakes.anthropic_server import FakeAnthropicServer
from tests.interop.support import PIPELINE, serve_in_thread
from tests.support.cluster import REPO, Cluster, sample_corpus_env
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
QUESTION = "How does ragrelay make sure no job loops forever?"

# Documents of tenant "mallory" (nobody else's), each cited by the one job that asks about it.
# Each payload, if it ever ran, would set window.pwned and the title (nothing else).
JS_URL = "javascript:void(window.pwned=document.title='pwned-js')"
DATA_URL = "data:text/html,<script>opener&&(opener.pwned=1);document.title='pwned-data'</script>"
EVIL_DOCS = {
    "js": {
        "_id": "tidal-clock",
        "title": "The tidal clock",
        "metadata": {"url": JS_URL},
        "text": "The tidal clock of Saint-Malo counts the hours between the highest "
        "tides. The tidal clock was built in 1921 from brass and oak.",
    },
    "data": {
        "_id": "glass-harmonica",
        "title": "The glass harmonica",
        "metadata": {"url": DATA_URL},
        "text": "The glass harmonica plays music from spinning glass bowls touched by "
        "wet fingers. Benjamin Franklin invented the glass harmonica in 1761.",
    },
}
EVIL_QUESTIONS = {
    "js": "When was the tidal clock of Saint-Malo built?",
    "data": "Who invented the glass harmonica?",
}


@pytest.fixture(scope="module")
def env(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    client = redis_server.client()
    client.flushall()
    client.close()
    env = sample_corpus_env(tmp_path_factory.mktemp("ui-data"), "acme")
    for name, doc in EVIL_DOCS.items():  # one tenant per document: its job must cite it
        corpus = tmp_path_factory.mktemp(f"evil-{name}") / "corpus.jsonl"
        corpus.write_text(json.dumps(doc) + "\n")
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "ragrelay",
                "ingest",
                str(corpus),
                "--tenant",
                f"mallory-{name}",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=REPO,
        )
        assert out.returncode == 0, out.stderr
    env.update(RAGRELAY_REDIS_URL=redis_server.url, RAGRELAY_LOG_LEVEL="INFO")
    return env


@pytest.fixture(scope="module")
def cluster(env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    # Every verdict is `revise` (so the job loops), the first attempt of each analysis step
    # fails transiently (a retry), generation takes a visible 0.2 s.
    # The stages call Claude's Messages API on a loopback double (0.15 s per call), so the
    # page shows real token counts, cost, models and prompt versions.
    faults = "evaluation=revise,analysis=transient:1"
    llm = FakeAnthropicServer(api_key="fake-key", delay_s=0.15).start()
    c = Cluster(
        dict(
            env,
            RAGRELAY_FAULTS=faults,
            RAGRELAY_BACKOFF_BASE_S="0.05",
            RAGRELAY_ANTHROPIC_API_KEY="fake-key",
            RAGRELAY_ANTHROPIC_BASE_URL=llm.base_url,
        ),
        tmp_path_factory.mktemp("ui-logs"),
    )
    try:
        for stage in PIPELINE:
            c.start(stage, "worker", stage, "--concurrency", "1")
        c.start("orchestrator", "orchestrator")
        c.wait_ready(timeout=60)
        yield c
    finally:
        c.stop()
        llm.stop()


@pytest.fixture(scope="module")
def gateway(cluster: Cluster, env: dict[str, str]) -> Iterator[str]:
    app = create_app(Settings(redis_url=env["RAGRELAY_REDIS_URL"]), GatewayConfig())
    with serve_in_thread(app) as url:
        yield url


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    for exe in (CHROMIUM, CHROMEDRIVER):
        if not shutil.which(exe):
            pytest.fail(
                f"{exe} is missing: run `make system-deps` "
                "(Debian packages chromium and chromium-driver)"
            )
    opts = Options()
    opts.binary_location = CHROMIUM
    for arg in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1100,900",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # CSP reports land here
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    try:
        yield driver
    finally:
        driver.quit()


def run_job(base: str, key: str, query: str = QUESTION) -> str:
    headers = {"Authorization": f"Bearer {key}"}
    resp = httpx.post(
        f"{base}/v1/jobs",
        headers=headers,
        timeout=10,
        json={"query": query, "budget": {"max_iterations": 2}},
    )
    assert resp.status_code == 202, resp.text
    job_id: str = resp.json()["job_id"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        view = httpx.get(f"{base}/v1/jobs/{job_id}", headers=headers, timeout=10).json()
        if view["result"] is not None:
            assert view["result"]["status"] == "budget_exhausted", view
            return job_id
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish in 60 s")


def sign_in(browser: webdriver.Chrome, base: str, key: str, job_id: str) -> None:
    """Open the job's page, get sent to the sign-in form, sign in, land on the page."""
    page = f"{base}/ui/jobs/{job_id}"
    browser.get(page)
    assert browser.current_url == f"{base}/ui/login?next=%2Fui%2Fjobs%2F{job_id}"
    field = browser.find_element(By.ID, "key")
    assert field.get_attribute("type") == "password"
    field.send_keys(key)
    browser.find_element(By.CSS_SELECTOR, "#sign-in button[type=submit]").click()
    WebDriverWait(browser, 10).until(lambda b: b.current_url == page)
    assert key not in browser.current_url
    cookie = browser.get_cookie(COOKIE)
    assert cookie is not None and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert cookie["path"] == "/ui" and key not in cookie["value"]
    assert browser.execute_script("return document.cookie") == ""  # no script can read it


def csp_reports(browser: webdriver.Chrome) -> list[str]:
    """Console messages about Content-Security-Policy since the last call."""
    return [
        e["message"]
        for e in browser.get_log("browser")
        if "Content Security Policy" in e["message"]
    ]


def test_timeline_page_in_chromium_draws_one_bar_per_completed_step(
    gateway: str,
    env: dict[str, str],
    browser: webdriver.Chrome,
    tmp_path: Path,
) -> None:
    client = redis.Redis.from_url(env["RAGRELAY_REDIS_URL"])
    key = ApiKeyStore(client).create("acme")[1]
    job_id = run_job(gateway, key)
    trace = [e for _, e in JobStore(client, Keys()).trace(job_id)]
    result = JobStore(client, Keys()).result(job_id)
    assert result is not None
    completed = [e for e in trace if e.type == "step.completed"]
    lanes = {f"{e.worker_host}:{e.worker_pid}" for e in completed}
    assert len(lanes) == 4  # one worker process per stage

    assert httpx.get(f"{gateway}/ui/jobs/{job_id}", timeout=10).status_code == 401
    assert httpx.get(f"{gateway}/ui/jobs/{job_id}?key={key}", timeout=10).status_code == 401

    sign_in(browser, gateway, key, job_id)
    assert job_id in browser.title
    bars = browser.find_elements(By.CSS_SELECTOR, "svg#timeline rect.step-bar")
    assert len(bars) == len(completed) >= 8  # two iterations of 4+ steps
    assert all(b.is_displayed() and b.size["width"] >= 1 for b in bars)
    assert {b.get_attribute("data-lane") for b in bars} == lanes
    assert {b.get_attribute("data-iteration") for b in bars} == {"1", "2"}
    assert len(browser.find_elements(By.CSS_SELECTOR, "rect.iteration-band")) == 2
    assert browser.find_element(By.ID, "answer").text == result.answer
    assert result.usage.llm_calls >= 6 and result.usage.cost_usd > 0
    assert f"${result.usage.cost_usd:.4f}" in browser.find_element(By.CLASS_NAME, "cards").text
    assert {b.get_attribute("data-stage") for b in bars} == {
        "analysis",
        "retrieval",
        "generation",
        "evaluation",
    }
    cites = browser.find_elements(By.CSS_SELECTOR, "#citations li")
    assert len(cites) == len(result.citations) >= 1

    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1100, min(int(height) + 140, 2400))
    shot = tmp_path / "timeline.png"
    assert browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 20_000  # a drawn page, not a blank one

    bars[0].click()  # the inline script (allowed by its hash) highlights the step's row
    assert "sel" in (browser.find_element(By.ID, "row-0").get_attribute("class") or "")
    assert csp_reports(browser) == []  # the strict CSP blocked nothing of the page's own
    keep = os.environ.get("RAGRELAY_SCREENSHOT_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / "timeline.png")


@pytest.mark.parametrize("payload", ["js", "data"])
def test_a_script_or_data_citation_url_cannot_run_in_chromium(
    gateway: str,
    env: dict[str, str],
    browser: webdriver.Chrome,
    payload: str,
) -> None:
    client = redis.Redis.from_url(env["RAGRELAY_REDIS_URL"])
    key = ApiKeyStore(client).create(f"mallory-{payload}")[1]
    job_id = run_job(gateway, key, EVIL_QUESTIONS[payload])
    result = JobStore(client, Keys()).result(job_id)
    assert result is not None
    url = JS_URL if payload == "js" else DATA_URL
    assert url in {c.url for c in result.citations}  # the attack reached the answer

    sign_in(browser, gateway, key, job_id)
    title = browser.title
    assert job_id in title
    # the page's own script still runs under the strict CSP: the timeline works
    bars = browser.find_elements(By.CSS_SELECTOR, "svg#timeline rect.step-bar")
    assert len(bars) >= 8
    bars[-1].click()
    assert "sel" in (
        browser.find_elements(By.CSS_SELECTOR, "#steps tr[id^=row-]")[-1].get_attribute("class")
        or ""
    )
    # the citation is there, but not as a link
    cites = browser.find_elements(By.CSS_SELECTOR, "#citations li")
    assert cites and all("(not linked)" in li.text for li in cites)
    hrefs = [a.get_attribute("href") or "" for a in browser.find_elements(By.TAG_NAME, "a")]
    assert not [h for h in hrefs if not h.startswith(("http://", "https://"))], hrefs
    for li in cites:
        li.click()
        for element in li.find_elements(By.CSS_SELECTOR, "*"):
            element.click()
    time.sleep(0.5)  # time for a navigation or a script, had one started
    assert browser.execute_script("return typeof window.pwned") == "undefined"
    assert browser.title == title and not browser.title.startswith("pwned")
    assert browser.current_url == f"{gateway}/ui/jobs/{job_id}"
    assert len(browser.window_handles) == 1
    assert csp_reports(browser) == []
