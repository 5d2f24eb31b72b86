"""Routing by what a turn needs, across a conversation: the selector, the memory, the request fit.

Uses the real embedding model and the bundled turn classifier; the catalog is three declared
models (a text model, a vision model, a web-search model) so the capability decides the route.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.catalog import Catalog
from app.embedding.batcher import EmbeddingService
from app.embedding.encoder import load_encoder
from app.embedding.turn_model import load_turn_encoder
from app.gateway.fitting import PHOTO_NOT_SHOWN, fitter
from app.gateway.latency import LatencyTracker
from app.pipeline.conversation import Conversations, TurnReader, fingerprint
from app.schemas import ChatMessage, ChatRequest
from app.selection.capabilities import TurnAnalysis
from app.selection.estimator import Estimator
from app.selection.selector import Selector
from app.selection.turns import TurnClassifier
from app.state.memory import MemoryStore
from tests.processes import CACHE

PHOTO = "data:image/jpeg;base64,/9j/4AAQSkZJRg=="
CLOCK = "You are Noa. The user's location: Oslo, Norway. The user's local time: Tue 25 Nov 10:15."


def _jpeg_url(colour: tuple[int, int, int] | None) -> str:
    """A 720x720 JPEG data URL: one colour, or (``None``) a scene full of detail."""
    import base64
    import io

    import numpy as np
    from PIL import Image

    if colour is None:
        pixels = np.random.default_rng(0).integers(0, 256, (90, 90, 3), dtype=np.uint8)
        image = Image.fromarray(pixels).resize((720, 720), Image.Resampling.BICUBIC)
    else:
        image = Image.new("RGB", (720, 720), colour)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode()


def _row(model_id: str, prior: float, capabilities: list[str], price: float) -> dict[str, object]:
    return {
        "id": model_id,
        "adapter": "openai_compat",
        "base_url": "http://127.0.0.1:9/v1",
        "price": {"input_per_mtok": price, "output_per_mtok": price},
        "context_window": 8192,
        "capabilities": capabilities,
        "profile": {"prior_quality": prior},
    }


CATALOG = Catalog.model_validate(
    {
        "models": [
            _row("text/small", 0.60, [], 0.0),
            _row("text/other", 0.58, [], 0.0),
            _row("cloud/vision", 0.80, ["vision"], 30.0),
            _row("cloud/search", 0.55, ["web_search"], 5.0),
        ]
    }
)


@pytest.fixture(scope="module")
def embeddings() -> Iterator[EmbeddingService]:
    """The router's own vectors (static, the default), as in the service."""
    yield EmbeddingService(load_encoder(cache_dir=CACHE))


@pytest.fixture(scope="module")
def transformer() -> Iterator[EmbeddingService]:
    """all-mpnet-base-v2's vectors, on which glasses-style turns are read, as in the service."""
    yield EmbeddingService(load_turn_encoder(CACHE))


@pytest.fixture()
def latency() -> LatencyTracker:
    return LatencyTracker()


@pytest.fixture()
def selector(latency: LatencyTracker) -> Selector:
    estimator = Estimator(
        None,
        {m.id: m.profile for m in CATALOG.models if m.profile is not None},
        {m.id: m.id for m in CATALOG.models},
        None,
    )
    return Selector(CATALOG, estimator, lambda entry: None, latency=latency)


@pytest.fixture()
def conversations(embeddings: EmbeddingService, transformer: EmbeddingService) -> Conversations:
    text = TurnClassifier.for_embeddings(embeddings.encoder.model_id)
    glasses = TurnClassifier.for_embeddings(transformer.encoder.model_id)
    assert text is not None and glasses is not None
    return Conversations(
        TurnReader(text, embeddings), MemoryStore(), glasses=TurnReader(glasses, transformer)
    )


def _user(text: str, photo: bool = True, url: str = PHOTO) -> dict[str, object]:
    if not photo:
        return {"role": "user", "content": text}
    parts = [{"type": "text", "text": text}, {"type": "image_url", "image_url": {"url": url}}]
    return {"role": "user", "content": parts}


def _request(*messages: dict[str, object], **extra: object) -> ChatRequest:
    return ChatRequest.model_validate({"model": "auto", "messages": list(messages), **extra})


async def _route(
    conversations: Conversations, selector: Selector, request: ChatRequest, **kw: float
) -> tuple[TurnAnalysis, str | None, list[str]]:
    assert conversations.text is not None
    embedding = await conversations.text.embeddings.embed(request.prompt_text())
    turn = await conversations.analyse(request, embedding, "tenant")
    decision = selector.decide(request, embedding, turn, **kw)
    return turn, decision.model, decision.capabilities


@pytest.mark.parametrize(
    ("question", "model", "capabilities"),
    [
        ("what breed is that dog", "cloud/vision", ["vision"]),
        ("read me this menu", "cloud/vision", ["vision"]),
        ("how many grams are in an ounce", "text/small", []),
        ("say thank you for dinner more politely", "text/small", []),
        ("will it rain this afternoon", "cloud/search", ["web_search"]),
        ("is the pharmacy on main street open right now", "cloud/search", ["web_search"]),
    ],
)
async def test_a_photo_alone_does_not_make_a_turn_a_vision_turn(
    conversations: Conversations,
    selector: Selector,
    question: str,
    model: str,
    capabilities: list[str],
) -> None:
    _, chosen, needed = await _route(conversations, selector, _request(_user(question)))
    assert (chosen, needed) == (model, capabilities)


async def test_photo_turns_are_read_on_the_turn_encoder_and_plain_text_on_the_routers_vectors(
    conversations: Conversations, selector: Selector, transformer: EmbeddingService
) -> None:
    before = transformer.embedded
    await _route(conversations, selector, _request(_user("which of these plants needs water")))
    assert transformer.embedded == before + 1
    await _route(conversations, selector, _request(_user("how many grams in a pound", photo=False)))
    assert transformer.embedded == before + 1  # no second embedding for plain text


async def test_without_a_photo_a_seeing_question_cannot_need_vision(
    conversations: Conversations, selector: Selector
) -> None:
    _, _, needed = await _route(
        conversations, selector, _request(_user("what breed is that dog", photo=False))
    )
    assert needed == []


async def test_a_follow_up_keeps_the_capability_and_a_new_topic_is_reported(
    conversations: Conversations, selector: Selector
) -> None:
    first = _user("will it rain this afternoon")
    answer = {"role": "assistant", "content": "Light rain is expected after 3 pm."}
    turn, chosen, needed = await _route(
        conversations, selector, _request(first, answer, _user("and tomorrow?"))
    )
    assert turn.followup and not turn.topic_changed
    assert (chosen, needed) == ("cloud/search", ["web_search"])
    turn, chosen, needed = await _route(
        conversations,
        selector,
        # (not "good morning": its cosine to "this afternoon" is 0.21, at the learned threshold)
        _request(first, answer, _user("how do I say thank you in italian")),
    )
    assert turn.topic_changed and not turn.followup
    assert (chosen, needed) == ("text/small", [])


async def test_a_chain_of_retries_keeps_the_photo_question_it_started_from(
    conversations: Conversations, selector: Selector
) -> None:
    """A stateless client resends the history as text, the photo only on the newest turn, and
    the history was never seen: every earlier turn is decided again in order."""
    history = [
        _user("what year is that motorbike", photo=False),
        {"role": "assistant", "content": "I can't tell the year from here."},
        _user("just guess", photo=False),
        {"role": "assistant", "content": "Sorry, I'd rather not guess."},
        _user("try again", photo=False),
        {"role": "assistant", "content": "It could be from any decade."},
    ]
    turn, chosen, needed = await _route(
        conversations, selector, _request(*history, _user("come on, one more go"))
    )
    assert turn.followup
    assert (chosen, needed) == ("cloud/vision", ["vision"])
    rain = [_user("will it rain later", photo=False), history[1], *history[2:4]]
    _, chosen, needed = await _route(conversations, selector, _request(*rain, _user("try again")))
    assert (chosen, needed) == ("cloud/search", ["web_search"])


async def test_a_follow_up_keeps_the_model_that_answered_unless_another_is_much_better(
    conversations: Conversations, selector: Selector
) -> None:
    history = [_user("how do I say good morning in italian", photo=False)]
    answer = "Buongiorno."
    await conversations.remember("tenant", _request(*history).messages, answer, "text/other", [])
    follow = _request(*history, {"role": "assistant", "content": answer}, _user("say more"))
    turn, chosen, _ = await _route(conversations, selector, follow)
    assert turn.followup and turn.previous_model == "text/other"
    assert chosen == "text/other"  # 0.58 vs 0.60: within the margin, the thread keeps its model

    await conversations.remember("tenant", _request(*history).messages, answer, "cloud/vision", [])
    turn, chosen, _ = await _route(conversations, selector, follow)
    assert turn.previous_model == "cloud/vision"
    assert chosen == "text/small"  # the vision model is far costlier here: switching pays


async def test_memory_is_per_caller_and_ignores_system_prompts_and_spacing() -> None:
    a = [
        ChatMessage(role="system", content="time: 10:00"),
        ChatMessage(role="user", content="hi  there"),
    ]
    b = [
        ChatMessage(role="system", content="time: 10:05"),
        ChatMessage(role="user", content="hi there"),
    ]
    assert fingerprint("t", a) == fingerprint("t", b)
    assert fingerprint("t", a) != fingerprint("u", a)
    assert fingerprint("t", a) != fingerprint("t", [*a, ChatMessage(role="assistant", content="x")])


async def test_models_slower_than_the_deadline_are_excluded_with_a_reason(
    conversations: Conversations, selector: Selector, latency: LatencyTracker
) -> None:
    for _ in range(5):
        latency.observe("cloud/vision", 9.5, ok=True)
    request = _request(_user("what breed is that dog"))
    assert conversations.text is not None
    embedding = await conversations.text.embeddings.embed(request.prompt_text())
    turn = await conversations.analyse(request, embedding, None)
    decision = selector.decide(request, embedding, turn, deadline_s=8.0)
    vision = decision.candidate("cloud/vision")
    assert vision is not None and not vision.eligible
    assert "exceeds the 8 s deadline" in vision.reason
    assert selector.decide(request, embedding, turn).model == "cloud/vision"  # no deadline


def test_models_without_vision_get_the_words_and_not_the_photo() -> None:
    request = _request(_user("how many grams in an ounce"))
    fit = fitter(CATALOG)
    text = fit("text/small", request).messages[0]
    assert text.text() == f"how many grams in an ounce\n{PHOTO_NOT_SHOWN}" and not text.has_image()
    assert fit("cloud/vision", request).messages[0].has_image()
    assert request.messages[0].has_image()  # the caller's request is not modified


def test_text_models_get_one_string_where_the_caller_sent_text_parts() -> None:
    """llama.cpp's Qwen template answers a list of parts with a 500; a string it reads."""
    parts = [{"type": "text", "text": "what is"}, {"type": "text", "text": "2 + 2"}]
    request = ChatRequest.model_validate(
        {"model": "auto", "messages": [{"role": "user", "content": parts}]}
    )
    sent = fitter(CATALOG)("text/small", request).messages[0]
    assert sent.content == "what is\n2 + 2"
    assert (
        fitter(CATALOG)("cloud/vision", request).messages[0].content == request.messages[0].content
    )


async def test_inferred_capabilities_are_preferred_never_required(
    conversations: Conversations, selector: Selector
) -> None:
    request = _request(
        _user("what does this sign say about parking today"), switchboard={"preset": "quality"}
    )
    assert conversations.text is not None
    embedding = await conversations.text.embeddings.embed(request.prompt_text())
    both = TurnAnalysis(("vision", "web_search"), scores={"vision": 0.9, "web_search": 0.6})
    decision = selector.decide(request, embedding, both)
    assert decision.model == "cloud/vision"  # no model has both: the surer one's model wins
    assert decision.unmet_capabilities == ["web_search"]
    chosen = decision.candidate("cloud/vision")
    assert chosen is not None and chosen.bonus == 0.45 and "inferred vision" in chosen.reason
    text = decision.candidate("text/small")
    assert text is not None and text.eligible and text.bonus == 0.0
    asked = _request(
        _user("what does this sign say about parking today"),
        switchboard={"capabilities": ["vision", "web_search"]},
    )
    assert selector.decide(asked, embedding, both).model is None  # what the caller asks is kept


async def test_a_photo_question_with_no_model_that_can_see_is_answered_blind(
    conversations: Conversations, selector: Selector
) -> None:
    request = _request(_user("what breed is that dog"))
    assert conversations.text is not None
    embedding = await conversations.text.embeddings.embed(request.prompt_text())
    turn = await conversations.analyse(request, embedding, None)
    assert turn.capabilities == ("vision",)
    blind = Selector(
        CATALOG,
        selector.estimator,
        lambda entry: "unavailable: key not set" if entry.id == "cloud/vision" else None,
    )
    answered = blind.decide(request, embedding, turn)  # API and glasses alike: no refusal
    assert answered.model is not None and answered.model.startswith("text/")
    assert (answered.capabilities, answered.unmet_capabilities) == (["vision"], ["vision"])
    sent = fitter(CATALOG)(answered.model, request).messages[0]
    assert PHOTO_NOT_SHOWN in sent.text() and not sent.has_image()  # told, not left to guess


async def test_the_time_is_answered_from_the_system_prompt_when_the_client_sent_it(
    conversations: Conversations, selector: Selector
) -> None:
    told = _request({"role": "system", "content": CLOCK}, _user("what time is it"))
    _, chosen, needed = await _route(conversations, selector, told)
    assert (chosen, needed) == ("text/small", [])
    _, chosen, needed = await _route(conversations, selector, _request(_user("what time is it")))
    assert (chosen, needed) == ("cloud/search", ["web_search"])


async def test_a_black_frame_is_looked_at_and_a_photo_question_still_goes_to_vision(
    conversations: Conversations, selector: Selector
) -> None:
    request = _request(_user("what breed is that dog", url=_jpeg_url((2, 2, 2))))
    turn, chosen, needed = await _route(conversations, selector, request)
    assert turn.scores is not None and turn.scores["photo_empty"] == 1.0
    assert (chosen, needed) == ("cloud/vision", ["vision"])
    scene = _request(_user("what breed is that dog", url=_jpeg_url(None)))
    turn, chosen, _ = await _route(conversations, selector, scene)
    assert turn.scores is not None and turn.scores["photo_empty"] == 0.0
    assert chosen == "cloud/vision"
    unread, _, _ = await _route(conversations, selector, _request(_user("what breed is that dog")))
    assert unread.scores is not None and "photo_empty" not in unread.scores  # not a readable JPEG
