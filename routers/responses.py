"""``POST /v1/responses``: the OpenAI Responses API, translated to and from the pipeline.

The wire format is ``app.wire.responses`` (and ``app.wire.responses_events`` for the stream);
the conversations behind ``previous_response_id`` are ``app.pipeline.stored_responses``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

from fastapi import APIRouter
from fastapi.responses import JSONResponse, StreamingResponse

from app.errors import UpstreamError
from app.http.json_body import StrictJSONRoute
from app.pipeline.completions import Call, Streamed
from app.schemas import ChatMessage, Usage
from app.wire import responses
from app.wire.responses import ResponsesRequest
from app.wire.responses_events import ResponseEvents
from app.wire.sse import named_event
from routers.deps import CallerDep, CompletionsDep, StoredResponsesDep

router = APIRouter(tags=["responses"], route_class=StrictJSONRoute)


@router.post("/v1/responses", response_model=None)
async def create_response(
    body: ResponsesRequest,
    caller: CallerDep,
    completions: CompletionsDep,
    stored: StoredResponsesDep,
) -> JSONResponse | StreamingResponse:
    history = []
    if body.previous_response_id is not None:
        history = await stored.load(caller, body.previous_response_id)
    messages = responses.conversation(body, history)
    call = Call(responses.to_chat(body, messages), caller, api="responses")
    if body.stored:
        await stored.admit(caller, messages)
    frame = responses.Frame(body)

    async def keep(answer: ChatMessage) -> None:
        if body.stored:
            await stored.save(caller, frame.id, [*messages, answer])

    if body.stream:
        streamed = await completions.stream(call)
        return StreamingResponse(
            _events(streamed, frame, keep),
            media_type="text/event-stream",
            headers=streamed.report.headers(),
        )
    answer = await completions.run(call)
    await keep(responses.answered(answer.completion))
    content = frame.completed(answer.completion, answer.report.model, answer.report.body())
    return JSONResponse(content, headers=answer.report.headers())


async def _events(
    streamed: Streamed,
    frame: responses.Frame,
    keep: Callable[[ChatMessage], Awaitable[None]],
) -> AsyncIterator[bytes]:
    """The Responses event stream; an upstream failure ends it with ``response.failed``."""
    events = ResponseEvents(frame, streamed.report.model)
    for event in events.start():
        yield named_event(event)
    usage: Usage | None = None
    try:
        async for chunk in streamed.chunks():
            usage = chunk.usage or usage
            for event in events.chunk(chunk):
                yield named_event(event)
    except UpstreamError as exc:
        for event in events.fail(exc, streamed.report.body()):
            yield named_event(event)
        return
    await keep(responses.assistant_turn(events.output))  # before the client can leave
    for event in events.finish(usage, streamed.report.body()):
        yield named_event(event)
