"""``/docs``: Swagger UI served by the gateway itself, no public CDN.

FastAPI's own ``/docs`` page loads Swagger UI's script and stylesheet from a public CDN, so
it is blank offline or behind a strict firewall. Here the assets come from the
``fastapi-offline`` package (Swagger UI 5's release files, which read FastAPI's OpenAPI 3.1
schema; part of the ``gateway`` extra; only its static files are used), served under
``/docs/assets/``; the page's only script besides the bundle is
``/docs/init.js``, so the page runs under a CSP allowing this origin alone. ``/redoc``
(a CDN script with no packaged copy) is not served.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles

ASSETS = "/docs/assets"
#: Swagger UI sets inline styles and shows images from data: URLs; nothing leaves the origin.
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
_HEADERS = {
    "Content-Security-Policy": DOCS_CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
MISSING = (
    "The API docs page needs the fastapi-offline package (Swagger UI's files): "
    "pip install 'ragrelay[gateway]'. The schema is at /openapi.json."
)


def swagger_ui_dir() -> Path | None:
    """Swagger UI's release files from the ``fastapi-offline`` package, if installed."""
    try:
        spec = importlib.util.find_spec("fastapi_offline")
    except ImportError:
        return None
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "static"
    return path if (path / "swagger-ui-bundle.js").is_file() else None


def page(title: str) -> str:
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>{title} - API docs</title>
<link rel="stylesheet" href="{ASSETS}/swagger-ui.css">
<link rel="icon" type="image/png" href="{ASSETS}/favicon.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{ASSETS}/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script>
</body>
</html>
"""


def init_script(openapi_url: str) -> str:
    # validatorUrl null: Swagger UI would otherwise send the schema to validator.swagger.io
    options = {
        "url": openapi_url,
        "dom_id": "#swagger-ui",
        "layout": "BaseLayout",
        "deepLinking": True,
        "validatorUrl": None,
    }
    return (
        f"window.ui = SwaggerUIBundle(Object.assign({json.dumps(options)}, "
        "{presets: [SwaggerUIBundle.presets.apis]}));\n"
    )


def install(app: FastAPI) -> None:
    """Serve ``/docs`` (make the app with ``docs_url=None, redoc_url=None``)."""
    assets = swagger_ui_dir()
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    def docs() -> Response:
        if assets is None:
            return PlainTextResponse(MISSING, status_code=503, headers=_HEADERS)
        return HTMLResponse(page(app.title), headers=_HEADERS)

    @app.get("/docs/init.js", include_in_schema=False)
    def docs_init() -> Response:
        return Response(init_script(openapi_url), media_type="text/javascript", headers=_HEADERS)

    if assets is not None:
        app.mount(ASSETS, StaticFiles(directory=assets), name="swagger-ui-assets")


__all__ = ["DOCS_CSP", "install", "swagger_ui_dir"]
