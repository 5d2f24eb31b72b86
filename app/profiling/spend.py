"""What a bootstrap may spend: output limits, cost estimates, and a budget that reserves first.

Every call is sent with a ``max_tokens`` fitting its grader (a letter needs little room, a
worked maths answer or a function more), so output is bounded. Before a paid call the budget
reserves the call's worst case: the prompt counted as one token per UTF-8 byte (no tokenizer
yields more) plus a chat-template allowance, and the full ``max_tokens`` of output. After the
call the reservation is replaced by the real cost (the provider's usage x the catalog price),
so with any concurrency the spend never passes the budget. Free models reserve nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from app.catalog import ModelEntry
from app.embedding.encoder import count_tokens

MAX_TOKENS: Final = {
    "mcq_accuracy": 256,
    "exact_match": 256,
    "superglue_exact_match": 256,
    "superglue_clozetest": 256,
    "chess_accuracy": 256,
    "numeric": 512,
    "math_metric": 640,
    "python_tests": 640,
    "meteor_score": 256,
    "chrf": 256,
    "rubric": 640,
}
"""Output limit sent with each call, by metric: room for a few sentences and the answer (the
prompts ask for brief explanations), more for worked maths and code. A model that rambles is
cut here; its answer is graded on what it wrote by then."""
DEFAULT_MAX_TOKENS: Final = 256

EXPECTED_OUTPUT: Final = {
    "mcq_accuracy": 100,
    "exact_match": 80,
    "superglue_exact_match": 100,
    "superglue_clozetest": 40,
    "chess_accuracy": 100,
    "numeric": 250,
    "math_metric": 350,
    "python_tests": 250,
    "meteor_score": 100,
    "chrf": 80,
    "rubric": 350,
}
"""Typical reply length by metric, for the estimate shown before spending."""
DEFAULT_EXPECTED_OUTPUT: Final = 150

JUDGE_MAX_TOKENS: Final = 300
JUDGE_EXPECTED_OUTPUT: Final = 80
JUDGE_PROMPT_TOKENS: Final = 1200
"""A judge prompt's typical size for the estimate: the rubric, the request and the reply."""
TEMPLATE_TOKENS: Final = 64
"""Allowance for the chat template and role markers around a prompt."""


def max_tokens(metric: str) -> int:
    return MAX_TOKENS.get(metric, DEFAULT_MAX_TOKENS)


def expected_output(metric: str) -> int:
    return EXPECTED_OUTPUT.get(metric, DEFAULT_EXPECTED_OUTPUT)


def estimate_usd(entry: ModelEntry, prompt: str, output_tokens: int) -> float:
    """The likely cost of one call: estimated prompt tokens x price + ``output_tokens``."""
    return entry.cost_usd(count_tokens(prompt) + TEMPLATE_TOKENS // 4, output_tokens)


def worst_case_usd(entry: ModelEntry, prompt: str, output_limit: int) -> float:
    """The most one call can cost: a token per prompt byte, plus the whole output limit."""
    return entry.cost_usd(len(prompt.encode("utf-8")) + TEMPLATE_TOKENS, output_limit)


def is_free(entry: ModelEntry) -> bool:
    return entry.price.input_per_mtok == 0 and entry.price.output_per_mtok == 0


@dataclass
class Budget:
    """Paid spend of one run: what was spent, and what calls in flight may still spend."""

    limit_usd: float
    spent_usd: float = 0.0
    reserved_usd: float = 0.0
    holds: int = 0
    """Paid calls in flight (a count: float sums of reservations need not return to 0.0)."""
    exhausted: bool = False
    """Set once a call could not fit even with nothing in flight: no paid call starts after."""

    def fits(self, usd: float) -> bool:
        return usd <= 0 or self.spent_usd + self.reserved_usd + usd <= self.limit_usd + 1e-12

    def reserve(self, usd: float) -> bool:
        """Hold ``usd`` for a call about to start, if it fits (see ``Runner`` for waiting)."""
        if usd <= 0:
            return True
        if self.exhausted or not self.fits(usd):
            return False
        self.reserved_usd += usd
        self.holds += 1
        return True

    def settle(self, reserved: float, actual: float) -> None:
        """The call that held ``reserved`` cost ``actual`` (0 if it failed before any usage)."""
        if reserved > 0:
            self.holds -= 1
            self.reserved_usd = max(0.0, self.reserved_usd - reserved) if self.holds else 0.0
        self.spent_usd += actual
