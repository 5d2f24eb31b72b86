"""The graders on real answers: two hosted models' replies scored by RouterArena's own metric.

Agreement is measured per metric. Every answer where our grade differs from RouterArena's was
read by hand; each is listed below with why RouterArena's score is wrong (its extraction takes
the first ``\\boxed{}`` content verbatim, so ``\\boxed{C. text}``, ``\\boxed{{353,582}}`` or
``\\boxed{{95 minutes}}`` fail, Wikipedia-style golds like ``Beloved_(novel)`` never match, and
cloze letters are compared with option text). The test asserts our grader gives the right score
on each of those, and at least 95% agreement on everything else, per metric; the raw figures are
printed by ``bench/grader_agreement.py``.
"""

from __future__ import annotations

import json
from collections import defaultdict

import pytest

from app.profiling import extract
from app.profiling.graders import grade, options_in
from app.profiling.suite import SuiteItem, item_from_row, load_suite
from tests.profiling.runs import CALIBRATION

CHECKABLE = ("mcq_accuracy", "exact_match", "math_metric", "chess_accuracy",
             "superglue_exact_match", "superglue_clozetest")  # fmt: skip

REFERENCE_ERRORS: dict[tuple[str, str], tuple[float, str]] = {
    ("MMLUPro_business_784", "gemini"): (1.0, "'The correct answer is **H**.' and H is gold"),
    ("MMLU_formal_logic_116", "claude"): (1.0, "\\boxed{C. ~(M v S)} chooses C, the gold"),
    ("OpenTDB_Entertainment: Board Games_3779", "claude"): (1.0, "\\boxed{B. Tarrasque}, gold B"),
    ("QANTA_History_776", "gemini"): (1.0, "Bahamas vs gold The_Bahamas"),
    ("QANTA_Literature_1464", "gemini"): (1.0, "Mary McCarthy vs Mary_McCarthy_(author)"),
    ("QANTA_Literature_833", "claude"): (1.0, "Beloved vs Beloved_(novel)"),
    ("QANTA_Philosophy_1270", "claude"): (1.0, "David Lewis vs David_Lewis_(philosopher)"),
    ("QANTA_Science_1236", "claude"): (1.0, "Martingale vs Martingale_(probability_theory)"),
    ("QANTA_Science_1236", "gemini"): (1.0, "Martingale vs Martingale_(probability_theory)"),
    ("AsDiv_1165", "gemini"): (1.0, "\\boxed{{\\text{Yardley}}}, gold Yardley"),
    ("FinQA_172", "claude"): (1.0, "\\boxed{{20 percentage points}}, gold 20"),
    ("FinQA_56", "claude"): (1.0, "\\boxed{{353,582}}, gold 353582"),
    ("FinQA_60", "claude"): (1.0, "\\boxed{{62\\%}}, gold 62%"),
    ("FinQA_60", "gemini"): (1.0, "\\boxed{{62}} for 'what percentage', gold 62%"),
    ("GSM8K_174", "claude"): (1.0, "last box \\boxed{{95 minutes}}, gold 95"),
    ("GSM8K_43", "claude"): (1.0, "\\boxed{{48 g}}, gold 48"),
    ("SuperGLUE-QA_4102", "claude"): (0.0, "opens with '1' (wrong) and boxes both A and B"),
    ("SuperGLUE-ClozeTest_15955", "claude"): (1.0, "\\boxed{E}, option E is HDL, the gold"),
    ("SuperGLUE-ClozeTest_17965", "claude"): (1.0, "\\boxed{G}, option G is ADHD, the gold"),
    ("SuperGLUE-ClozeTest_18477", "claude"): (1.0, "\\boxed{G} = Shelby Payne, a gold entity"),
    ("SuperGLUE-ClozeTest_18477", "gemini"): (1.0, "Shelby Payne is one of the gold entities"),
    ("SuperGLUE-ClozeTest_18766", "claude"): (1.0, "\\boxed{E}, option E is LEDs, the gold"),
}
"""(RouterArena item, reference model) -> (the right score, why RouterArena's differs)."""


def _graded() -> list[tuple[SuiteItem, str, str, float, float | None]]:
    rows = []
    for line in (CALIBRATION / "routerarena.jsonl").read_text(encoding="utf-8").splitlines():
        raw = json.loads(line)
        item = item_from_row(raw, "routerarena")
        for model, ref in raw["reference"].items():
            rows.append((item, model, ref["answer"], float(ref["score"]),
                         grade(item, ref["answer"]).score))  # fmt: skip
    return rows


GRADED = _graded()


def _key(item: SuiteItem, model: str) -> tuple[str, str]:
    return item.id.removeprefix("routerarena/"), model.split("-", 1)[0]


@pytest.mark.parametrize("metric", CHECKABLE)
def test_agreement_with_routerarena_on_real_answers(metric: str) -> None:
    rows = [r for r in GRADED if r[0].metric == metric]
    reviewed = [r for r in rows if _key(r[0], r[1]) in REFERENCE_ERRORS]
    kept = [r for r in rows if _key(r[0], r[1]) not in REFERENCE_ERRORS]
    agree = sum(ours == ref for _, _, _, ref, ours in kept)
    assert agree / len(kept) >= 0.95, f"{metric}: {agree}/{len(kept)}"
    for item, model, reply, _, ours in reviewed:
        right, why = REFERENCE_ERRORS[_key(item, model)]
        assert ours == right, f"{item.id} [{model}]: {why}; reply {reply[:200]!r}"


def test_every_reviewed_disagreement_is_a_real_disagreement() -> None:
    found = {_key(i, m) for i, m, _, ref, ours in GRADED if ours != ref and i.metric in CHECKABLE}
    assert found == set(REFERENCE_ERRORS), "the list above is the complete set of disagreements"


def test_pooled_raw_agreement_on_checkable_metrics() -> None:
    rows = [r for r in GRADED if r[0].metric in CHECKABLE]
    agree = sum(ours == ref for *_, ref, ours in rows)
    assert agree / len(rows) >= 0.97, "raw agreement, reference errors included"


def test_similarity_scores_follow_routerarena_meteor() -> None:
    pairs = [(ref, ours) for item, _, _, ref, ours in GRADED if item.metric == "meteor_score"]
    assert all(ours is not None and 0 <= ours <= 1 for _, ours in pairs)
    by_ref: dict[bool, list[float]] = defaultdict(list)
    for ref, ours in pairs:
        by_ref[ref >= 0.5].append(float(ours or 0))
    high, low = by_ref[True], by_ref[False]
    assert sum(high) / len(high) > sum(low) / len(low) + 0.3, "good answers score much higher"
    mean_gap = sum(abs(ref - float(ours or 0)) for ref, ours in pairs) / len(pairs)
    assert mean_gap < 0.15


def test_humaneval_canonical_solutions_pass_and_wrong_ones_fail() -> None:
    suite = load_suite(CALIBRATION / "humaneval.jsonl")
    assert len(suite.items) == 164 and all(i.kind == "code" for i in suite.items)
    first = suite.items[0]
    assert first.stub is not None and "```python" in first.prompt and first.stub in first.prompt
    passed = [grade(i, f"```python\n{i.solution}\n```").score for i in suite.items]
    assert passed == [1.0] * 164
    # a body alone (completion style) is completed with the stub
    assert grade(first, f"```python\n{first.solution[len(first.stub) :]}\n```").score == 1.0  # type: ignore[index, arg-type]
    wrong = f"```python\ndef {first.entry_point}(numbers, threshold):\n    return False\n```"
    assert grade(first, wrong).score == 0.0


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("\\boxed{{42}}", "42"),
        ("so $\\boxed{\\frac{1}{2}}$.", "\\frac{1}{2}"),
        ("first \\boxed{3}, finally \\boxed{4}", "4"),
        ("\\boxed{\\text{men's team}}", "\\text{men's team}"),
    ],
)
def test_final_boxed_answer(reply: str, expected: str) -> None:
    assert extract.final_boxed(reply) == expected


@pytest.mark.parametrize(
    ("text", "value"),
    [("1,234.5", 1234.5), ("$12", 12.0), ("45%", 45.0), ("-3/4", -0.75),
     ("\\frac{3}{4}", 0.75), ("2.5 kg", 2.5), ("twelve", None), ("1,23", None)],
)  # fmt: skip
def test_numbers_are_read_as_people_write_them(text: str, value: float | None) -> None:
    assert extract.parse_number(text) == value


def _item(metric: str, answer: str, prompt: str = "Q", **extra: str) -> SuiteItem:
    return item_from_row({"id": "t", "prompt": prompt, "metric": metric, "answer": answer,
                          **extra}, "test")  # fmt: skip


def test_letters_are_found_in_the_shapes_models_write_them() -> None:
    prompt = "Which?\n\nOptions:\nA. Red\nB. Blue\nC. Green\n"
    item = _item("mcq_accuracy", "B", prompt)
    assert options_in(prompt) == {"A": "Red", "B": "Blue", "C": "Green"}
    for reply in ("\\boxed{B}", "\\boxed{(B)}", "\\boxed{B. Blue}", "\\boxed{Blue}",
                  "The answer is (B).", "B", "Answer: B", "B) Blue"):  # fmt: skip
        assert grade(item, reply).score == 1.0, reply
    for reply in ("\\boxed{A}", "I think it is green, so C.", "no idea", "\\boxed{Blue-ish}"):
        assert grade(item, reply).score == 0.0, reply


def test_numeric_and_maths_graders() -> None:
    assert grade(_item("numeric", "600000"), "... #### 600,000").score == 1.0
    assert grade(_item("numeric", "24"), "Marion scores 24 points.").score == 1.0
    assert grade(_item("numeric", "24"), "\\boxed{23}").score == 0.0
    assert grade(_item("numeric", "3.14", tolerance=0.01), "\\boxed{3.1416}").score == 1.0  # type: ignore[arg-type]
    assert grade(_item("math_metric", "\\frac{11}{12}"), "\\boxed{11/12}").score == 1.0
    assert (
        grade(_item("math_metric", "-\\frac{\\pi}{6}"), "$\\boxed{-\\dfrac{\\pi}{6}}$").score == 1.0
    )
    assert grade(_item("math_metric", "5"), "x = \\boxed{x=5}").score == 1.0
    assert grade(_item("math_metric", "5"), "\\boxed{6}").score == 0.0


def test_exact_match_normalises_but_does_not_guess() -> None:
    item = _item("exact_match", "Jane Austen", aliases=["Austen"])  # type: ignore[arg-type]
    assert grade(item, "\\boxed{jane austen.}").score == 1.0
    assert grade(item, "It was written by \\boxed{Austen}").score == 1.0
    assert grade(item, "\\boxed{Charlotte Bronte}").score == 0.0


def test_chess_moves_and_labels() -> None:
    move = _item("chess_accuracy", "e2e4")
    assert grade(move, "I play \\boxed{e2-e4}").score == 1.0
    assert grade(move, "best is e7e5").score == 0.0
    assert grade(_item("superglue_exact_match", "1.0"), "\\boxed{1}").score == 1.0
    assert grade(_item("superglue_exact_match", "No"), "No\n\\boxed{B}").score == 1.0
    assert grade(_item("superglue_exact_match", "Yes"), "\\boxed{No}").score == 0.0


def test_open_ended_and_unknown_metrics_are_skipped_with_a_reason() -> None:
    judged = grade(_item("rubric", ""), "Sure!")
    assert judged.skipped and "judge" in judged.reason
    unknown = grade(_item("bleu", "x"), "x")
    assert unknown.skipped and "bleu" in unknown.reason
