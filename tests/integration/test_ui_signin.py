"""The /ui browser surface over real HTTP: the gateway on uvicorn on loopback, a private
redis-server. No key in addresses (`?key=` refused, and redacted from `ragrelay serve`'s
access log), sign-in by a form POST that sets a signed HttpOnly SameSite=Strict cookie,
tenancy, sign-out, revocation, CSP and friends on every /ui answer, and citation URLs that
are not http(s) never rendered as links."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
import redis

from bus.keys import Keys
from bus.settings import Settings
from orchestrator.jobs import JobStore
from ragrelay.gateway import GatewayConfig, create_app
from ragrelay.gateway.keys_store import ApiKeyStore
from ragrelay.gateway.session import SessionClaims, sign_session
from ragrelay.gateway.ui_signin import COOKIE
from schemas import Citation, JobRequest
from tests.conftest import REPO
from tests.interop.support import serve_in_thread, wait_http
from tests.support.redis_server import RedisServer, free_port
from tests.unit.ragrelay.observe.test_timeline import result as final_result
from tests.unit.ragrelay.observe.test_timeline import two_iteration_trace

pytestmark = pytest.mark.integration

SECRET = "test-ui-session-secret-0123456789abcdef"
TTL_S = 900


def config(**overrides: object) -> GatewayConfig:
    base: dict[str, object] = {
        "rate_per_s": 1000.0,
        "burst": 1000,
        "require_workers": False,
        "ui_session_secret": SECRET,
        "ui_session_ttl_s": TTL_S,
    }
    return GatewayConfig(**{**base, **overrides})  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def gateway(redis_server: RedisServer) -> Iterator[str]:
    with serve_in_thread(create_app(Settings(redis_url=redis_server.url), config())) as url:
        yield url


@pytest.fixture
def http(gateway: str, rclient: redis.Redis) -> Iterator[httpx.Client]:
    """A client of the gateway (after ``rclient`` flushed Redis); never follows redirects."""
    with httpx.Client(base_url=gateway, timeout=10, follow_redirects=False) as client:
        yield client


def job_with(
    rclient: redis.Redis, tenant: str = "acme", citations: list[Citation] | None = None
) -> str:
    """A finished job as the orchestrator leaves it, with ``citations`` in its result."""
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
    if citations is not None:
        result = result.model_copy(update={"citations": citations})
    rclient.set(Keys().result(job_id), result.to_json())
    return job_id


def sign_in(
    http: httpx.Client, key: str, *, next_path: str | None = None, origin: str | None = "self"
) -> httpx.Response:
    """POST the sign-in form as a browser does: urlencoded body, our own Origin."""
    headers = (
        {}
        if origin is None
        else {"Origin": str(http.base_url).rstrip("/") if origin == "self" else origin}
    )
    form = {"key": key, **({"next": next_path} if next_path else {})}
    resp = http.post("/ui/session", data=form, headers=headers)
    http.cookies.clear()  # each request below says which cookie it sends
    return resp


def jar(cookie: str) -> dict[str, str]:
    """The Cookie header a browser sends back (the client itself keeps no cookies)."""
    return {"Cookie": f"{COOKIE}={cookie}"}


def session_cookie(resp: httpx.Response) -> str:
    value = resp.cookies.get(COOKIE)
    assert value, resp.headers.get("set-cookie")
    return value


def set_cookie_attributes(resp: httpx.Response) -> dict[str, str]:
    [header] = [v for k, v in resp.headers.multi_items() if k == "set-cookie"]
    name_value, *attrs = [part.strip() for part in header.split(";")]
    assert name_value.startswith(f"{COOKIE}=")
    return {a.partition("=")[0].lower(): a.partition("=")[2] for a in attrs}


def directives(csp: str) -> dict[str, str]:
    return {d.strip().split(" ", 1)[0]: d.strip().partition(" ")[2] for d in csp.split(";")}


def test_a_key_in_the_address_no_longer_opens_a_page(
    http: httpx.Client, rclient: redis.Redis
) -> None:
    key = ApiKeyStore(rclient).create("acme")[1]
    job_id = job_with(rclient)
    for headers in ({}, {"Accept": "text/html"}, {"Authorization": f"Bearer {key}"}):
        resp = http.get(f"/ui/jobs/{job_id}", params={"key": key}, headers=headers)
        assert resp.status_code == 401, resp.text
        assert "/ui/login" in resp.json()["detail"] and "?key=" in resp.json()["detail"]
        assert key not in resp.text
        assert job_id not in resp.text


def test_signing_in_sets_an_httponly_samesite_strict_session_cookie(
    http: httpx.Client,
    rclient: redis.Redis,
) -> None:
    key = ApiKeyStore(rclient).create("acme")[1]
    job_id = job_with(rclient)

    form = http.get("/ui/login", params={"next": f"/ui/jobs/{job_id}"})
    assert form.status_code == 200 and form.headers["content-type"].startswith("text/html")
    assert re.search(r'<form method="post" action="/ui/session"', form.text)
    assert 'type="password"' in form.text and f'value="/ui/jobs/{job_id}"' in form.text

    resp = sign_in(http, key, next_path=f"/ui/jobs/{job_id}")
    assert resp.status_code == 303 and resp.headers["location"] == f"/ui/jobs/{job_id}"
    attrs = set_cookie_attributes(resp)
    assert "httponly" in attrs and attrs["samesite"].lower() == "strict"
    assert attrs["path"] == "/ui" and attrs["max-age"] == str(TTL_S)
    assert "secure" not in attrs  # plain http on loopback; see the Secure test below
    cookie = session_cookie(resp)
    assert key not in cookie and key.split("_")[2] not in cookie  # the key is not in it

    page = http.get(f"/ui/jobs/{job_id}", headers=jar(cookie))
    assert page.status_code == 200 and f"Job <code>{job_id}</code>" in page.text
    who = http.get("/ui/login", headers=jar(cookie))
    assert "Signed in as tenant <b>acme</b>" in who.text and 'id="sign-out"' in who.text


def test_the_cookie_is_secure_when_configured_for_a_tls_proxy(
    redis_server: RedisServer, rclient: redis.Redis
) -> None:
    key = ApiKeyStore(rclient).create("acme")[1]
    app = create_app(Settings(redis_url=redis_server.url), config(ui_cookie_secure=True))
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        resp = sign_in(client, key)
    assert resp.status_code == 303 and "secure" in set_cookie_attributes(resp)


def test_a_wrong_or_revoked_key_signs_nobody_in(http: httpx.Client, rclient: redis.Redis) -> None:
    store = ApiKeyStore(rclient)
    record, key = store.create("acme")
    for bad in ("rr_nope", key[:-1] + ("A" if key[-1] != "A" else "B"), "", "x" * 500):
        resp = sign_in(http, bad)
        assert resp.status_code == 401 and "set-cookie" not in resp.headers
        assert "invalid or revoked API key" in resp.text and 'name="key"' in resp.text
    cookie = session_cookie(sign_in(http, key))
    job_id = job_with(rclient)
    assert http.get(f"/ui/jobs/{job_id}", headers=jar(cookie)).status_code == 200
    store.revoke(record.key_id)  # its sessions end with it
    assert http.get(f"/ui/jobs/{job_id}", headers=jar(cookie)).status_code == 401
    assert sign_in(http, key).status_code == 401


def test_a_session_sees_only_its_own_tenants_jobs(http: httpx.Client, rclient: redis.Redis) -> None:
    store = ApiKeyStore(rclient)
    acme = session_cookie(sign_in(http, store.create("acme")[1]))
    globex = session_cookie(sign_in(http, store.create("globex")[1]))
    acme_job, globex_job = job_with(rclient, "acme"), job_with(rclient, "globex")
    assert http.get(f"/ui/jobs/{acme_job}", headers=jar(acme)).status_code == 200
    assert http.get(f"/ui/jobs/{globex_job}", headers=jar(globex)).status_code == 200
    denied = http.get(f"/ui/jobs/{globex_job}", headers=jar(acme))
    assert denied.status_code == 403 and "Capital" not in denied.text
    assert http.get(f"/ui/jobs/{acme_job}", headers=jar(globex)).status_code == 403
    # a forged session naming the other tenant for acme's key is refused
    acme_key_id = ApiKeyStore(rclient).list("acme")[0].key_id
    forged = sign_session(
        SessionClaims("globex", acme_key_id, "s", int(time.time()) + 60), b"not-the-secret-" * 3
    )
    assert http.get(f"/ui/jobs/{globex_job}", headers=jar(forged)).status_code == 401


def test_expired_foreign_and_garbage_sessions_send_a_browser_to_sign_in(
    http: httpx.Client,
    rclient: redis.Redis,
) -> None:
    record, _ = ApiKeyStore(rclient).create("acme")
    job_id = job_with(rclient)
    now = int(time.time())
    expired = sign_session(SessionClaims("acme", record.key_id, "s1", now - 1), SECRET.encode())
    valid = sign_session(SessionClaims("acme", record.key_id, "s2", now + 60), SECRET.encode())
    other_secret = sign_session(
        SessionClaims("acme", record.key_id, "s3", now + 60), b"another-replica-secret-0123456789"
    )
    # a token signed with the configured secret is good on any replica sharing it
    assert http.get(f"/ui/jobs/{job_id}", headers=jar(valid)).status_code == 200
    for cookie in (expired, other_secret, "garbage", valid[:-3]):
        browser = http.get(
            f"/ui/jobs/{job_id}",
            headers={**jar(cookie), "Accept": "text/html,application/xhtml+xml"},
        )
        assert browser.status_code == 303
        assert browser.headers["location"] == f"/ui/login?next=%2Fui%2Fjobs%2F{job_id}"
        script = http.get(f"/ui/jobs/{job_id}", headers=jar(cookie))
        assert script.status_code == 401 and script.headers["www-authenticate"] == (
            'Bearer realm="ragrelay"'
        )


def test_bearer_keys_still_open_the_page_for_scripts(
    http: httpx.Client, rclient: redis.Redis
) -> None:
    key = ApiKeyStore(rclient).create("acme")[1]
    job_id = job_with(rclient)
    resp = http.get(f"/ui/jobs/{job_id}", headers={"Authorization": f"Bearer {key}"})
    assert resp.status_code == 200 and "Paris is the capital &lt;of&gt; France." in resp.text


def test_a_sign_in_or_out_posted_from_another_origin_is_refused(
    http: httpx.Client,
    rclient: redis.Redis,
) -> None:
    key = ApiKeyStore(rclient).create("acme")[1]
    for origin in ("http://evil.example", "null", "http://127.0.0.1:1"):
        resp = sign_in(http, key, origin=origin)
        assert resp.status_code == 403 and "set-cookie" not in resp.headers
    for hidden in (
        {"Sec-Fetch-Site": "cross-site"},
        {"Origin": "null"},
        {"Origin": "null", "Sec-Fetch-Site": "same-site"},
    ):
        assert http.post("/ui/session", data={"key": key}, headers=hidden).status_code == 403
    # a browser that hides Origin still says where the POST came from
    assert (
        http.post(
            "/ui/session",
            data={"key": key},
            headers={"Origin": "null", "Sec-Fetch-Site": "same-origin"},
        ).status_code
        == 303
    )
    http.cookies.clear()
    cookie = session_cookie(sign_in(http, key))
    out = http.post("/ui/logout", headers={**jar(cookie), "Origin": "http://evil.example"})
    assert out.status_code == 403 and "set-cookie" not in out.headers
    job_id = job_with(rclient)
    assert http.get(f"/ui/jobs/{job_id}", headers=jar(cookie)).status_code == 200
    # a form post must be a form: no JSON bodies, no keys in the address
    assert (
        http.post(
            "/ui/session", json={"key": key}, headers={"Origin": str(http.base_url).rstrip("/")}
        ).status_code
        == 415
    )


def test_signing_out_clears_the_cookie_and_ends_the_session(
    http: httpx.Client, rclient: redis.Redis
) -> None:
    key = ApiKeyStore(rclient).create("acme")[1]
    job_id = job_with(rclient)
    cookie = session_cookie(sign_in(http, key))
    out = http.post("/ui/logout", headers={**jar(cookie), "Origin": str(http.base_url).rstrip("/")})
    assert out.status_code == 303 and out.headers["location"] == "/ui/login"
    attrs = set_cookie_attributes(out)
    assert attrs["max-age"] == "0" and attrs["path"] == "/ui"
    # even a copy of the old cookie no longer works
    assert http.get(f"/ui/jobs/{job_id}", headers=jar(cookie)).status_code == 401


def test_every_ui_answer_carries_a_csp_without_unsafe_inline(
    http: httpx.Client, rclient: redis.Redis
) -> None:
    key = ApiKeyStore(rclient).create("acme")[1]
    job_id = job_with(rclient)
    auth = {"Authorization": f"Bearer {key}"}
    answers = {
        "page": http.get(f"/ui/jobs/{job_id}", headers=auth),
        "login": http.get("/ui/login"),
        "signed in": sign_in(http, key),
        "refused": sign_in(http, "rr_nope"),
        "no session": http.get(f"/ui/jobs/{job_id}"),
        "to sign in": http.get(f"/ui/jobs/{job_id}", headers={"Accept": "text/html"}),
        "unknown job": http.get("/ui/jobs/0000", headers=auth),
        "bad id": http.get("/ui/jobs/bad%20id", headers=auth),
        "key in address": http.get(f"/ui/jobs/{job_id}", params={"key": key}),
    }
    assert [r.status_code for r in answers.values()] == [
        200,
        200,
        303,
        401,
        401,
        303,
        404,
        422,
        401,
    ]
    for name, resp in answers.items():
        csp = directives(resp.headers["content-security-policy"])
        assert csp["default-src"] == "'none'", name
        assert "unsafe-inline" not in resp.headers["content-security-policy"], name
        assert csp["frame-ancestors"] == "'none'" and csp["base-uri"] == "'none'", name
        assert resp.headers["x-content-type-options"] == "nosniff", name
        # the sign-in page needs its Origin sent with its POST (see ui_signin.LOGIN_HEADERS)
        assert resp.headers["referrer-policy"] == (
            "same-origin" if name in ("login", "signed in", "refused") else "no-referrer"
        ), name
        assert resp.headers["cache-control"] == "no-store", name
    page = directives(answers["page"].headers["content-security-policy"])
    assert page["script-src"].startswith("'sha256-") and " " not in page["script-src"]
    assert page["form-action"] == "'none'"
    login = directives(answers["login"].headers["content-security-policy"])
    assert "script-src" not in login and login["form-action"] == "'self'"
    # the JSON API is not a page: its answers are left alone
    assert "content-security-policy" not in http.get("/v1/jobs/x", headers=auth).headers


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str | None] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.hrefs += [v for k, v in attrs if k in ("href", "src", "action", "formaction")]


SCRIPT_URLS = [
    "javascript:document.title='pwned'",
    "JaVaScRiPt:alert(document.location)",
    "\tjava\nscript:alert(1)",
    "data:text/html,<script>alert(document.location)</script>",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "vbscript:msgbox(1)",
]


def test_script_and_data_citation_urls_are_not_rendered_as_links(
    http: httpx.Client,
    rclient: redis.Redis,
) -> None:
    key = ApiKeyStore(rclient).create("acme")[1]
    cites = [
        Citation(
            chunk_id=f"d{i}#0",
            doc_id=f"d{i}",
            title=f"doc {i}",
            url=url,
            source="web" if i % 2 else "internal",
        )
        for i, url in enumerate([*SCRIPT_URLS, "https://example.com/ok"])
    ]
    job_id = job_with(rclient, citations=cites)
    page = http.get(f"/ui/jobs/{job_id}", headers={"Authorization": f"Bearer {key}"})
    assert page.status_code == 200
    links = _Links()
    links.feed(page.text)
    assert links.hrefs == ["https://example.com/ok"]
    assert page.text.count("(not linked)") == len(SCRIPT_URLS)
    lowered = page.text.lower()
    for url in SCRIPT_URLS:
        assert url.lower().strip() not in lowered, url


def test_a_stale_key_link_does_not_write_the_key_to_the_access_log(
    base_env: dict[str, str],
    redis_url: str,
    rclient: redis.Redis,
    tmp_path: Path,
) -> None:
    key = ApiKeyStore(rclient).create("acme")[1]
    port = free_port()
    log = tmp_path / "serve.log"
    env = dict(base_env, RAGRELAY_REDIS_URL=redis_url, RAGRELAY_LOG_LEVEL="INFO")
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ragrelay", "serve", "--port", str(port)],
            env=env,
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/healthz")
        stale = httpx.get(f"{base}/ui/jobs/abc", params={"key": key, "x": "1"}, timeout=10)
        assert stale.status_code == 401
        assert httpx.get(f"{base}/healthz", params={"token": "s3cret"}).status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    text = log.read_text()
    assert 'GET /ui/jobs/abc?key=***&x=1 HTTP/1.1\\" 401' in text  # the line is kept
    assert "/healthz?token=*** HTTP" in text
    assert key not in text and key.split("_")[2] not in text and "s3cret" not in text
