"""k8s/overlays/sentinel and docker-compose.sentinel.yml: Redis behind Sentinel, offline.

The overlay renders, every object validates (Kubernetes schemas, strict; KEDA's CRDs), every
ragrelay process gets a redis+sentinel:// URL that ragrelay's own parser accepts, and KEDA
reads the queues through the Sentinels.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate  # type: ignore[import-untyped]  # ships no py.typed
import pytest
import yaml

from bus.sentinel_url import SentinelUrl

Obj = dict[str, Any]
SchemaValidator = Callable[[Obj], list[str]]
KEDA_API = "keda.sh/v1alpha1"
RAGRELAY = ("gateway", "orchestrator", "worker")


@pytest.fixture(scope="module")
def objs(repo: Path, render: Callable[[Path], list[Obj]]) -> list[Obj]:
    return render(repo / "k8s" / "overlays" / "sentinel")


def env_of(container: Obj) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container.get("env", [])}


@pytest.mark.parametrize("version", ("1.30", "1.37"))
def test_every_object_validates(
    objs: list[Obj], keda: dict[tuple[str, str], SchemaValidator], version: str
) -> None:
    errors = []
    for obj in objs:
        name = f"{obj['kind']}/{obj['metadata']['name']}"
        if obj["apiVersion"] == KEDA_API:
            errors += [f"{name}: {e}" for e in keda[(obj["apiVersion"], obj["kind"])](obj)]
            continue
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{name}: {'/'.join(map(str, exc.path))}: {exc.message}")
    assert not errors, "\n".join(errors)


def test_every_ragrelay_process_reaches_redis_through_three_sentinels(objs: list[Obj]) -> None:
    apps = [
        o
        for o in objs
        if o["kind"] == "Deployment"
        and o["metadata"]["labels"].get("app.kubernetes.io/component") in RAGRELAY
    ]
    assert len(apps) >= 7  # gateway, orchestrator, five worker kinds
    for app in apps:
        for container in app["spec"]["template"]["spec"]["containers"]:
            url = env_of(container)["RAGRELAY_REDIS_URL"].replace("$(REDIS_PASSWORD)", "pw")
            parsed = SentinelUrl.parse(url)
            assert parsed.master_name == "ragrelay" and parsed.password == "pw"
            assert [h for h, _ in parsed.sentinels] == [
                f"ragrelay-sentinel-{i}.ragrelay-sentinel" for i in range(3)
            ]


def test_sentinels_and_data_nodes_match_the_url(objs: list[Obj]) -> None:
    sets = {o["metadata"]["name"]: o for o in objs if o["kind"] == "StatefulSet"}
    assert sets["ragrelay-sentinel"]["spec"]["replicas"] == 3
    assert sets["ragrelay-redis"]["spec"]["replicas"] == 2
    script = sets["ragrelay-sentinel"]["spec"]["template"]["spec"]["containers"][0]["command"][2]
    assert "sentinel monitor ragrelay ragrelay-redis-0.ragrelay-redis-headless 6379 2" in script
    redis_cmd = sets["ragrelay-redis"]["spec"]["template"]["spec"]["containers"][0]["command"]
    assert "get-master-addr-by-name ragrelay" in redis_cmd[2] and "--replicaof" in redis_cmd[2]


def test_keda_reads_queues_through_the_sentinels(objs: list[Obj]) -> None:
    scaled = [o for o in objs if o["kind"] == "ScaledObject"]
    assert scaled
    for obj in scaled:
        (trigger,) = obj["spec"]["triggers"]
        assert trigger["type"] == "redis-sentinel"
        assert trigger["metadata"]["sentinelMaster"] == "ragrelay"
        assert "address" not in trigger["metadata"]
        assert trigger["metadata"]["addresses"].count(":26379") == 3


def test_the_sentinels_admit_only_ragrelay_keda_and_redis(objs: list[Obj]) -> None:
    policies = {o["metadata"]["name"]: o for o in objs if o["kind"] == "NetworkPolicy"}
    (rule,) = policies["ragrelay-sentinel"]["spec"]["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 26379}]
    redis_rules = policies["ragrelay-redis"]["spec"]["ingress"]
    assert any(
        "ragrelay-sentinel" in str(r["from"]) and r["ports"][0]["port"] == 6379 for r in redis_rules
    )


# -- compose -------------------------------------------------------------------------------------
def merged(repo: Path) -> Obj:
    """docker-compose.yml with docker-compose.sentinel.yml on top (Compose's merge of maps)."""

    def merge(a: Any, b: Any) -> Any:
        if isinstance(a, dict) and isinstance(b, dict):
            return {k: merge(a[k], v) if k in a else v for k, v in b.items()} | {
                k: v for k, v in a.items() if k not in b
            }
        return b

    base = yaml.safe_load((repo / "docker-compose.yml").read_text())
    over = yaml.safe_load((repo / "docker-compose.sentinel.yml").read_text())
    out: Obj = merge(base, over)
    return out


def test_compose_sentinel_file_validates_and_points_every_process_at_the_sentinels(
    repo: Path,
    compose_validator: jsonschema.Draft7Validator,
    interpolated: Callable[[Any, Mapping[str, str]], Any],
) -> None:
    over = yaml.safe_load((repo / "docker-compose.sentinel.yml").read_text())
    assert list(compose_validator.iter_errors(over)) == []
    doc = interpolated(merged(repo), {})
    assert list(compose_validator.iter_errors(doc)) == []
    services = doc["services"]
    for name in ("redis-replica", "sentinel-1", "sentinel-2", "sentinel-3"):
        assert name in services
    ragrelay = [
        s for n, s in services.items() if n in ("gateway", "orchestrator") or n.startswith("worker")
    ]
    assert len(ragrelay) == 7
    for service in ragrelay:
        url = service["environment"]["RAGRELAY_REDIS_URL"]
        parsed = SentinelUrl.parse(url)
        assert parsed.master_name == "ragrelay" and len(parsed.sentinels) == 3
