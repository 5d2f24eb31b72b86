"""Which capabilities a request needs, from what it carries and what the caller asked for.

A model is eligible only if its catalog entry lists every needed capability. ``vision`` and
``web_search`` are decided per turn from what is asked (``app.pipeline.conversation``), not what is
attached: most photos sent along with a question are not what it is about. Only when no turn
classifier runs (a custom embedding model it was not fitted on) does an image mean ``vision``.
"""

from __future__ import annotations

from collections.abc import Callable

from app.schemas import ChatRequest

TokenCounter = Callable[[str], int]


def required_capabilities(
    request: ChatRequest, turn_capabilities: tuple[str, ...] | None = None
) -> list[str]:
    """Everything the request needs; ``turn_capabilities`` is the turn classifier's verdict."""
    needed: set[str] = set()
    if request.switchboard and request.switchboard.capabilities:
        needed.update(request.switchboard.capabilities)
    if turn_capabilities is not None:
        needed.update(turn_capabilities)
    else:
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
