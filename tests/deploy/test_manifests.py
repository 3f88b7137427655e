"""The Kubernetes manifests, rendered per overlay and checked offline.

Every object is validated against the Kubernetes JSON schemas (`kubernetes-validate`,
strict: unknown fields are errors) or, for KEDA's kinds, against KEDA's CRD schemas.
Then the properties the deployment relies on are asserted: one ScaledObject per queue,
heartbeat probes, grace periods, non-root pods, secrets by reference only, and network
policies that admit only ragrelay's pods to Redis and Weaviate.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]  # ships no py.typed
import pytest

Obj = dict[str, Any]
SchemaValidator = Callable[[Obj], list[str]]

OVERLAYS = ("dev", "prod")
K8S_VERSIONS = ("1.30", "1.37")
WORKER_POOLS = {
    "analysis": "threads",
    "generation": "threads",
    "evaluation": "threads",
    "retrieval": "prefork",
    "ingest": "prefork",
}
QUEUES = {*WORKER_POOLS, "orchestrator"}
APP_COMPONENTS = {"gateway", "orchestrator", "worker"}
SECRETS = {
    "ragrelay-redis": {"password"},
    "ragrelay-weaviate": {"api-key"},
    "ragrelay-anthropic": {"api-key"},
    "ragrelay-gateway": {"ui-session-secret"},
}
HEARTBEAT_DIR = "/var/run/ragrelay"
SECRETISH = re.compile(r"(^|_)(API_?KEY|KEYS?|PASSWORD|PASSWD|TOKEN|SECRET|AUTH)(_|$)", re.I)
KEDA_API = "keda.sh/v1alpha1"


# --- helpers -------------------------------------------------------------------------------


def of_kind(objs: Iterable[Obj], kind: str) -> dict[str, Obj]:
    return {o["metadata"]["name"]: o for o in objs if o["kind"] == kind}


def workloads(objs: Iterable[Obj]) -> list[Obj]:
    return [o for o in objs if o["kind"] in ("Deployment", "StatefulSet")]


def containers(workload: Obj) -> list[Obj]:
    spec = workload["spec"]["template"]["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


def config(objs: Iterable[Obj]) -> dict[str, str]:
    """The ragrelay-config ConfigMap's data (its name carries a content hash)."""
    maps = [
        o
        for o in objs
        if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("ragrelay-config-")
    ]
    assert len(maps) == 1, [o["metadata"]["name"] for o in maps]
    data: dict[str, str] = maps[0]["data"]
    return data


def selector_matches(selector: Obj, labels: dict[str, str]) -> bool:
    """Kubernetes label-selector semantics: matchLabels AND every matchExpression."""
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions", []):
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def pod_labels(workload: Obj) -> dict[str, str]:
    labels: dict[str, str] = workload["spec"]["template"]["metadata"]["labels"]
    return labels


def is_ragrelay(container: Obj) -> bool:
    return "ragrelay" in container["image"].rsplit("/", 1)[-1].split(":")[0]


def dockerfile_uid(repo: Path) -> int:
    users = [
        line.split()[1]
        for line in (repo / "Dockerfile").read_text(encoding="utf-8").splitlines()
        if line.startswith("USER ")
    ]
    return int(users[-1].split(":")[0])


# --- schema validation ----------------------------------------------------------------------


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_core_object_validates_against_kubernetes_schema(
    rendered: dict[str, list[Obj]], overlay: str, version: str
) -> None:
    errors = []
    core = [o for o in rendered[overlay] if o["apiVersion"] != KEDA_API]
    assert len(core) >= 25, "the overlay rendered suspiciously few objects"
    for obj in core:
        name = f"{obj['kind']}/{obj['metadata']['name']}"
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{name}: {'/'.join(map(str, exc.path))}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            errors.append(f"{name}: {exc.message}")
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_keda_object_validates_against_keda_crds(
    rendered: dict[str, list[Obj]], keda: dict[tuple[str, str], SchemaValidator], overlay: str
) -> None:
    objs = [o for o in rendered[overlay] if o["apiVersion"] == KEDA_API]
    kinds = [o["kind"] for o in objs]
    assert kinds.count("ScaledObject") == len(QUEUES)
    assert kinds.count("TriggerAuthentication") == 1
    errors = []
    for obj in objs:
        validate = keda.get((obj["apiVersion"], obj["kind"]))
        assert validate is not None, f"no CRD schema for {obj['apiVersion']} {obj['kind']}"
        errors += [f"{obj['kind']}/{obj['metadata']['name']}: {e}" for e in validate(obj)]
    assert not errors, "\n".join(errors)


def test_schema_checks_reject_broken_objects(
    rendered: dict[str, list[Obj]], keda: dict[tuple[str, str], SchemaValidator]
) -> None:
    """The validators can fail: a typo, a missing field and a wrong type are all caught."""
    scaled = next(o for o in rendered["prod"] if o["kind"] == "ScaledObject")
    validate = keda[(KEDA_API, "ScaledObject")]
    assert validate(scaled) == []

    typo = {**scaled, "spec": {**scaled["spec"], "cooldownPeriods": 30}}
    assert validate(typo), "an unknown ScaledObject field must be rejected"
    no_triggers = {**scaled, "spec": {k: v for k, v in scaled["spec"].items() if k != "triggers"}}
    assert validate(no_triggers), "a ScaledObject without triggers must be rejected"
    bad_type = {**scaled, "spec": {**scaled["spec"], "minReplicaCount": "one"}}
    assert validate(bad_type)

    deployment = next(o for o in rendered["prod"] if o["kind"] == "Deployment")
    kubernetes_validate.validate(deployment, K8S_VERSIONS[-1], strict=True)
    broken = {**deployment, "spec": {**deployment["spec"], "replicaz": 2}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSIONS[-1], strict=True)


def test_base_renders_on_its_own(repo: Path, render: Callable[[Path], list[Obj]]) -> None:
    objs = render(repo / "k8s" / "base")
    assert {o["kind"] for o in objs} >= {"Deployment", "StatefulSet", "ScaledObject"}


# --- scaling ---------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_queue_has_a_scaled_object_on_its_own_list(
    rendered: dict[str, list[Obj]], overlay: str
) -> None:
    objs = rendered[overlay]
    deployments = of_kind(objs, "Deployment")
    scaled = of_kind(objs, "ScaledObject")
    auths = of_kind(objs, "TriggerAuthentication")
    namespace = of_kind(objs, "Service")["ragrelay-redis"]["metadata"]["namespace"]

    seen: dict[str, str] = {}
    for name, so in scaled.items():
        spec = so["spec"]
        target = spec["scaleTargetRef"]
        assert target.get("kind", "Deployment") == "Deployment" and target["name"] in deployments
        (trigger,) = spec["triggers"]
        meta = trigger["metadata"]
        assert trigger["type"] == "redis"
        assert meta["address"] == f"ragrelay-redis.{namespace}.svc.cluster.local:6379", name
        assert meta["databaseIndex"] == "0"
        assert int(meta["listLength"]) > 0 and int(meta["activationListLength"]) >= 0
        assert 0 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
        assert spec["cooldownPeriod"] > 0 and spec["pollingInterval"] > 0
        auth = auths[trigger["authenticationRef"]["name"]]
        assert {"parameter": "password", "name": "ragrelay-redis", "key": "password"} in (
            auth["spec"]["secretTargetRef"]
        )
        seen[meta["listName"]] = target["name"]

    assert set(seen) == QUEUES, "exactly one ScaledObject per queue"
    for stage in WORKER_POOLS:
        assert seen[stage] == f"ragrelay-worker-{stage}", "a worker scales on its own queue"
    assert seen["orchestrator"] == "ragrelay-orchestrator"
    assert scaled["ragrelay-orchestrator"]["spec"]["minReplicaCount"] >= 1, "the sweeper runs"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_autoscaled_deployments_leave_replicas_to_the_autoscaler(
    rendered: dict[str, list[Obj]], overlay: str
) -> None:
    objs = rendered[overlay]
    targets = {
        o["spec"]["scaleTargetRef"]["name"]
        for o in objs
        if o["kind"] in ("ScaledObject", "HorizontalPodAutoscaler")
    }
    deployments = of_kind(objs, "Deployment")
    assert targets == set(deployments), "every Deployment is autoscaled"
    for name in targets:
        assert "replicas" not in deployments[name]["spec"], f"{name}: apply would fight KEDA/HPA"


def test_dev_scales_workers_to_zero_and_prod_keeps_them_warm(
    rendered: dict[str, list[Obj]],
) -> None:
    for overlay, floor in (("dev", 0), ("prod", 1)):
        for stage in WORKER_POOLS:
            so = of_kind(rendered[overlay], "ScaledObject")[f"ragrelay-worker-{stage}"]
            assert (so["spec"]["minReplicaCount"] == 0) == (floor == 0), (overlay, stage)


# --- workers ---------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_worker_deployments_run_their_stage_on_the_right_pool(
    rendered: dict[str, list[Obj]], overlay: str
) -> None:
    deployments = of_kind(rendered[overlay], "Deployment")
    for stage, pool in WORKER_POOLS.items():
        (container,) = deployments[f"ragrelay-worker-{stage}"]["spec"]["template"]["spec"][
            "containers"
        ]
        args = container["args"]
        assert args[:4] == ["worker", stage, "--pool", pool], args
        assert args[4] == "--concurrency" and int(args[5]) >= 1


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_read_the_heartbeat_file_the_process_touches(
    rendered: dict[str, list[Obj]], overlay: str
) -> None:
    objs = rendered[overlay]
    cfg = config(objs)
    assert cfg["RAGRELAY_HEARTBEAT_DIR"] == HEARTBEAT_DIR
    interval = float(cfg["RAGRELAY_HEARTBEAT_INTERVAL_S"])
    deployments = of_kind(objs, "Deployment")
    names = {f"ragrelay-worker-{s}": s for s in WORKER_POOLS} | {
        "ragrelay-orchestrator": "orchestrator"
    }
    for name, beat in names.items():
        pod = deployments[name]["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            command = container[probe]["exec"]["command"]
            assert command[:4] == [
                "ragrelay",
                "healthcheck",
                "--heartbeat",
                f"{HEARTBEAT_DIR}/{beat}.heartbeat",
            ], (name, probe, command)
            max_age = float(command[command.index("--max-age") + 1])
            assert max_age >= 3 * interval, "a couple of missed beats must not kill the pod"
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        volume = next(v for v in pod["volumes"] if v["name"] == mounts[HEARTBEAT_DIR])
        assert "emptyDir" in volume, "the heartbeat dir is writable under a read-only root"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_worker_grace_period_outlasts_the_longest_step(
    rendered: dict[str, list[Obj]], overlay: str
) -> None:
    objs = rendered[overlay]
    cfg = config(objs)
    step_timeout = float(cfg["RAGRELAY_STEP_TIMEOUT_S"])
    assert float(cfg["RAGRELAY_VISIBILITY_TIMEOUT_S"]) > step_timeout, (
        "kombu must not redeliver a task that is still running"
    )
    for stage in WORKER_POOLS:
        pod = of_kind(objs, "Deployment")[f"ragrelay-worker-{stage}"]["spec"]["template"]["spec"]
        assert pod["terminationGracePeriodSeconds"] > step_timeout, stage


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_declares_resources(rendered: dict[str, list[Obj]], overlay: str) -> None:
    for workload in workloads(rendered[overlay]):
        for container in containers(workload):
            resources = container.get("resources", {})
            name = f"{workload['metadata']['name']}/{container['name']}"
            assert {"cpu", "memory"} <= set(resources.get("requests", {})), name
            assert "memory" in resources.get("limits", {}), name


# --- security -----------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pods_run_as_non_root_without_privileges(
    repo: Path, rendered: dict[str, list[Obj]], overlay: str
) -> None:
    uid = dockerfile_uid(repo)
    assert uid != 0
    for workload in workloads(rendered[overlay]):
        name = workload["metadata"]["name"]
        pod = workload["spec"]["template"]["spec"]
        ctx = pod["securityContext"]
        assert ctx["runAsNonRoot"] is True and ctx["runAsUser"] != 0, name
        assert ctx["seccompProfile"]["type"] == "RuntimeDefault", name
        assert pod.get("automountServiceAccountToken") is False, name
        for container in containers(workload):
            cctx = container["securityContext"]
            assert cctx["allowPrivilegeEscalation"] is False, name
            assert cctx["capabilities"]["drop"] == ["ALL"], name
            assert not cctx.get("privileged", False), name
            if is_ragrelay(container):
                assert ctx["runAsUser"] == uid, f"{name}: runAsUser must match the image USER"
                assert cctx["readOnlyRootFilesystem"] is True, name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secrets_are_referenced_never_inlined(
    repo: Path, rendered: dict[str, list[Obj]], overlay: str
) -> None:
    objs = rendered[overlay]
    assert not [o for o in objs if o["kind"] == "Secret"], "Secrets are created outside git"
    for cm in (o for o in objs if o["kind"] == "ConfigMap"):
        for key in cm.get("data", {}):
            assert not SECRETISH.search(key), f"{cm['metadata']['name']}: {key} looks secret"

    referenced: dict[str, set[str]] = {}
    for workload in workloads(objs):
        for container in containers(workload):
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    referenced.setdefault(ref["name"], set()).add(ref["key"])
                    assert ref.get("optional", False) == (ref["name"] == "ragrelay-anthropic"), (
                        "only the Anthropic key is optional (the offline provider runs without)"
                    )
                else:
                    # Literal values may only carry secrets through $(VAR) references.
                    literal = re.sub(r"\$\([A-Z0-9_]+\)", "", env.get("value", ""))
                    assert not re.search(r"://[^/@\s]*:[^/@\s]+@", literal), (
                        f"{env['name']} inlines a credential"
                    )
                    if is_ragrelay(container):
                        assert not (SECRETISH.search(env["name"]) and literal), (
                            f"{env['name']} looks secret but has a literal value"
                        )
    for auth in of_kind(objs, "TriggerAuthentication").values():
        for ref in auth["spec"]["secretTargetRef"]:
            referenced.setdefault(ref["name"], set()).add(ref["key"])
    assert referenced == SECRETS

    docs = (repo / "docs" / "deployment.md").read_text(encoding="utf-8")
    for name, keys in SECRETS.items():
        assert name in docs, f"docs/deployment.md must say how to create {name}"
        for key in keys:
            assert key in docs


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_ragrelay_pods_reach_redis_and_weaviate(
    rendered: dict[str, list[Obj]], overlay: str
) -> None:
    objs = rendered[overlay]
    policies = list(of_kind(objs, "NetworkPolicy").values())
    statefulsets = of_kind(objs, "StatefulSet")
    app_pods = [pod_labels(d) for d in of_kind(objs, "Deployment").values()]
    assert {p["app.kubernetes.io/component"] for p in app_pods} == APP_COMPONENTS

    for store, ports in (("ragrelay-redis", {6379}), ("ragrelay-weaviate", {8080, 50051})):
        labels = pod_labels(statefulsets[store])
        guarding = [p for p in policies if selector_matches(p["spec"]["podSelector"], labels)]
        assert guarding, f"no NetworkPolicy isolates {store}"
        for policy in guarding:
            assert "Ingress" in policy["spec"]["policyTypes"]
            for rule in policy["spec"].get("ingress", []):
                assert {p["port"] for p in rule["ports"]} <= ports
                for peer in rule["from"]:
                    assert "ipBlock" not in peer, "no address ranges"
                    if "namespaceSelector" in peer:
                        # Only KEDA's operator, from its own namespace, reads queue lengths.
                        assert store == "ragrelay-redis"
                        assert peer["namespaceSelector"] == {
                            "matchLabels": {"kubernetes.io/metadata.name": "keda"}
                        }
                        assert peer["podSelector"]["matchLabels"] == {
                            "app.kubernetes.io/name": "keda-operator"
                        }
                        continue
                    selector = peer["podSelector"]
                    assert selector, "an empty podSelector would admit every pod"
                    # Admits ragrelay's gateway, orchestrator and workers ...
                    for pod in app_pods:
                        assert selector_matches(selector, pod), (store, pod)
                    # ... and nothing else, even a pod that claims to be part of ragrelay.
                    stranger = {"app.kubernetes.io/part-of": "ragrelay", "app": "debug"}
                    assert not selector_matches(selector, stranger)
                    assert not selector_matches(selector, {"app.kubernetes.io/component": "worker"})


# --- availability and wiring ------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_deployment_has_a_disruption_budget(
    rendered: dict[str, list[Obj]], overlay: str
) -> None:
    objs = rendered[overlay]
    pdbs = list(of_kind(objs, "PodDisruptionBudget").values())
    for name, deployment in of_kind(objs, "Deployment").items():
        labels = pod_labels(deployment)
        assert any(selector_matches(p["spec"]["selector"], labels) for p in pdbs), name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_gateway_is_served_and_scaled_on_cpu(rendered: dict[str, list[Obj]], overlay: str) -> None:
    objs = rendered[overlay]
    gateway = of_kind(objs, "Deployment")["ragrelay-gateway"]
    (container,) = gateway["spec"]["template"]["spec"]["containers"]
    assert container["args"][0] == "serve"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    port_names = {p["name"] for p in container["ports"]}
    service = of_kind(objs, "Service")["ragrelay-gateway"]
    assert selector_matches({"matchLabels": service["spec"]["selector"]}, pod_labels(gateway))
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names
    hpa = of_kind(objs, "HorizontalPodAutoscaler")["ragrelay-gateway"]
    assert hpa["spec"]["scaleTargetRef"]["name"] == "ragrelay-gateway"
    assert hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_redis_is_durable(rendered: dict[str, list[Obj]], overlay: str) -> None:
    objs = rendered[overlay]
    redis = of_kind(objs, "StatefulSet")["ragrelay-redis"]
    assert redis["spec"]["volumeClaimTemplates"], "AOF needs a PersistentVolume"
    pod = redis["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    conf_path = container["command"][1]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    conf_volume = next(v for v in pod["volumes"] if "configMap" in v)
    assert conf_path.startswith(mounts[conf_volume["name"]] + "/")
    conf_map = of_kind(objs, "ConfigMap")[conf_volume["configMap"]["name"]]
    conf = dict(
        line.split(None, 1)
        for line in conf_map["data"][Path(conf_path).name].splitlines()
        if line.strip() and not line.startswith("#")
    )
    assert conf["appendonly"] == "yes"
    assert conf["appendfsync"] in ("everysec", "always")
    assert conf["maxmemory-policy"] == "noeviction"
    assert conf["dir"] == mounts[redis["spec"]["volumeClaimTemplates"][0]["metadata"]["name"]]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_config_and_secret_references_resolve(rendered: dict[str, list[Obj]], overlay: str) -> None:
    """Generated ConfigMaps get a hash suffix; every reference must carry it."""
    objs = rendered[overlay]
    maps = set(of_kind(objs, "ConfigMap"))
    for workload in workloads(objs):
        pod = workload["spec"]["template"]["spec"]
        refs = [v["configMap"]["name"] for v in pod.get("volumes", []) if "configMap" in v]
        for container in containers(workload):
            refs += [
                e["configMapRef"]["name"]
                for e in container.get("envFrom", [])
                if "configMapRef" in e
            ]
        assert set(refs) <= maps, workload["metadata"]["name"]


def test_prod_pins_the_image_and_all_processes_share_it(rendered: dict[str, list[Obj]]) -> None:
    for overlay in OVERLAYS:
        images = {
            c["image"]
            for w in workloads(rendered[overlay])
            for c in containers(w)
            if is_ragrelay(c)
        }
        assert len(images) == 1, images
    (prod_image,) = {
        c["image"] for w in workloads(rendered["prod"]) for c in containers(w) if is_ragrelay(c)
    }
    assert not prod_image.endswith(":latest") and ":" in prod_image
