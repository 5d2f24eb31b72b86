"""``POST /v1/messages``: Anthropic's Messages API, translated to and from the pipeline.

The wire format is ``app.wire.anthropic`` (and ``app.wire.anthropic_events`` for the stream).
Keys come as ``x-api-key`` (the Anthropic SDK's way) or a bearer token; ``anthropic-version``
is accepted whatever its value. Errors on these paths, FastAPI's validation errors included,
are written in Anthropic's error shape (``ERRORS``, registered in ``app.main``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter
from fastapi.responses import JSONResponse, StreamingResponse

from app.embedding.encoder import count_tokens as estimate_tokens
from app.errors import UpstreamError
from app.http.errors import ErrorShape
from app.http.json_body import StrictJSONRoute
from app.pipeline.completions import Call, Streamed
from app.schemas import Usage
from app.selection.capabilities import prompt_tokens
from app.wire import anthropic
from app.wire.anthropic import CountTokensRequest, MessagesRequest
from app.wire.anthropic_events import MessageEvents
from app.wire.sse import named_event
from routers.deps import CallerDep, CompletionsDep

router = APIRouter(tags=["messages"], route_class=StrictJSONRoute)
ERRORS = ErrorShape("/v1/messages", anthropic.error_body)


@router.post("/v1/messages", response_model=None)
async def create_message(
    body: MessagesRequest, caller: CallerDep, completions: CompletionsDep
) -> JSONResponse | StreamingResponse:
    call = Call(anthropic.to_chat(body), caller, api="messages")
    if body.stream:
        streamed = await completions.stream(call)
        return StreamingResponse(
            _events(streamed), media_type="text/event-stream", headers=streamed.report.headers()
        )
    answer = await completions.run(call)
    content = anthropic.message_object(answer.completion, answer.report.model,
                                       answer.report.body())  # fmt: skip
    return JSONResponse(content, headers=answer.report.headers())


@router.post("/v1/messages/count_tokens")
async def count_tokens(body: CountTokensRequest, caller: CallerDep) -> dict[str, int]:
    """Switchboard's estimate of the prompt's tokens (the one routing and budgets use)."""
    del caller  # authenticated like every call, nothing else
    return {"input_tokens": prompt_tokens(anthropic.to_chat(body), estimate_tokens)}


async def _events(streamed: Streamed) -> AsyncIterator[bytes]:
    """Anthropic's event stream; an upstream failure ends it with an ``error`` event."""
    events = MessageEvents(anthropic.new_message_id(), streamed.report.model,
                           streamed.prompt_tokens)  # fmt: skip
    for event in events.start():
        yield named_event(event)
    usage: Usage | None = None
    try:
        async for chunk in streamed.chunks():
            usage = chunk.usage or usage
            for event in events.chunk(chunk):
                yield named_event(event)
    except UpstreamError as exc:
        for event in events.fail(exc):
            yield named_event(event)
        return
    for event in events.finish(usage):
        yield named_event(event)
