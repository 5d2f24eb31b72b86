"""The composition root: every long-lived object of one running service, built and stopped here.

Everything with a lifetime (httpx client, local model servers, encoder, adapters, the pipeline,
background tasks) is created in ``start_services`` and closed in ``Services.aclose``. Only the
lifespan (``app.main``) and the FastAPI dependencies (``routers.deps``) see ``Services``; every
other part gets the collaborators it uses. Nothing here lives at module level.

Background tasks owned by the lifespan keep store I/O off the request path: feedback and
breaker state from other workers are adopted once a second, and unsettled spend is replayed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from opentelemetry.trace import TracerProvider
from threadpoolctl import threadpool_limits

from adapters.base import ChatAdapter
from adapters.registry import build_adapter
from adapters.transcription import Transcriber, build_transcriber
from app.catalog import Catalog, load_catalog
from app.embedding.batcher import EmbeddingService
from app.embedding.encoder import DEFAULT_MAX_TOKENS, Encoder, load_encoder
from app.embedding.turn_model import load_turn_encoder
from app.errors import ConfigError
from app.gateway.assembly import build_gateway
from app.gateway.availability import Availability
from app.gateway.breaker import CircuitBreakers
from app.gateway.breaker_sync import BreakerSync
from app.gateway.dispatch import Gateway
from app.gateway.latency import LatencyTracker
from app.gateway.local_servers import LocalServer, RestartPolicy
from app.metrics import Metrics
from app.pipeline.accounting import Recorder
from app.pipeline.completions import Completions, Limits
from app.pipeline.conversation import Conversations, TurnReader
from app.pipeline.decision_log import DecisionLog
from app.pipeline.decisions import Decider
from app.pipeline.embeddings import EmbeddingCalls
from app.pipeline.ledger import Ledger, Outbox
from app.pipeline.response_cache import ResponseCache
from app.pipeline.stored_responses import Bounds, StoredResponses
from app.selection.anchors import load_anchors
from app.selection.estimator import Estimator, FeedbackBounds
from app.selection.feedback import FeedbackLoop
from app.selection.profiles import LearnedProfiles, load_profiles
from app.selection.selector import Selector
from app.selection.turns import TurnClassifier
from app.settings import Settings
from app.state import StateStore, open_store
from app.telemetry import PROVIDERS, Target, Tracing, tracer

log = logging.getLogger(__name__)
PHOTO_THREADS = 2

SYNC_INTERVAL_S = 1.0


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
    breaker_sync: BreakerSync
    latency: LatencyTracker
    conversations: Conversations
    decision_log: DecisionLog
    outbox: Outbox
    decider: Decider
    completions: Completions
    stored_responses: StoredResponses
    embedding_calls: EmbeddingCalls
    transcriber: Transcriber | None = None
    turn_embeddings: EmbeddingService | None = None  # glasses turns (app.embedding.turn_model)
    background: set[asyncio.Task[None]] = field(default_factory=set)
    photos: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(
        PHOTO_THREADS, thread_name_prefix="photo-check"))  # fmt: skip
    """Decodes uploaded photos (``app.glasses.turn.check_image``), apart from the default pool
    that the embedding batcher uses: a burst of photos neither delays routing nor decodes more than
    ``PHOTO_THREADS`` images at once."""

    def spawn(self, name: str, work: Callable[[], Awaitable[None]]) -> None:
        """Run ``work`` in a background task that the lifespan cancels at shutdown."""
        task = asyncio.get_running_loop().create_task(_logged(name, work), name=name)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    def start_background(self) -> None:
        """The periodic work that keeps store I/O off the request path."""
        self.spawn("sync-state", self._sync_forever)
        self.spawn("spend-outbox", self.outbox.run)
        warm = getattr(self.transcriber, "warm", None)
        if warm is not None:  # load the speech model now, so the first spoken turn does not wait
            self.spawn("warm-transcriber", warm)

    async def _sync_forever(self) -> None:
        while True:
            await self.sync_state()
            await asyncio.sleep(SYNC_INTERVAL_S)

    async def sync_state(self) -> None:
        """Adopt feedback and open breakers recorded by other workers (and publish ours)."""
        await self.feedback.sync(force=True)
        await self.breaker_sync.sync(force=True)

    async def aclose(self) -> None:
        for task in self.background:
            task.cancel()
        for task in list(self.background):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.completions.drain()
        await self.outbox.drain()
        self.photos.shutdown(wait=False, cancel_futures=True)
        if self.transcriber is not None:
            await self.transcriber.aclose()
        await self.decision_log.drain()
        await self.store.aclose()
        for adapter in self.adapters.values():
            await adapter.aclose()
        await self.embeddings.aclose()
        if self.embedding_calls.encoder is not self.embeddings:
            await self.embedding_calls.encoder.aclose()
        if self.turn_embeddings is not None:
            await self.turn_embeddings.aclose()
        await self.http.aclose()
        for server in self.availability.local.values():
            await server.stop()


async def _logged(name: str, work: Callable[[], Awaitable[None]]) -> None:
    try:
        await work()
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # a background task must never take the service down
        log.error("background task %s failed: %s: %s", name, type(exc).__name__, exc)


async def start_local_servers(
    catalog: Catalog, settings: Settings, cache_dir: Path
) -> tuple[dict[str, LocalServer], dict[str, str]]:
    """The catalog's ``launch:`` models: adopted from ``settings.local_urls`` (started by the
    parent of several workers), else started here when ``settings.manage_local``."""
    servers: dict[str, LocalServer] = {}
    failures: dict[str, str] = {}
    for entry in catalog.models:
        if entry.launch is None:
            continue
        if entry.id in settings.local_urls:
            servers[entry.id] = LocalServer.adopt(entry, settings.local_urls[entry.id], cache_dir)
            continue
        if not settings.manage_local:
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


def turn_encoder(settings: Settings) -> Encoder:
    """The encoder that reads glasses turns (``app.embedding.turn_model``); made once like the
    router's (the first start joins, unpacks and exports it into the cache)."""
    return load_turn_encoder(
        settings.cache_path, settings.turn_embedding_model, settings.embedding_threads
    )


def routing_encoder(settings: Settings, learned: LearnedProfiles | None = None) -> Encoder:
    """The query encoder of the settings (and of the profiles' embeddings, when there are any).

    The first call on a machine makes its files in the cache (the ONNX export; for static
    vectors the token table): ``serve --workers N`` calls it once before the workers start.
    """
    return load_encoder(
        settings.embedding_model,
        settings.embedding_backend,
        settings.cache_path,
        settings.embedding_threads,
        like=learned.embedding_model if learned else None,
        max_tokens=settings.embedding_max_tokens or DEFAULT_MAX_TOKENS,
    )


async def start_services(
    settings: Settings, tracer_provider: TracerProvider | None = None
) -> Services:
    # One query at a time is a matrix-vector product: BLAS threads only add wake-up latency
    # (measured: 8 ms instead of 0.5 ms for 10k x 384 on 2 cores). Concurrency comes from requests.
    threadpool_limits(limits=1, user_api="blas")
    catalog = load_catalog(settings.catalog)
    cache_dir = settings.cache_path
    learned = load_profiles(settings.profiles) if settings.profiles else None
    encoder = routing_encoder(settings, learned)
    declared = {m.id: m.profile for m in catalog.models if m.profile is not None}
    estimator = Estimator(
        learned,
        declared=declared,
        aliases={m.id: m.data_name for m in catalog.models},
        encoder=encoder,
        neutral=catalog.ids,
        anchors=load_anchors(encoder, cache_dir)
        if any(p.kinds for p in declared.values())
        else None,
        feedback_bounds=FeedbackBounds(
            per_source=settings.feedback_max_points_per_key,
            total=settings.feedback_max_points,
            source_weight=settings.feedback_key_weight,
        ),
    )
    if estimator.neutral:
        log.warning(
            "no capability profile for %s: routed at the neutral level %.2f until profiled "
            "(switchboard profiles bootstrap --models %s --out DIR, then SWITCHBOARD_PROFILES=DIR)",
            ", ".join(estimator.neutral),
            estimator.neutral_level,
            ",".join(estimator.neutral),
        )
    local, failures = await start_local_servers(catalog, settings, cache_dir)
    pool = settings.max_upstream_concurrency
    http = httpx.AsyncClient(
        limits=httpx.Limits(max_connections=pool, max_keepalive_connections=min(pool, 64))
    )
    adapters = {}
    for entry in catalog.models:
        server = local.get(entry.id)
        if entry.launch is not None and server is None:
            continue
        endpoint = entry.endpoint(server.base_url if server else None)
        adapters[entry.id] = build_adapter(entry.adapter, endpoint, http)
    breakers = CircuitBreakers(settings.breaker_failures, settings.breaker_cooldown_s)
    availability = Availability(breakers, local, failures)
    latency = LatencyTracker()
    selector = Selector(
        catalog,
        estimator,
        availability,
        default_preset=settings.default_preset,
        default_output_tokens=settings.default_output_tokens,
        latency=latency,
    )
    store = open_store(
        settings.redis_url.get_secret_value() if settings.redis_url else None,
        max_entries=settings.memory_max_entries,
        max_feedback=settings.feedback_max_points,
    )
    embeddings = _embedding_service(settings, encoder)
    # Static vectors route; the transformer serves /v1/embeddings and the response cache, and
    # all-mpnet-base-v2 reads glasses turns (_turn_embeddings).
    transformer = embeddings
    if encoder.inline:
        transformer = _embedding_service(
            settings, routing_encoder(settings.model_copy(update={"embedding_backend": "onnx"}))
        )
    turns = _turn_embeddings(settings)
    glasses = _turn_reader(turns) if turns is not None else None
    if glasses is None and turns is not None:  # no classifier is fitted on its vectors
        await turns.aclose()
        turns = None
    conversations = Conversations(
        _turn_reader(embeddings), store, glasses=glasses or _turn_reader(transformer)
    )
    metrics = Metrics()
    encoders = list({id(e): e for e in (embeddings, transformer, turns) if e is not None}.values())
    metrics.count_shed(lambda: sum(e.refused for e in encoders))
    feedback = FeedbackLoop(store, estimator)
    decision_log = DecisionLog(store, catalog)
    tracing = Tracing(
        tracer(tracer_provider),
        {
            m.id: Target(
                PROVIDERS.get(m.adapter, m.adapter),
                m.upstream_model or m.id,
                urlsplit(m.base_url).hostname if m.base_url else "127.0.0.1",
            )
            for m in catalog.models
        },
    )
    gateway = build_gateway(settings, catalog.models, adapters, breakers, latency)
    gateway.tracing = tracing
    outbox = Outbox(store)
    decider = Decider(catalog, selector, embeddings, conversations, feedback, availability, metrics)
    cache = (
        ResponseCache(store, settings.cache_ttl_s, settings.cache_similarity)
        if settings.cache_ttl_s > 0
        else None
    )
    completions = Completions(
        catalog=catalog,
        decider=decider,
        gateway=gateway,
        store=store,
        outbox=outbox,
        recorder=Recorder(catalog, metrics, decision_log),
        conversations=conversations,
        cache_vectors=transformer,
        cache=cache,
        limits=Limits(
            fail_open=settings.fail_open,
            default_output_tokens=settings.default_output_tokens,
            max_fallbacks=settings.max_fallbacks,
            max_hedges=settings.max_hedges,
        ),
        tracing=tracing,
    )
    return Services(
        settings=settings,
        catalog=catalog,
        metrics=metrics,
        availability=availability,
        http=http,
        embeddings=embeddings,
        estimator=estimator,
        selector=selector,
        gateway=gateway,
        adapters=adapters,
        store=store,
        feedback=feedback,
        breaker_sync=BreakerSync(store, breakers),
        latency=latency,
        conversations=conversations,
        decision_log=decision_log,
        outbox=outbox,
        decider=decider,
        completions=completions,
        stored_responses=StoredResponses(
            store,
            Bounds(
                settings.responses_ttl_s,
                settings.responses_max_bytes,
                settings.responses_per_caller,
            ),
        ),
        embedding_calls=EmbeddingCalls(
            catalog,
            adapters,
            availability,
            transformer,
            lambda caller: Ledger(caller, store, outbox, settings.fail_open),
            metrics,
        ),
        transcriber=_transcriber(settings, http, cache_dir),
        turn_embeddings=turns,
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


def _turn_embeddings(settings: Settings) -> EmbeddingService | None:
    """The glasses turns' encoder as a service; None (the router's transformer reads them,
    less well) if its weights cannot be had."""
    try:
        encoder = turn_encoder(settings)
    except ConfigError as exc:
        log.error("glasses turns are read by the router's transformer instead: %s", exc.message)
        return None
    return _embedding_service(settings, encoder)


def _embedding_service(settings: Settings, encoder: Encoder) -> EmbeddingService:
    """``encoder`` behind the cache, micro-batching and queue bound the settings give."""
    return EmbeddingService(
        encoder,
        cache_bytes=settings.embedding_cache_bytes,
        max_wait_s=settings.embedding_batch_wait_s,
        max_queue_s=settings.embedding_queue_timeout_s,
    )


def _turn_reader(embeddings: EmbeddingService) -> TurnReader | None:
    """The bundled turn classifier fitted on these embeddings, with them; None if none is."""
    model_id = embeddings.encoder.model_id
    classifier = TurnClassifier.for_embeddings(model_id)
    if classifier is None:
        log.warning(
            "no turn classifier is fitted on %s: capabilities come from attachments only",
            model_id,
        )
        return None
    return TurnReader(classifier, embeddings)
