"""``POST /v1/embeddings``: OpenAI's embeddings API over ``app.pipeline.embeddings``."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app.http.json_body import StrictJSONRoute
from app.wire import embeddings
from app.wire.embeddings import EmbeddingsBody
from routers.deps import CallerDep, EmbeddingCallsDep

router = APIRouter(tags=["embeddings"], route_class=StrictJSONRoute)


@router.post("/v1/embeddings")
async def create_embeddings(
    body: EmbeddingsBody, caller: CallerDep, calls: EmbeddingCallsDep
) -> JSONResponse:
    done = await calls.run(embeddings.to_request(body), caller)
    content = embeddings.reply(done.embeddings, done.model, done.prompt_tokens,
                               body.encoding_format)  # fmt: skip
    return JSONResponse(content, headers={"x-switchboard-model": done.model} | done.headers)
