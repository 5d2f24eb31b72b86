"""The FastAPI application: ``create_app(settings)`` and the lifespan that owns its services.

Forwarded headers (``X-Forwarded-Proto``, ``X-Forwarded-For``) count only from the peers in
``SWITCHBOARD_TRUSTED_PROXIES``: the console's cookie is ``Secure`` when the request, or a trusted
TLS proxy in front of it, is https.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from opentelemetry.trace import TracerProvider
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from app.http import errors as http_errors
from app.http.body_limit import BodyLimit
from app.pipeline.access import anonymous_notice
from app.request_limits import LimitsScope, RequestLimits
from app.services import start_services
from app.settings import Settings, get_settings
from routers import (
    admin,
    chat,
    embeddings,
    feedback,
    health,
    messages,
    models,
    noa,
    responses,
    route,
    ui,
)

log = logging.getLogger(__name__)


def create_app(
    settings: Settings | None = None, tracer_provider: TracerProvider | None = None
) -> FastAPI:
    """The service; ``tracer_provider`` overrides the OTLP set-up (see ``app.telemetry``)."""
    settings = settings or get_settings()
    notice = anonymous_notice(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = await start_services(settings, tracer_provider)
        app.state.services = services
        services.start_background()
        if notice:
            log.warning(notice)
        try:
            yield
        finally:
            await services.aclose()

    app = FastAPI(title="Switchboard", version="0.1.0", lifespan=lifespan)
    shapes = [messages.ERRORS]  # APIs whose errors are not in the OpenAI envelope
    http_errors.install(app, shapes)
    for module in (chat, responses, messages, embeddings, route, models, health, feedback, admin,
                   ui):  # fmt: skip
        app.include_router(module.router)
    app.include_router(noa.build_router(settings.noa_path))
    app.add_middleware(LimitsScope, limits=RequestLimits.of(settings))
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes, shapes=shapes)
    if settings.trusted_proxies:
        # Scheme and client address from X-Forwarded-Proto/-For, only when the peer is one of
        # these (``switchboard serve`` turns uvicorn's own, which trusts 127.0.0.1, off).
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)
    return app
