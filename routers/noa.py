"""``POST /noa`` (path configurable): the smart-glasses endpoint, Noa-compatible.

One turn: check the uploads, transcribe the question, route it (the turn classifier decides
whether it needs the photo or fresh facts, and follow-ups keep their model), call the model under
the turn's deadline, remember what answered for the next turn, and reply with the JSON the Frame
app reads. Photo checks and the history's embeddings run while the audio is transcribed.
"""

from __future__ import annotations

import asyncio
import time
from functools import partial
from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from pydantic import BaseModel, Field

from app.errors import (
    AuthenticationError,
    InvalidUpload,
    PayloadTooLarge,
    RequestError,
)
from app.glasses.turn import (
    PROMPTLESS_QUESTION,
    GlassesTurn,
    Photo,
    check_image,
    loads_location,
    parse_history,
    short_field,
)
from app.http.json_body import FastJSONResponse
from app.pipeline.access import Caller, authenticate, same_secret
from app.pipeline.completions import Answer, Call
from app.schemas import ChatMessage, RoutingPreferences
from app.services import Services
from app.state import JsonDict
from routers.deps import CompletionsDep, ServicesDep

MAX_AUDIO_BYTES = 16 * 1024 * 1024
MAX_PROMPT_CHARS = 4000
MIN_ANSWER_S = 3.0
"""The model always gets at least this long, even when transcription ate the turn's deadline:
an answer a little late beats a timeout the user has already waited through."""


def build_router(path: str) -> APIRouter:
    router = APIRouter(tags=["glasses"])
    router.add_api_route(path, noa, methods=["POST"], response_model=None)
    return router


async def _caller(services: Services, request: Request) -> Caller:
    """Authenticate by the configured header: a fixed secret, or a Switchboard API key."""
    settings = services.settings
    value = request.headers.get(settings.noa_auth_header)
    if settings.noa_auth_value is not None:
        expected = settings.noa_auth_value.get_secret_value()
        given = (value or "").removeprefix("Bearer ").strip()
        if not same_secret(given, expected):
            raise AuthenticationError(f"missing or wrong {settings.noa_auth_header} header")
        return Caller()
    if value and " " not in value.strip():
        value = f"Bearer {value.strip()}"  # the app sends the bare key as the header value
    key = await authenticate(services.store, value, required=settings.require_api_key,
                             fail_open=settings.fail_open)  # fmt: skip
    return Caller(key)


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
    # inside the turn's deadline, leaving the model the least time it always gets
    within = max(MIN_ANSWER_S, services.settings.noa_deadline_s - MIN_ANSWER_S)
    transcript = await services.transcriber.transcribe(audio, within_s=within)
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
    completions: CompletionsDep,
    fields: Annotated[NoaFields, Form()],
    audio: Annotated[UploadFile | None, File()] = None,
    image: Annotated[UploadFile | None, File()] = None,
) -> FastJSONResponse:
    """One glasses turn, answered as the Frame app expects."""
    started = time.perf_counter()
    settings = services.settings
    caller = await _caller(services, request)
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
    chat = GlassesTurn(
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

    routing_started = time.perf_counter()
    deadline = max(started + settings.noa_deadline_s, routing_started + MIN_ANSWER_S)
    call = Call(chat, caller, api="noa", started=routing_started,
                deadline_s=max(0.0, deadline - routing_started))  # fmt: skip
    answer = await completions.run(call)
    body = _reply(answer, question if audio_bytes or not promptless else "", transcription_s,
                  time.perf_counter() - started)  # fmt: skip
    return FastJSONResponse(body, headers=answer.report.headers())


def _reply(answer: Answer, user_prompt: str, transcription_s: float, total_s: float) -> JsonDict:
    """The JSON the Frame app reads: the transcript, the answer, and what happened."""
    completion, report = answer.completion, answer.report
    message = (completion.choices[0].message.content or "").strip() if completion.choices else ""
    decision, attempt = report.decision, report.attempt
    routing_s = report.routed.routing_s if report.routed else 0.0
    model_s = attempt.upstream_s if attempt else 0.0
    return {
        "user_prompt": user_prompt,
        "message": message,
        "debug": {
            "topic_changed": decision.topic_changed if decision else False,
            "followup": decision.followup if decision else False,
            "model": report.model,
            "capabilities_used": list(decision.capabilities) if decision else [],
            "capabilities_unmet": list(decision.unmet_capabilities) if decision else [],
            "fallbacks": list(attempt.fallbacks) if attempt else [],
            "hedged": list(attempt.hedged) if attempt else [],
            "decision_id": decision.decision_id if decision else None,
            "cost_usd": report.cost_usd,
            "timings": {
                "transcription_ms": round(transcription_s * 1000, 1),
                "routing_ms": round(routing_s * 1000, 2),
                "model_ms": round(model_s * 1000, 1),
                "switchboard_ms": round(report.overhead_s * 1000, 2),
                "total_ms": round(total_s * 1000, 1),
            },
            "token_usage": completion.usage.model_dump() if completion.usage else None,
        },
    }


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
    settings = services.settings
    check = partial(check_image, max_bytes=settings.noa_max_image_bytes,
                    max_pixels=settings.noa_max_image_pixels)  # fmt: skip
    loop = asyncio.get_running_loop()
    photo_task = (
        asyncio.ensure_future(loop.run_in_executor(services.photos, check, image))
        if image
        else None
    )
    reader = services.conversations.glasses  # whose vectors the turn classifier reads
    turns = reader.embeddings if reader is not None else services.embeddings
    warm = [
        asyncio.create_task(turns.embed(m.text()))
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
