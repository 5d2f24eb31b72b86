"""The suites a user profiles on: the bundled default, and the shared files read in place."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from app.errors import ConfigError
from app.profiling.graders import grade
from app.profiling.store import Answer, AnswerStore
from app.profiling.suite import KINDS, load_suite, stratified_sample
from tests.profiling.fake_provider import gold_reply
from tests.profiling.runs import CALIBRATION


def test_the_default_suite_covers_every_kind_and_grades_its_own_gold() -> None:
    suite = load_suite("default")
    kinds = Counter(item.kind for item in suite.items)
    assert set(kinds) == set(KINDS) and 250 <= len(suite.items) <= 400
    assert min(kinds.values()) >= 25
    for item in suite.items:
        assert item.prompt and item.source.startswith("switchboard/")
        if item.metric != "rubric":
            assert grade(item, gold_reply(item)).score == pytest.approx(1.0), item.id


def test_default_prompts_say_how_to_answer() -> None:
    for item in load_suite("default").items:
        if item.metric in ("mcq_accuracy", "exact_match", "numeric", "math_metric"):
            assert "\\boxed{}" in item.prompt, item.id
        if item.metric == "python_tests":
            assert "```python" in item.prompt, item.id


def test_a_stratified_sample_spreads_over_kinds_and_sources_and_grows_by_extension() -> None:
    items = load_suite(CALIBRATION / "routerarena.jsonl").items
    small, large = stratified_sample(items, 16), stratified_sample(items, 60)
    assert len(small) == 16 and len(large) == 60
    assert {i.kind for i in small} == {i.kind for i in items}
    assert len({i.source for i in large}) >= 40
    assert {i.id for i in small} <= {i.id for i in large}, "a bigger run reuses the smaller one"
    assert stratified_sample(items, 16) == small, "deterministic"
    assert stratified_sample(items, None) == items


def test_shared_files_load_in_place_with_kinds_inferred() -> None:
    gsm8k = load_suite(CALIBRATION / "gsm8k_train_sample.jsonl")
    assert len(gsm8k.items) == 300 and {i.kind for i in gsm8k.items} == {"maths"}
    arena = Counter(i.kind for i in load_suite(CALIBRATION / "routerarena.jsonl").items)
    assert arena["translation"] >= 20 and arena["reading"] >= 50 and arena["knowledge"] >= 300


def test_the_version_follows_the_content(tmp_path: Path) -> None:
    rows = [{"id": "a", "prompt": "1+1?", "metric": "numeric", "answer": "2"},
            {"id": "b", "prompt": "2+2?", "metric": "numeric", "answer": "4"}]  # fmt: skip
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    first, second = tmp_path / "one" / "suite.jsonl", tmp_path / "two" / "suite.jsonl"
    first.write_text("".join(json.dumps(r) + "\n" for r in rows))
    second.write_text("".join(json.dumps(r) + "\n" for r in reversed(rows)))
    assert load_suite(first).version == load_suite(second).version, "order does not matter"
    rows[1]["answer"] = "5"
    second.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert load_suite(first).version != load_suite(second).version


def test_a_bad_suite_line_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": "a", "prompt": "x", "metric": "numeric"}\n{"id": "b"}\n')
    with pytest.raises(ConfigError, match=r"bad.jsonl:2"):
        load_suite(path)


def test_the_store_drops_a_line_cut_off_by_a_kill(tmp_path: Path) -> None:
    with AnswerStore(tmp_path) as store:
        store.add(Answer("m", "a", "v1", "reply", 1.0, "", 0.001, 12.0))
    with (tmp_path / "answers.jsonl").open("a") as fh:
        fh.write('{"model": "m", "item": "b", "su')  # the process died mid-write
    with AnswerStore(tmp_path) as store:
        assert store.answer("m", "a", "v1") is not None and store.answer("m", "b", "v1") is None
        store.add(Answer("m", "b", "v1", "reply", 0.0, "", 0.001, 12.0))
    with AnswerStore(tmp_path) as store:
        assert len(store.answers) == 2
    with AnswerStore(tmp_path), pytest.raises(ConfigError, match="another bootstrap"):
        AnswerStore(tmp_path).__enter__()
