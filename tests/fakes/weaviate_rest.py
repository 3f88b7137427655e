"""The REST half of the fake Weaviate: ``http.server`` handler and routes.

See :mod:`tests.fakes.weaviate_server` for the whole fake and what it speaks.
"""

from __future__ import annotations

import contextlib
import json
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from tests.fakes.weaviate_logic import Collection, Recorded

if TYPE_CHECKING:
    from tests.fakes.weaviate_server import FakeWeaviate


class RestHandler(BaseHTTPRequestHandler):
    fake: FakeWeaviate
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # silence stderr logging
        return

    def setup(self) -> None:
        super().setup()
        with self.fake.lock:
            self.fake._connections.add(self.connection)

    def finish(self) -> None:
        with self.fake.lock:
            self.fake._connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        if not length:
            return None
        raw = self.rfile.read(length)
        try:
            return json.loads(raw)
        except ValueError:
            return raw.decode(errors="replace")

    def _send(self, status: int, payload: Any = None) -> None:
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _handle(self) -> None:
        fake = self.fake
        path = urlsplit(self.path).path
        body = self._body()
        fake.record(
            Recorded(
                "rest", self.command, path, body, {k.lower(): v for k, v in self.headers.items()}
            )
        )
        if fake.unavailable:
            return self._send(503, {"error": [{"message": "service unavailable"}]})
        public = path.startswith("/v1/.well-known/")
        if not public and not fake.authorised(self.headers.get("Authorization")):
            return self._send(401, {"code": 401, "message": "anonymous access not enabled"})
        status, payload = _route(
            fake, self.command, [unquote(p) for p in path.split("/") if p], body
        )
        self._send(status, payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _handle


def _error(message: str) -> dict[str, Any]:
    return {"error": [{"message": message}]}


def _route(fake: FakeWeaviate, verb: str, parts: list[str], body: Any) -> tuple[int, Any]:
    match parts:
        case ["v1", "meta"]:
            return 200, {
                "hostname": "http://[::]:8080",
                "version": fake.version,
                "modules": {},
                "grpcMaxMessageSize": 104858000,
            }
        case ["v1", ".well-known", "ready" | "live"]:
            return 200, None
        case ["v1", ".well-known", "openid-configuration"]:
            return 404, None
        case ["v1", "nodes", *_]:
            return 200, {
                "nodes": [
                    {
                        "name": "fake-0",
                        "status": "HEALTHY",
                        "version": fake.version,
                        "gitHash": "fake",
                    }
                ]
            }
        case ["v1", "schema"] if verb == "GET":
            with fake.lock:
                return 200, {"classes": [c.schema for c in fake.collections.values()]}
        case ["v1", "schema"] if verb == "POST":
            return _create_collection(fake, body)
        case ["v1", "schema", name] if verb in ("GET", "HEAD"):
            with fake.lock:
                col = fake.collections.get(name)
                return (200, col.schema) if col else (404, None)
        case ["v1", "schema", name] if verb == "DELETE":
            with fake.lock:
                fake.collections.pop(name, None)
            return 200, None
        case ["v1", "schema", name, "tenants", *rest]:
            return _tenants(fake, verb, name, rest, body)
    return 404, _error(f"no route for {verb} /{'/'.join(parts)}")


def _create_collection(fake: FakeWeaviate, body: Any) -> tuple[int, Any]:
    if not isinstance(body, dict) or not body.get("class"):
        return 422, _error("class name is required")
    name = str(body["class"])
    with fake.lock:
        if name in fake.collections:
            return 422, _error(f"class name {name!r} already exists")
        fake.collections[name] = Collection(schema=body)
    return 200, body


def _tenants(
    fake: FakeWeaviate, verb: str, name: str, rest: list[str], body: Any
) -> tuple[int, Any]:
    with fake.lock:
        col = fake.collections.get(name)
        if col is None:
            return 422, _error(f"class {name!r} not found")
        if not col.multi_tenant:
            return 422, _error(f"multi-tenancy is not enabled for class {name!r}")
        if rest:
            tenant = rest[0]
            if tenant not in col.tenants:
                return 404, None
            return 200, {"name": tenant, "activityStatus": "HOT"}
        if verb == "GET":
            return 200, [{"name": t, "activityStatus": "HOT"} for t in col.tenants]
        if verb == "POST":
            for item in body or []:
                col.tenants.setdefault(str(item["name"]), {})
            return 200, body
        if verb == "DELETE":
            for tenant in body or []:
                col.tenants.pop(str(tenant), None)
            return 200, None
    return 405, _error(f"{verb} not allowed on tenants")


__all__ = ["RestHandler"]
