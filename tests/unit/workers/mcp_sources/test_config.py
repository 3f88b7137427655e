from __future__ import annotations

import json
from pathlib import Path

import pytest

from bus.errors import ConfigError
from workers.mcp_sources import NoMcpSources, build_mcp_sources, load_sources
from workers.mcp_sources.client import McpServers
from workers.mcp_sources.config import McpSourceConfig
from workers.settings import McpSourceSettings

GIT = {"name": "repo", "command": "mcp-server-git", "tool": "git_log"}


def write(tmp_path: Path, data: object, name: str = "sources.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data) if name.endswith(".json") else str(data))
    return path


def test_a_file_lists_each_tenants_servers(tmp_path: Path) -> None:
    loaded = load_sources(write(tmp_path, {"tenants": {"acme": [GIT]}}))
    assert [s.name for s in loaded.for_tenant("acme")] == ["repo"]
    assert loaded.for_tenant("globex") == []


def test_yaml_is_read_too(tmp_path: Path) -> None:
    text = "tenants:\n  acme:\n    - {name: wiki, url: 'http://127.0.0.1:9/mcp', tool: search, query_argument: q}\n"
    loaded = load_sources(write(tmp_path, text, "sources.yaml"))
    wiki = loaded.for_tenant("acme")[0]
    assert wiki.url == "http://127.0.0.1:9/mcp"
    assert wiki.arguments_for("who?") == {"q": "who?"}


@pytest.mark.parametrize(
    ("source", "says"),
    [
        ({"name": "x", "tool": "t"}, "either `command` (stdio) or `url`"),
        ({"name": "x", "command": "c", "url": "http://h/mcp", "tool": "t"}, "either `command`"),
        ({"name": "x", "command": "c"}, "either `tool`"),
        ({"name": "x", "command": "c", "tool": "t", "resource": "file:///a"}, "either `tool`"),
        ({"name": "x", "command": "c", "resource": "r", "query_argument": "q"}, "needs a `tool`"),
        ({"name": "x", "command": "c", "tool": "t", "route": "("}, "not a regular expression"),
        ({"name": "x y", "command": "c", "tool": "t"}, "tenants.acme.0.name"),
        ({"name": "x", "command": "c", "tool": "t", "timeout_s": 0}, "timeout_s"),
        ({"name": "x", "command": "c", "tool": "t", "colour": "red"}, "colour"),
    ],
)
def test_a_bad_source_is_a_config_error_naming_what_is_wrong(
    tmp_path: Path, source: dict[str, object], says: str
) -> None:
    with pytest.raises(ConfigError, match="RAGRELAY_MCP_SOURCES=") as err:
        load_sources(write(tmp_path, {"tenants": {"acme": [source]}}))
    assert says in str(err.value)


def test_names_are_unique_per_tenant(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\['repo'\] given twice"):
        load_sources(write(tmp_path, {"tenants": {"acme": [GIT, GIT]}}))


def test_unreadable_or_unparsable_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read it"):
        load_sources(tmp_path / "missing.json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_sources(write(tmp_path, "{", "bad.txt").rename(tmp_path / "bad.json"))
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_sources(write(tmp_path, "tenants: [unclosed", "bad.yaml"))


def test_routing_follows_each_sources_pattern() -> None:
    source = McpSourceConfig.model_validate({**GIT, "route": "(?i)commit|author"})
    assert source.routes("Who is the AUTHOR of the last change?")
    assert not source.routes("What is the refund policy?")
    assert McpSourceConfig.model_validate(GIT).routes("anything at all")


def test_no_file_means_no_sources_and_a_file_means_servers(tmp_path: Path) -> None:
    assert isinstance(build_mcp_sources(McpSourceSettings(sources=None)), NoMcpSources)
    path = write(tmp_path, {"tenants": {"acme": [{**GIT, "route": "commit"}]}})
    servers = build_mcp_sources(McpSourceSettings(sources=path))
    assert isinstance(servers, McpServers)
    assert servers.routes("acme", "last commit?")
    assert not servers.routes("acme", "refunds?")
    assert not servers.routes("globex", "last commit?")
    assert servers.search("globex", "last commit?", k=5) == ([], [])


def test_a_passed_deadline_skips_every_server_and_says_so(tmp_path: Path) -> None:
    servers = build_mcp_sources(
        McpSourceSettings(sources=write(tmp_path, {"tenants": {"acme": [GIT]}}))
    )
    hits, degraded = servers.search("acme", "q", k=5, deadline_at=1.0)
    assert hits == []
    assert degraded == ["mcp:repo: skipped, the job's deadline has passed"]
