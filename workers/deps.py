"""Build a worker process's dependencies from settings, once per process.

``settings`` are the transport's (the data dir, Redis key prefix); ``workers`` the adapters'
(``workers/settings.py``), both built at the entry point.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import redis

from bus.errors import ConfigError
from bus.keys import Keys
from bus.settings import Settings
from workers.context import RedisUserContext
from workers.email.triage import classify, default_model_path
from workers.faults import FaultInjector, parse_faults
from workers.mcp_sources import build_mcp_sources
from workers.ports import Deps, DocumentStore, Embedder, LLMProvider, WebSource
from workers.providers.offline import OfflineProvider
from workers.settings import WebSettings, WorkerSettings
from workers.store import open_store
from workers.web import DisabledWeb, SearxngWeb


def build_web(web: WebSettings) -> WebSource:
    """SearXNG when ``RAGRELAY_WEB_SEARCH_URL`` is set; otherwise no web."""
    if web.search_url:
        return SearxngWeb(web.search_url, timeout_s=web.timeout_s)
    return DisabledWeb()


def build_provider(
    settings: Settings,
    workers: WorkerSettings,
    web: WebSource,
    embedder: Callable[[], Embedder | None] | None = None,
) -> LLMProvider:
    """Claude when an Anthropic key is configured, else the offline provider (re-ranking its
    best sentences with ``embedder``, loaded on first use); answering from a replay's
    recordings where they apply (``RAGRELAY_REPLAY_OUTPUTS``)."""
    provider = _provider(settings, workers, web, embedder)
    replay_outputs = workers.prompts.replay_outputs
    if replay_outputs is None or provider.name == "offline":
        # The offline provider is deterministic and cheap: a replay re-runs it, so a change
        # to its code shows in the diff instead of hiding behind a recording.
        return provider
    from workers.providers.replaying import ReplayingProvider, load_recordings

    return ReplayingProvider(provider, load_recordings(replay_outputs))


def _provider(
    settings: Settings,
    workers: WorkerSettings,
    web: WebSource,
    embedder: Callable[[], Embedder | None] | None,
) -> LLMProvider:
    if workers.anthropic.api_key is not None:
        try:
            from workers.providers.anthropic import AnthropicProvider
        except ImportError as exc:
            raise ConfigError(
                "an Anthropic key is set but the SDK is missing: pip install 'ragrelay[anthropic]'"
            ) from exc
        return AnthropicProvider.from_settings(
            workers.anthropic,
            prompt_versions=workers.prompts.prompt_versions,
            web_enabled=web.enabled,
        )
    return OfflineProvider(
        web_enabled=web.enabled,
        triage=partial(classify, model_path=default_model_path(settings.data_dir)),
        versions=workers.prompts.prompt_versions,
        embedder=embedder,
    )


def semantic_embedder(store: DocumentStore) -> Embedder | None:
    """The store's embedder when it is a language model (not the hashing test embedder)."""
    embedder: Embedder | None = getattr(store, "embedder", None)
    if embedder is None or embedder.name.startswith("hashing"):
        return None
    return embedder


def close_provider(provider: LLMProvider) -> None:
    provider.close()


def preflight(settings: Settings, workers: WorkerSettings) -> None:
    """Fail at worker start, not in the first task: build the provider and check it."""
    build_provider(settings, workers, build_web(workers.web)).check()


def build_deps(settings: Settings, workers: WorkerSettings, client: redis.Redis) -> Deps:
    web = build_web(workers.web)
    keys = Keys(settings.key_prefix)
    faults = FaultInjector(parse_faults(workers.faults), client, keys) if workers.faults else None
    store = open_store(settings, workers)
    return Deps(
        provider=build_provider(settings, workers, web, partial(semantic_embedder, store)),
        store=store,
        user_context=RedisUserContext(client, keys),
        web=web,
        faults=faults,
        mcp=build_mcp_sources(workers.mcp),
    )
