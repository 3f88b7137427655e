"""docker-compose.yml against the Compose Specification schema, and what ragrelay needs of it.

No Docker engine runs here, so `docker compose config` cannot; the file is validated as
written and after Compose-style variable interpolation (defaults and overrides).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import jsonschema
import pytest

Obj = dict[str, Any]
Interpolate = Callable[[Any, Mapping[str, str]], Any]

WORKER_POOLS = {
    "analysis": "threads",
    "generation": "threads",
    "evaluation": "threads",
    "retrieval": "prefork",
    "ingest": "prefork",
}
EMBEDDING_STAGES = {"retrieval", "ingest"}


def errors(validator: jsonschema.Draft7Validator, doc: Obj) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)
    ]


def seconds(duration: str) -> float:
    """A Compose duration such as `1m30s` or `180s` in seconds."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    return sum(float(n) * units[u] for n, u in parts)


def test_compose_file_validates_against_the_compose_spec(
    compose_validator: jsonschema.Draft7Validator, compose_raw: Obj, interpolated: Interpolate
) -> None:
    assert errors(compose_validator, compose_raw) == []
    assert errors(compose_validator, interpolated(compose_raw, {})) == []


def test_compose_schema_check_can_fail(
    compose_validator: jsonschema.Draft7Validator, compose_raw: Obj
) -> None:
    services = dict(compose_raw["services"])
    services["redis"] = {**services["redis"], "helthcheck": {"test": ["CMD", "true"]}}
    assert errors(compose_validator, {**compose_raw, "services": services})
    services["redis"] = {
        **compose_raw["services"]["redis"],
        "depends_on": {"x": {"condition": "up"}},
    }
    assert errors(compose_validator, {**compose_raw, "services": services})


def test_redis_persists_with_aof_and_never_evicts(
    compose_raw: Obj, interpolated: Interpolate
) -> None:
    redis = interpolated(compose_raw, {})["services"]["redis"]
    command = redis["command"]
    flags = dict(zip(command[1::2], command[2::2], strict=True))
    assert command[0] == "redis-server"
    assert flags["--appendonly"] == "yes"
    assert flags["--appendfsync"] == "everysec"
    assert flags["--maxmemory-policy"] == "noeviction"
    data_dir = flags["--dir"]
    assert any(
        v.split(":")[0] == "redis-data" and v.split(":")[1] == data_dir for v in redis["volumes"]
    ), "the AOF must live on a named volume"
    assert "redis-data" in compose_raw["volumes"]
    strict = interpolated(compose_raw, {"REDIS_APPENDFSYNC": "always"})["services"]["redis"]
    assert "always" in strict["command"]


def test_one_service_per_worker_kind_with_settable_replicas(
    compose_raw: Obj, interpolated: Interpolate
) -> None:
    defaults = interpolated(compose_raw, {})["services"]
    scaled = interpolated(compose_raw, {f"{s.upper()}_REPLICAS": "3" for s in WORKER_POOLS})
    for stage, pool in WORKER_POOLS.items():
        name = f"worker-{stage}"
        service = defaults[name]
        assert service["command"][:4] == ["worker", stage, "--pool", pool]
        assert int(service["command"][5]) >= 1
        assert int(service["deploy"]["replicas"]) == 1
        assert int(scaled["services"][name]["deploy"]["replicas"]) == 3


def test_every_ragrelay_service_is_health_checked_and_waits_for_its_stores(
    compose_raw: Obj, interpolated: Interpolate
) -> None:
    services = interpolated(compose_raw, {})["services"]
    assert {"redis", "weaviate", "gateway", "orchestrator"} <= set(services)
    for name, service in services.items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"
        for dep, cond in service.get("depends_on", {}).items():
            assert cond["condition"] == "service_healthy", (name, dep)
            assert services[dep].get("healthcheck"), f"{dep} must be checkable to be waited on"
    for name in ("gateway", "orchestrator", *(f"worker-{s}" for s in WORKER_POOLS)):
        assert "redis" in services[name]["depends_on"], name
    for stage in EMBEDDING_STAGES:
        assert "weaviate" in services[f"worker-{stage}"]["depends_on"]


def test_worker_health_is_their_heartbeat_and_shutdown_is_warm(
    compose_raw: Obj, interpolated: Interpolate
) -> None:
    services = interpolated(compose_raw, {})["services"]
    for stage in WORKER_POOLS:
        service = services[f"worker-{stage}"]
        env = service["environment"]
        test = service["healthcheck"]["test"]
        assert test[0] == "CMD"
        assert test[1:5] == [
            "ragrelay",
            "healthcheck",
            "--heartbeat",
            f"{env['RAGRELAY_HEARTBEAT_DIR']}/{stage}.heartbeat",
        ]
        assert service["stop_signal"] == "SIGTERM"
        assert seconds(service["stop_grace_period"]) > float(env["RAGRELAY_STEP_TIMEOUT_S"])
        assert float(env["RAGRELAY_VISIBILITY_TIMEOUT_S"]) > float(env["RAGRELAY_STEP_TIMEOUT_S"])
    orchestrator = services["orchestrator"]["healthcheck"]["test"]
    assert "/var/run/ragrelay/orchestrator.heartbeat" in orchestrator
    assert "/readyz" in " ".join(services["gateway"]["healthcheck"]["test"])


def test_weaviate_takes_our_vectors_over_grpc(compose_raw: Obj, interpolated: Interpolate) -> None:
    services = interpolated(compose_raw, {})["services"]
    weaviate = services["weaviate"]
    assert weaviate["environment"]["DEFAULT_VECTORIZER_MODULE"] == "none"
    assert weaviate["environment"]["GRPC_PORT"] == "50051"
    assert "semitechnologies/weaviate:" in weaviate["image"]
    major, minor = (int(x) for x in weaviate["image"].rsplit(":", 1)[1].split(".")[:2])
    assert (major, minor) >= (1, 27), "weaviate-client v4 needs server 1.27+"
    env = services["worker-retrieval"]["environment"]
    assert env["RAGRELAY_WEAVIATE_URL"] == "http://weaviate:8080"
    assert env["RAGRELAY_WEAVIATE_GRPC_PORT"] == "50051"
    assert env["RAGRELAY_REDIS_URL"].startswith("redis://redis:6379/")


def test_api_key_is_passed_through_never_written(compose_raw: Obj) -> None:
    for name, service in compose_raw["services"].items():
        env = service.get("environment", {})
        if "RAGRELAY_ANTHROPIC_API_KEY" in env:
            assert env["RAGRELAY_ANTHROPIC_API_KEY"] is None, name


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        ("${A:-1}", {}, "1"),
        ("${A:-1}", {"A": ""}, "1"),
        ("${A-1}", {"A": ""}, ""),
        ("${A}", {"A": "x"}, "x"),
        ("$${A}", {"A": "x"}, "${A}"),
        ("redis://${H:-redis}:6379", {"H": "r2"}, "redis://r2:6379"),
    ],
)
def test_interpolation_follows_compose_rules(
    interpolated: Interpolate, text: str, env: dict[str, str], expected: str
) -> None:
    assert interpolated(text, env) == expected
