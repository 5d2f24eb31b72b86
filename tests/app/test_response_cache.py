"""The response cache hits paraphrases, never near-miss questions, and never across tenants."""

from __future__ import annotations

import pytest

from app.embedding.encoder import Encoder, load_encoder
from app.pipeline.response_cache import ResponseCache, paraphrase_only
from app.schemas import ChatRequest
from app.state.memory import MemoryStore
from tests.processes import CACHE


@pytest.fixture(scope="module")
def encoder() -> Encoder:
    """The transformer, whose vectors the service's cache compares."""
    return load_encoder(backend="onnx", cache_dir=CACHE)


def _request(text: str, system: str = "Be brief.", **extra: object) -> ChatRequest:
    return ChatRequest.model_validate({"model": "auto", "messages": [
        {"role": "system", "content": system}, {"role": "user", "content": text}], **extra})  # fmt: skip


async def _cached(encoder: Encoder, stored: ChatRequest, asked: ChatRequest,
                  tenant: tuple[str, str] = ("t1", "t1")) -> str | None:  # fmt: skip
    cache = ResponseCache(MemoryStore(), ttl_s=60, threshold=0.95)
    text = stored.messages[-1].text()
    await cache.put(stored, tenant[0], encoder.encode([text])[0], '{"answer": 1}')
    return await cache.get(asked, tenant[1], encoder.encode([asked.messages[-1].text()])[0])


@pytest.mark.parametrize(
    ("first", "second"),
    [("Is it safe to mix bleach and ammonia?", "Is it unsafe to mix bleach and ammonia?"),
     ("What is 15% of 80?", "What is 15% of 90?"),
     ("Who is the CEO of Apple?", "Who is the CEO of Google?"),
     ("Convert 5 miles to kilometres.", "Convert 6 miles to kilometres."),
     ("Should I take ibuprofen with food?", "Should I not take ibuprofen with food?")],
)  # fmt: skip
async def test_near_miss_questions_do_not_hit(encoder: Encoder, first: str, second: str) -> None:
    assert await _cached(encoder, _request(first), _request(second)) is None
    assert not paraphrase_only(first, second)


async def test_exact_and_paraphrase_hit(encoder: Encoder) -> None:
    same = _request("How do I boil an egg?")
    assert await _cached(encoder, same, same) == '{"answer": 1}'
    assert await _cached(encoder, same, _request("How can I boil an egg?")) == '{"answer": 1}'


async def test_context_and_tenant_must_match(encoder: Encoder) -> None:
    stored = _request("How do I boil an egg?")
    assert await _cached(encoder, stored, stored, ("t1", "t2")) is None
    assert (
        await _cached(encoder, stored, _request("How do I boil an egg?", system="Be verbose."))
        is None
    )
    assert (
        await _cached(encoder, stored, _request("How do I boil an egg?", temperature=1.5)) is None
    )


CAT = "data:image/jpeg;base64,/9j/4AAQSkZJRgABAQ=="
DOG = "data:image/jpeg;base64,/9j/4AAQSkZJRgABAg=="
VOICE = {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}}


def _with(text: str, *extra_parts: dict[str, object]) -> ChatRequest:
    parts = [{"type": "text", "text": text}, *extra_parts]
    return ChatRequest.model_validate({"model": "auto", "messages": [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": parts}]})  # fmt: skip


def _photo(url: str) -> dict[str, object]:
    return {"type": "image_url", "image_url": {"url": url}}


async def test_the_same_words_with_another_photo_miss(encoder: Encoder) -> None:
    question = "What breed is this?"
    with_cat = _with(question, _photo(CAT))
    assert await _cached(encoder, with_cat, with_cat) == '{"answer": 1}'
    assert await _cached(encoder, with_cat, _with(question, _photo(DOG))) is None
    assert await _cached(encoder, with_cat, _with("What breed is it?", _photo(DOG))) is None
    assert await _cached(encoder, with_cat, _with(question)) is None  # no photo at all
    assert await _cached(encoder, _with(question), with_cat) is None


async def test_the_same_words_with_other_audio_miss(encoder: Encoder) -> None:
    other = {"type": "input_audio", "input_audio": {"data": "UklGRh==", "format": "wav"}}
    stored = _with("Transcribe this.", VOICE)
    assert await _cached(encoder, stored, stored) == '{"answer": 1}'
    assert await _cached(encoder, stored, _with("Transcribe this.", other)) is None
