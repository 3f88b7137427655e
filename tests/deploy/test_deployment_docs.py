"""docs/deployment.md's "Ingesting a corpus and creating API keys in a deployed cluster"
(issue 22, item 15): every command there names a Compose service, a Deployment, a
container, a label, a path and CLI options that exist in the repo's manifests and CLI."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import click

from ragrelay.cli.app import LAZY_COMMANDS

Obj = dict[str, Any]
SECTION = "## Ingesting a corpus and creating API keys in a deployed cluster"


def commands(repo: Path) -> list[list[str]]:
    text = (repo / "docs" / "deployment.md").read_text()
    assert SECTION in text, "docs/deployment.md lost the section on ingest and keys"
    body = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    out = []
    for block in re.split(r"^```.*$", body, flags=re.M)[1::2]:
        joined = block.replace("\\\n", " ")
        for line in joined.splitlines():
            line = line.split(" # ")[0].strip()
            if line and not line.startswith("#"):
                out.append(shlex.split(line, comments=True))
    return out


def check_ragrelay_args(args: list[str]) -> None:
    """The arguments parse with the real command (options exist, values fit)."""
    group = LAZY_COMMANDS[args[0]]()
    rest = args[1:]
    if isinstance(group, click.Group):
        cmd = group.get_command(click.Context(group), rest[0])
        assert cmd is not None, args
        name, rest = rest[0], rest[1:]
    else:
        cmd, name = group, args[0]
    cmd.make_context(name, list(rest))  # raises on an unknown option or a bad value


def test_compose_commands_name_real_services_and_parse(repo: Path, compose_raw: Obj) -> None:
    services = compose_raw["services"]
    runs = [c for c in commands(repo) if c[:3] == ["docker", "compose", "run"]]
    assert len(runs) >= 2
    for cmd in runs:
        i = 3
        while cmd[i].startswith("-"):
            i += 2 if cmd[i] in ("-v", "-e", "--volume") else 1
        service, args = cmd[i], cmd[i + 1 :]
        assert service in services, service
        assert "RAGRELAY_REDIS_URL" in services[service]["environment"]
        check_ragrelay_args(args)
    logs = [c for c in commands(repo) if c[:3] == ["docker", "compose", "logs"]]
    assert all(c[-1] in services for c in logs)
    assert {"ingest", "keys"} <= {c[c.index("gateway") + 1] for c in runs}


def test_kubernetes_commands_name_real_objects_and_parse(
    repo: Path, rendered: dict[str, list[Obj]]
) -> None:
    objs = rendered["prod"]
    gateway = next(
        o for o in objs if o["kind"] == "Deployment" and o["metadata"]["name"] == "ragrelay-gateway"
    )
    pod = gateway["spec"]["template"]
    labels = pod["metadata"]["labels"]
    container = next(c for c in pod["spec"]["containers"] if c["name"] == "gateway")
    tmp = next(m for m in container["volumeMounts"] if m["mountPath"] == "/tmp")
    volume = next(v for v in pod["spec"]["volumes"] if v["name"] == tmp["name"])
    assert "emptyDir" in volume and not tmp.get("readOnly")  # where `kubectl cp` writes
    scaled = {o["metadata"]["name"] for o in objs if o["kind"] == "ScaledObject"}
    kubectl = [c for c in commands(repo) if "kubectl" in " ".join(c)]
    assert kubectl
    for cmd in kubectl:
        line = " ".join(cmd)
        for selector in re.findall(r"-l (\S+)", line):
            key, _, value = selector.partition("=")
            assert labels.get(key) == value, selector
        if "-c" in cmd:
            assert cmd[cmd.index("-c") + 1] == "gateway"
        if "deploy/" in line:
            assert "deploy/ragrelay-gateway" in line
        if "scaledobject" in cmd:
            assert cmd[-1] in scaled, cmd[-1]
        if "exec" in cmd and "ragrelay" in cmd:
            check_ragrelay_args(cmd[cmd.index("ragrelay") + 1 :])
        for path in re.findall(r":(/\S+)", line):
            assert path.startswith("/tmp/"), path
    used = {c[c.index("ragrelay") + 1] for c in kubectl if "ragrelay" in c}
    assert {"ingest", "keys"} <= used
