"""The FastAPI application: ``create_app(settings)`` and the lifespan that owns its services."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app import http_errors
from app.body_limit import BodyLimit
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


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = await start_services(settings)
        app.state.services = services
        services.start_background()
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
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes, shapes=shapes)
    return app
