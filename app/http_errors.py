"""One place that turns every error into the OpenAI error envelope (never a traceback)."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from app.errors import RequestError, SwitchboardError

log = logging.getLogger(__name__)


def error_response(error: SwitchboardError) -> JSONResponse:
    headers = {}
    if error.retry_after is not None:
        headers["Retry-After"] = str(max(1, round(error.retry_after)))
    elif error.status_code in (429, 503):
        headers["Retry-After"] = "1"
    return JSONResponse(error.envelope(), status_code=error.status_code, headers=headers)


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


async def _on_switchboard(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SwitchboardError)
    return error_response(exc)


async def _on_validation(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    message, param = _validation_message(exc)
    return error_response(RequestError(message, param=param))


async def _on_http(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    error = SwitchboardError(str(exc.detail))
    error.status_code = exc.status_code
    error.error_type = "invalid_request_error" if exc.status_code < 500 else "api_error"
    error.code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
    return error_response(error)


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled %s on %s %s", type(exc).__name__, request.method, request.url.path)
    return error_response(SwitchboardError("internal error"))


def install(app: FastAPI) -> None:
    app.add_exception_handler(SwitchboardError, _on_switchboard)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(HTTPException, _on_http)
    app.add_exception_handler(Exception, _on_unexpected)
