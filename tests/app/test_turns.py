"""What a glasses user notices: a photo alone does not make a turn a vision question, fresh
facts get web search, follow-ups (even "try again") keep the capability of the turn they follow,
the client's clock answers "what time is it?", a new topic is reported; and the bundled weights
decide a source they were not fitted on better than always-vision does.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from app.embedding.encoder import Encoder, load_encoder, weights_id
from app.embedding.turn_model import load_turn_encoder
from app.errors import ConfigError
from app.selection.turns import (
    DEFAULT_TURNS,
    DEFAULT_WEIGHTS,
    LabelledTurn,
    PreviousTurn,
    TurnClassifier,
    TurnContext,
    TurnDecision,
    load_labelled_turns,
)
from tests.processes import CACHE


@pytest.fixture(scope="module")
def encoder() -> Encoder:
    """all-mpnet-base-v2's vectors: the bundled classifier's, on which glasses turns are read."""
    return load_turn_encoder(CACHE)


@pytest.fixture(scope="module")
def classifier() -> TurnClassifier:
    return TurnClassifier.load()


def conversation(
    encoder: Encoder,
    classifier: TurnClassifier,
    texts: list[str],
    has_image: bool = True,
    client: tuple[bool, bool] = (True, True),
) -> list[TurnDecision]:
    """Decide ``texts`` turn by turn, as the service does (earlier decisions feed later ones).

    ``client``: whether the request carries the user's local time and location (as the glasses'
    requests do).
    """
    vectors = encoder.encode(texts)
    history: list[PreviousTurn] = []
    decisions = []
    for i, text in enumerate(texts):
        previous = vectors[i - 1] if i else None
        context = TurnContext(text, has_image, history, None, *client)
        decision = classifier.decide(vectors[i], previous, context)
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
    assert decision.scores["vision"] > classifier.thresholds.vision  # the words asked for it


def test_fresh_facts_need_web_search(encoder: Encoder, classifier: TurnClassifier) -> None:
    for text in ["will it rain this afternoon", "current price of bitcoin"]:
        (decision,) = conversation(encoder, classifier, [text])
        assert decision.capabilities == ("web_search",), text
    # "the pharmacy", asked with a photo, may be the one in view: a needless look is the error
    # the thresholds accept; answering opening hours from stale knowledge is not
    (decision,) = conversation(encoder, classifier, ["is the pharmacy open now"])
    assert "web_search" in decision.capabilities


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


def test_a_reaction_after_a_photo_question_needs_nothing_and_is_no_new_topic(
    encoder: Encoder, classifier: TurnClassifier
) -> None:
    bird, reaction = conversation(
        encoder, classifier, ["which bird is sitting on the gate", "oh lovely, cheers for that"]
    )
    assert bird.capabilities == ("vision",)
    assert reaction.capabilities == ()
    assert not reaction.followup and not reaction.topic_changed


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
    assert "followup" not in decision.scores and "topic" not in decision.scores


def test_a_photo_question_needs_vision_however_it_is_put(
    encoder: Encoder, classifier: TurnClassifier
) -> None:
    for text in [
        "how many people are in this picture",
        "describe what's ahead of me",
        "witch one of these is ripe",  # as speech recognition hears it
        "this vegetable how is called",
    ]:
        (decision,) = conversation(encoder, classifier, [text])
        assert decision.capabilities == ("vision",), text


def test_small_talk_about_oneself_needs_nothing_even_with_a_photo(
    encoder: Encoder, classifier: TurnClassifier
) -> None:
    for text in [
        "I had a really rough day at the office",
        "I'm exhausted, I barely slept last night",
    ]:
        (decision,) = conversation(encoder, classifier, [text])
        assert decision.capabilities == (), text


def test_share_prices_and_who_runs_a_small_company_need_web_search(
    encoder: Encoder, classifier: TurnClassifier
) -> None:
    (price,) = conversation(encoder, classifier, ["what's the share price of Nvidia right now"])
    assert price.capabilities == ("web_search",)
    (owner,) = conversation(encoder, classifier, ["who runs this little cafe"])
    assert owner.capabilities == ("vision", "web_search")


def test_try_again_and_just_guess_keep_the_capability_they_follow(
    encoder: Encoder, classifier: TurnClassifier
) -> None:
    decisions = conversation(
        encoder, classifier, ["what year is that motorbike", "just guess", "try again"]
    )
    assert [d.capabilities for d in decisions] == [("vision",)] * 3
    assert decisions[1].followup and decisions[2].followup
    rain, again = conversation(encoder, classifier, ["will it rain later", "try again"])
    assert rain.capabilities == again.capabilities == ("web_search",)


def test_the_time_comes_from_the_client_when_it_sent_it(
    encoder: Encoder, classifier: TurnClassifier
) -> None:
    (told,) = conversation(encoder, classifier, ["what time is it"])
    assert told.capabilities == ()
    (untold,) = conversation(encoder, classifier, ["what time is it"], client=(False, False))
    assert untold.capabilities == ("web_search",)
    (hours,) = conversation(encoder, classifier, ["what time does the pharmacy close"])
    assert hours.capabilities == ("web_search",)  # opening hours are not the clock


def test_where_am_i_comes_from_the_client_location_or_else_from_the_photo(
    encoder: Encoder, classifier: TurnClassifier
) -> None:
    (told,) = conversation(encoder, classifier, ["where am I"])
    assert told.capabilities == ()
    (untold,) = conversation(encoder, classifier, ["where am I"], client=(True, False))
    assert untold.capabilities == ("vision",)


def test_the_bundled_weights_load_and_decide_as_saved(encoder: Encoder) -> None:
    classifier = TurnClassifier.load()
    again = TurnClassifier.from_dict(json.loads(json.dumps(classifier.to_dict())))
    vectors = encoder.encode(["what breed is that dog", "are they good with kids"])
    context = TurnContext("are they good with kids", True, [PreviousTurn("x", ("vision",), None)])
    assert classifier.decide(vectors[1], vectors[0], context) == again.decide(
        vectors[1], vectors[0], context
    )


def test_weights_are_plain_json_for_the_bundled_data_and_model(encoder: Encoder) -> None:
    data = json.loads(DEFAULT_WEIGHTS.read_text())
    # refit when the embedding weights change (the token bound does not cut any labelled turn)
    assert weights_id(data["model_id"]) == weights_id(encoder.model_id)
    digest = hashlib.sha256(DEFAULT_TURNS.read_bytes()).hexdigest()[:16]
    assert data["trained_on"]["sha256"] == digest, "run scripts/fit_turn_classifier.py"
    again = TurnClassifier.from_dict(TurnClassifier.load().to_dict())
    assert again.thresholds == TurnClassifier.load().thresholds


def test_a_classifier_is_bundled_for_each_kind_of_vector_fitted_on_the_bundled_data(
    encoder: Encoder,
) -> None:
    digest = hashlib.sha256(DEFAULT_TURNS.read_bytes()).hexdigest()[:16]
    bundled = sorted(DEFAULT_WEIGHTS.parent.glob("turn_classifier*.json"))
    assert len(bundled) == 3
    for path in bundled:
        assert json.loads(path.read_text())["trained_on"]["sha256"] == digest, path
    static = load_encoder(cache_dir=CACHE)  # the router's default vectors
    minilm = load_encoder(backend="onnx-int8", cache_dir=CACHE)  # its transformer, any precision
    found = [TurnClassifier.for_embeddings(e.model_id) for e in (encoder, static, minilm)]
    assert all(c is not None for c in found)
    ids = [c.model_id for c in found if c is not None]
    assert ids[0] == encoder.model_id and ids[1] == static.model_id
    assert weights_id(ids[2]) == weights_id(minilm.model_id)
    assert len(set(ids)) == 3
    assert TurnClassifier.for_embeddings("some-other-model@0123456789ab") is None


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
    sizes: dict[str, int] = {}
    for t in turns:
        sizes[t.source] = sizes.get(t.source, 0) + 1
    assert len(sizes) >= 8 and min(sizes.values()) >= 35, sizes  # several independent sources
    sample = [t for t in turns if t.conversation in ("c001", "c021")]
    sample += [t for t in turns if t.frame != "photo" and t.has_image][:6]
    paths = ensure_images(sample, tmp_path)
    assert [p is None for p in paths] == [not t.has_image for t in sample]
    from PIL import Image

    from app.selection.photo_look import look_at

    with Image.open(next(p for p in paths if p)) as image:
        assert image.size == (720, 720) and image.format == "JPEG"
    for turn, path in zip(sample, paths, strict=True):  # the drawn frames are what they say
        if path is not None:
            look = look_at(path.read_bytes())
            assert look is not None and look.empty == (turn.frame != "photo"), turn


def test_a_source_left_out_of_the_fit_is_decided_better_than_always_vision() -> None:
    """People testing the assistant ("try again", "just guess"), decided by heads fitted on
    every other source: the photo questions are found and the rest is not sent to vision."""
    from scripts.fit_turn_classifier import combine_rows, fit_heads, load_table, score_rows

    table = load_table(cache_dir=CACHE)
    held_out = np.flatnonzero(table.sources == "testing")
    heads = fit_heads(table, np.flatnonzero(table.sources != "testing"))
    shipped = TurnClassifier.load()
    classifier = TurnClassifier(heads, shipped.text_dim, shipped.thresholds, shipped.model_id)
    decisions = combine_rows(classifier, table, held_out, score_rows(heads, table, held_out))
    turns = [table.turns[i] for i in held_out]
    exact = np.mean([set(decisions[i].capabilities) == set(t.labels)
                     for i, t in zip(held_out, turns, strict=True)])  # fmt: skip
    always_vision = np.mean([t.labels == (("vision",) if t.has_image else ()) for t in turns])
    assert exact > always_vision + 0.2
    needs = [i for i, t in zip(held_out, turns, strict=True) if "vision" in t.labels]
    assert np.mean(["vision" in decisions[i].capabilities for i in needs]) >= 0.85


def test_a_text_readers_web_search_threshold_is_chosen_on_the_plain_text_it_reads() -> None:
    """Glasses turns that need search score 0.45; plain exam prompts that need nothing score
    0.65. The glasses threshold must be low enough for the first; a text reader, which only
    ever reads the second kind, must not flag them."""
    from scripts.fit_turn_classifier import Table, choose_thresholds

    def turn(n: int, plain: bool) -> LabelledTurn:
        kind = "exam" if plain else "glasses"
        return LabelledTurn(f"{kind}-{n}", 0, f"{kind} question {n}", () if plain else
                            ("web_search",), False, False, not plain, source=kind,
                            client_time=not plain, client_location=not plain)  # fmt: skip

    turns = [turn(n, plain) for plain in (False, True) for n in range(20)]
    empty = np.zeros((len(turns), 1), dtype=np.float32)
    table = Table(turns, empty, "m", empty, empty, np.full(len(turns), -1),
                  np.zeros((len(turns), 2), dtype=bool))  # fmt: skip
    scores = {i: {"vision": 0.0, "web_search": 0.65 if t.source == "exam" else 0.45,
                  "asks_time": 0.0, "asks_place": 0.0} for i, t in enumerate(turns)}  # fmt: skip
    tests = [np.arange(20), np.arange(20, 40)]
    glasses = choose_thresholds(table, scores, tests)
    text = choose_thresholds(table, scores, tests, plain_text=True)
    assert glasses.web_search <= 0.4
    assert text.web_search >= 0.7
    assert text.vision == glasses.vision and text.followup == glasses.followup
