"""Deterministic graders, one per metric: a reply and its item in, a ``Grade`` out.

Metrics (the names the shared calibration files use, plus ``chrf`` and ``rubric``):

- ``mcq_accuracy``: the chosen letter (``\\boxed{C}``, ``\\boxed{C. text}``, the option's text,
  "The answer is (C)") equals the gold letter (or the gold 0-based index).
- ``exact_match``: the final answer equals the gold or an alias after normalisation (case,
  punctuation, articles, underscores, a Wikipedia-style "(disambiguation)" suffix).
- ``numeric``: the final number (boxed, stated, "#### n" or the last one) is within tolerance.
- ``math_metric``: the boxed (else stated, else last) answer equals the gold as a normalised
  LaTeX string, or as a number (fractions, percentages, thousands separators read).
- ``chess_accuracy``: a move in coordinate notation (``e2e4``, promotions ``e7e8q``), or, for
  the who-is-better questions, the option letter of the gold index.
- ``superglue_exact_match``: 0/1, Yes/No and True/False labels (and the options' letters A/B).
- ``superglue_clozetest``: the chosen option's text (or its letter) is one of the gold entities.
- ``meteor_score``: METEOR-like similarity of the final answer to the reference text.
- ``chrf``: chrF of the reply to a reference translation.
- ``python_tests``: the reply's code passes the item's unit tests in ``app.profiling.sandbox``.
- ``rubric``: needs a judge model (``app.profiling.judge``); skipped here.

A metric without a grader is skipped with its reason, never guessed.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from app.profiling import extract, similarity
from app.profiling.sandbox import run_tests
from app.profiling.suite import SuiteItem

LETTERS: Final = string.ascii_uppercase
_OPTION_LINE: Final = re.compile(r"(?:^|Options\s*:\s*)[ \t]*\(?([A-Z])[.)][ \t]*(.+?)[ \t]*$",
                                 re.MULTILINE)  # fmt: skip
_LETTER_ANSWER: Final = re.compile(r"\(?([A-Za-z])\)?(?:\s*[.):\]]\s*(.*))?", re.DOTALL)
_CHOSEN: Final = re.compile(
    r"(?:answer|option|choice)\s*(?:is|:)?\s*(?:option\s*)?\(?\**([A-Z])\**\)?(?![\w'])",
    re.IGNORECASE,
)
_MOVE: Final = re.compile(r"\b([a-h][1-8])\s*[-x]?\s*([a-h][1-8])([qrbn]?)\b", re.IGNORECASE)
_GSM_FINAL: Final = re.compile(r"####\s*([^\n]+)")


@dataclass(frozen=True)
class Grade:
    """A score in [0, 1], or ``score=None`` when the item was skipped (``reason`` says why)."""

    score: float | None
    reason: str = ""

    @property
    def skipped(self) -> bool:
        return self.score is None


def _yes(ok: bool, reason: str = "") -> Grade:
    return Grade(1.0 if ok else 0.0, reason)


def normalise(text: str) -> str:
    """Lower case, no punctuation, articles or extra spaces; underscores are spaces."""
    text = extract.strip_latex(text).replace("_", " ").lower()
    text = "".join(ch for ch in text if ch not in string.punctuation)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def options_in(prompt: str) -> dict[str, str]:
    """The lettered options a prompt lists (``A. text`` lines), A first and in sequence."""
    options: dict[str, str] = {}
    for letter, text in _OPTION_LINE.findall(prompt):
        if letter == LETTERS[len(options)]:
            options[letter] = text.strip()
        elif letter == "A":
            options = {"A": text.strip()}
    return options


def _letter_of(text: str, options: dict[str, str]) -> str | None:
    """The option letter that ``text`` (a boxed or stated answer) names, or None."""
    text = extract.strip_latex(text).strip().strip("*").strip()
    valid = options or dict.fromkeys(LETTERS[:10], "")
    match = _LETTER_ANSWER.fullmatch(text)
    if match and match[1].upper() in valid:
        return match[1].upper()
    wanted = normalise(text)
    for letter, option in options.items():
        if wanted and wanted == normalise(option):
            return letter
    return None


def chosen_letter(reply: str, options: dict[str, str]) -> str | None:
    """The option a reply chose: boxed, else stated, else a reply or line that is a letter."""
    boxed = extract.final_boxed(reply)
    if boxed is not None:
        return _letter_of(boxed, options)
    stated: list[str] = _CHOSEN.findall(reply)
    for candidate in reversed(stated):
        if candidate.upper() in (options or LETTERS[:10]):
            return candidate.upper()
    for line in reply.strip().splitlines()[:1] + reply.strip().splitlines()[-1:]:
        letter = _letter_of(line, options) if len(line) < 200 else None
        if letter is not None:
            return letter
    return None


def gold_letter(answer: str) -> str | None:
    """A gold answer as a letter: ``"C"``, ``"c"``, or a 0-based index (``"2"``, ``"2.0"``)."""
    answer = answer.strip()
    if len(answer) == 1 and answer.isalpha():
        return answer.upper()
    try:
        index = int(float(answer))
    except ValueError:
        return None
    return LETTERS[index] if 0 <= index < len(LETTERS) else None


def mcq(item: SuiteItem, reply: str) -> Grade:
    gold = gold_letter(item.answer or "")
    if gold is None:
        return Grade(None, f"gold answer {item.answer!r} is not a letter or index")
    got = chosen_letter(reply, options_in(item.prompt))
    return _yes(got == gold, f"chose {got}" if got else "no letter found")


def _disambiguated(gold: str) -> str:
    return re.sub(r"\s*\([^)]*\)\s*$", "", gold.replace("_", " "))


def exact(item: SuiteItem, reply: str) -> Grade:
    golds = [g for g in (item.answer, *item.aliases) if g]
    if not golds:
        return Grade(None, "no gold answer")
    got = normalise(extract.final_answer(reply))
    accepted = {normalise(g) for g in golds} | {normalise(_disambiguated(g)) for g in golds}
    return _yes(got in accepted, f"answered {got[:60]!r}")


def _final_number(reply: str) -> float | None:
    for candidate in (extract.final_boxed(reply), *_GSM_FINAL.findall(reply)[-1:],
                      extract.stated_answer(reply)):  # fmt: skip
        if candidate:
            value = extract.parse_number(candidate)
            if value is None:
                value = extract.last_number(extract.strip_latex(candidate))
            if value is not None:
                return value
    return extract.last_number(reply)


def close(value: float, gold: float, tolerance: float | None = None) -> bool:
    if tolerance is not None:
        return abs(value - gold) <= tolerance
    return abs(value - gold) <= max(1e-9, 1e-6 * abs(gold))


def numeric(item: SuiteItem, reply: str) -> Grade:
    gold = extract.parse_number(item.answer or "")
    if gold is None:
        return Grade(None, f"gold answer {item.answer!r} is not a number")
    got = _final_number(reply)
    if got is None:
        return Grade(0.0, "no number found")
    return _yes(close(got, gold, item.tolerance), f"answered {got:g}")


def _math_form(text: str) -> str:
    text = extract.strip_latex(text)
    text = re.sub(r"\\[dt]frac", r"\\frac", text)
    text = re.sub(r"\^\{?\\circ\}?|°|\\degree", "", text)
    return re.sub(r"\s+", "", text).rstrip(".").lower()


def math_answer(item: SuiteItem, reply: str) -> Grade:
    gold = item.answer or ""
    boxed = extract.final_boxed(reply)
    got = boxed if boxed is not None else extract.stated_answer(reply)
    if got is None:
        value = extract.last_number(reply)
        got = f"{value:g}" if value is not None else ""
    if "=" in got:
        got = got.rsplit("=", 1)[1]
    if _math_form(got) == _math_form(gold):
        return Grade(1.0, "same expression")
    value, want = extract.parse_number(got), extract.parse_number(gold)
    if value is not None and want is not None:
        return _yes(close(value, want, item.tolerance), f"answered {value:g}")
    return Grade(0.0, f"answered {got[:60]!r}")


def _move(text: str) -> str | None:
    found: list[tuple[str, str, str]] = _MOVE.findall(text)
    if not found:
        return None
    start, end, promotion = found[-1]
    return (start + end + promotion).lower()


def chess(item: SuiteItem, reply: str) -> Grade:
    gold = (item.answer or "").strip().lower()
    if _move(gold) is None:
        return mcq(item, reply)
    boxed = extract.final_boxed(reply)
    got = _move(boxed) if boxed is not None else _move(reply)
    return _yes(got == _move(gold), f"played {got}" if got else "no move found")


_LABELS: Final = {
    "0": "0", "1": "1", "yes": "yes", "no": "no", "true": "1", "false": "0",
    "entailment": "0", "not entailment": "1", "no entailment": "1",
}  # fmt: skip


def _label(text: str) -> str | None:
    """``"1.0"``, ``"1"``, ``"True"`` -> ``"1"``; ``"Yes"`` -> ``"yes"``; None if neither."""
    text = extract.strip_latex(text).strip().strip("`*'\"").lower()
    if re.fullmatch(r"[01](?:\.0+)?", text):
        return text[0]
    label: str | None = _LABELS.get(normalise(text))
    return label


def superglue(item: SuiteItem, reply: str) -> Grade:
    gold = _label(item.answer or "")
    if gold is None:
        return Grade(None, f"gold label {item.answer!r} is not 0/1 or yes/no")
    boxed = extract.final_boxed(reply)
    candidate = boxed if boxed is not None else (extract.stated_answer(reply) or reply)
    candidate = extract.strip_latex(candidate)
    got = _label(candidate)
    if got is None and len(candidate) == 1 and candidate.upper() in "AB":
        first = "yes" if gold in ("yes", "no") else "0"
        second = "no" if gold in ("yes", "no") else "1"
        got = first if candidate.upper() == "A" else second
    if got is None and boxed is None:
        got = next((_label(w) for w in reversed(words_of(reply)) if _label(w)), None)
    return _yes(got == gold, f"answered {got}" if got else "no label found")


def words_of(text: str) -> list[str]:
    return re.findall(r"[\w.]+", text)


def cloze(item: SuiteItem, reply: str) -> Grade:
    golds = {normalise(g) for g in (item.answer or "").split(", ") if g.strip()}
    if not golds:
        return Grade(None, "no gold entity")
    options = options_in(item.prompt)
    got = extract.final_answer(reply)
    letter = _LETTER_ANSWER.fullmatch(got.strip())
    if letter and letter[1].upper() in options and not letter[2]:
        got = options[letter[1].upper()]
    elif letter and letter[1].upper() in options and letter[2]:
        got = letter[2]
    return _yes(normalise(got) in golds, f"answered {got[:60]!r}")


def meteor(item: SuiteItem, reply: str) -> Grade:
    if not item.answer:
        return Grade(None, "no reference text")
    return Grade(round(similarity.meteor(extract.final_answer(reply), item.answer), 6))


def chrf(item: SuiteItem, reply: str) -> Grade:
    if not item.answer:
        return Grade(None, "no reference translation")
    answer = extract.final_boxed(reply) or reply.strip()
    return Grade(round(similarity.chrf(answer, item.answer), 6))


def python_tests(item: SuiteItem, reply: str) -> Grade:
    if not item.test or not item.entry_point:
        return Grade(None, "no unit tests")
    blocks = extract.code_blocks(reply)
    code = max(blocks, key=lambda b: f"def {item.entry_point}" in b) if blocks else reply
    if f"def {item.entry_point}" not in code and item.stub:
        code = item.stub + code
    imports = "\n".join(line for line in (item.stub or "").splitlines()
                        if line.startswith(("import ", "from ")))  # fmt: skip
    outcome = run_tests(f"{imports}\n{code}", item.test, item.entry_point)
    return _yes(outcome.passed, outcome.detail)


def needs_judge(item: SuiteItem, reply: str) -> Grade:
    return Grade(None, "open-ended: needs a judge (--judge MODEL_ID)")


Grader = Callable[[SuiteItem, str], Grade]

GRADERS: Final[dict[str, Grader]] = {
    "mcq_accuracy": mcq,
    "exact_match": exact,
    "numeric": numeric,
    "math_metric": math_answer,
    "chess_accuracy": chess,
    "superglue_exact_match": superglue,
    "superglue_clozetest": cloze,
    "meteor_score": meteor,
    "chrf": chrf,
    "python_tests": python_tests,
    "rubric": needs_judge,
}
JUDGED: Final = frozenset({"rubric"})
"""Metrics graded by a judge model."""


ECHO_MIN_CHARS: Final = 25


def without_echo(prompt: str, reply: str) -> str:
    """``reply`` less the lines that repeat a (long) line of the prompt.

    Base models often echo the prompt before rambling on; an echoed instruction such as
    "put the answer in \\boxed{}" must not be read as the model's answer. Short lines (an option
    like "C. Pancreas" given back as the answer) are kept.
    """
    echoed = {line.strip() for line in prompt.splitlines() if len(line.strip()) >= ECHO_MIN_CHARS}
    if not echoed:
        return reply
    return "\n".join(line for line in reply.splitlines() if line.strip() not in echoed)


def grade(item: SuiteItem, reply: str) -> Grade:
    """Grade ``reply`` to ``item`` with its metric's grader (skipped if there is none)."""
    grader = GRADERS.get(item.metric)
    if grader is None:
        return Grade(None, f"no grader for metric {item.metric!r}")
    if item.metric != "python_tests":  # code repeats the stub's lines on purpose
        reply = without_echo(item.prompt, reply)
    return grader(item, reply)
