"""The long-lived objects of one running service, and how the lifespan builds and stops them.

Everything with a lifetime (httpx client, local model servers, encoder, adapters) is created
in ``start_services`` and closed in ``Services.aclose``; routers receive ``Services`` through a
typed dependency. Nothing here lives at module level.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from threadpoolctl import threadpool_limits

from adapters.base import ChatAdapter
from adapters.registry import build_adapter
from adapters.transcription import Transcriber, build_transcriber
from app.breaker import CircuitBreakers
from app.breaker_sync import BreakerSync
from app.catalog import Catalog, ModelEntry, load_catalog
from app.conversation import Conversations
from app.decision_log import DecisionLog
from app.dispatch import Gateway, RetryPolicy
from app.embedding import base_model_id, load_encoder
from app.embedding_service import EmbeddingService
from app.errors import ConfigError
from app.estimator import Estimator
from app.feedback import FeedbackLoop
from app.latency import LatencyTracker
from app.local_servers import LocalServer, RestartPolicy
from app.metrics import Metrics
from app.profiles import load_profiles
from app.response_cache import ResponseCache
from app.selection import Selector
from app.settings import Settings
from app.state import StateStore, open_store
from app.turns import TurnClassifier

log = logging.getLogger(__name__)


@dataclass
class Availability:
    """Why a catalog model cannot be called right now (None when it can)."""

    breakers: CircuitBreakers
    local: dict[str, LocalServer] = field(default_factory=dict)
    local_failures: dict[str, str] = field(default_factory=dict)

    def __call__(self, entry: ModelEntry) -> str | None:
        if entry.missing_key():
            return f"unavailable: {entry.api_key_env} is not set"
        if entry.launch is not None:
            if entry.id in self.local_failures:
                return f"unavailable: local server failed ({self.local_failures[entry.id]})"
            server = self.local.get(entry.id)
            if server is None:
                return "unavailable: local server not running"
            if not server.running:
                return f"unavailable: local server {server.status()['state']}"
        if self.breakers.is_open(entry.id):
            return "unavailable: circuit breaker open after repeated failures"
        return None

    def temporarily_down(self, entry: ModelEntry) -> bool:
        """Down for now but coming back by itself (a restarting server, an open breaker)."""
        server = self.local.get(entry.id)
        restarting = server is not None and not server.running and server.state != "stopped"
        return restarting or self.breakers.is_open(entry.id)

    def report(self, entries: list[ModelEntry]) -> dict[str, dict[str, object]]:
        """Per model: available or why not, and the state of its local server if it has one."""
        models: dict[str, dict[str, object]] = {}
        for entry in entries:
            reason = self(entry)
            row: dict[str, object] = {"available": reason is None, "reason": reason}
            server = self.local.get(entry.id)
            if server is not None:
                row["local_server"] = server.status()
            models[entry.id] = row
        return models


@dataclass
class Services:
    settings: Settings
    catalog: Catalog
    metrics: Metrics
    availability: Availability
    http: httpx.AsyncClient
    embeddings: EmbeddingService
    estimator: Estimator
    selector: Selector
    gateway: Gateway
    adapters: dict[str, ChatAdapter]
    store: StateStore
    feedback: FeedbackLoop
    cache: ResponseCache | None
    breaker_sync: BreakerSync
    latency: LatencyTracker
    conversations: Conversations
    decision_log: DecisionLog
    transcriber: Transcriber | None = None
    background: set[asyncio.Task[None]] = field(default_factory=set)

    async def aclose(self) -> None:
        for task in self.background:
            task.cancel()
        if self.transcriber is not None:
            await self.transcriber.aclose()
        await self.decision_log.drain()
        await self.store.aclose()
        for adapter in self.adapters.values():
            await adapter.aclose()
        await self.embeddings.aclose()
        await self.http.aclose()
        for server in self.availability.local.values():
            await server.stop()


async def _start_local(
    catalog: Catalog, settings: Settings, cache_dir: Path
) -> tuple[dict[str, LocalServer], dict[str, str]]:
    servers: dict[str, LocalServer] = {}
    failures: dict[str, str] = {}
    if not settings.manage_local:
        return servers, failures
    for entry in catalog.models:
        if entry.launch is None:
            continue
        policy = RestartPolicy(settings.local_restart_base_s, settings.local_restart_max_s)
        server = LocalServer(entry, cache_dir, policy)
        try:
            await server.start(settings.local_start_timeout_s)
        except ConfigError as exc:
            log.error("local model %s not started: %s", entry.id, exc.message)
            failures[entry.id] = exc.message
            continue
        servers[entry.id] = server
    return servers, failures


async def start_services(settings: Settings) -> Services:
    # One query at a time is a matrix-vector product: BLAS threads only add wake-up latency
    # (measured: 8 ms instead of 0.5 ms for 10k x 384 on 2 cores). Concurrency comes from requests.
    threadpool_limits(limits=1, user_api="blas")
    catalog = load_catalog(settings.catalog)
    cache_dir = settings.cache_dir or Path.home() / ".cache" / "switchboard"
    learned = load_profiles(settings.profiles) if settings.profiles else None
    encoder = load_encoder(
        settings.embedding_model,
        settings.embedding_backend,
        cache_dir,
        like=learned.embedding_model if learned else None,
    )
    estimator = Estimator(
        learned,
        declared={m.id: m.profile for m in catalog.models if m.profile is not None},
        aliases={m.id: m.data_name for m in catalog.models},
        encoder=encoder,
    )
    local, failures = await _start_local(catalog, settings, cache_dir)
    http = httpx.AsyncClient(limits=httpx.Limits(max_connections=200, max_keepalive_connections=50))
    adapters = {}
    for entry in catalog.models:
        server = local.get(entry.id)
        if entry.launch is not None and server is None:
            continue
        endpoint = entry.endpoint(server.base_url if server else None)
        adapters[entry.id] = build_adapter(entry.adapter, endpoint, http)
    breakers = CircuitBreakers(settings.breaker_failures, settings.breaker_cooldown_s)
    availability = Availability(breakers, local, failures)
    policy = RetryPolicy(
        settings.retries, settings.max_fallbacks, settings.backoff_base_s, settings.backoff_max_s
    )
    latency = LatencyTracker()
    selector = Selector(
        catalog,
        estimator,
        availability,
        default_preset=settings.default_preset,
        default_output_tokens=settings.default_output_tokens,
        latency=latency,
    )
    store = open_store(settings.redis_url.get_secret_value() if settings.redis_url else None)
    embeddings = EmbeddingService(encoder, cache_size=settings.embedding_cache_size)
    return Services(
        settings=settings,
        catalog=catalog,
        metrics=Metrics(),
        availability=availability,
        http=http,
        embeddings=embeddings,
        estimator=estimator,
        selector=selector,
        gateway=Gateway(adapters, breakers, policy, latency, hedge=settings.hedge),
        adapters=adapters,
        store=store,
        feedback=FeedbackLoop(store, estimator),
        cache=ResponseCache(store, settings.cache_ttl_s, settings.cache_similarity)
        if settings.cache_ttl_s > 0
        else None,
        breaker_sync=BreakerSync(store, breakers),
        latency=latency,
        conversations=Conversations(_turn_classifier(encoder.model_id), embeddings, store),
        decision_log=DecisionLog(store, catalog),
        transcriber=_transcriber(settings, http, cache_dir),
    )


def _transcriber(
    settings: Settings, http: httpx.AsyncClient, cache_dir: Path
) -> Transcriber | None:
    """The configured speech-to-text, or None (then ``/noa`` takes typed questions only)."""
    try:
        return build_transcriber(settings, http, cache_dir)
    except ConfigError as exc:
        log.error("speech transcription unavailable: %s", exc.message)
        return None


def warm_in_background(services: Services) -> None:
    """Load the local speech model after start-up, so the first spoken turn does not wait."""
    warm = getattr(services.transcriber, "warm", None)
    if warm is None:
        return

    async def run() -> None:
        try:
            await warm()
        except Exception as exc:  # the first spoken turn will report it, as a 5xx with a reason
            log.error("speech model not loaded: %s", exc)

    task = asyncio.get_running_loop().create_task(run(), name="warm-transcriber")
    services.background.add(task)
    task.add_done_callback(services.background.discard)


def _turn_classifier(model_id: str) -> TurnClassifier | None:
    """The bundled turn classifier, if it was fitted on the embedding model in use.

    Either precision of the same weights will do: its decisions on fp32 and int8 embeddings of
    the labelled turns agree (``bench/embedding_speed.py --turns``).
    """
    classifier = TurnClassifier.load()
    if base_model_id(classifier.model_id) != base_model_id(model_id):
        log.warning(
            "turn classifier was fitted on %s, not %s: capabilities come from attachments only",
            classifier.model_id,
            model_id,
        )
        return None
    return classifier
