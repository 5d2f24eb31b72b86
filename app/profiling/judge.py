"""Grading open-ended replies with a judge model and a fixed rubric.

Everyday requests (rewrite, summarise, explain, plan) have no single right answer. With
``--judge MODEL_ID`` the bootstrap sends each such reply, with the request, the item's own
criteria and the rubric below, to the judge model through the same gateway as every other call;
the judge ends with ``Score: N`` (1..10), mapped to (N - 1) / 9. A judge reply without a
readable score skips the item (counted), never guesses. The rubric is also in
``docs/judge_rubric.md``.
"""

from __future__ import annotations

import re
from typing import Final

from app.profiling.graders import Grade
from app.profiling.suite import SuiteItem

RUBRIC: Final = """\
You are grading an AI assistant's reply to a user's request. Judge only the reply, against the
request and the criteria below; ignore its length unless the request asks for a length.

Score from 1 to 10:
- 10: does exactly what was asked: every requirement met, correct, clear, nothing padded.
- 7-9: does what was asked, with small flaws (a minor omission, slightly wordy, a small slip).
- 4-6: partly does it: a requirement missed, a notable error, or much padding or repetition.
- 2-3: mostly fails: wrong, off-topic, or ignores the format or constraints the user gave.
- 1: no real answer: empty, a refusal without reason, gibberish, or harmful.

A confident factual error costs more than an omission. A reply that only restates the request,
or continues it as if it were the user, scores 1.

Criteria for this request: {criteria}

The user's request:
<request>
{request}
</request>

The assistant's reply:
<reply>
{reply}
</reply>

Give one or two sentences of justification, then end with a line of the form "Score: N"."""

DEFAULT_CRITERIA: Final = "does what the user asked, correctly and helpfully"
_SCORE: Final = re.compile(r"score\s*[:=]\s*\**\s*(\d{1,2})(?:\s*/\s*10)?", re.IGNORECASE)


def judge_prompt(item: SuiteItem, reply: str) -> str:
    """The message sent to the judge for one reply."""
    return RUBRIC.format(
        criteria=item.criteria or DEFAULT_CRITERIA, request=item.prompt, reply=reply.strip()
    )


def parse_verdict(text: str) -> Grade:
    """The judge's ``Score: N`` as a grade in [0, 1] (the last such line counts)."""
    found = [int(n) for n in _SCORE.findall(text) if 1 <= int(n) <= 10]
    if not found:
        return Grade(None, "judge gave no readable score")
    return Grade(round((found[-1] - 1) / 9, 6), f"judge scored {found[-1]}/10")
