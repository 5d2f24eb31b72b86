"""One place that turns every error into its API's error body (never a traceback).

The OpenAI envelope ``{"error": {"message", "type", "param", "code"}}`` is the default. An API
with an error shape of its own (Anthropic's ``{"type": "error", "error": {...}}`` on
``/v1/messages``) registers an ``ErrorShape`` for its path prefix with ``install``; every error
on those paths -- Switchboard's, FastAPI's validation errors, unknown routes, bugs, and the
body-size middleware's 413 (``app.http.body_limit``) -- is then written in that shape, with the same
status and ``Retry-After`` header.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from app.errors import RequestError, SwitchboardError

log = logging.getLogger(__name__)

ErrorBody = Callable[[SwitchboardError], Mapping[str, object]]


def openai_body(error: SwitchboardError) -> Mapping[str, object]:
    return error.envelope()


@dataclass(frozen=True)
class ErrorShape:
    """How the API under ``prefix`` (a path, and everything below it) writes an error body."""

    prefix: str
    body: ErrorBody

    def covers(self, path: str) -> bool:
        return path == self.prefix or path.startswith(self.prefix.rstrip("/") + "/")


def retry_headers(error: SwitchboardError) -> dict[str, str]:
    if error.retry_after is not None:
        return {"Retry-After": str(max(1, round(error.retry_after)))}
    if error.status_code in (429, 503):
        return {"Retry-After": "1"}
    return {}


def error_response(error: SwitchboardError, body: ErrorBody = openai_body) -> JSONResponse:
    return JSONResponse(
        dict(body(error)), status_code=error.status_code, headers=retry_headers(error)
    )


def body_for(path: str, shapes: Sequence[ErrorShape]) -> ErrorBody:
    """The error body of the API that owns ``path`` (the OpenAI envelope by default)."""
    return next((s.body for s in shapes if s.covers(path)), openai_body)


def _body_for(request: Request) -> ErrorBody:
    shapes: Sequence[ErrorShape] = getattr(request.app.state, "error_shapes", ())
    return body_for(request.url.path, shapes)


def _validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    errors = exc.errors()
    if not errors:
        return "invalid request", None
    first = errors[0]
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    if first.get("type") == "json_invalid":
        reason = (first.get("ctx") or {}).get("error") or first.get("msg", "")
        return f"request body is not valid JSON: {reason}", None
    param = ".".join(loc) or None
    message = f"{param}: {first.get('msg')}" if param else str(first.get("msg"))
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return message, param


async def _on_switchboard(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SwitchboardError)
    return error_response(exc, _body_for(request))


async def _on_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    message, param = _validation_message(exc)
    return error_response(RequestError(message, param=param), _body_for(request))


async def _on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    error = SwitchboardError(str(exc.detail))
    error.status_code = exc.status_code
    error.error_type = "invalid_request_error" if exc.status_code < 500 else "api_error"
    error.code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
    return error_response(error, _body_for(request))


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled %s on %s %s", type(exc).__name__, request.method, request.url.path)
    return error_response(SwitchboardError("internal error"), _body_for(request))


def install(app: FastAPI, shapes: Sequence[ErrorShape] = ()) -> None:
    """The handlers, and the error shapes APIs registered for their paths."""
    app.state.error_shapes = tuple(shapes)
    app.add_exception_handler(SwitchboardError, _on_switchboard)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(HTTPException, _on_http)
    app.add_exception_handler(Exception, _on_unexpected)
