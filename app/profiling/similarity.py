"""Similarity of a free-text answer to a reference: a METEOR-like score and chrF.

``meteor`` follows Banerjee & Lavie (2005): unigrams are aligned (exact match, then a light
suffix-stripping stem; no synonym tables, so nothing is downloaded), precision and recall
combine into a recall-weighted harmonic mean (alpha 0.9), and a fragmentation penalty
0.5 * (chunks / matches)^3 lowers scores whose matches are scattered. ``chrf`` is Popovic's
character n-gram F-score (n = 1..6, beta = 2), robust to inflection, for translations.
Both return a score in [0, 1]; equal texts score 1 (up to the penalty of a single chunk).
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from typing import Final

_WORD: Final = re.compile(r"\w+", re.UNICODE)
_SUFFIXES: Final = ("ingly", "edly", "ing", "ies", "ied", "es", "ed", "ly", "s")
ALPHA: Final = 0.9
GAMMA: Final = 0.5
BETA: Final = 3.0


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _stem(word: str) -> str:
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def _align(hyp: list[str], ref: list[str]) -> list[tuple[int, int]]:
    """Greedy one-to-one alignment, exact forms first, then stems; prefers extending a chunk."""
    pairs: dict[int, int] = {}
    used: set[int] = set()
    for form in (lambda w: w, _stem):
        ref_forms = [form(w) for w in ref]
        for i, word in enumerate(hyp):
            if i in pairs:
                continue
            target = form(word)
            free = [j for j, w in enumerate(ref_forms) if w == target and j not in used]
            if not free:
                continue
            after = pairs.get(i - 1)
            j = after + 1 if after is not None and after + 1 in free else free[0]
            pairs[i] = j
            used.add(j)
    return sorted(pairs.items())


def meteor(hypothesis: str, reference: str) -> float:
    """METEOR-like similarity of ``hypothesis`` to ``reference`` in [0, 1]."""
    hyp, ref = words(hypothesis), words(reference)
    if not hyp or not ref:
        return 0.0
    alignment = _align(hyp, ref)
    matches = len(alignment)
    if matches == 0:
        return 0.0
    precision, recall = matches / len(hyp), matches / len(ref)
    fmean = precision * recall / (ALPHA * precision + (1 - ALPHA) * recall)
    chunks = 1 + sum(
        1
        for (i0, j0), (i1, j1) in itertools.pairwise(alignment)
        if not (i1 == i0 + 1 and j1 == j0 + 1)
    )
    penalty = GAMMA * (chunks / matches) ** BETA if matches > 1 else 0.0
    return fmean * (1 - penalty)


def _ngrams(text: str, n: int) -> Counter[str]:
    squeezed = " ".join(text.split())
    return Counter(squeezed[i : i + n] for i in range(len(squeezed) - n + 1))


def chrf(hypothesis: str, reference: str, max_n: int = 6, beta: float = 2.0) -> float:
    """chrF: the character n-gram F-beta score averaged over n = 1..``max_n``, in [0, 1]."""
    precisions, recalls = [], []
    for n in range(1, max_n + 1):
        hyp, ref = _ngrams(hypothesis, n), _ngrams(reference, n)
        if not hyp or not ref:
            continue
        common = sum((hyp & ref).values())
        precisions.append(common / sum(hyp.values()))
        recalls.append(common / sum(ref.values()))
    if not precisions:
        return 0.0
    p, r = sum(precisions) / len(precisions), sum(recalls) / len(recalls)
    if p == 0 and r == 0:
        return 0.0
    return (1 + beta**2) * p * r / (beta**2 * p + r)
