"""Property-based tests of the gateway's OpenAPI document with schemathesis (in-process ASGI).

Every operation gets generated inputs (valid and invalid) with a valid API key; no input
may cause a 5xx, and responses must match the documented status codes, content types and
schemas. The app runs on a real redis-server. Examples are limited to keep CI fast.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from bus.settings import Settings as RagrelaySettings
from ragrelay.gateway import GatewayConfig, create_app
from ragrelay.gateway.keys_store import ApiKeyStore
from tests.support.redis_server import RedisServer, free_port

pytestmark = pytest.mark.integration

MAX_EXAMPLES = 25


# The app is built at import (schemathesis reads its OpenAPI document then); its Redis is a
# private redis-server started on the reserved port before the first request.
PORT = free_port()
APP = create_app(
    RagrelaySettings(redis_url=f"redis://127.0.0.1:{PORT}/0"),
    GatewayConfig(rate_per_s=10_000.0, burst=10_000, require_workers=False),
)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@pytest.fixture(scope="module")
def fuzz_key(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = RedisServer(tmp_path_factory.mktemp("redis-fuzz"), port=PORT).start()
    client = server.client()
    _, key = ApiKeyStore(client).create("fuzz")
    yield key
    client.close()
    server.stop()


@pytest.fixture
def auth(fuzz_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {fuzz_key}"}


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
def test_no_generated_input_gives_a_server_error(
    case: schemathesis.Case, auth: dict[str, str]
) -> None:
    case.call_and_validate(
        headers=auth,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )
