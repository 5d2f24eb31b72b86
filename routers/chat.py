"""``POST /v1/chat/completions``: the OpenAI endpoint, routed."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header
from fastapi.responses import JSONResponse, StreamingResponse

from app.access import Admission, admit, authenticate, settle
from app.accounting import Outcome, call_estimate, record, record_cache_hit
from app.dispatch import Attempt
from app.embedding import count_tokens
from app.errors import UpstreamError
from app.json_body import StrictJSONRoute
from app.routing import AUTO_MODELS, Routed, fit_to_model, route
from app.schemas import ChatChunk, ChatRequest, Usage
from app.services import Services
from app.state import ApiKeyRecord
from routers.deps import ServicesDep

router = APIRouter(tags=["chat"], route_class=StrictJSONRoute)


def _headers(routed: Routed, attempt: Attempt, overhead_s: float) -> dict[str, str]:
    return {
        "x-switchboard-model": attempt.model,
        "x-switchboard-decision-id": routed.decision.decision_id,
        "x-switchboard-overhead-ms": f"{overhead_s * 1000:.2f}",
        "x-switchboard-fallbacks": ",".join(attempt.fallbacks),
    }


@router.post("/v1/chat/completions", response_model=None)
async def chat_completions(
    body: ChatRequest,
    services: ServicesDep,
    authorization: Annotated[str | None, Header()] = None,
) -> JSONResponse | StreamingResponse:
    started = time.perf_counter()
    settings = services.settings
    key = await authenticate(services.store, authorization, required=settings.require_api_key,
                             fail_open=settings.fail_open)  # fmt: skip
    cacheable = services.cache is not None and key is not None  # never for anonymous callers
    if cacheable and key is not None and not body.stream:
        cached = await _from_cache(services, body, key, started)
        if cached is not None:
            return cached
    routed = await route(services, body, key.id if key else None)
    admission = await admit(services.store, key, *call_estimate(services, body, routed),
                            fail_open=settings.fail_open)  # fmt: skip
    tenant = key.id if key else None
    if body.stream:
        return await _stream(services, body, routed, started, admission, tenant)
    try:
        completion, attempt = await services.gateway.complete(
            body, routed.order, deadline=_deadline(routed, started),
            prepare=fit_to_model(services.catalog),
        )  # fmt: skip
    except UpstreamError as exc:
        failed = Outcome(routed, None, exc, time.perf_counter() - started,
                         key_name=_key_name(admission))  # fmt: skip
        record(services, failed)
        await settle(services.store, admission, 0.0)
        raise
    completion.model = attempt.model
    if body.model in AUTO_MODELS and completion.choices:
        answer = completion.choices[0].message.content or ""
        await services.conversations.remember(tenant, body.messages, answer, attempt.model,
                                              routed.decision.capabilities)  # fmt: skip
    elapsed = time.perf_counter() - started
    outcome = Outcome(routed, attempt, None, elapsed, completion.usage,
                      key_name=_key_name(admission))  # fmt: skip
    cost = record(services, outcome)
    await settle(services.store, admission, cost)
    headers = _headers(routed, attempt, outcome.overhead_s) | admission.headers
    headers["x-switchboard-cost-usd"] = f"{cost:.8f}"
    content = completion.model_dump(mode="json")
    content["switchboard"] = {
        "model": attempt.model,
        "decision_id": routed.decision.decision_id,
        "cost_usd": cost,
        "overhead_ms": round(outcome.overhead_s * 1000, 2),
        "fallbacks": attempt.fallbacks,
    }
    if cacheable and key is not None:
        assert services.cache is not None
        headers["x-switchboard-cache"] = "miss"
        embedding = await services.embeddings.embed(body.messages[-1].text())
        await services.cache.put(body, key.id, embedding, json.dumps(content))
    return JSONResponse(content, headers=headers)


def _key_name(admission: Admission) -> str | None:
    return admission.key.name if admission.key else None


async def _from_cache(
    services: Services, body: ChatRequest, key: ApiKeyRecord, started: float
) -> JSONResponse | None:
    assert services.cache is not None
    embedding = await services.embeddings.embed(body.messages[-1].text())
    hit = await services.cache.get(body, key.id, embedding)
    if hit is None:
        return None
    # A cached answer costs nothing upstream, but it is still a request: the key's rate limit
    # counts it (and a spent budget refuses it, as it would any call).
    admission = await admit(services.store, key, 0, 0.0, fail_open=services.settings.fail_open)
    await settle(services.store, admission, 0.0)
    content = json.loads(hit)
    record_cache_hit(services, str(content.get("model", "none")),
                     time.perf_counter() - started, key.name)  # fmt: skip
    headers = {"x-switchboard-cache": "hit", "x-switchboard-model": str(content.get("model", "")),
               "x-switchboard-cost-usd": "0.00000000"}  # fmt: skip
    return JSONResponse(content, headers=headers | admission.headers)


def _sse(payload: str) -> bytes:
    return f"data: {payload}\n\n".encode()


def _deadline(routed: Routed, started: float) -> float | None:
    """The perf_counter instant the caller's ``max_latency_ms`` runs out, if it set one."""
    seconds = routed.decision.deadline_s
    return None if seconds is None else started + seconds


async def _stream(
    services: Services,
    body: ChatRequest,
    routed: Routed,
    started: float,
    admission: Admission,
    tenant: str | None,
) -> StreamingResponse:
    try:
        first, rest, attempt = await services.gateway.open_stream(
            body, routed.order, deadline=_deadline(routed, started),
            prepare=fit_to_model(services.catalog),
        )  # fmt: skip
    except UpstreamError as exc:
        failed = Outcome(routed, None, exc, time.perf_counter() - started,
                         key_name=_key_name(admission))  # fmt: skip
        record(services, failed)
        await settle(services.store, admission, 0.0)
        raise
    want_usage = bool(body.stream_options and body.stream_options.include_usage)
    overhead_s = time.perf_counter() - started - attempt.upstream_s

    async def events() -> AsyncIterator[bytes]:
        usage: Usage | None = None
        error: UpstreamError | None = None
        text: list[str] = []
        try:
            async for chunk in _chain(first, rest):
                chunk.model = attempt.model
                if chunk.usage is not None:
                    usage = chunk.usage
                    if not chunk.choices:
                        continue
                    chunk.usage = None
                text.extend(c.delta.content or "" for c in chunk.choices)
                yield _sse(chunk.model_dump_json(exclude_none=True))
            if usage is None:  # some servers (llama.cpp) never report usage when streaming
                usage = _estimated_usage(routed.decision.prompt_tokens, "".join(text))
            if want_usage:
                final = ChatChunk(id=first.id, model=attempt.model, usage=usage)
                yield _sse(final.model_dump_json(exclude_none=True))
        except UpstreamError as exc:
            error = exc
            yield _sse(json.dumps(exc.envelope()))
        else:
            yield b"data: [DONE]\n\n"
            if body.model in AUTO_MODELS:
                await services.conversations.remember(
                    tenant,
                    body.messages,
                    "".join(text),
                    attempt.model,
                    routed.decision.capabilities,
                )
        finally:
            elapsed = time.perf_counter() - started
            outcome = Outcome(
                routed,
                attempt,
                error,
                elapsed,
                usage,
                streamed=True,
                overhead_override_s=overhead_s,
                key_name=_key_name(admission),
            )
            await settle(services.store, admission, record(services, outcome))

    headers = _headers(routed, attempt, overhead_s) | admission.headers
    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)


def _estimated_usage(prompt_tokens: int, text: str) -> Usage:
    completion = count_tokens(text) if text else 0
    return Usage(
        prompt_tokens=prompt_tokens,
        completion_tokens=completion,
        total_tokens=prompt_tokens + completion,
    )


async def _chain(first: ChatChunk, rest: AsyncIterator[ChatChunk]) -> AsyncIterator[ChatChunk]:
    if first.choices or first.usage is not None:
        yield first
    async for chunk in rest:
        yield chunk
