"""Pieces of translation that several wire formats share: images, system text, chunks."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from app.schemas import ChatChunk, ChatMessage, ChunkChoice, Delta, ImagePart, TextPart, Usage


@dataclass(frozen=True)
class InlineImage:
    media_type: str
    data: str  # base64


def data_url(url: str) -> InlineImage | None:
    """``data:image/png;base64,...`` -> its media type and base64 payload; None otherwise."""
    if not url.startswith("data:") or ";base64," not in url:
        return None
    header, _, payload = url.partition(";base64,")
    return InlineImage(header.removeprefix("data:") or "application/octet-stream", payload)


def system_text(messages: list[ChatMessage]) -> str | None:
    """System and developer messages joined, for formats that take them apart."""
    parts = [m.text() for m in messages if m.role in ("system", "developer")]
    return "\n\n".join(parts) if parts else None


def parts(message: ChatMessage) -> list[TextPart | ImagePart]:
    """The message's text and image parts (a plain string becomes one text part)."""
    if message.content is None:
        return []
    if isinstance(message.content, str):
        return [TextPart(type="text", text=message.content)]
    return [p for p in message.content if isinstance(p, TextPart | ImagePart)]


def new_id() -> str:
    return "chatcmpl-" + uuid.uuid4().hex


def text_chunk(chunk_id: str, text: str, *, first: bool = False) -> ChatChunk:
    delta = Delta(role="assistant", content=text) if first else Delta(content=text)
    return ChatChunk(id=chunk_id, choices=[ChunkChoice(delta=delta)])


def finish_chunk(chunk_id: str, reason: str) -> ChatChunk:
    return ChatChunk(id=chunk_id, choices=[ChunkChoice(delta=Delta(), finish_reason=reason)])


def usage_chunk(chunk_id: str, prompt: int, completion: int) -> ChatChunk:
    return ChatChunk(id=chunk_id, choices=[], usage=usage(prompt, completion))


def usage(prompt: int, completion: int) -> Usage:
    return Usage(
        prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
    )
