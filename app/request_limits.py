"""What one chat request may carry, checked while it is validated, before any work is done on it.

Every endpoint that takes a chat request (``/v1/chat/completions``, ``/v1/route``, and any that
translates its own format into ``ChatRequest``) gets the same caps, because ``ChatRequest``
checks them itself: counts (messages, content parts, images, tools) on the raw input, before a
single message model is built, so 600k messages cost a length check rather than 300 MB of
models; the text's size and the output asked for right after. Over a cap is a
``RequestError`` (400), or ``PayloadTooLarge`` (413) for sheer text, naming the limit and the
setting; both propagate out of pydantic as themselves, whichever endpoint validated.

The caps are settings (``SWITCHBOARD_MAX_*``). Pydantic validation has no channel from the
app, so ``LimitsScope`` (an ASGI middleware) puts the app's caps in a context variable for
the duration of each request; outside a request (tests, offline tools) the defaults apply.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp, Receive, Scope, Send

from app.errors import PayloadTooLarge, RequestError

if TYPE_CHECKING:
    from app.schemas import ChatRequest
    from app.settings import Settings


@dataclass(frozen=True)
class RequestLimits:
    max_messages: int = 2048
    max_text_chars: int = 1_000_000
    max_content_parts: int = 4096
    max_image_parts: int = 100
    max_tools: int = 128
    max_output_tokens: int = 128_000

    @classmethod
    def of(cls, settings: Settings) -> RequestLimits:
        return cls(
            max_messages=settings.max_messages,
            max_text_chars=settings.max_text_chars,
            max_content_parts=settings.max_content_parts,
            max_image_parts=settings.max_image_parts,
            max_tools=settings.max_tools,
            max_output_tokens=settings.max_output_tokens,
        )

    def check_shape(self, data: object) -> None:
        """Counts on the raw request (a dict from JSON), before anything is built from it."""
        if not isinstance(data, Mapping):
            return
        messages = data.get("messages")
        if isinstance(messages, list):
            _cap(len(messages), self.max_messages, "messages", "messages")
            contents = [_content(m) for m in messages]
            parts = sum(len(c) for c in contents if isinstance(c, list))
            _cap(parts, self.max_content_parts, "content parts", "messages")
            images = sum(_images(c) for c in contents if isinstance(c, list))
            _cap(images, self.max_image_parts, "image parts", "messages")
        tools = data.get("tools")
        if isinstance(tools, list):
            _cap(len(tools), self.max_tools, "tools", "tools")

    def check(self, request: ChatRequest) -> None:
        """The text's size and the output asked for, on the validated request."""
        chars = sum(len(message.text()) for message in request.messages)
        if chars > self.max_text_chars:
            raise PayloadTooLarge(
                f"the messages hold {chars} characters of text; the limit is "
                f"{self.max_text_chars} ({_setting('max_text_chars')})",
                param="messages",
            )
        for name in ("max_tokens", "max_completion_tokens"):
            asked = getattr(request, name)
            if asked is not None and asked > self.max_output_tokens:
                raise RequestError(
                    f"{name} is {asked}; the limit is {self.max_output_tokens} "
                    f"({_setting('max_output_tokens')})",
                    param=name,
                    code="limit_exceeded",
                )


def _setting(field: str) -> str:
    return "SWITCHBOARD_" + field.upper()


_SETTING = {
    "messages": "max_messages",
    "content parts": "max_content_parts",
    "image parts": "max_image_parts",
    "tools": "max_tools",
}


def _cap(count: int, limit: int, what: str, param: str) -> None:
    if count > limit:
        raise RequestError(
            f"the request carries {count} {what}; the limit is {limit} "
            f"({_setting(_SETTING[what])})",
            param=param,
            code="limit_exceeded",
        )


def _content(message: object) -> object:
    return message.get("content") if isinstance(message, Mapping) else None


def _images(parts: list[Any]) -> int:
    return sum(1 for p in parts if isinstance(p, Mapping) and p.get("type") == "image_url")


DEFAULTS = RequestLimits()
_current: ContextVar[RequestLimits | None] = ContextVar("request_limits", default=None)


def current() -> RequestLimits:
    """The caps of the request being handled (the defaults outside a request)."""
    return _current.get() or DEFAULTS


class LimitsScope:
    """ASGI middleware: the app's caps are the current ones while it handles a request."""

    def __init__(self, app: ASGIApp, limits: RequestLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = _current.set(self.limits)
        try:
            await self.app(scope, receive, send)
        finally:
            _current.reset(token)
