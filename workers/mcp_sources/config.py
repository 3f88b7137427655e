"""The file ``RAGRELAY_MCP_SOURCES`` names: each tenant's MCP servers, as JSON or YAML.

    tenants:
      acme:
        - name: repo                      # names the source in citations and the trace
          command: mcp-server-git         # stdio: a command and its args ...
          args: ["--repository", "/srv/repo"]
          tool: git_log                   # the tool to call (or `resource:` a URI to read)
          arguments: {repo_path: /srv/repo, max_count: 50}
          query_argument: null            # the argument that receives the question, if any
          timeout_s: 10                   # connect + call, whole; then the source is skipped
          route: "(?i)commit|change|author"  # ask it only for questions that match (unset: all)
        - name: wiki
          url: https://mcp.internal/wiki  # ... or a streamable-HTTP URL (headers: {...})
          tool: search
          query_argument: query

Read once, at worker start; a file that does not parse is a ``ConfigError`` naming the
field. A tenant not in the file has no MCP sources.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bus.errors import ConfigError

NAME = r"^[A-Za-z0-9_.-]{1,64}$"


class McpSourceConfig(BaseModel):
    """One MCP server a tenant retrieves from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME)
    command: str | None = Field(None, min_length=1)
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] | None = None
    cwd: str | None = None
    url: str | None = Field(None, pattern=r"^https?://")
    headers: dict[str, str] = Field(default_factory=dict)
    tool: str | None = Field(None, min_length=1)
    resource: str | None = Field(None, min_length=1)
    arguments: dict[str, Any] = Field(default_factory=dict)
    query_argument: str | None = Field(None, min_length=1)
    timeout_s: float = Field(10.0, gt=0, le=300)
    max_chunks: int = Field(5, ge=1, le=50)
    route: str | None = None

    @model_validator(mode="after")
    def _one_transport_one_target(self) -> McpSourceConfig:
        if (self.command is None) == (self.url is None):
            raise ValueError("give either `command` (stdio) or `url` (streamable HTTP)")
        if (self.tool is None) == (self.resource is None):
            raise ValueError("give either `tool` (a tool to call) or `resource` (a URI to read)")
        if self.query_argument is not None and self.tool is None:
            raise ValueError("`query_argument` needs a `tool`")
        return self

    @field_validator("route")
    @classmethod
    def _route_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a regular expression: {exc}") from exc
        return value

    @property
    def target(self) -> str:
        """``tool`` or ``resource``: what a citation names next to the server."""
        return self.tool or self.resource or ""

    def routes(self, query: str) -> bool:
        return self.route is None or re.search(self.route, query) is not None

    def arguments_for(self, query: str) -> dict[str, Any]:
        args = dict(self.arguments)
        if self.query_argument is not None:
            args[self.query_argument] = query
        return args


class McpSourcesFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tenants: dict[str, list[McpSourceConfig]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _names_unique_per_tenant(self) -> McpSourcesFile:
        for tenant, sources in self.tenants.items():
            if not re.match(NAME, tenant):
                raise ValueError(f"tenant {tenant!r}: letters, digits, '_', '.', '-' only")
            names = [s.name for s in sources]
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"tenant {tenant!r}: source name(s) {dupes} given twice")
        return self

    def for_tenant(self, tenant: str) -> list[McpSourceConfig]:
        return self.tenants.get(tenant, [])


def load_sources(path: Path) -> McpSourcesFile:
    """The file at ``path`` (``.json``, or YAML otherwise), checked; ``ConfigError`` if not."""
    where = f"RAGRELAY_MCP_SOURCES={path}"
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read it ({exc.strerror or exc})") from exc
    if path.suffix.lower() == ".json":
        try:
            data: Any = json.loads(text)
        except ValueError as exc:
            raise ConfigError(f"{where}: not valid JSON: {exc}") from exc
    else:
        try:
            import yaml
        except ImportError as exc:
            raise ConfigError(f"{where}: YAML needs PyYAML (or write the file as .json)") from exc
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{where}: not valid YAML: {exc}") from exc
    try:
        return McpSourcesFile.model_validate(data or {})
    except ValidationError as exc:
        lines = [
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}"
            for err in exc.errors()
        ]
        raise ConfigError(f"{where}: invalid:\n  " + "\n  ".join(lines)) from exc
