"""JSON bodies: requests parsed strictly (text that is not valid Unicode is a 400, not a 500),
replies rendered fast.

Python's ``json`` module, which Starlette's ``Request.json`` uses, accepts a lone surrogate
escape (``"\\ud800"``) and hands back a ``str`` that cannot be encoded: the tokenizer, the
upstream request or the state store then fails with a 500. ``StrictJSONRoute`` gives its
routes a request whose ``json()`` is pydantic-core's parser, which refuses lone surrogates,
invalid UTF-8 and ``NaN``/``Infinity`` (not JSON either); FastAPI reports that as its usual
``json_invalid`` validation error, and the error handler turns it into the OpenAI envelope.
Every router that takes a JSON body uses it (``APIRouter(route_class=StrictJSONRoute)``).

``FastJSONResponse`` renders with orjson: the same compact UTF-8 JSON as Starlette's
``JSONResponse`` in a fraction of the time (a not-a-number float becomes ``null`` rather than
an error).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

import orjson
import pydantic_core
from fastapi import Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute


class StrictJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            try:
                self._json = pydantic_core.from_json(body, allow_inf_nan=False)
            except ValueError as exc:
                # the document is not repeated in the error: it may be megabytes
                raise json.JSONDecodeError(str(exc), "", 0) from exc
        return self._json


class StrictJSONRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            return await handler(StrictJSONRequest(request.scope, request.receive))

        return strict


class FastJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)
