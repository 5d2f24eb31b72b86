"""``POST /v1/chat/completions``: OpenAI Chat Completions, translated to and from the pipeline.

``POST /v1/completions`` (the legacy text completions) is not served: a 404 points here.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from app.errors import NotFound, UpstreamError
from app.http.json_body import FastJSONResponse, StrictJSONRoute
from app.pipeline.completions import Call, Streamed
from app.schemas import ChatChunk, ChatRequest, Usage
from routers.deps import CallerDep, CompletionsDep

router = APIRouter(tags=["chat"], route_class=StrictJSONRoute)


@router.post("/v1/chat/completions", response_model=None)
async def chat_completions(
    body: ChatRequest, caller: CallerDep, completions: CompletionsDep
) -> FastJSONResponse | StreamingResponse:
    call = Call(body, caller, api="chat")
    if body.stream:
        streamed = await completions.stream(call)
        want_usage = bool(body.stream_options and body.stream_options.include_usage)
        return StreamingResponse(
            _events(streamed, want_usage),
            media_type="text/event-stream",
            headers=streamed.report.headers(),
        )
    answer = await completions.run(call)
    content = answer.completion.model_dump(mode="json")
    content["switchboard"] = answer.report.body()
    return FastJSONResponse(content, headers=answer.report.headers())


@router.post("/v1/completions", include_in_schema=False)
async def legacy_completions() -> None:
    raise NotFound(
        "POST /v1/completions (legacy text completions) is not served; "
        "send messages to POST /v1/chat/completions",
        code="unsupported_endpoint",
    )


def _sse(payload: str) -> bytes:
    return f"data: {payload}\n\n".encode()


async def _events(streamed: Streamed, want_usage: bool) -> AsyncIterator[bytes]:
    """OpenAI's SSE: chunks, the usage chunk if asked for, ``[DONE]``; or a final error event."""
    usage: Usage | None = None
    try:
        async for chunk in streamed.chunks():
            if chunk.usage is not None:  # held back for the one final usage chunk
                usage = chunk.usage
                if not chunk.choices:
                    continue
                chunk.usage = None
            yield _sse(chunk.model_dump_json(exclude_none=True))
    except UpstreamError as exc:
        yield _sse(json.dumps(exc.envelope()))
        return
    if want_usage and usage is not None:
        final = ChatChunk(id=streamed.completion_id, model=streamed.report.model, usage=usage)
        yield _sse(final.model_dump_json(exclude_none=True))
    yield b"data: [DONE]\n\n"
