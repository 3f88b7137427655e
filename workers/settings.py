"""The workers' settings, one class per adapter, each read from its own ``RAGRELAY_*``
variables at the entry point (the CLI, the embedded client) and passed in.

    AnthropicSettings  RAGRELAY_ANTHROPIC_*  (or ANTHROPIC_API_KEY): Claude
    WeaviateSettings   RAGRELAY_WEAVIATE_*   the Weaviate store
    WebSettings        RAGRELAY_WEB_*        the web search connector (SearXNG)
    StoreSettings      RAGRELAY_STORE, _EMBEDDER, _SENTENCE_WINDOW, _MODEL_CACHE_DIR
    PromptSettings     RAGRELAY_PROMPT_VERSIONS, RAGRELAY_REPLAY_OUTPUTS
    McpSourceSettings  RAGRELAY_MCP_SOURCES: tenants' MCP servers as retrieval sources
    WorkerSettings     all of the above, plus RAGRELAY_FAULTS

The transport's settings (Redis, retries, logging) are ``bus.settings.Settings``; nothing
here is read by the orchestrator. The store is chosen by ``RAGRELAY_STORE``, never by
whether a Weaviate URL happens to be set.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bus.errors import ConfigError

StoreKind = Literal["embedded", "weaviate"]


def parse_version_pins(items: Iterable[str], *, what: str = "prompt version") -> dict[str, int]:
    """``["generation=2", "evaluation=v1"]`` -> ``{"generation": 2, "evaluation": 1}``."""
    out: dict[str, int] = {}
    for raw in items:
        name, sep, version = raw.partition("=")
        name, version = name.strip(), version.strip().lower().removeprefix("v")
        if not sep or not name or not version.isdigit():
            raise ValueError(f"{what} {raw.strip()!r}: expected NAME=VERSION, e.g. generation=2")
        if name in out:
            raise ValueError(f"{what}: {name} given twice")
        out[name] = int(version)
    return out


class AnthropicSettings(BaseSettings):
    """Claude (set a key to use it; unset = the offline provider)."""

    model_config = SettingsConfigDict(env_prefix="RAGRELAY_ANTHROPIC_", extra="ignore")

    api_key: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("RAGRELAY_ANTHROPIC_API_KEY", "ANTHROPIC_API_KEY", "api_key"),
    )
    base_url: str | None = None
    model_analysis: str = "claude-haiku-4-5"
    model_generation: str = "claude-sonnet-4-6"
    model_evaluation: str = "claude-haiku-4-5"
    timeout_s: float = Field(60.0, gt=0)
    cache_context: bool = Field(
        True, description="cache the retrieved context re-sent across loop iterations"
    )
    max_retries: int = Field(0, ge=0, le=10, description="SDK retries; policy is ours")
    keepalive_connections: int = Field(
        1000,
        ge=1,
        le=10_000,
        description="idle connections kept per process (the SDK keeps 100: with more calls in "
        "flight, every call past 100 paid a new TCP/TLS connection)",
    )
    # USD per million tokens: {model: {input, output, cache_read, cache_write}}
    prices: dict[str, dict[str, float]] = Field(
        default_factory=lambda: {
            "claude-haiku-4-5": {
                "input": 1.0,
                "output": 5.0,
                "cache_read": 0.10,
                "cache_write": 1.25,
            },
            "claude-sonnet-4-6": {
                "input": 3.0,
                "output": 15.0,
                "cache_read": 0.30,
                "cache_write": 3.75,
            },
            "claude-sonnet-4-5": {
                "input": 3.0,
                "output": 15.0,
                "cache_read": 0.30,
                "cache_write": 3.75,
            },
        }
    )

    def models(self) -> dict[str, str]:
        """The model of each stage that calls an LLM (``RAGRELAY_ANTHROPIC_MODEL_<STAGE>``)."""
        return {
            "analysis": self.model_analysis,
            "generation": self.model_generation,
            "evaluation": self.model_evaluation,
        }


class WeaviateSettings(BaseSettings):
    """The Weaviate store (used when ``RAGRELAY_STORE=weaviate``)."""

    model_config = SettingsConfigDict(env_prefix="RAGRELAY_WEAVIATE_", extra="ignore")

    url: str | None = None
    grpc_port: int = 50051
    api_key: SecretStr | None = None
    collection: str = "RagrelayChunk"
    alpha: float = Field(0.5, ge=0, le=1)
    fusion: str = "relative_score"
    timeout_s: float = Field(30.0, gt=0)


class WebSettings(BaseSettings):
    """The web search connector (SearXNG when a URL is set; no web otherwise)."""

    model_config = SettingsConfigDict(env_prefix="RAGRELAY_WEB_", extra="ignore")

    search_url: str | None = None
    timeout_s: float = Field(3.0, gt=0)


class StoreSettings(BaseSettings):
    """Which document store, and how the embedded one embeds."""

    model_config = SettingsConfigDict(env_prefix="RAGRELAY_", extra="ignore")

    kind: StoreKind = Field(
        "embedded",
        validation_alias=AliasChoices("RAGRELAY_STORE", "kind"),
        description="RAGRELAY_STORE: embedded (a file under the data dir) or weaviate",
    )
    embedder: str = "auto"
    sentence_window: int = Field(
        2,
        ge=0,
        le=8,
        description="sentences per extra window vector the embedded store embeds at ingest "
        "(0: chunk vectors only, ~3x less ingest CPU, lower recall; docs/benchmarks-retrieval.md)",
    )
    model_cache_dir: Path = Field(
        default_factory=lambda: Path.home() / ".cache" / "ragrelay" / "models",
        description="where embedding models built from packaged weights are cached",
    )


class PromptSettings(BaseSettings):
    """Prompt versions, and recorded outputs a replay may reuse."""

    model_config = SettingsConfigDict(env_prefix="RAGRELAY_", extra="ignore")

    prompt_versions: Annotated[dict[str, int], NoDecode] = Field(
        default_factory=dict,
        description="pin prompt versions, e.g. 'generation=1,evaluation=2' (unset: the "
        "highest version of each prompt file; the offline provider's v1)",
    )
    replay_outputs: Path | None = Field(
        None,
        description="recorded stage outputs (written by `ragrelay replay`): a model-backed "
        "stage whose input and prompt version match a recording reuses it instead of a call",
    )

    @field_validator("prompt_versions", mode="before")
    @classmethod
    def _prompt_versions(cls, value: Any) -> Any:
        """``'generation=2,evaluation=v1'`` or a JSON object; names checked by the provider."""
        if not isinstance(value, str):
            return value
        text = value.strip()
        if text.startswith("{"):
            return json.loads(text)
        return parse_version_pins(part for part in text.split(",") if part.strip())


class FaultSettings(BaseSettings):
    """Fault injection for chaos and integration tests (off unless set; workers/faults.py)."""

    model_config = SettingsConfigDict(env_prefix="RAGRELAY_", extra="ignore")

    faults: str | None = Field(None, description="e.g. 'analysis=transient:2,evaluation=revise'")


class McpSourceSettings(BaseSettings):
    """MCP servers as retrieval sources, per tenant (``workers/mcp_sources/``; docs/mcp.md)."""

    model_config = SettingsConfigDict(env_prefix="RAGRELAY_MCP_", extra="ignore")

    sources: Path | None = Field(
        None, description="RAGRELAY_MCP_SOURCES: a JSON or YAML file of each tenant's MCP servers"
    )


class WorkerSettings(BaseModel):
    """Everything a worker process's adapters are built from."""

    model_config = ConfigDict(frozen=True)

    anthropic: AnthropicSettings
    weaviate: WeaviateSettings
    web: WebSettings
    store: StoreSettings
    prompts: PromptSettings
    faults: str | None = None  # RAGRELAY_FAULTS (FaultSettings)
    mcp: McpSourceSettings = Field(default_factory=lambda: McpSourceSettings(sources=None))

    def check(self) -> None:
        """The store setting and the Weaviate URL agree, or a ``ConfigError`` says how."""
        if self.store.kind == "embedded" and self.weaviate.url:
            raise ConfigError(
                "RAGRELAY_WEAVIATE_URL is set but the store is the embedded one: set "
                "RAGRELAY_STORE=weaviate to use Weaviate, or unset RAGRELAY_WEAVIATE_URL"
            )
        if self.store.kind == "weaviate" and not self.weaviate.url:
            raise ConfigError(
                "RAGRELAY_STORE=weaviate needs RAGRELAY_WEAVIATE_URL (e.g. http://weaviate:8080)"
            )

    def replace(self, **parts: Any) -> WorkerSettings:
        """A copy with whole parts replaced, or fields of a part updated from a mapping:
        ``replace(store={"kind": "embedded"}, prompts={"prompt_versions": {...}})``."""
        update: dict[str, Any] = {}
        for name, value in parts.items():
            current = getattr(self, name)
            if isinstance(value, Mapping) and isinstance(current, BaseModel):
                value = current.model_copy(update=dict(value))
            update[name] = value
        return self.model_copy(update=update)


def load_worker_settings(**parts: Any) -> WorkerSettings:
    """Read every adapter's settings from the environment (``parts`` replace whole parts),
    check that they agree, and turn validation errors into one ``ConfigError``."""
    try:
        settings = WorkerSettings(
            anthropic=parts.pop("anthropic", None) or AnthropicSettings(),
            weaviate=parts.pop("weaviate", None) or WeaviateSettings(),
            web=parts.pop("web", None) or WebSettings(),
            store=parts.pop("store", None) or StoreSettings(),
            prompts=parts.pop("prompts", None) or PromptSettings(),
            faults=parts.pop("faults") if "faults" in parts else FaultSettings().faults,
            mcp=parts.pop("mcp", None) or McpSourceSettings(),
        )
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"])
            lines.append(f"{field}: {err['msg']}")
        raise ConfigError("invalid worker settings:\n  " + "\n  ".join(lines)) from exc
    if parts:
        raise TypeError(f"unknown worker settings parts: {', '.join(sorted(parts))}")
    settings.check()
    return settings


__all__ = [
    "AnthropicSettings",
    "FaultSettings",
    "PromptSettings",
    "StoreKind",
    "StoreSettings",
    "WeaviateSettings",
    "WebSettings",
    "WorkerSettings",
    "load_worker_settings",
    "parse_version_pins",
]
