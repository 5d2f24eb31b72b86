"""``POST /noa`` (path configurable): the smart-glasses endpoint, Noa-compatible.

One turn: check the uploads, transcribe the question, route it (the turn classifier decides
whether it needs the photo or fresh facts, and follow-ups keep their model), call the model under
the turn's deadline, remember what answered for the next turn, and reply with the JSON the Frame
app reads. Photo checks and the history's embeddings run while the audio is transcribed.
"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from app.access import admit, authenticate, same_secret, settle
from app.accounting import Outcome, call_estimate, record
from app.errors import (
    AuthenticationError,
    InvalidUpload,
    PayloadTooLarge,
    RequestError,
    UpstreamError,
)
from app.noa import (
    PROMPTLESS_QUESTION,
    Photo,
    Turn,
    check_image,
    loads_location,
    parse_history,
    short_field,
)
from app.routing import fit_to_model, route
from app.schemas import ChatMessage, RoutingPreferences
from app.services import Services
from app.state import ApiKeyRecord
from routers.deps import ServicesDep

MAX_AUDIO_BYTES = 16 * 1024 * 1024
MAX_PROMPT_CHARS = 4000
MIN_ANSWER_S = 3.0
"""The model always gets at least this long, even when transcription ate the turn's deadline:
an answer a little late beats a timeout the user has already waited through."""


def build_router(path: str) -> APIRouter:
    router = APIRouter(tags=["glasses"])
    router.add_api_route(path, noa, methods=["POST"], response_model=None)
    return router


async def _caller(services: Services, request: Request) -> ApiKeyRecord | None:
    """Authenticate by the configured header: a fixed secret, or a Switchboard API key."""
    settings = services.settings
    value = request.headers.get(settings.noa_auth_header)
    if settings.noa_auth_value is not None:
        expected = settings.noa_auth_value.get_secret_value()
        given = (value or "").removeprefix("Bearer ").strip()
        if not same_secret(given, expected):
            raise AuthenticationError(f"missing or wrong {settings.noa_auth_header} header")
        return None
    if value and " " not in value.strip():
        value = f"Bearer {value.strip()}"  # the app sends the bare key as the header value
    return await authenticate(services.store, value, required=settings.require_api_key,
                              fail_open=settings.fail_open)  # fmt: skip


async def _read(upload: UploadFile | None, name: str, limit: int) -> bytes | None:
    if upload is None:
        return None
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLarge(f"{name} is larger than {limit} bytes", param=name)
    return data


async def _question(
    services: Services, audio: bytes | None, prompt: str | None
) -> tuple[str, float]:
    """The turn's question (transcribed, or typed) and the seconds transcription took."""
    if not audio:
        return (prompt or "").strip(), 0.0
    if services.transcriber is None:
        raise RequestError(
            "speech transcription is off on this server (SWITCHBOARD_TRANSCRIPTION); "
            "send the question as `prompt`",
            param="audio",
        )
    started = time.perf_counter()
    transcript = await services.transcriber.transcribe(audio)
    return transcript.text.strip(), time.perf_counter() - started


class NoaFields(BaseModel):
    """The multipart text fields (the files come separately)."""

    messages: str | None = None
    location: str | None = None
    time: str | None = None
    noa_system_prompt: str | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    tts: bool = False  # accepted; no speech is synthesised, so replies carry no `audio`
    promptless: bool = False
    prompt: str | None = Field(default=None, max_length=MAX_PROMPT_CHARS)  # text for `audio`


async def noa(
    request: Request,
    services: ServicesDep,
    fields: Annotated[NoaFields, Form()],
    audio: Annotated[UploadFile | None, File()] = None,
    image: Annotated[UploadFile | None, File()] = None,
) -> JSONResponse:
    """One glasses turn, answered as the Frame app expects."""
    started = time.perf_counter()
    settings = services.settings
    key = await _caller(services, request)
    tenant = key.id if key else None
    history = parse_history(fields.messages, settings.noa_max_history)
    audio_bytes = await _read(audio, "audio", MAX_AUDIO_BYTES)
    image_bytes = await _read(image, "image", settings.noa_max_image_bytes)
    promptless = fields.promptless
    if not audio_bytes and not (fields.prompt and fields.prompt.strip()) and not promptless:
        raise RequestError("send the question as `audio` (or `prompt`), or set promptless",
                           param="audio")  # fmt: skip
    if promptless and image_bytes is None:
        raise RequestError("a promptless turn needs an `image`", param="image")

    question, photo, transcription_s = await _inputs(
        services, audio_bytes, image_bytes, fields.prompt, history
    )
    if promptless and not question:
        question = PROMPTLESS_QUESTION
    if not question:
        raise InvalidUpload("no speech was recognised in the recording", param="audio")
    chat = Turn(
        question=question,
        history=history,
        photo=photo,
        location=loads_location(fields.location),
        time=short_field(fields.time, "time"),
        system_prompt=short_field(fields.noa_system_prompt, "noa_system_prompt"),
        temperature=fields.temperature,
        max_tokens=settings.noa_max_tokens,
    ).chat_request()
    if promptless:  # "what am I looking at": the photo is the question
        chat.switchboard = RoutingPreferences(capabilities=["vision"])

    deadline = max(started + settings.noa_deadline_s, time.perf_counter() + MIN_ANSWER_S)
    routing_started = time.perf_counter()
    # A glasses user is better told "I can't see it" by a text model than shown an error.
    routed = await route(services, chat, tenant, may_answer_blind=True,
                         deadline_s=max(0.0, deadline - routing_started))  # fmt: skip
    routing_s = time.perf_counter() - routing_started
    admission = await admit(services.store, key, *call_estimate(services, chat, routed),
                            fail_open=settings.fail_open)  # fmt: skip
    try:
        completion, attempt = await services.gateway.complete(
            chat, routed.order, deadline=deadline, prepare=fit_to_model(services.catalog)
        )
    except UpstreamError as exc:
        record(services, Outcome(routed, None, exc, time.perf_counter() - started))
        await settle(services.store, admission, 0.0)
        raise
    answer = (completion.choices[0].message.content or "").strip() if completion.choices else ""
    decision = routed.decision
    await services.conversations.remember(
        tenant, chat.messages, answer, attempt.model, decision.capabilities
    )
    elapsed = time.perf_counter() - started
    own_s = max(0.0, elapsed - attempt.upstream_s - transcription_s)
    outcome = Outcome(routed, attempt, None, elapsed, completion.usage, overhead_override_s=own_s)
    cost = record(services, outcome)
    await settle(services.store, admission, cost)
    body: dict[str, Any] = {
        "user_prompt": question if audio_bytes or not promptless else "",
        "message": answer,
        "debug": {
            "topic_changed": decision.topic_changed,
            "followup": decision.followup,
            "model": attempt.model,
            "capabilities_used": decision.capabilities,
            "capabilities_unmet": decision.unmet_capabilities,
            "fallbacks": attempt.fallbacks,
            "hedged": attempt.hedged,
            "decision_id": decision.decision_id,
            "cost_usd": cost,
            "timings": {
                "transcription_ms": round(transcription_s * 1000, 1),
                "routing_ms": round(routing_s * 1000, 2),
                "model_ms": round(attempt.upstream_s * 1000, 1),
                "switchboard_ms": round(own_s * 1000, 2),
                "total_ms": round(elapsed * 1000, 1),
            },
            "token_usage": completion.usage.model_dump() if completion.usage else None,
        },
    }
    headers = {
        "x-switchboard-model": attempt.model,
        "x-switchboard-decision-id": decision.decision_id,
        "x-switchboard-overhead-ms": f"{own_s * 1000:.2f}",
    }
    return JSONResponse(body, headers=headers | admission.headers)


async def _inputs(
    services: Services,
    audio: bytes | None,
    image: bytes | None,
    prompt: str | None,
    history: list[ChatMessage],
) -> tuple[str, Photo | None, float]:
    """The question, the checked photo, and the transcription time.

    The photo is decoded and the recent history embedded while the audio is transcribed, so
    neither adds to the turn's time.
    """
    limit = services.settings.noa_max_image_bytes
    photo_task = (
        asyncio.create_task(asyncio.to_thread(check_image, image, limit)) if image else None
    )
    warm = [
        asyncio.create_task(services.embeddings.embed(m.text()))
        for m in history[-3:]
        if m.role == "user" and m.text().strip()
    ]
    try:
        question, transcription_s = await _question(services, audio, prompt)
        photo = await photo_task if photo_task is not None else None
        await asyncio.gather(*warm)
    finally:
        for task in (photo_task, *warm):
            if task is not None and not task.done():
                task.cancel()
    return question, photo, transcription_s
