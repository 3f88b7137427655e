"""`/docs` works offline (issue 22, item 12): Swagger UI comes from the gateway itself, the
page names no other host, and every asset it names loads."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from bus.settings import Settings
from ragrelay.gateway import GatewayConfig, create_app
from ragrelay.gateway.apidocs import DOCS_CSP

pytestmark = pytest.mark.integration

_URL = re.compile(r"""(?:src|href)=["']([^"']+)["']""")


@pytest.fixture
def client(redis_url: str) -> Iterator[TestClient]:
    app = create_app(Settings(redis_url=redis_url), GatewayConfig())
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def test_docs_names_no_other_host_and_its_assets_load(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert page.headers["content-security-policy"] == DOCS_CSP
    assert (
        "http://" not in page.text
        and "https://" not in page.text
        and "//" not in (page.text.replace("<!DOCTYPE", ""))
    )
    urls = _URL.findall(page.text)
    assert {"/docs/assets/swagger-ui-bundle.js", "/docs/init.js"} <= set(urls)
    assert "/docs/assets/swagger-ui.css" in urls
    for url in urls:
        assert url.startswith("/") and not url.startswith("//"), url
        got = client.get(url)
        assert got.status_code == 200 and got.content, url
    js = client.get("/docs/assets/swagger-ui-bundle.js")
    assert "javascript" in js.headers["content-type"] and b"SwaggerUIBundle" in js.content
    init = client.get("/docs/init.js").text
    assert '"url": "/openapi.json"' in init and '"validatorUrl": null' in init
    assert "http" not in init
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/redoc").status_code == 404  # a CDN page with no packaged copy
