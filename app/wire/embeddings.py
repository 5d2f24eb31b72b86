"""OpenAI's embeddings API (``POST /v1/embeddings``): the request, bounded, and the reply.

``input`` is one text or a list of texts: at most ``MAX_INPUTS``, each non-empty and at most
``MAX_CHARS`` characters. Token-id arrays are refused (token ids belong to one tokenizer; send
text). ``encoding_format`` is ``float`` (lists of numbers) or ``base64`` (the little-endian
float32 bytes, as OpenAI sends them; the openai SDK asks for base64 unless told otherwise).
"""

from __future__ import annotations

import base64
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator

from app.schemas import EmbeddingRequest, Embeddings
from app.wire.parsing import refuse, text_or_list, where

MAX_INPUTS = 512
MAX_CHARS = 32_000


class EmbeddingsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1)
    input: str | list[JsonValue]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(default=None, ge=1)
    user: str | None = None

    _input = field_validator("input", mode="before")(text_or_list)


def to_request(body: EmbeddingsBody) -> EmbeddingRequest:
    """The neutral request; a 400 names the input that is out of bounds."""
    raw = [body.input] if isinstance(body.input, str) else body.input
    if not raw:
        raise refuse("input", "send at least one text")
    if len(raw) > MAX_INPUTS:
        raise refuse("input", f"at most {MAX_INPUTS} texts per request, got {len(raw)}")
    texts: list[str] = []
    for i, text in enumerate(raw):
        param = "input" if isinstance(body.input, str) else where("input", i)
        if not isinstance(text, str):
            raise refuse(param, "token arrays are not supported; send text")
        if not text:
            raise refuse(param, "an empty string cannot be embedded")
        if len(text) > MAX_CHARS:
            raise refuse(param, f"at most {MAX_CHARS} characters per text, got {len(text)}")
        texts.append(text)
    return EmbeddingRequest(model=body.model, texts=texts, dimensions=body.dimensions,
                            user=body.user)  # fmt: skip


def encode(vector: list[float], encoding: Literal["float", "base64"]) -> JsonValue:
    if encoding == "float":
        return list[JsonValue](vector)
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")


def reply(
    embeddings: Embeddings,
    model: str,
    prompt_tokens: int,
    encoding: Literal["float", "base64"],
) -> dict[str, object]:
    """OpenAI's list of embeddings, ``model`` being the catalog id that embedded them."""
    data: list[JsonValue] = [
        {"object": "embedding", "index": i, "embedding": encode(vector, encoding)}
        for i, vector in enumerate(embeddings.vectors)
    ]
    usage = {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens}
    return {"object": "list", "data": data, "model": model, "usage": usage}
