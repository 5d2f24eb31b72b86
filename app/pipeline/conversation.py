"""Routing that follows the conversation: what this turn needs, and what the last one used.

Clients are stateless: they send the whole history each turn (OpenAI messages, or the glasses'
``messages`` field). Two things make routing follow it:

- **The turn's capabilities** (``vision``, ``web_search``) come from ``app.selection.turns``: the
  turn classifier reads the last user turn, and for follow-ups the previous user turn and the
  capabilities that turn had. An image part alone never means ``vision``. Two readers are
  configured (``TurnReader``): requests that carry a photo or the client's time or place
  (glasses clients) are read on all-mpnet-base-v2's vectors (``app.embedding.turn_model``), on
  which the classifier decides turns by other writers best (``bench/capabilities_cv.py``), and
  plain text on the router's own vectors, so a text prompt costs no second embedding.
- **What the previous turn was routed to.** After answering, the service stores the turn's
  model and capabilities under a fingerprint of the conversation *including the answer*
  (per caller, with a TTL). The next request's history, up to its new user turn, has the same
  fingerprint, so a follow-up finds the model it follows and the selector can keep it. When
  the history was not seen (another deployment, an expired entry) the previous turn's
  capabilities are re-derived by deciding its user turns again in order (the last
  ``REPLAYED_TURNS``), as they were decided when they came, and no model is kept.

The fingerprint ignores system messages (the glasses resend a system prompt with the time in
it) and collapses whitespace, so what a client echoes back matches what was answered.

What else the turn carries is evidence for the classifier: a cheap look at the last user turn's
own photo (``app.selection.photo_look``; data URLs only, never fetched), and whether the system
or developer messages give the user's local time and location (``/noa`` writes "The user's
local time: ..." and "The user's location: ..."; other clients are recognised by a clock time,
an ISO date, or a "time:"/"date:"/"location:" label), so that "what time is it?" is answered
from them.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from dataclasses import dataclass

import numpy as np
from pydantic import JsonValue

from app.embedding.batcher import EmbeddingService
from app.schemas import ChatMessage, ChatRequest, ImagePart
from app.selection.capabilities import TurnAnalysis
from app.selection.photo_look import FrameLook, look_at_data_url
from app.selection.turns import PreviousTurn, TurnClassifier, TurnContext
from app.state import StateStore

log = logging.getLogger(__name__)

MEMORY_TTL_S = 6 * 3600
"""How long a turn's routing is remembered for the follow-up that may come."""
REPLAYED_TURNS = 8
"""How many earlier user turns are decided again when the history was not seen: enough for a
chain of follow-ups ("try again", "just guess", "are you sure?"), and a bound on the work (one
cached embedding and about 0.1 ms each) whatever history a request carries."""


CONTEXT_CHARS = 4000
"""How much of each system or developer message is searched for the client's time and place."""
_CLIENT_TIME = re.compile(
    r"\b(local time|current time|time now|date|time)\s*(is\b|:)|\btoday is\b"
    r"|\b\d{1,2}:\d{2}\b|\b\d{4}-\d{2}-\d{2}\b",
    re.IGNORECASE,
)
_CLIENT_PLACE = re.compile(
    r"\b(location|current city|coordinates)\s*(is\b|:)|\b(located in|latitude)\b", re.IGNORECASE
)


def client_context(messages: list[ChatMessage]) -> tuple[bool, bool]:
    """Whether the system/developer messages give the user's local time, and their location."""
    text = " ".join(m.text()[:CONTEXT_CHARS] for m in messages if m.role in ("system", "developer"))
    return bool(_CLIENT_TIME.search(text)), bool(_CLIENT_PLACE.search(text))


def photo_look(message: ChatMessage) -> FrameLook | None:
    """The look at a message's first photo, if it is a data URL that can be read."""
    if not isinstance(message.content, list):
        return None
    for part in message.content:
        if isinstance(part, ImagePart):
            return look_at_data_url(part.image_url.url)
    return None


async def _look_beside(message: ChatMessage) -> FrameLook | None:
    """:func:`photo_look` in a worker thread (Pillow decodes without the GIL); no thread for a
    message without an image."""
    return await asyncio.to_thread(photo_look, message) if message.has_image() else None


def _conversational(messages: list[ChatMessage]) -> list[ChatMessage]:
    return [m for m in messages if m.role in ("user", "assistant")]


def fingerprint(tenant: str | None, messages: list[ChatMessage]) -> str:
    """A stable id for a conversation's user/assistant turns (whitespace-insensitive)."""
    digest = hashlib.sha256((tenant or "-").encode())
    for message in _conversational(messages):
        digest.update(b"\x00" + message.role.encode() + b"\x01")
        digest.update(" ".join(message.text().split()).encode())
    return "conv_" + digest.hexdigest()[:40]


def _history(messages: list[ChatMessage]) -> tuple[list[ChatMessage], ChatMessage | None]:
    """The messages before the last user turn, and that turn."""
    for i in range(len(messages) - 1, -1, -1):
        if messages[i].role == "user":
            return messages[:i], messages[i]
    return messages, None


@dataclass(frozen=True)
class TurnReader:
    """A turn classifier and the embeddings it was fitted on."""

    classifier: TurnClassifier
    embeddings: EmbeddingService


class Conversations:
    def __init__(
        self, text: TurnReader | None, store: StateStore, glasses: TurnReader | None = None
    ) -> None:
        """``text`` reads plain requests on the router's vectors; ``glasses`` (default: the
        same) those with a photo or the client's time or place."""
        self.text = text
        self.glasses = glasses or text
        self.store = store

    async def analyse(
        self, request: ChatRequest, embedding: np.ndarray, tenant: str | None
    ) -> TurnAnalysis:
        """The capabilities and conversational position of the request's last user turn.

        ``embedding`` is the router's vector of that turn (``ChatRequest.prompt_text``).
        """
        before, last = _history(request.messages)
        if last is None:
            return TurnAnalysis(())
        # An earlier photo is still in the model's context, so a follow-up may still need vision.
        has_image = any(m.has_image() for m in request.messages if m.role == "user")
        client = client_context(request.messages)
        reader = self.glasses if has_image or any(client) else self.text
        if reader is None:  # no classifier for these embeddings: images mean vision
            return TurnAnalysis(("vision",) if has_image else ())
        # The look at the photo (a small JPEG decode, up to a millisecond for a sparse frame)
        # runs in a worker thread while the embeddings are awaited, off the event loop.
        look = asyncio.ensure_future(_look_beside(last))
        if reader is not self.text:
            embedding = await reader.embeddings.embed(last.text())
        classifier = reader.classifier
        users = [m for m in before if m.role == "user" and m.text().strip()]
        remembered = await self._recall(tenant, before) if users else None
        previous: list[PreviousTurn] = []
        previous_embedding = None
        if users:
            prior = users[-1]
            if remembered is not None:
                previous_embedding = await reader.embeddings.embed(prior.text())
                stored = remembered.get("capabilities")
                capabilities = tuple(str(c) for c in stored) if isinstance(stored, list) else ()
                stored_model = remembered.get("model")
                model = stored_model if isinstance(stored_model, str) else None
            else:
                capabilities, previous_embedding = await self._replay(reader, users, client)
                model = None
            previous = [PreviousTurn(prior.text(), capabilities, model)]
        context = TurnContext(last.text(), has_image, previous, await look, *client)
        decision = classifier.decide(embedding, previous_embedding, context)
        return TurnAnalysis(
            decision.capabilities,
            decision.followup,
            decision.topic_changed,
            previous[0].model if previous and decision.followup else None,
            decision.scores,
        )

    async def _replay(
        self, reader: TurnReader, users: list[ChatMessage], client: tuple[bool, bool]
    ) -> tuple[tuple[str, ...], np.ndarray]:
        """The last of ``users``' capabilities and embedding, re-derived by deciding the last
        ``REPLAYED_TURNS`` of them in order, each after the one before, as they were decided
        when they came (and as the classifier was fitted): a "just guess" after a "try again"
        after a photo question still needs the photo.
        """
        turns = users[-REPLAYED_TURNS:]
        embeddings, looks = await asyncio.gather(
            asyncio.gather(*(reader.embeddings.embed(m.text()) for m in turns)),
            asyncio.gather(*(_look_beside(m) for m in turns)),
        )
        capabilities: tuple[str, ...] = ()
        history: list[PreviousTurn] = []
        for i, (turn, embedding) in enumerate(zip(turns, embeddings, strict=True)):
            # Earlier turns' photos are usually not resent; judge them as if they had one.
            context = TurnContext(turn.text(), True, history, looks[i], *client)
            decided = reader.classifier.decide(embedding, embeddings[i - 1] if i else None, context)
            capabilities = decided.capabilities
            history = [PreviousTurn(turn.text(), capabilities)]
        return capabilities, embeddings[-1]

    async def _recall(
        self, tenant: str | None, before: list[ChatMessage]
    ) -> dict[str, JsonValue] | None:
        try:
            return await self.store.get_decision(fingerprint(tenant, before))
        except Exception as exc:
            log.warning("conversation memory unavailable: %s", type(exc).__name__)
            return None

    async def remember(
        self,
        tenant: str | None,
        messages: list[ChatMessage],
        answer: str,
        model: str,
        capabilities: tuple[str, ...] | list[str],
    ) -> None:
        """Store what answered this turn, keyed by the history the next turn will carry."""
        key = fingerprint(tenant, [*messages, ChatMessage(role="assistant", content=answer)])
        payload: dict[str, JsonValue] = {"model": model, "capabilities": list(capabilities)}
        try:
            await self.store.put_decision(key, payload, MEMORY_TTL_S)
        except Exception as exc:
            log.warning("conversation memory not stored: %s", type(exc).__name__)
