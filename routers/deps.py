"""FastAPI dependencies per role: each router asks for what it uses, not the whole service.

``CallerDep`` is the authenticated caller of the OpenAI-style APIs (``Authorization: Bearer``,
or Anthropic's ``x-api-key``); ``CompletionsDep`` the request pipeline; ``StoredResponsesDep``
the Responses API's kept conversations; ``EmbeddingCallsDep`` the embeddings use case. The
lifespan's ``Services`` (``app.services``) is read only here.

Every dependency is ``async def``, though none awaits anything: FastAPI runs a plain ``def``
dependency in its thread pool, a thread hop per dependency per request for an attribute
read (``bench/profile_stages.py`` measured them at about 0.5 ms a request).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.catalog import Catalog
from app.gateway.availability import Availability
from app.metrics import Metrics
from app.pipeline.access import Caller, authenticate
from app.pipeline.completions import Completions
from app.pipeline.embeddings import EmbeddingCalls
from app.pipeline.stored_responses import StoredResponses
from app.selection.feedback import FeedbackLoop
from app.services import Services
from app.settings import Settings
from app.state import StateStore


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def _completions(services: ServicesDep) -> Completions:
    return services.completions


async def _stored_responses(services: ServicesDep) -> StoredResponses:
    return services.stored_responses


async def _embedding_calls(services: ServicesDep) -> EmbeddingCalls:
    return services.embedding_calls


async def _settings(services: ServicesDep) -> Settings:
    return services.settings


async def _store(services: ServicesDep) -> StateStore:
    return services.store


async def _catalog(services: ServicesDep) -> Catalog:
    return services.catalog


async def _availability(services: ServicesDep) -> Availability:
    return services.availability


async def _metrics(services: ServicesDep) -> Metrics:
    return services.metrics


async def _feedback(services: ServicesDep) -> FeedbackLoop:
    return services.feedback


CompletionsDep = Annotated[Completions, Depends(_completions)]
StoredResponsesDep = Annotated[StoredResponses, Depends(_stored_responses)]
EmbeddingCallsDep = Annotated[EmbeddingCalls, Depends(_embedding_calls)]
SettingsDep = Annotated[Settings, Depends(_settings)]
StoreDep = Annotated[StateStore, Depends(_store)]
CatalogDep = Annotated[Catalog, Depends(_catalog)]
AvailabilityDep = Annotated[Availability, Depends(_availability)]
MetricsDep = Annotated[Metrics, Depends(_metrics)]
FeedbackDep = Annotated[FeedbackLoop, Depends(_feedback)]


async def _caller(request: Request, settings: SettingsDep, store: StoreDep) -> Caller:
    authorization = request.headers.get("authorization")
    api_key = request.headers.get("x-api-key")
    if not authorization and api_key:  # the Anthropic SDK's way of sending a key
        authorization = f"Bearer {api_key}"
    key = await authenticate(store, authorization, required=settings.require_api_key,
                             fail_open=settings.fail_open)  # fmt: skip
    return Caller(key)


CallerDep = Annotated[Caller, Depends(_caller)]
