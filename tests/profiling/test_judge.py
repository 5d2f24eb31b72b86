"""The judge's rubric and how its verdicts become grades."""

from __future__ import annotations

from app.profiling.judge import RUBRIC, judge_prompt, parse_verdict
from app.profiling.suite import item_from_row
from tests.profiling.runs import REPO


def test_the_documented_rubric_is_the_one_sent() -> None:
    assert RUBRIC in (REPO / "docs" / "judge_rubric.md").read_text(encoding="utf-8")


def test_the_prompt_carries_request_criteria_and_reply() -> None:
    item = item_from_row({"id": "a", "prompt": "Write a haiku about snow.", "metric": "rubric",
                          "criteria": "three lines about snow"}, "t")  # fmt: skip
    prompt = judge_prompt(item, "  White hush on the roofs  ")
    assert "Write a haiku about snow." in prompt and "three lines about snow" in prompt
    assert "<reply>\nWhite hush on the roofs\n</reply>" in prompt


def test_verdicts_map_to_grades_and_unreadable_ones_are_skipped() -> None:
    assert parse_verdict("Clear and correct.\nScore: 10").score == 1.0
    assert parse_verdict("Score: 1").score == 0.0
    assert parse_verdict("Weak.\n**Score:** 4/10").score == round(3 / 9, 6)
    assert parse_verdict("I first thought Score: 9, but on reflection Score: 7").score == round(
        6 / 9, 6
    )
    assert parse_verdict("It is fine.").skipped
    assert parse_verdict("Score: 42").skipped
