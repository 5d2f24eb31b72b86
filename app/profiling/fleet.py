"""The models a bootstrap calls, built exactly as the service builds them.

Adapters come from ``adapters.registry.build_adapter`` with each row's endpoint, key and
timeouts; calls go through ``app.gateway.dispatch.Gateway`` with the service's ``RetryPolicy`` (from
``Settings``), so retries and backoff are the ones users get. Rows with ``launch:`` get their
llama.cpp server started here and stopped when the run ends, however it ends.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from adapters.registry import build_adapter
from app.catalog import ModelEntry
from app.errors import ConfigError
from app.gateway.assembly import build_gateway
from app.gateway.breaker import CircuitBreakers
from app.gateway.dispatch import Gateway
from app.gateway.local_servers import LocalServer, RestartPolicy
from app.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Fleet:
    gateway: Gateway
    entries: dict[str, ModelEntry]
    failed: dict[str, str] = field(default_factory=dict)
    """Models that could not be started (local servers), with the reason."""


async def _start(entry: ModelEntry, settings: Settings, cache_dir: Path) -> LocalServer:
    if not settings.manage_local:
        raise ConfigError("SWITCHBOARD_MANAGE_LOCAL is off, so local servers are not started")
    restart = RestartPolicy(settings.local_restart_base_s, settings.local_restart_max_s)
    server = LocalServer(entry, cache_dir, restart)
    try:
        await server.start(settings.local_start_timeout_s)
    except BaseException:
        await server.stop()
        raise
    return server


@contextlib.asynccontextmanager
async def open_fleet(entries: list[ModelEntry], settings: Settings) -> AsyncIterator[Fleet]:
    """Adapters and a gateway for ``entries``; local servers run while the context is open."""
    cache_dir = settings.cache_path
    servers: dict[str, LocalServer] = {}
    failed: dict[str, str] = {}
    http = httpx.AsyncClient(limits=httpx.Limits(max_connections=100, max_keepalive_connections=20))
    adapters = {}
    try:
        for entry in entries:
            base_url = None
            if entry.launch is not None:
                try:
                    servers[entry.id] = await _start(entry, settings, cache_dir)
                except ConfigError as exc:
                    failed[entry.id] = exc.message
                    continue
                base_url = servers[entry.id].base_url
            adapters[entry.id] = build_adapter(entry.adapter, entry.endpoint(base_url), http)
        breakers = CircuitBreakers(settings.breaker_failures, settings.breaker_cooldown_s)
        # no fallback and no hedge: each answer must come from the model it is credited to
        gateway = build_gateway(settings, entries, adapters, breakers, fallbacks=False, hedge=False)
        yield Fleet(gateway, {e.id: e for e in entries if e.id in adapters}, failed)
    finally:
        for adapter in adapters.values():
            await adapter.aclose()
        await http.aclose()
        for server in servers.values():
            await server.stop()
