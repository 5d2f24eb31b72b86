"""The embeddings request's bounds and the reply's two encodings."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from app.errors import RequestError
from app.schemas import Embeddings
from app.wire import embeddings
from app.wire.embeddings import MAX_CHARS, MAX_INPUTS, EmbeddingsBody


def _texts(value: object, **fields: object) -> list[str]:
    body = EmbeddingsBody.model_validate({"model": "m", "input": value, **fields})
    return embeddings.to_request(body).texts


def test_one_text_or_a_list() -> None:
    assert _texts("hello") == ["hello"]
    assert _texts(["a", "b"]) == ["a", "b"]


@pytest.mark.parametrize(
    ("value", "param"),
    [([], "input"), (["x"] * (MAX_INPUTS + 1), "input"), ([1, 2], "input[0]"),
     (["ok", [1, 2]], "input[1]"), (["ok", ""], "input[1]"), ("", "input"),
     ("x" * (MAX_CHARS + 1), "input")],
)  # fmt: skip
def test_out_of_bounds_input_is_refused_naming_it(value: object, param: str) -> None:
    with pytest.raises(RequestError) as caught:
        _texts(value)
    assert caught.value.param == param


def test_base64_is_little_endian_float32_as_openai_sends_it() -> None:
    vector = [0.25, -1.5, 3.0]
    encoded = embeddings.encode(vector, "base64")
    assert isinstance(encoded, str)
    assert np.frombuffer(base64.b64decode(encoded), dtype="<f4").tolist() == vector
    assert embeddings.encode(vector, "float") == vector


def test_the_reply_shape() -> None:
    reply = embeddings.reply(Embeddings(vectors=[[1.0], [2.0]]), "local/x", 6, "float")
    assert reply == {
        "object": "list",
        "data": [{"object": "embedding", "index": 0, "embedding": [1.0]},
                 {"object": "embedding", "index": 1, "embedding": [2.0]}],
        "model": "local/x",
        "usage": {"prompt_tokens": 6, "total_tokens": 6},
    }  # fmt: skip
