"""The fast ONNX path gives the reference embeddings, int8 stays close and is named apart, profiles
get the encoder they were built with; fp32 texts embedded together share padded runs and get the
vectors they get alone; the service caches and batches."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prometheus_client import generate_latest

from app.embedding.batcher import EmbeddingService
from app.embedding.encoder import (
    BATCH_TOKENS,
    DEFAULT_MAX_TOKENS,
    INT8,
    STATIC,
    OnnxEncoder,
    TorchEncoder,
    base_model_id,
    default_model_path,
    load_encoder,
    token_bound,
    weights_id,
)
from app.embedding.static import HEAD_CHARS_PER_TOKEN, StaticEncoder
from app.errors import Overloaded
from app.metrics import Metrics
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
    fast, ref = onnx.encode(TEXTS), reference.encode(TEXTS)
    assert np.abs(fast - ref).max() < 1e-4
    assert np.allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-5)


@pytest.fixture(scope="module")
def int8() -> OnnxEncoder:
    encoder = load_encoder(backend="onnx-int8", cache_dir=CACHE)
    assert isinstance(encoder, OnnxEncoder)
    return encoder


def test_int8_is_close_to_the_reference_and_has_its_own_id(
    onnx: OnnxEncoder, int8: OnnxEncoder
) -> None:
    assert int8.model_id == onnx.model_id + INT8 != onnx.model_id
    assert base_model_id(int8.model_id) == onnx.model_id
    cosine = (int8.encode(TEXTS) * onnx.encode(TEXTS)).sum(axis=1)
    assert cosine.min() > 0.97 and not np.allclose(cosine, 1.0, atol=1e-4)


def test_auto_loads_the_encoder_profiles_were_built_with(
    onnx: OnnxEncoder, int8: OnnxEncoder
) -> None:
    assert load_encoder(cache_dir=CACHE).model_id == onnx.model_id + STATIC  # the default
    assert load_encoder(cache_dir=CACHE, like=onnx.model_id).model_id == onnx.model_id
    assert load_encoder(cache_dir=CACHE, like=int8.model_id).model_id == int8.model_id


@pytest.mark.parametrize("backend", ["onnx", "onnx-int8"])
def test_a_text_embeds_the_same_alone_or_among_others(backend: str) -> None:
    encoder = load_encoder(backend=backend, cache_dir=CACHE)  # type: ignore[arg-type]
    many = TEXTS * 5  # run side by side on the second session
    together = encoder.encode(many)
    alone = np.vstack([encoder.encode([t]) for t in many])
    assert np.abs(together - alone).max() < 1e-6


MIXED = [
    json.loads(line)["prompt"]
    for line in (Path(__file__).parent / "fixtures" / "mixed_prompts.jsonl")
    .read_text()
    .splitlines()
]
"""31 prompts of the shared RouterBench / RouterDC train splits, 13 to over 256 tokens, mixed."""


class CountingSession:
    """The real session, counting its runs and the texts in each."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.runs: list[tuple[int, int]] = []

    def run(self, outputs: Any, feeds: dict[str, np.ndarray]) -> Any:
        self.runs.append(feeds["input_ids"].shape)
        return self.inner.run(outputs, feeds)


@pytest.mark.parametrize("max_tokens", [DEFAULT_MAX_TOKENS, None])
def test_fp32_batches_give_each_text_the_vector_it_gets_alone(max_tokens: int | None) -> None:
    encoder = load_encoder(backend="onnx", cache_dir=CACHE, max_tokens=max_tokens)
    assert isinstance(encoder, OnnxEncoder)
    alone = np.vstack([encoder.encode([text]) for text in MIXED])
    counting = CountingSession(encoder._session)
    encoder._session = counting
    together = encoder.encode(MIXED + MIXED[:5])  # in no length order
    rows = [texts for texts, _ in counting.runs]
    assert sum(rows) == len(MIXED) + 5 and len(rows) < len(MIXED) / 3  # padded batches
    assert all(texts == 1 or texts * width <= BATCH_TOKENS for texts, width in counting.runs)
    assert np.abs(together[: len(MIXED)] - alone).max() < 1e-5
    assert np.array_equal(together[len(MIXED) :], together[:5])


def test_the_token_bound_is_part_of_the_id() -> None:
    bounded = load_encoder(backend="onnx", cache_dir=CACHE)
    whole = load_encoder(backend="onnx", cache_dir=CACHE, max_tokens=None)
    assert bounded.max_tokens == DEFAULT_MAX_TOKENS < whole.max_tokens == 256
    assert bounded.model_id == whole.model_id + f"+tok{DEFAULT_MAX_TOKENS}"
    assert (
        token_bound(bounded.model_id) == DEFAULT_MAX_TOKENS and token_bound(whole.model_id) is None
    )
    assert weights_id(bounded.model_id + INT8) == weights_id(whole.model_id) == whole.model_id
    long = max(MIXED, key=len)  # over 256 tokens: its vector depends on the bound
    assert (bounded.encode([long]) @ whole.encode([long]).T)[0, 0] < 0.999
    short = min(MIXED, key=len)
    assert np.abs(bounded.encode([short]) - whole.encode([short])).max() < 1e-6
    # profiles recorded with either id get the encoder that reproduces it
    assert load_encoder(cache_dir=CACHE, like=whole.model_id).model_id == whole.model_id
    assert load_encoder(cache_dir=CACHE, like=bounded.model_id).model_id == bounded.model_id


@pytest.fixture(scope="module")
def static() -> StaticEncoder:
    encoder = load_encoder(backend="static", cache_dir=CACHE)
    assert isinstance(encoder, StaticEncoder)
    return encoder


def test_static_vectors_are_named_apart_and_reproduced_by_auto(
    onnx: OnnxEncoder, static: StaticEncoder
) -> None:
    vectors = static.encode([*TEXTS, ""])
    assert vectors.shape == (len(TEXTS) + 1, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert static.model_id == onnx.model_id + STATIC
    assert weights_id(static.model_id) != weights_id(onnx.model_id)  # not the same vectors
    assert token_bound(static.model_id) == DEFAULT_MAX_TOKENS
    assert load_encoder(cache_dir=CACHE, like=static.model_id).model_id == static.model_id
    assert load_encoder(cache_dir=CACHE, like=onnx.model_id).model_id == onnx.model_id
    # centred: unrelated prompts do not all look alike, as a plain mean of token vectors would
    cosines = static.encode(MIXED) @ static.encode(MIXED).T
    assert float(np.median(cosines[np.triu_indices(len(MIXED), 1)])) < 0.7


def test_static_vectors_read_a_bounded_beginning_the_same_alone_or_together(
    static: StaticEncoder,
) -> None:
    long = max(MIXED, key=len)
    assert np.array_equal(static.encode([long]), static.encode([long + " and more" * 1000]))
    started = time.perf_counter()
    static.encode(["a" * 20_000_000])  # a 20 MB message: only its first max_chars are read
    assert time.perf_counter() - started < 5  # generous: it would take minutes unbounded
    together = static.encode(MIXED)
    alone = np.vstack([static.encode([t]) for t in MIXED])
    assert np.abs(together - alone).max() < 1e-6


def test_static_tokens_read_from_a_head_are_the_whole_texts(static: StaticEncoder) -> None:
    tokenizer = static._tokenizer

    def whole(text: str) -> list[int]:
        return list(tokenizer.encode(text[: static.max_chars], add_special_tokens=False).ids)

    texts = [
        *MIXED,
        *(p * 6 for p in MIXED),  # long ones: the head is enough
        "supercalifragilistic" * 200,  # one endless word: the head is not, read it all
        "é" * 700 + " fin " + "漢字" * 300,  # accents, CJK (split by the normaliser, not spaces)
        "https://example.com/" + "a/" * 600 + " then words",
    ]
    assert static.token_ids(texts) == [whole(t) for t in texts]
    # the head cuts a word inside the first 128 tokens: read naively, its tokens would differ
    cut = "house " * 126 + "internationalization is long " * 40
    head = cut[: static.max_tokens * HEAD_CHARS_PER_TOKEN]
    naive = list(tokenizer.encode(head, add_special_tokens=False).ids)
    assert naive[: static.max_tokens] != whole(cut)
    assert static.token_ids([cut]) == [whole(cut)]


def test_the_token_table_is_made_once_and_reused(static: StaticEncoder) -> None:
    table = next((CACHE / "onnx").glob("*/static.npy"))
    made = table.stat().st_mtime_ns
    again = load_encoder(backend="static", cache_dir=CACHE)
    assert table.stat().st_mtime_ns == made
    assert np.array_equal(again.encode(TEXTS), static.encode(TEXTS))


async def test_static_embeddings_run_inline_with_no_queue(static: StaticEncoder) -> None:
    service = EmbeddingService(static, cache_bytes=1 << 20, max_queue_s=0.0)
    vectors = await asyncio.gather(*(service.embed(f"question number {i}") for i in range(20)))
    assert service._worker is None and service.refused == 0  # never queued, never shed
    assert np.array_equal(vectors[3], static.encode(["question number 3"])[0])
    assert service.embedded == 20 and np.array_equal(
        await service.embed("question number 3"), vectors[3]
    )
    assert service.embedded == 20  # the repeat came from the cache
    await service.aclose()


class CountingEncoder:
    def __init__(self, inner: OnnxEncoder) -> None:
        self.inner, self.model_id, self.dim = inner, inner.model_id, inner.dim
        self.max_chars, self.inline = inner.max_chars, inner.inline
        self.calls: list[int] = []

    def encode(self, texts: list[str]) -> np.ndarray:
        self.calls.append(len(texts))
        return self.inner.encode(texts)


async def test_concurrent_requests_are_micro_batched_and_cached(onnx: OnnxEncoder) -> None:
    counting = CountingEncoder(onnx)
    service = EmbeddingService(counting, cache_bytes=1 << 20)
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


async def test_under_load_a_batch_waits_for_the_requests_just_behind_it(onnx: OnnxEncoder) -> None:
    counting = CountingEncoder(onnx)
    service = EmbeddingService(counting, cache_bytes=1 << 20, max_wait_s=0.05)
    await asyncio.gather(*(service.embed(f"burst {i}") for i in range(4)))  # arriving together

    async def later(i: int) -> np.ndarray:
        for _ in range(i):  # each one event-loop turn after the one before
            await asyncio.sleep(0)
        return await service.embed(f"staggered question {i}")

    before = len(counting.calls)
    vectors = await asyncio.gather(*(later(i) for i in range(8)))
    assert counting.calls[before:] == [8]  # one encoder run for all eight
    assert np.abs(vectors[5] - onnx.encode(["staggered question 5"])[0]).max() < 1e-5
    await service.aclose()


class SlowEncoder(CountingEncoder):
    """The real encoder, made to take ``delay_s`` per text: a machine with too little CPU."""

    def __init__(self, inner: OnnxEncoder, delay_s: float) -> None:
        super().__init__(inner)
        self.delay_s = delay_s

    def encode(self, texts: list[str]) -> np.ndarray:
        time.sleep(self.delay_s * len(texts))
        return super().encode(texts)


async def test_a_burst_beyond_what_the_encoder_can_read_in_time_is_refused_at_once(
    onnx: OnnxEncoder,
) -> None:
    slow = SlowEncoder(onnx, delay_s=0.05)
    service = EmbeddingService(slow, cache_bytes=1 << 20, max_batch=4, max_queue_s=0.5)
    await service.embed("a first question, to learn the encoder's pace")
    results = await asyncio.gather(
        *(service.embed(f"burst question {i}") for i in range(40)), return_exceptions=True
    )
    refused = [r for r in results if isinstance(r, Overloaded)]
    answered = [r for r in results if isinstance(r, np.ndarray)]
    assert len(refused) + len(answered) == 40
    assert 5 <= len(answered) <= 15  # about 0.5 s of work at 0.05 s a text was let in
    assert sum(slow.calls) == 1 + len(answered)  # a refused text never reached the encoder
    assert all(r.status_code == 503 and r.retry_after and r.retry_after > 0.5 for r in refused)
    metrics = Metrics()
    metrics.count_shed(lambda: service.refused)
    exported = generate_latest(metrics.registry).decode()
    assert f"switchboard_requests_shed_total {float(len(refused))}" in exported
    # work already paid for is never shed, and the queue drains: later queries are let in again
    kept = await asyncio.gather(
        *(service.embed(f"cached answer {i}", shed=False) for i in range(12))
    )
    assert len(kept) == 12
    assert isinstance(await service.embed("a question after the burst"), np.ndarray)
    await service.aclose()
