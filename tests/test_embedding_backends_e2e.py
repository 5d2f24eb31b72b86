"""Whatever the router embeds with, what a user sees stays the same: a photo question goes to
the model that can see and a plain one does not, and ``/v1/embeddings`` serves the MiniLM
transformer's vectors (static vectors are for routing only)."""

from __future__ import annotations

import base64
import io
from collections.abc import AsyncIterator

import httpx
import numpy as np
import pytest
from PIL import Image

from app.embedding.encoder import load_encoder
from app.selection.turns import load_labelled_turns
from tests.inprocess import switchboard
from tests.processes import CACHE


def _photo() -> str:
    """A 720x720 camera frame full of detail, as the glasses send."""
    buffer = io.BytesIO()
    pixels = np.random.default_rng(0).integers(0, 256, (90, 90, 3), dtype=np.uint8)
    image = Image.fromarray(pixels).resize((720, 720), Image.Resampling.BICUBIC)
    image.save(buffer, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


PHOTO = _photo()
TEXTS = ["a cat", "What is the capital of France?"]


BACKENDS = ("static", "onnx")
PHOTO_TURNS = [t.text for t in load_labelled_turns() if t.has_image and not t.index][::40]
"""First turns with a photo from across the labelled sources (about 40)."""


@pytest.fixture(scope="module")
async def clients(
    fake: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    """Two services on the same catalog: static vectors route one, the transformer the other."""
    async with (
        switchboard(fake, tmp_path_factory.mktemp("static"), embedding_backend="static") as a,
        switchboard(fake, tmp_path_factory.mktemp("onnx"), embedding_backend="onnx") as b,
    ):
        yield dict(zip(BACKENDS, (a, b), strict=True))


async def _route(client: httpx.AsyncClient, text: str) -> dict[str, object]:
    content = [{"type": "text", "text": text}, {"type": "image_url", "image_url": {"url": PHOTO}}]
    reply = await client.post(
        "/v1/route", json={"model": "auto", "messages": [{"role": "user", "content": content}]}
    )
    assert reply.status_code == 200, reply.text
    decided: dict[str, object] = reply.json()
    return decided


async def test_photo_turns_are_decided_alike_whatever_routes(
    clients: dict[str, httpx.AsyncClient],
) -> None:
    decided = {
        backend: [(await _route(client, text))["capabilities"] for text in PHOTO_TURNS]
        for backend, client in clients.items()
    }
    assert decided["static"] == decided["onnx"]  # both read photo turns on the turn encoder
    seeing = await _route(clients["static"], "what breed is that dog")
    assert seeing["model"] == "fake/vision" and seeing["capabilities"] == ["vision"]


@pytest.mark.parametrize("backend", BACKENDS)
async def test_embeddings_are_the_transformers_whatever_routes(
    clients: dict[str, httpx.AsyncClient], backend: str
) -> None:
    reply = await clients[backend].post(
        "/v1/embeddings", json={"model": "local/all-minilm-l6-v2", "input": TEXTS}
    )
    assert reply.status_code == 200, reply.text
    served = np.array([row["embedding"] for row in reply.json()["data"]], dtype=np.float32)
    expected = load_encoder(backend="onnx", cache_dir=CACHE).encode(TEXTS)
    assert np.abs(served - expected).max() < 1e-5
