"""Conversations kept by the server for the Responses API's ``previous_response_id``.

A response stored with ``store: true`` (the default) keeps its conversation -- the history it
continued, its input and its answer, without ``instructions`` -- in the state store under the
response id and the caller, so every worker and replica can continue it, and a caller can only
continue its own: another key's id is "not found". Callers without a key share one anonymous
space (the ids are random 128-bit values). The bounds:

- **time**: an entry expires ``ttl_s`` after it was stored (default 24 h);
- **size**: a conversation over ``max_bytes`` of JSON (default 1 MB, images included) cannot be
  continued or stored: the request is refused with a 400 before any model is called;
- **count**: at most ``per_caller`` responses are stored per caller per ``ttl_s`` window
  (default 1000; so at most twice that are alive at once); beyond it a storing request gets a
  429 with ``Retry-After`` (``store: false`` is still served).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pydantic import TypeAdapter, ValidationError

from app.errors import NotFound, RateLimited, RequestError
from app.pipeline.access import Caller
from app.schemas import ChatMessage
from app.state import StateStore

log = logging.getLogger(__name__)

_MESSAGES: TypeAdapter[list[ChatMessage]] = TypeAdapter(list[ChatMessage])


@dataclass(frozen=True)
class Bounds:
    ttl_s: float = 24 * 3600.0
    max_bytes: int = 1_000_000
    per_caller: int = 1000


def _owner(caller: Caller) -> str:
    return caller.tenant or "anonymous"


class StoredResponses:
    """Load, admit and save the conversations behind response ids (see the module docstring)."""

    def __init__(self, store: StateStore, bounds: Bounds | None = None) -> None:
        self.store = store
        self.bounds = bounds or Bounds()

    def _key(self, caller: Caller, response_id: str) -> str:
        return f"response:{_owner(caller)}:{response_id}"

    async def load(self, caller: Caller, response_id: str) -> list[ChatMessage]:
        """The conversation ``response_id`` ended with; 404 if absent, expired or not the
        caller's."""
        payload = await self.store.get_decision(self._key(caller, response_id))
        messages = payload.get("messages") if payload else None
        if messages is None:
            raise NotFound(
                f"previous response {response_id!r} not found: it was not stored, has expired "
                "(responses are kept for a limited time), or belongs to another key",
                param="previous_response_id",
            )
        try:
            return _MESSAGES.validate_python(messages)
        except ValidationError:
            log.warning("stored response %s is unreadable; treated as not found", response_id)
            raise NotFound(f"previous response {response_id!r} not found",
                           param="previous_response_id") from None  # fmt: skip

    def check_size(self, messages: list[ChatMessage]) -> None:
        """Refuse a conversation too big to keep (before any model is called)."""
        size = len(_MESSAGES.dump_json(messages, exclude_none=True))
        if size > self.bounds.max_bytes:
            raise RequestError(
                f"the conversation is {size} bytes, over the {self.bounds.max_bytes} bytes "
                "Switchboard keeps for previous_response_id; start a new one, or send the "
                "history yourself with store: false",
                param="previous_response_id",
                code="conversation_too_large",
            )

    async def admit(self, caller: Caller, messages: list[ChatMessage]) -> None:
        """Before a storing request runs: the size bound, then one from the caller's count."""
        self.check_size(messages)
        bucket = f"{_owner(caller)}:stored_responses"
        decision = await self.store.hit(bucket, 1, self.bounds.per_caller, self.bounds.ttl_s)
        if not decision.allowed:
            raise RateLimited(
                f"at most {self.bounds.per_caller} stored responses per caller per "
                f"{self.bounds.ttl_s:g} s; send store: false, or wait",
                param="store",
                retry_after=decision.retry_after,
            )

    async def save(self, caller: Caller, response_id: str, messages: list[ChatMessage]) -> None:
        """Keep ``messages`` for ``response_id``; a store failure is logged, not raised (the
        answer was already given)."""
        payload = {"messages": _MESSAGES.dump_python(messages, mode="json", exclude_none=True)}
        try:
            await self.store.put_decision(self._key(caller, response_id), payload,
                                          self.bounds.ttl_s)  # fmt: skip
        except Exception as exc:
            log.warning("response %s not stored: %s", response_id, type(exc).__name__)
