"""Validating one piece of a request, with a 400 that says where in the request it is.

The APIs' request items come in several shapes told apart by a ``type`` field; each shape is a
small pydantic model validated here, so a bad item is refused as ``input[2].content[0].text:
Field required`` rather than with the whole union's worth of alternatives.
"""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, ValidationError

from app.errors import RequestError

M = TypeVar("M", bound=BaseModel)


def where(path: str, *parts: str | int) -> str:
    """``where("input", 2, "content")`` -> ``input[2].content``."""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def parse(model: type[M], value: object, path: str) -> M:
    """``value`` as ``model``, or a ``RequestError`` naming the first bad field under ``path``."""
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        param = where(path, *(p for p in first["loc"] if isinstance(p, str | int)))
        raise RequestError(f"{param}: {first['msg']}", param=param) from None


def text_or_list(value: object) -> object:
    """A ``mode="before"`` check for fields that are a string or a list: one clear message
    instead of one per member of the union."""
    if value is not None and not isinstance(value, str | list):
        raise ValueError("expected a string or a list")
    return value


def refuse(param: str, why: str) -> RequestError:
    """The 400 for a field Switchboard cannot honour (never dropped silently)."""
    return RequestError(f"{param}: {why}", param=param, code="unsupported_field")
