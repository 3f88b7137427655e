"""`/docs` renders in a real browser that can reach nothing but the gateway (issue 22,
item 12): headless Chromium with every other host unresolvable draws the API's operations,
and the page's CSP blocks nothing it needs."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from bus.settings import Settings
from ragrelay.gateway import GatewayConfig, create_app
from tests.interop.support import serve_in_thread
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


@pytest.fixture
def gateway(redis_server: RedisServer) -> Iterator[str]:
    app = create_app(Settings(redis_url=redis_server.url), GatewayConfig())
    with serve_in_thread(app) as base:
        yield base


@pytest.fixture
def offline_browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    for exe in (CHROMIUM, CHROMEDRIVER):
        if not shutil.which(exe):
            pytest.fail(f"{exe} is missing: run `make system-deps`")
    opts = Options()
    opts.binary_location = CHROMIUM
    for arg in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        # offline: no name resolves but the loopback address the gateway listens on
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    try:
        yield driver
    finally:
        driver.quit()


def test_docs_draws_the_operations_offline(gateway: str, offline_browser: webdriver.Chrome) -> None:
    offline_browser.get(f"{gateway}/docs")
    WebDriverWait(offline_browser, 60).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")
    )
    paths = {
        e.text.replace("\u200b", "")
        for e in offline_browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")
    }
    assert "/v1/jobs" in paths, paths
    problems = [
        e["message"]
        for e in offline_browser.get_log("browser")
        if e["level"] == "SEVERE" or "Content Security Policy" in e["message"]
    ]
    assert problems == []
