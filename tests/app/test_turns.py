"""What a glasses user notices: a photo alone does not make a turn a vision question, fresh
facts get web search, follow-ups keep the capability of the turn they follow, a new topic is
reported; and the bundled weights still meet their cross-validated targets on the bundled data.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np
import pytest

from app.embedding.encoder import Encoder, load_encoder, weights_id
from app.errors import ConfigError
from app.selection.turns import (
    DEFAULT_TURNS,
    DEFAULT_WEIGHTS,
    PreviousTurn,
    TurnClassifier,
    TurnContext,
    TurnDecision,
    load_labelled_turns,
)
from tests.processes import CACHE


@pytest.fixture(scope="module")
def encoder() -> Encoder:
    return load_encoder(cache_dir=CACHE)


@pytest.fixture(scope="module")
def classifier() -> TurnClassifier:
    return TurnClassifier.load()


def conversation(
    encoder: Encoder, classifier: TurnClassifier, texts: list[str], has_image: bool = True
) -> list[TurnDecision]:
    """Decide ``texts`` turn by turn, as the service does (earlier decisions feed later ones)."""
    vectors = encoder.encode(texts)
    history: list[PreviousTurn] = []
    decisions = []
    for i, text in enumerate(texts):
        previous = vectors[i - 1] if i else None
        decision = classifier.decide(vectors[i], previous, TurnContext(text, has_image, history))
        decisions.append(decision)
        history = [*history, PreviousTurn(text, decision.capabilities, "some-model")]
    return decisions


def test_a_photo_alone_does_not_need_vision(encoder: Encoder, classifier: TurnClassifier) -> None:
    (decision,) = conversation(encoder, classifier, ["how many grams in an ounce"])
    assert decision.capabilities == ()
    assert not decision.followup and not decision.topic_changed


def test_a_question_about_what_the_camera_sees_needs_vision(
    encoder: Encoder, classifier: TurnClassifier
) -> None:
    for text in ["what breed is that", "read me this menu", "which of these is ripe?"]:
        (decision,) = conversation(encoder, classifier, [text])
        assert decision.capabilities == ("vision",), text


def test_vision_is_never_returned_without_a_photo(
    encoder: Encoder, classifier: TurnClassifier
) -> None:
    (decision,) = conversation(encoder, classifier, ["what breed is that"], has_image=False)
    assert decision.capabilities == ()
    assert decision.scores["vision"] > 0.5  # the words asked for it; there is nothing to see


def test_fresh_facts_need_web_search(encoder: Encoder, classifier: TurnClassifier) -> None:
    for text in [
        "will it rain this afternoon",
        "is the pharmacy open now",
        "current price of bitcoin",
    ]:
        (decision,) = conversation(encoder, classifier, [text])
        assert decision.capabilities == ("web_search",), text


def test_both_capabilities_when_the_photo_and_fresh_facts_matter(
    encoder: Encoder, classifier: TurnClassifier
) -> None:
    (decision,) = conversation(encoder, classifier, ["is this restaurant open now?"])
    assert decision.capabilities == ("vision", "web_search")


def test_a_follow_up_keeps_web_search_and_a_new_topic_is_reported(
    encoder: Encoder, classifier: TurnClassifier
) -> None:
    weather, tomorrow, french = conversation(
        encoder,
        classifier,
        [
            "will it rain this afternoon",
            "and tomorrow?",
            "thanks, now how do I say hello in french",
        ],
    )
    assert weather.capabilities == ("web_search",)
    assert tomorrow.followup and not tomorrow.topic_changed
    assert tomorrow.capabilities == ("web_search",)
    assert french.topic_changed and not french.followup
    assert french.capabilities == ()


def test_why_do_you_say_that_keeps_vision(encoder: Encoder, classifier: TurnClassifier) -> None:
    breed, why = conversation(
        encoder, classifier, ["what breed is that dog", "why do you say that?"]
    )
    assert breed.capabilities == why.capabilities == ("vision",)
    assert why.followup and not why.topic_changed


def test_a_first_turn_without_previous_embedding_is_judged_alone(
    encoder: Encoder, classifier: TurnClassifier
) -> None:
    vector = encoder.encode(["and tomorrow?"])[0]
    context = TurnContext("and tomorrow?", True, [PreviousTurn("hi", ("web_search",), None)])
    decision = classifier.decide(vector, None, context)
    assert not decision.followup and not decision.topic_changed
    assert "followup" not in decision.scores


def test_loads_fast_and_decides_in_well_under_a_millisecond(encoder: Encoder) -> None:
    start = time.perf_counter()
    classifier = TurnClassifier.load()
    assert time.perf_counter() - start < 0.1
    vectors = encoder.encode(["what breed is that dog", "are they good with kids"])
    context = TurnContext("are they good with kids", True, [PreviousTurn("x", ("vision",), None)])
    start = time.perf_counter()
    for _ in range(200):
        classifier.decide(vectors[1], vectors[0], context)
    assert (time.perf_counter() - start) / 200 < 0.001


def test_weights_are_plain_json_for_the_bundled_data_and_model(encoder: Encoder) -> None:
    data = json.loads(DEFAULT_WEIGHTS.read_text())
    # refit when the embedding weights change (the token bound does not cut any labelled turn)
    assert weights_id(data["model_id"]) == weights_id(encoder.model_id)
    digest = hashlib.sha256(DEFAULT_TURNS.read_bytes()).hexdigest()[:16]
    assert data["trained_on"]["sha256"] == digest, "run scripts/fit_turn_classifier.py"
    again = TurnClassifier.from_dict(TurnClassifier.load().to_dict())
    assert again.thresholds == TurnClassifier.load().thresholds


def test_bad_weights_and_bad_data_fail_clearly(tmp_path: Path) -> None:
    (tmp_path / "w.json").write_text('{"format": 99}')
    with pytest.raises(ConfigError, match="turn classifier"):
        TurnClassifier.load(tmp_path / "w.json")
    line = {
        "conversation": "c1",
        "turn": 0,
        "text": "hi",
        "labels": ["audio"],
        "is_followup": False,
        "topic_changed": False,
        "has_image": True,
    }
    (tmp_path / "t.jsonl").write_text(json.dumps(line) + "\n")
    with pytest.raises(ConfigError, match=r"t\.jsonl:1"):
        load_labelled_turns(tmp_path / "t.jsonl")


def test_the_labelled_conversations_look_like_glasses_traffic(tmp_path: Path) -> None:
    from scripts.make_glasses_images import ensure_images

    turns = load_labelled_turns()
    assert len(turns) >= 150
    assert len({t.conversation for t in turns}) >= 80
    assert sum(t.has_image for t in turns) > 0.8 * len(turns)
    photo_not_needed = [t for t in turns if t.has_image and "vision" not in t.labels]
    assert len(photo_not_needed) > 0.3 * len(turns)
    sample = [t for t in turns if t.conversation in ("c001", "c021")]
    paths = ensure_images(sample, tmp_path)
    assert [p is None for p in paths] == [not t.has_image for t in sample]
    from PIL import Image

    with Image.open(next(p for p in paths if p)) as image:
        assert image.size == (720, 720) and image.format == "JPEG"


def test_cross_validated_accuracy_meets_the_targets() -> None:
    from scripts.fit_turn_classifier import cross_validate, exact_accuracy, load_table

    table = load_table(cache_dir=CACHE)
    shipped = TurnClassifier.load().thresholds
    decisions = cross_validate(table, [shipped])[shipped]
    assert exact_accuracy(table, decisions) >= 0.90
    for j, capability in enumerate(("vision", "web_search")):
        truth = table.labels[:, j]
        said = np.array([capability in decisions[i].capabilities for i in range(len(truth))])
        assert (said == truth).mean() >= 0.8 and said[truth].mean() >= 0.8, capability
    later = [i for i, t in enumerate(table.turns) if t.index]
    for flag in ("followup", "topic_changed"):
        right = [getattr(decisions[i], flag) == getattr(table.turns[i], flag) for i in later]
        assert np.mean(right) >= 0.85, flag
