"""Fit the turn classifier (``app/selection/turns.py``), write ``app/data/turn_classifier.json``.

    .venv/bin/python scripts/fit_turn_classifier.py [--turns PATH] [--out PATH]

Three logistic-regression heads on the labelled glasses conversations (sklearn, L2,
class-balanced; only their numbers are shipped):

- ``vision`` / ``web_search``: trained on what a turn's own words ask for, i.e. on
  self-contained turns and on the follow-ups that do not inherit that capability (a follow-up
  whose previous turn already needs it says nothing about its own words). ``vision`` only
  learns from turns with a photo: without one the label is forced off.
- ``followup``: turns with a previous turn; features are the turn, the previous embedding and
  their cosine similarity.

The thresholds are chosen by 5-fold cross-validation grouped by conversation: each held-out
conversation is decided turn by turn, follow-ups inheriting the *predicted* capabilities of
the turn before, exactly as in service. Deterministic: fixed folds, lbfgs, rounded weights.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from app.embedding.encoder import Backend, Vectors, load_encoder
from app.offline.crossval import embed_cached
from app.selection.turns import (
    CAPABILITIES,
    DEFAULT_TURNS,
    DEFAULT_WEIGHTS,
    LabelledTurn,
    LinearHead,
    PreviousTurn,
    Thresholds,
    TurnClassifier,
    TurnContext,
    TurnDecision,
    capability_features,
    followup_features,
    load_labelled_turns,
    text_features,
)

TEXT_DIM = 4096  # hashed n-gram buckets; 2048 loses 0.6 point of exact accuracy, 8192 gains none
C_CAPABILITY = 10.0  # inverse L2 strength; 3-30 are within 0.5 point in grouped CV
C_FOLLOWUP = 3.0
FOLDS = 5
SEED = 0
GRID_FOLLOWUP = (0.4, 0.5, 0.6)
GRID_ADDED = (0.5, 0.6, 0.7, 0.8, 0.9)
GRID_TOPIC = tuple(round(0.05 * i, 2) for i in range(1, 13))

Rows = NDArray[np.int64]


@dataclass
class Table:
    """The labelled turns as matrices (row i is turns[i])."""

    turns: list[LabelledTurn]
    embeddings: Vectors
    model_id: str
    x: NDArray[np.float32]  # capability features
    xf: NDArray[np.float32]  # follow-up features (zeros without a previous turn)
    previous: Rows  # row of the previous turn, -1 for a first turn
    labels: NDArray[np.bool_]  # (n, len(CAPABILITIES))

    @property
    def groups(self) -> list[str]:
        return [t.conversation for t in self.turns]


def load_table(
    turns: list[LabelledTurn] | None = None,
    cache_dir: Path | None = None,
    backend: Backend = "auto",
) -> Table:
    turns = turns if turns is not None else load_labelled_turns()
    encoder = load_encoder(backend=backend, cache_dir=cache_dir)
    embeddings = embed_cached(encoder, [t.text for t in turns], cache_dir)
    x = np.vstack(
        [
            capability_features(e, text_features(t.text, TEXT_DIM))
            for e, t in zip(embeddings, turns, strict=True)
        ]
    )
    previous = np.array([i - 1 if t.index else -1 for i, t in enumerate(turns)], dtype=np.int64)
    xf = np.zeros((len(turns), x.shape[1] + embeddings.shape[1] + 1), dtype=np.float32)
    for i, p in enumerate(previous):
        if p >= 0:
            xf[i] = followup_features(x[i], embeddings[p], float(embeddings[i] @ embeddings[p]))
    labels = np.array([[c in t.labels for c in CAPABILITIES] for t in turns], dtype=bool)
    return Table(turns, embeddings, encoder.model_id, x, xf, previous, labels)


def _logistic(x: NDArray[np.float32], y: NDArray[np.bool_], c: float) -> LinearHead:
    model = LogisticRegression(C=c, class_weight="balanced", max_iter=5000)
    model.fit(x, y)
    return LinearHead(model.coef_[0].astype(np.float32), float(model.intercept_[0]))


def fit_heads(table: Table, rows: Rows) -> dict[str, LinearHead]:
    """The three heads fitted on ``rows`` (whole conversations)."""
    followup = np.array([t.followup for t in table.turns])
    image = np.array([t.has_image for t in table.turns])
    prev = np.where(table.previous >= 0, table.previous, 0)
    heads = {}
    for j, capability in enumerate(CAPABILITIES):
        # a follow-up whose previous turn needs the capability says nothing about its own words
        own = ~followup | ~(table.labels[prev, j] & (table.previous >= 0))
        if capability == "vision":
            own &= image
        use = rows[own[rows]]
        heads[capability] = _logistic(table.x[use], table.labels[use, j], C_CAPABILITY)
    later = rows[table.previous[rows] >= 0]
    heads["followup"] = _logistic(table.xf[later], followup[later], C_FOLLOWUP)
    return heads


def decide_rows(classifier: TurnClassifier, table: Table, rows: Rows) -> dict[int, TurnDecision]:
    """Decide ``rows`` (whole conversations, in order) as the service would, turn by turn."""
    decisions: dict[int, TurnDecision] = {}
    history: list[PreviousTurn] = []
    for i in rows.tolist():
        turn = table.turns[i]
        if turn.index == 0:
            history = []
        previous = table.embeddings[i - 1] if history else None
        context = TurnContext(turn.text, turn.has_image, list(history))
        decision = classifier.decide(table.embeddings[i], previous, context)
        decisions[i] = decision
        history.append(PreviousTurn(turn.text, decision.capabilities, None))
    return decisions


def _grid() -> list[Thresholds]:
    return [
        Thresholds(followup=f, added=a) for f, a in itertools.product(GRID_FOLLOWUP, GRID_ADDED)
    ]


def cross_validate(
    table: Table, grid: list[Thresholds], folds: int = FOLDS, seed: int = SEED
) -> dict[Thresholds, dict[int, TurnDecision]]:
    """Out-of-fold decisions of every turn, for each thresholds setting of ``grid``."""
    out: dict[Thresholds, dict[int, TurnDecision]] = {t: {} for t in grid}
    splitter = GroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train, test in splitter.split(table.x, groups=table.groups):
        heads = fit_heads(table, np.asarray(train, dtype=np.int64))
        for thresholds in grid:
            classifier = TurnClassifier(heads, TEXT_DIM, thresholds, table.model_id)
            out[thresholds].update(decide_rows(classifier, table, np.sort(test)))
    return out


def exact_accuracy(table: Table, decisions: dict[int, TurnDecision]) -> float:
    return float(
        np.mean([set(d.capabilities) == set(table.turns[i].labels) for i, d in decisions.items()])
    )


def with_topic_threshold(
    decisions: dict[int, TurnDecision], threshold: float
) -> dict[int, TurnDecision]:
    """The same decisions with ``topic_changed`` recomputed for another similarity threshold."""
    return {
        i: replace(
            d,
            topic_changed="similarity" in d.scores
            and not d.followup
            and d.scores["similarity"] < threshold,
        )
        for i, d in decisions.items()
    }


def choose_thresholds(
    table: Table, by_thresholds: dict[Thresholds, dict[int, TurnDecision]]
) -> Thresholds:
    """Best exact-set accuracy (ties: the lower thresholds), then the best topic threshold."""
    best = max(
        by_thresholds,
        key=lambda t: (round(exact_accuracy(table, by_thresholds[t]), 6), -t.followup, -t.added),
    )
    decisions = by_thresholds[best]
    later = [i for i, t in enumerate(table.turns) if t.index]

    def topic_accuracy(threshold: float) -> float:
        changed = with_topic_threshold(decisions, threshold)
        return float(
            np.mean([changed[i].topic_changed == table.turns[i].topic_changed for i in later])
        )

    topic = max(GRID_TOPIC, key=lambda s: (round(topic_accuracy(s), 6), -s))
    return replace(best, topic_similarity=topic)


def fit(table: Table) -> tuple[TurnClassifier, dict[int, TurnDecision]]:
    """The shipped classifier (heads on all turns, CV-chosen thresholds) and its CV decisions."""
    by_thresholds = cross_validate(table, _grid())
    thresholds = choose_thresholds(table, by_thresholds)
    plain = replace(thresholds, topic_similarity=Thresholds().topic_similarity)
    decisions = with_topic_threshold(by_thresholds[plain], thresholds.topic_similarity)
    rows = np.arange(len(table.turns), dtype=np.int64)
    return TurnClassifier(fit_heads(table, rows), TEXT_DIM, thresholds, table.model_id), decisions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--turns", type=Path, default=DEFAULT_TURNS)
    parser.add_argument("--out", type=Path, default=DEFAULT_WEIGHTS)
    args = parser.parse_args()
    table = load_table(load_labelled_turns(args.turns))
    classifier, decisions = fit(table)
    data = classifier.to_dict()
    data["trained_on"] = {
        "turns": len(table.turns),
        "conversations": len(set(table.groups)),
        "sha256": hashlib.sha256(args.turns.read_bytes()).hexdigest()[:16],
        "cv_exact_accuracy": round(exact_accuracy(table, decisions), 4),
    }
    args.out.write_text(json.dumps(data, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"wrote {args.out}: thresholds {classifier.thresholds}, {data['trained_on']}")


if __name__ == "__main__":
    main()
