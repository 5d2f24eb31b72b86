"""Fitting one request to one model, just before the gateway calls it.

Routing may send a request to any eligible model, and servers differ in what they take; what
each takes is declared in the catalog (``ModelEntry.features``, ``capabilities``), so this module
has no per-provider cases. For the chosen model:

- images become a note (``PHOTO_NOT_SHOWN``) for a model without ``vision``: a turn with an
  incidental photo goes to a text model, and a question about the photo that no model able to
  see could take gets "I can't see it" rather than a confident guess; content that is then all
  text parts is sent as one string (llama.cpp's chat templates, Qwen's among them, answer a
  list of parts with a 500);
- ``developer`` messages become ``system`` for a server without the role;
- ``max_completion_tokens`` becomes ``max_tokens`` for a server that only knows that one;
- ``output_cap``, when the caller's budget held for at most that many output tokens, is sent as
  the request's output limit, so the reply cannot cost more than was reserved.

Fields a server cannot take and that cannot be rewritten (``seed``, ``logprobs``, a JSON schema,
...) never get here: the selector excludes such models, and a request naming one is refused.
"""

from __future__ import annotations

from collections.abc import Callable

from app.catalog import Catalog, ModelEntry
from app.schemas import ChatMessage, ChatRequest, ContentPart, ImagePart, TextPart

PHOTO_NOT_SHOWN = "[The user attached a photo here; you cannot see images, so it is not shown.]"
"""What a model without vision reads in place of an image."""


def fitter(
    catalog: Catalog, output_cap: int | None = None
) -> Callable[[str, ChatRequest], ChatRequest]:
    """The gateway's per-model ``prepare`` step (see the module docstring)."""

    def fit(model: str, request: ChatRequest) -> ChatRequest:
        entry = catalog.get(model)
        return request if entry is None else fit_request(entry, request, output_cap)

    return fit


def fit_request(entry: ModelEntry, request: ChatRequest, output_cap: int | None) -> ChatRequest:
    update: dict[str, object] = {}
    messages = request.messages
    if "vision" not in entry.capabilities and any(isinstance(m.content, list) for m in messages):
        messages = [_as_text(m) if isinstance(m.content, list) else m for m in messages]
    if "developer_role" not in entry.features and any(m.role == "developer" for m in messages):
        messages = [
            m.model_copy(update={"role": "system"}) if m.role == "developer" else m
            for m in messages
        ]
    if messages is not request.messages:
        update["messages"] = messages
    limit = request.output_limit()
    if output_cap is not None and (limit is None or limit > output_cap):
        limit = output_cap
    if "max_completion_tokens" in entry.features:
        if limit != request.max_completion_tokens and limit is not None:
            update |= {"max_completion_tokens": limit, "max_tokens": None}
    elif request.max_completion_tokens is not None or limit != request.max_tokens:
        update |= {"max_tokens": limit, "max_completion_tokens": None}
    return request.model_copy(update=update) if update else request


def _as_text(message: ChatMessage) -> ChatMessage:
    """Images as a note; all-text content as one string (audio parts stay parts)."""
    assert isinstance(message.content, list)
    parts: list[ContentPart] = [
        TextPart(type="text", text=PHOTO_NOT_SHOWN) if isinstance(p, ImagePart) else p
        for p in message.content
    ]
    if all(isinstance(p, TextPart) for p in parts):
        text = "\n".join(p.text for p in parts if isinstance(p, TextPart))
        return message.model_copy(update={"content": text})
    return message.model_copy(update={"content": parts})
