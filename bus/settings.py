"""The transport's settings, read from ``RAGRELAY_*`` at the entry point and passed in:
Redis, retries, the orchestrator's knobs, heartbeats, logging, metrics.

Nothing deeper in the code reads ``os.environ``. The workers' adapters (Claude, Weaviate,
the web, the store, prompts) have their own settings in ``workers/settings.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bus.errors import ConfigError


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "ragrelay"


class Settings(BaseSettings):
    """Every transport and runtime knob of a ragrelay process. Env prefix ``RAGRELAY_``."""

    model_config = SettingsConfigDict(env_prefix="RAGRELAY_", extra="ignore")

    # --- broker and state ---------------------------------------------------------------
    redis_url: str | None = Field(
        None, description="Redis for broker, job state and events; unset = embedded mode"
    )
    data_dir: Path = Field(default_factory=_default_data_dir)
    visibility_timeout_s: int = Field(3600, ge=1, description="> the longest step")
    unacked_restore_interval_s: float = Field(60.0, gt=0)
    key_prefix: str = "ragrelay"
    redis_wait_replicas: int = Field(
        0,
        ge=0,
        le=16,
        description="a new job is acknowledged once this many replicas hold it (WAIT); "
        "0 = at once. For Redis with replicas (Sentinel): docs/deployment.md",
    )
    redis_wait_timeout_ms: int = Field(1000, ge=1, description="the longest WAIT at submit")
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

    # --- admission control (docs/deployment.md, "Admission control"); off by default -------
    admission_queue_max: int | None = Field(
        None, ge=1, description="refuse new jobs while any stage queue holds more tasks"
    )
    admission_queue_limits: dict[str, int] = Field(
        default_factory=dict, description='per-queue overrides, JSON: {"generation": 500}'
    )
    admission_tenant_in_flight: int | None = Field(
        None, ge=1, description="refuse a tenant's new jobs while it has this many running"
    )
    admission_retry_after_s: int = Field(5, ge=1, le=3600)

    # --- workers ---------------------------------------------------------------------------
    heartbeat_dir: Path | None = None
    heartbeat_interval_s: float = Field(5.0, gt=0)

    # --- logging ---------------------------------------------------------------------------
    log_level: str = "INFO"
    log_json: bool = True
    redact_pii: bool = True
    log_sdk_debug: bool = Field(
        False,
        description="let SDK and HTTP-client loggers (anthropic, httpx, ...) log at "
        "DEBUG: whole prompts and request bodies, still redacted; off: INFO at most",
    )

    # --- metrics ---------------------------------------------------------------------------
    metrics_port: int | None = None

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        value = value.upper()
        if value not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("log_level must be DEBUG, INFO, WARNING or ERROR")
        return value

    @field_validator("admission_queue_limits")
    @classmethod
    def _queue_limits(cls, value: dict[str, int]) -> dict[str, int]:
        from bus.keys import QUEUES

        for queue, limit in value.items():
            if queue not in QUEUES:
                raise ValueError(f"unknown queue {queue!r}; queues: {', '.join(QUEUES)}")
            if limit < 1:
                raise ValueError(f"the limit of queue {queue!r} must be at least 1")
        return value

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
