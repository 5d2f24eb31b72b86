"""The fast ONNX path gives the reference embeddings; the service caches and batches."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from app.embedding import OnnxEncoder, TorchEncoder, default_model_path, load_encoder
from app.embedding_service import EmbeddingService
from tests.processes import CACHE

TEXTS = [
    "What breed is that dog?",
    "Will it rain this afternoon?",
    "Convert 3 cups to millilitres, please.",
    "Ünïcödé, 漢字 and emoji 🙂 survive tokenisation",
    "word " * 400,  # longer than the 256-token window: truncated the same way
    "x",
]


@pytest.fixture(scope="module")
def onnx() -> OnnxEncoder:
    encoder = load_encoder(backend="onnx", cache_dir=CACHE)
    assert isinstance(encoder, OnnxEncoder)
    return encoder


def test_onnx_matches_sentence_transformers(onnx: OnnxEncoder) -> None:
    reference = TorchEncoder(default_model_path())
    assert onnx.model_id == reference.model_id and onnx.dim == reference.dim == 384
    fast, ref = onnx.encode(TEXTS, batch_size=4), reference.encode(TEXTS)
    assert np.abs(fast - ref).max() < 1e-4
    assert np.allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-5)


def test_batched_and_single_encoding_agree(onnx: OnnxEncoder) -> None:
    batched = onnx.encode(TEXTS, batch_size=64)
    single = np.vstack([onnx.encode([t]) for t in TEXTS])
    assert np.abs(batched - single).max() < 1e-5


class CountingEncoder:
    def __init__(self, inner: OnnxEncoder) -> None:
        self.inner, self.model_id, self.dim = inner, inner.model_id, inner.dim
        self.calls: list[int] = []

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        self.calls.append(len(texts))
        return self.inner.encode(texts, batch_size)


async def test_concurrent_requests_are_micro_batched_and_cached(onnx: OnnxEncoder) -> None:
    counting = CountingEncoder(onnx)
    service = EmbeddingService(counting, cache_size=100)
    texts = [f"question number {i}" for i in range(20)]
    vectors = await asyncio.gather(*(service.embed(t) for t in texts))
    assert len(counting.calls) < len(texts)  # batched: fewer encoder calls than requests
    assert sum(counting.calls) == len(texts)
    assert np.abs(vectors[3] - onnx.encode([texts[3]])[0]).max() < 1e-5
    calls = len(counting.calls)
    again = await service.embed(texts[3])
    assert len(counting.calls) == calls  # served from the cache
    assert np.array_equal(again, vectors[3])
    await service.aclose()
