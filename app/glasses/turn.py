"""A smart-glasses turn, Noa-style: the uploads checked, the chat request built, the reply shaped.

The Frame app's "custom server" posts multipart form data (``audio``, ``image``, ``messages``,
``location``, ``time``, optional ``noa_system_prompt``, ``temperature``, ``tts``,
``promptless``) and expects one JSON object back. This module holds what is specific to that
shape; the endpoint (``routers/noa.py``) runs it through the same routing, gateway, accounting
and conversation memory as ``/v1/chat/completions``.
"""

from __future__ import annotations

import base64
import io
import json
from dataclasses import dataclass, field

from PIL import Image, UnidentifiedImageError
from pydantic import TypeAdapter, ValidationError

from app.errors import InvalidUpload, PayloadTooLarge, RequestError
from app.schemas import ChatMessage, ChatRequest, ImagePart, ImageURL, TextPart

DEFAULT_SYSTEM_PROMPT = (
    "You are Noa, the assistant on the user's smart glasses. The user speaks to you and you "
    "may see what their camera sees. Answer in one to three short sentences that read well on "
    "a small display and sound natural when spoken. Do not describe the photo unless asked."
)
PROMPTLESS_QUESTION = "Describe briefly what I am looking at."
IMAGE_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
MAX_FIELD_CHARS = 500

_MESSAGES = TypeAdapter(list[ChatMessage])


@dataclass(frozen=True)
class Photo:
    data: bytes
    media_type: str
    width: int
    height: int

    def data_url(self) -> str:
        return f"data:{self.media_type};base64," + base64.b64encode(self.data).decode()


def check_image(data: bytes, max_bytes: int, *, max_pixels: int) -> Photo:
    """The upload as a photo a vision model can take; ``InvalidUpload`` when it is not one.

    The header is read first: more than ``max_pixels`` pixels is refused before any decoding
    (a one-colour PNG packs 40 megapixels, 160 MB decoded, into 170 KB). Then the image is
    fully decoded once, which is what catches a truncated JPEG (its header alone reads fine).
    Takes a few milliseconds for a 720x720 photo; run it off the event loop.
    """
    if len(data) > max_bytes:
        raise PayloadTooLarge(
            f"image is {len(data)} bytes; the limit is {max_bytes}", param="image"
        )
    if not data:
        raise InvalidUpload("image is empty", param="image")
    try:
        with Image.open(io.BytesIO(data)) as image:
            fmt = image.format or ""
            if fmt not in IMAGE_FORMATS:
                raise InvalidUpload(
                    f"image must be JPEG, PNG or WebP, not {fmt or 'unknown'}", param="image"
                )
            width, height = image.size
            if width * height > max_pixels:
                raise InvalidUpload(
                    f"image of {width}x{height} has more than {max_pixels} pixels "
                    "(SWITCHBOARD_NOA_MAX_IMAGE_PIXELS)",
                    param="image",
                )
            image.load()
    except InvalidUpload:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        raise InvalidUpload(
            "image is not a readable JPEG or PNG (truncated or corrupt?)", param="image"
        ) from None
    return Photo(data, IMAGE_FORMATS[fmt], width, height)


def parse_history(raw: str | None, keep: int) -> list[ChatMessage]:
    """The ``messages`` field: a JSON list of ``{"role", "content"}``; the last ``keep`` kept.

    System messages are dropped (the endpoint writes its own); other roles must be user or
    assistant.
    """
    if raw is None or not raw.strip():
        return []
    try:
        messages = _MESSAGES.validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        detail = f"{where}: {first.get('msg')}" if where else str(first.get("msg"))
        raise RequestError(
            f"messages must be a JSON list of {{role, content}} objects ({detail})",
            param="messages",
        ) from None
    kept = []
    for message in messages:
        if message.role in ("system", "developer"):
            continue
        if message.role not in ("user", "assistant"):
            raise RequestError(
                f"messages may hold user and assistant turns, not {message.role!r}",
                param="messages",
            )
        kept.append(message)
    return kept[-keep:] if keep else []


def short_field(value: str | None, name: str) -> str | None:
    if value is None or not value.strip():
        return None
    if len(value) > MAX_FIELD_CHARS:
        raise RequestError(f"{name} is longer than {MAX_FIELD_CHARS} characters", param=name)
    return " ".join(value.split())


@dataclass
class GlassesTurn:
    """One glasses turn, as the endpoint received it (after transcription)."""

    question: str
    history: list[ChatMessage] = field(default_factory=list)
    photo: Photo | None = None
    location: str | None = None
    time: str | None = None
    system_prompt: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None

    def chat_request(self) -> ChatRequest:
        system = self.system_prompt or DEFAULT_SYSTEM_PROMPT
        context = [
            f"The user's location: {self.location}." if self.location else "",
            f"The user's local time: {self.time}." if self.time else "",
        ]
        system = " ".join([system, *filter(None, context)])
        user: ChatMessage
        if self.photo is not None:
            parts: list[TextPart | ImagePart] = [
                TextPart(type="text", text=self.question),
                ImagePart(type="image_url", image_url=ImageURL(url=self.photo.data_url())),
            ]
            user = ChatMessage(role="user", content=list(parts))
        else:
            user = ChatMessage(role="user", content=self.question)
        messages = [ChatMessage(role="system", content=system), *self.history, user]
        return ChatRequest(
            model="auto",
            messages=messages,
            temperature=self.temperature,
            max_tokens=self.max_tokens,
        )


def loads_location(value: str | None) -> str | None:
    """``location`` as the app sends it: free text, or JSON (an address or coordinates)."""
    text = short_field(value, "location")
    if text is None or not text.startswith("{"):
        return text
    try:
        parsed = json.loads(text)
    except ValueError:
        return text
    if not isinstance(parsed, dict):
        return text
    return ", ".join(f"{k}: {v}" for k, v in parsed.items() if v not in (None, ""))
