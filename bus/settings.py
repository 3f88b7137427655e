"""One settings object, read from ``RAGRELAY_*`` at the entry point and passed in.

Nothing deeper in the code reads ``os.environ``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bus.errors import ConfigError


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "ragrelay"


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


class Settings(BaseSettings):
    """Every knob of a ragrelay process. Env prefix ``RAGRELAY_``."""

    model_config = SettingsConfigDict(env_prefix="RAGRELAY_", extra="ignore")

    # --- broker and state ---------------------------------------------------------------
    redis_url: str | None = Field(
        None, description="Redis for broker, job state and events; unset = embedded mode"
    )
    data_dir: Path = Field(default_factory=_default_data_dir)
    visibility_timeout_s: int = Field(3600, ge=1, description="> the longest step")
    unacked_restore_interval_s: float = Field(60.0, gt=0)
    key_prefix: str = "ragrelay"
    result_ttl_s: int = Field(7 * 24 * 3600, ge=60)

    # --- retry policy ----------------------------------------------------------------------
    max_retries: int = Field(4, ge=0, le=50)
    backoff_base_s: float = Field(0.5, gt=0)
    backoff_max_s: float = Field(30.0, gt=0)
    step_timeout_s: float = Field(120.0, gt=0, description="a step overdue after this is re-sent")
    step_max_attempts: int = Field(3, ge=1, description="dispatches of one step at most")
    sweep_interval_s: float = Field(5.0, gt=0)
    max_deliveries: int = Field(
        3, ge=1, description="runs of one task attempt before it is dead-lettered as poison"
    )

    # --- orchestrator ----------------------------------------------------------------------
    events_batch: int = Field(200, ge=1)
    retrieval_k: int = Field(10, ge=1, le=200)
    context_k: int = Field(6, ge=1, le=50)

    # --- workers ---------------------------------------------------------------------------
    heartbeat_dir: Path | None = None
    heartbeat_interval_s: float = Field(5.0, gt=0)

    # --- logging ---------------------------------------------------------------------------
    log_level: str = "INFO"
    log_json: bool = True
    redact_pii: bool = True
    log_sdk_debug: bool = Field(
        False, description="let SDK and HTTP-client loggers (anthropic, httpx, ...) log at "
        "DEBUG: whole prompts and request bodies, still redacted; off: INFO at most",
    )

    # --- Anthropic (set a key to use Claude; unset = the offline provider) -----------------
    anthropic_api_key: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices(
            "RAGRELAY_ANTHROPIC_API_KEY", "ANTHROPIC_API_KEY", "anthropic_api_key"
        ),
    )
    anthropic_base_url: str | None = None
    anthropic_model_analysis: str = "claude-haiku-4-5"
    anthropic_model_generation: str = "claude-sonnet-4-6"
    anthropic_model_evaluation: str = "claude-haiku-4-5"
    anthropic_timeout_s: float = Field(60.0, gt=0)
    anthropic_cache_context: bool = Field(
        True, description="cache the retrieved context re-sent across loop iterations"
    )
    anthropic_max_retries: int = Field(0, ge=0, le=10, description="SDK retries; policy is ours")
    # USD per million tokens: {model: {input, output, cache_read, cache_write}}
    anthropic_prices: dict[str, dict[str, float]] = Field(
        default_factory=lambda: {
            "claude-haiku-4-5": {
                "input": 1.0, "output": 5.0, "cache_read": 0.10, "cache_write": 1.25,
            },
            "claude-sonnet-4-6": {
                "input": 3.0, "output": 15.0, "cache_read": 0.30, "cache_write": 3.75,
            },
            "claude-sonnet-4-5": {
                "input": 3.0, "output": 15.0, "cache_read": 0.30, "cache_write": 3.75,
            },
        }
    )

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

    # --- Weaviate (set a URL to use it; unset = the embedded store) ------------------------
    weaviate_url: str | None = None
    weaviate_grpc_port: int = 50051
    weaviate_api_key: SecretStr | None = None
    weaviate_collection: str = "RagrelayChunk"
    weaviate_alpha: float = Field(0.5, ge=0, le=1)
    weaviate_fusion: str = "relative_score"
    weaviate_timeout_s: float = Field(30.0, gt=0)

    # --- other sources and models ------------------------------------------------------------
    web_search_url: str | None = None
    web_timeout_s: float = Field(3.0, gt=0)
    embedder: str = "auto"
    sentence_window: int = Field(
        2, ge=0, le=8,
        description="sentences per extra window vector the embedded store embeds at ingest "
        "(0: chunk vectors only, ~3x less ingest CPU, lower recall; docs/benchmarks-retrieval.md)",
    )
    model_cache_dir: Path = Field(
        default_factory=lambda: Path.home() / ".cache" / "ragrelay" / "models",
        description="where embedding models built from packaged weights are cached",
    )
    metrics_port: int | None = None

    # --- fault injection for chaos and integration tests (off unless set) -------------------
    faults: str | None = Field(
        None,
        description="e.g. 'analysis=transient:2,evaluation=revise' (see workers/faults.py)",
    )

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        value = value.upper()
        if value not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("log_level must be DEBUG, INFO, WARNING or ERROR")
        return value

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

    @property
    def embedded(self) -> bool:
        return not self.redis_url

    @property
    def store_dir(self) -> Path:
        return self.data_dir / "store"

    def ensure_data_dir(self) -> Path:
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"cannot create data dir {self.data_dir}: {exc.strerror}. "
                "Set RAGRELAY_DATA_DIR to a writable directory."
            ) from exc
        return self.data_dir


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment, turning validation errors into ``ConfigError``."""
    from pydantic import ValidationError

    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"])
            lines.append(f"RAGRELAY_{field.upper()}: {err['msg']}")
        raise ConfigError("invalid settings:\n  " + "\n  ".join(lines)) from exc
