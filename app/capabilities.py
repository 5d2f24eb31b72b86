"""Which capabilities a request needs, from what it carries and what the caller asked for.

A model is eligible only if its catalog entry lists every needed capability.
"""

from __future__ import annotations

from collections.abc import Callable

from app.schemas import ChatRequest

TokenCounter = Callable[[str], int]


def required_capabilities(request: ChatRequest) -> list[str]:
    needed: set[str] = set()
    if request.switchboard and request.switchboard.capabilities:
        needed.update(request.switchboard.capabilities)
    last_user = next((m for m in reversed(request.messages) if m.role == "user"), None)
    if last_user is not None and last_user.has_image():
        needed.add("vision")
    if any(m.has_audio() for m in request.messages):
        needed.add("audio")
    if request.tools:
        needed.add("tools")
    if request.response_format and request.response_format.get("type") in (
        "json_object",
        "json_schema",
    ):
        needed.add("json")
    return sorted(needed)


def prompt_tokens(request: ChatRequest, count: TokenCounter) -> int:
    """Estimated prompt tokens of the whole conversation (images at a flat 765 each)."""
    total = 0
    for message in request.messages:
        total += 4 + count(message.text())
        if isinstance(message.content, list):
            total += 765 * sum(1 for p in message.content if p.type == "image_url")
    return total
