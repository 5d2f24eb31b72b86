"""Embedding costs what the model reads, whatever the caller sends.

The encoder reads 256 tokens; it is handed a bounded prefix of the text, which changes no
vector of a text shorter than the bound and none of a natural long text (its first 256 tokens
lie well inside the bound). The service's cache is bounded in bytes, keys included, and one
text the encoder cannot take fails only its own request, not the batch it was in.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from app.embedding.batcher import EmbeddingService
from app.embedding.encoder import OnnxEncoder, TorchEncoder, default_model_path, load_encoder
from tests.processes import CACHE

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


@pytest.fixture(scope="module")
def onnx() -> OnnxEncoder:
    encoder = load_encoder(backend="onnx", cache_dir=CACHE)
    assert isinstance(encoder, OnnxEncoder)
    return encoder


def test_the_encoder_reads_a_bounded_prefix(onnx: OnnxEncoder) -> None:
    assert 1000 <= onnx.max_chars <= 10_000
    huge = "word " * 4_000_000  # 20 MB
    assert np.array_equal(onnx.encode([huge]), onnx.encode([huge[: onnx.max_chars]]))


def _unbounded(onnx: OnnxEncoder, text: str) -> np.ndarray:
    """The vector as it was before the bound: the tokenizer is handed the whole text."""
    return onnx._encode_one(onnx._tokenizer.encode(text).ids, onnx._session)


def test_texts_under_the_bound_keep_their_vectors(onnx: OnnxEncoder) -> None:
    short = README[: onnx.max_chars - 1]
    assert np.array_equal(onnx.encode([short])[0], _unbounded(onnx, short))
    # a natural long text: its first 256 tokens lie inside the bound, so nothing changes
    assert len(README) > 4 * onnx.max_chars
    assert np.array_equal(onnx.encode([README])[0], _unbounded(onnx, README))


def test_torch_reads_the_same_prefix() -> None:
    torch = TorchEncoder(default_model_path())
    huge = "tea " * 1_000_000
    assert torch.max_chars >= 1000
    assert np.allclose(torch.encode([huge]), torch.encode([huge[: torch.max_chars]]), atol=1e-6)


async def test_long_texts_that_share_the_prefix_share_one_cache_entry(onnx: OnnxEncoder) -> None:
    service = EmbeddingService(onnx)
    first = await service.embed("a" * onnx.max_chars + " first ending " * 100_000)
    second = await service.embed("a" * onnx.max_chars + " second ending " * 100_000)
    assert np.array_equal(first, second)
    assert service.embedded == 1
    await service.aclose()


async def test_the_cache_is_bounded_in_bytes(onnx: OnnxEncoder) -> None:
    service = EmbeddingService(onnx, cache_bytes=64 * 1024)
    for i in range(60):
        await service.embed(f"{i} " + "long question " * 300)  # about 4 KB of key each
    assert 0 < service.cache_bytes <= 64 * 1024
    again = service.embedded
    await service.embed("59 " + "long question " * 300)  # the newest is still cached
    assert service.embedded == again
    await service.aclose()


async def test_one_bad_text_fails_only_its_own_request(onnx: OnnxEncoder) -> None:
    service = EmbeddingService(onnx)
    good = asyncio.create_task(service.embed("Will it rain this afternoon?"))
    bad = asyncio.create_task(service.embed("broken \ud800 text"))  # not encodable to UTF-8
    other = asyncio.create_task(service.embed("What breed is that dog?"))
    results = await asyncio.gather(good, bad, other, return_exceptions=True)
    assert isinstance(results[0], np.ndarray) and isinstance(results[2], np.ndarray)
    assert isinstance(results[1], Exception)
    await service.aclose()
