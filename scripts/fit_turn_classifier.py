"""Fit the turn classifier (``app/selection/turns.py``), write ``app/data/turn_classifier.json``.

    .venv/bin/python scripts/fit_turn_classifier.py [--turns PATH] [--out PATH] [--backend B]

Three classifiers are shipped, one per kind of vector the service reads turns with:
``--backend turns`` (the default: all-mpnet-base-v2, glasses turns) writes
``app/data/turn_classifier.json``; ``--backend onnx --out app/data/turn_classifier.minilm.json``
(the router's transformer) and ``--backend static --out app/data/turn_classifier.static.json``
(its static vectors) read plain text on the router's own embeddings.

Five logistic-regression heads on the labelled glasses conversations (sklearn, L2,
class-balanced; only their numbers are shipped). Features: the turn's embedding, its hashed
n-grams and the look at its generated photo (``scripts/make_glasses_images.py``).

- ``vision`` / ``web_search``: what a turn's own words ask for, without the client's context
  (a "what time is it?" answered from the client's clock still *asks* for a fresh fact), on
  self-contained turns and on the follow-ups that do not inherit that capability (a follow-up
  whose previous turn already needs it says nothing about its own words). ``vision`` only learns
  from turns with a photo.
- ``asks_time`` / ``asks_place``: the turn asks for the current time or date / the user's place.
- ``followup``: turns with a previous turn; the turn, the previous embedding and their cosine.

The thresholds minimise the weighted error count of ``ERROR_COSTS`` (a missed vision is the
worst error) over out-of-fold decisions, leaving one *source* out at a time: each held-out
conversation decided turn by turn, follow-ups inheriting the *predicted* capabilities of the turn
before, exactly as in service. A text reader's ``web_search`` threshold (``--backend onnx`` /
``static``) is then chosen again on the turns it reads in service, those with no photo and no
client time or place. Deterministic: fixed folds, lbfgs, rounded weights.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import get_args

import numpy as np
from numpy.typing import NDArray
from sklearn.linear_model import LogisticRegression

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from app.embedding.encoder import Backend, Encoder, Vectors, load_encoder
from app.embedding.turn_model import load_turn_encoder
from app.offline.crossval import embed_cached
from app.selection.photo_look import look_at
from app.selection.turn_text import word_features, words_of
from app.selection.turns import (
    CAPABILITIES,
    DEFAULT_TURNS,
    DEFAULT_WEIGHTS,
    PAIR_HEADS,
    LabelledTurn,
    LinearHead,
    PreviousTurn,
    Thresholds,
    TurnClassifier,
    TurnContext,
    TurnDecision,
    capability_features,
    evidence_vector,
    followup_features,
    load_labelled_turns,
)
from scripts.make_glasses_images import ensure_images

TEXT_DIM = 4096  # hashed n-gram buckets
C_CAPABILITY = 10.0  # inverse L2 strength
C_FOLLOWUP = 3.0
ERROR_COSTS = {"missed vision": 2.0, "missed web_search": 1.5, "needless": 1.0}
"""A blind answer is the worst error, stale facts next, a needless capability (cost and latency,
a still-right answer) the least. Heavier weights on the misses buy a little recall with a lot of
exact accuracy (``bench/capabilities_cv.py`` shows both)."""
GRID = {
    "vision": (0.2, 0.3, 0.4, 0.5),
    "web_search": (0.3, 0.4, 0.5, 0.6),
    "added": (0.4, 0.5, 0.6, 0.7),
    "followup": (0.3, 0.4, 0.5),
    "context": (0.5, 0.7),
}
GRID_TOPIC = tuple(round(0.1 * i, 1) for i in range(1, 10))
GRID_COSINE = tuple(round(0.05 * i, 2) for i in range(1, 13))  # the baseline topic rule
GRID_PLAIN_TEXT_WEB_SEARCH = tuple(round(0.1 * i, 1) for i in range(3, 10))
UNREAD_SHARE = 0.2
"""Share of photo turns fitted as if their photo could not be looked at (an image URL, a format
not looked at): in service those decide without the look, and must not lean towards vision."""

EMBEDDINGS = ("turns", *get_args(Backend))
"""What the heads read: ``turns``, the glasses turns' encoder (``app.embedding.turn_model``,
what the service reads requests with a photo or the client's context on), or one of the
router's backends (MiniLM: ``onnx`` for the transformer, ``static`` for its static vectors)."""
Rows = NDArray[np.int64]
Scores = dict[int, dict[str, float]]


@dataclass
class Table:
    """The labelled turns as matrices (row i is turns[i])."""

    turns: list[LabelledTurn]
    embeddings: Vectors
    model_id: str
    x: NDArray[np.float32]  # capability features
    xf: NDArray[np.float32]  # follow-up features (zeros without a previous turn)
    previous: Rows  # row of the previous turn, -1 for a first turn
    labels: NDArray[np.bool_]  # (n, len(CAPABILITIES)), with the client's context applied

    @property
    def groups(self) -> list[str]:
        return [t.conversation for t in self.turns]

    @property
    def sources(self) -> NDArray[np.str_]:
        return np.array([t.source or "unnamed" for t in self.turns])

    def subset(self, rows: Rows) -> Table:
        """The turns of ``rows`` (whole conversations, in order) as a table of their own."""
        rows = np.sort(rows)
        position = {int(r): i for i, r in enumerate(rows)}
        previous = np.array([position.get(int(p), -1) for p in self.previous[rows]])
        return Table([self.turns[i] for i in rows], self.embeddings[rows], self.model_id,
                     self.x[rows], self.xf[rows], previous, self.labels[rows])  # fmt: skip


def load_table(
    turns: list[LabelledTurn] | None = None,
    cache_dir: Path | None = None,
    backend: str = "turns",
    photos: bool = True,
) -> Table:
    """Embeddings (``EMBEDDINGS``), n-grams and photo looks of ``turns`` (``photos=False``:
    photos left unread)."""
    turns = turns if turns is not None else load_labelled_turns()
    encoder = encoder_for(backend, cache_dir)
    embeddings = embed_cached(encoder, [t.text for t in turns], cache_dir)
    images = ensure_images(turns) if photos else [None] * len(turns)
    looks = [
        look_at(p.read_bytes()) if p is not None and not _unread(t) else None
        for p, t in zip(images, turns, strict=True)
    ]
    x = np.vstack(
        [
            capability_features(
                e,
                word_features(t.text, TEXT_DIM),
                evidence_vector(look, not t.index and len(words_of(t.text)) <= 5),
            )
            for e, t, look in zip(embeddings, turns, looks, strict=True)
        ]
    )
    previous = np.array([i - 1 if t.index else -1 for i, t in enumerate(turns)], dtype=np.int64)
    xf = np.zeros((len(turns), x.shape[1] + embeddings.shape[1] + 1), dtype=np.float32)
    for i, p in enumerate(previous):
        if p >= 0:
            xf[i] = followup_features(x[i], embeddings[p], float(embeddings[i] @ embeddings[p]))
    labels = np.array([[c in t.labels for c in CAPABILITIES] for t in turns], dtype=bool)
    return Table(turns, embeddings, encoder.model_id, x, xf, previous, labels)


def encoder_for(embeddings: str, cache_dir: Path | None = None) -> Encoder:
    """The encoder ``embeddings`` names (``EMBEDDINGS``)."""
    if embeddings == "turns":
        return load_turn_encoder(cache_dir or Path.home() / ".cache" / "switchboard")
    if embeddings not in get_args(Backend):
        raise ValueError(f"embeddings must be one of {EMBEDDINGS}")
    return load_encoder(backend=embeddings, cache_dir=cache_dir)  # type: ignore[arg-type]


def _unread(turn: LabelledTurn) -> bool:
    """The deterministic ``UNREAD_SHARE`` of turns whose photo is left unread."""
    key = f"unread:{turn.conversation}:{turn.index}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") < UNREAD_SHARE * 2**64


def own_targets(table: Table) -> NDArray[np.bool_]:
    """What each turn's words need without the client's context (the capability heads' target).

    The inverse of the context rule in ``TurnClassifier.combine``: a time question answered from
    the client's clock still needs ``web_search`` by its words, a "where am I?" answered from its
    location ``vision`` (with a photo).
    """
    targets = table.labels.copy()
    for i, t in enumerate(table.turns):
        if t.asks == "time" and t.client_time:
            targets[i, CAPABILITIES.index("web_search")] = True
        if t.asks == "place" and t.client_location and t.has_image:
            targets[i, CAPABILITIES.index("vision")] = True
    return targets


def _logistic(x: NDArray[np.float32], y: NDArray[np.bool_], c: float) -> LinearHead:
    if y.all() or not y.any():  # one class only (a tiny fold): a constant head
        return LinearHead(np.zeros(x.shape[1], dtype=np.float32), 10.0 if y.all() else -10.0)
    model = LogisticRegression(C=c, class_weight="balanced", max_iter=5000)
    model.fit(x, y)
    return LinearHead(model.coef_[0].astype(np.float32), float(model.intercept_[0]))


def fit_heads(table: Table, rows: Rows, c: float = C_CAPABILITY) -> dict[str, LinearHead]:
    """The five heads fitted on ``rows`` (whole conversations); ``c`` regularises all but
    ``followup``."""
    followup = np.array([t.followup for t in table.turns])
    image = np.array([t.has_image for t in table.turns])
    targets = own_targets(table)
    prev = np.where(table.previous >= 0, table.previous, 0)
    heads = {}
    for j, capability in enumerate(CAPABILITIES):
        # a follow-up whose previous turn needs the capability says nothing about its own words
        own = ~followup | ~(table.labels[prev, j] & (table.previous >= 0))
        if capability == "vision":
            own &= image
        use = rows[own[rows]]
        heads[capability] = _logistic(table.x[use], targets[use, j], c)
    for name, asked in (("asks_time", "time"), ("asks_place", "place")):
        y = np.array([t.asks == asked for t in table.turns])
        heads[name] = _logistic(table.x[rows], y[rows], c)
    later = rows[table.previous[rows] >= 0]
    heads["followup"] = _logistic(table.xf[later], followup[later], C_FOLLOWUP)
    alone = later[~followup[later]]  # a new subject or an aside: what ``topic`` tells apart
    topic = np.array([t.topic_changed for t in table.turns])
    heads["topic"] = _logistic(table.xf[alone], topic[alone], C_FOLLOWUP)
    return heads


def _context(turn: LabelledTurn, history: list[PreviousTurn]) -> TurnContext:
    return TurnContext(turn.text, turn.has_image, history, None, turn.client_time,
                       turn.client_location)  # fmt: skip


def score_rows(heads: dict[str, LinearHead], table: Table, rows: Rows) -> Scores:
    """Every head's probability for ``rows`` (threshold-free: the true previous turn is used)."""
    x_heads = {n: h for n, h in heads.items() if n not in PAIR_HEADS}
    out: Scores = {}
    for i in rows.tolist():
        scores = {name: head.probability(table.x[i]) for name, head in x_heads.items()}
        p = int(table.previous[i])
        if p >= 0:
            scores["similarity"] = float(table.xf[i, -1])
            scores.update((n, heads[n].probability(table.xf[i])) for n in PAIR_HEADS)
        out[i] = scores
    return out


def combine_rows(
    classifier: TurnClassifier, table: Table, rows: Rows, scores: Scores
) -> dict[int, TurnDecision]:
    """Decide ``rows`` (whole conversations, in order) turn by turn from precomputed scores."""
    decisions: dict[int, TurnDecision] = {}
    history: list[PreviousTurn] = []
    for i in rows.tolist():
        turn = table.turns[i]
        if turn.index == 0:
            history = []
        decision = classifier.combine(scores[i], _context(turn, history))
        decisions[i] = decision
        history.append(PreviousTurn(turn.text, decision.capabilities, None))
    return decisions


def decide_rows(classifier: TurnClassifier, table: Table, rows: Rows) -> dict[int, TurnDecision]:
    """Decide ``rows`` (whole conversations, in order) as the service would, turn by turn."""
    return combine_rows(classifier, table, rows, score_rows(classifier.heads, table, rows))


def error_cost(table: Table, decisions: dict[int, TurnDecision]) -> float:
    """Mean weighted error count per turn (``ERROR_COSTS``)."""
    total = 0.0
    for i, d in decisions.items():
        truth = set(table.turns[i].labels)
        said = set(d.capabilities)
        total += ERROR_COSTS["missed vision"] * ("vision" in (truth - said))
        total += ERROR_COSTS["missed web_search"] * ("web_search" in (truth - said))
        total += ERROR_COSTS["needless"] * len(said - truth)
    return total / max(1, len(decisions))


def exact_accuracy(table: Table, decisions: dict[int, TurnDecision]) -> float:
    return float(
        np.mean([set(d.capabilities) == set(table.turns[i].labels) for i, d in decisions.items()])
    )


def topic_accuracy(table: Table, decisions: dict[int, TurnDecision]) -> tuple[float, float]:
    """How often ``topic_changed`` is right on turns with a turn before them, and the same for
    the best cosine threshold alone (chosen on these very turns, so flattered) as a baseline."""
    later = [i for i in decisions if table.turns[i].index]
    truth = np.array([table.turns[i].topic_changed for i in later])
    said = np.array([decisions[i].topic_changed for i in later])
    alone = np.array([not decisions[i].followup for i in later])
    similarity = table.xf[later, -1]
    cosine = max(float(np.mean((alone & (similarity < s)) == truth)) for s in GRID_COSINE)
    return float(np.mean(said == truth)), cosine


def grid() -> list[Thresholds]:
    names = list(GRID)
    return [
        Thresholds(**dict(zip(names, v, strict=True))) for v in itertools.product(*GRID.values())
    ]


def out_of_fold_scores(
    table: Table, folds: list[tuple[Rows, Rows]], c: float = C_CAPABILITY
) -> tuple[Scores, list[Rows]]:
    """Scores of every test row from heads fitted on its fold's training rows."""
    scores: Scores = {}
    for train, test in folds:
        scores.update(score_rows(fit_heads(table, train, c), table, np.sort(test)))
    return scores, [np.sort(test) for _, test in folds]


def source_folds(table: Table, rows: Rows | None = None) -> list[tuple[Rows, Rows]]:
    """Leave one source out, over ``rows`` (default all)."""
    rows = np.arange(len(table.turns), dtype=np.int64) if rows is None else rows
    sources = table.sources[rows]
    return [(rows[sources != s], rows[sources == s]) for s in dict.fromkeys(sources.tolist())]


def source_group_folds(table: Table, k: int) -> list[tuple[Rows, Rows]]:
    """``k`` folds of whole sources, largest first into the emptiest fold (deterministic)."""
    sizes: dict[str, int] = {}
    for source in table.sources.tolist():
        sizes[source] = sizes.get(source, 0) + 1
    folds: list[list[str]] = [[] for _ in range(min(k, len(sizes)))]
    load = [0] * len(folds)
    for source in sorted(sizes, key=lambda s: (-sizes[s], s)):
        j = load.index(min(load))
        folds[j].append(source)
        load[j] += sizes[source]
    rows = np.arange(len(table.turns), dtype=np.int64)
    inside = [np.isin(table.sources, fold) for fold in folds]
    return [(rows[~mask], rows[mask]) for mask in inside]


def plain_text_rows(table: Table) -> Rows:
    """Turns a text reader reads in service: no photo, no client time or place (the service
    reads the others on the glasses encoder, ``app.pipeline.conversation``)."""
    plain = [not (t.has_image or t.client_time or t.client_location) for t in table.turns]
    return np.flatnonzero(plain).astype(np.int64)


def choose_thresholds(
    table: Table, scores: Scores, tests: list[Rows], plain_text: bool = False
) -> Thresholds:
    """Least weighted error (ties: higher exact accuracy, then lower thresholds); then topic.

    With ``plain_text`` (a text reader's classifier), the ``web_search`` threshold is then chosen
    again on :func:`plain_text_rows` alone, the only traffic that reader sees: fitted on glasses
    turns too, its heads lean to ``web_search`` on long exam-style prompts, and a threshold
    chosen on glasses turns flags them.
    """
    heads: dict[str, LinearHead] = {}  # combine() reads only the thresholds

    def decided(thresholds: Thresholds) -> dict[int, TurnDecision]:
        classifier = TurnClassifier(heads, TEXT_DIM, thresholds, table.model_id)
        out: dict[int, TurnDecision] = {}
        for test in tests:
            out.update(combine_rows(classifier, table, test, scores))
        return out

    def key(thresholds: Thresholds) -> tuple[float, ...]:
        d = decided(thresholds)
        values = [getattr(thresholds, n) for n in GRID]
        return (round(-error_cost(table, d), 6), round(exact_accuracy(table, d), 6),
                *[-v for v in values])  # fmt: skip

    best = max(grid(), key=key)
    decisions = decided(best)
    later = [i for i in decisions if table.turns[i].index]

    def topic_accuracy(threshold: float) -> float:
        if not later:  # no turn with a turn before it: any threshold will do
            return 0.0
        return float(np.mean([
            ("topic" in scores[i] and not decisions[i].followup
             and scores[i]["topic"] >= threshold) == table.turns[i].topic_changed
            for i in later
        ]))  # fmt: skip

    best = replace(best, topic=max(GRID_TOPIC, key=lambda s: (round(topic_accuracy(s), 6), s)))
    plain = set(plain_text_rows(table).tolist())
    if not plain_text or not plain:
        return best

    def plain_key(threshold: float) -> tuple[float, ...]:
        d = {i: x for i, x in decided(replace(best, web_search=threshold)).items() if i in plain}
        return (round(-error_cost(table, d), 6), round(exact_accuracy(table, d), 6), -threshold)

    return replace(best, web_search=max(GRID_PLAIN_TEXT_WEB_SEARCH, key=plain_key))


def fit(
    table: Table,
    c: float = C_CAPABILITY,
    plain_text: bool = False,
    folds: list[tuple[Rows, Rows]] | None = None,
) -> tuple[TurnClassifier, dict[int, TurnDecision]]:
    """The shipped classifier (heads on all turns, thresholds chosen leaving one source out)
    and its leave-one-source-out decisions under those thresholds; ``plain_text`` for a text
    reader (:func:`choose_thresholds`); ``folds`` other (train, test) folds than
    :func:`source_folds`."""
    scores, tests = out_of_fold_scores(table, folds or source_folds(table), c)
    thresholds = choose_thresholds(table, scores, tests, plain_text)
    rows = np.arange(len(table.turns), dtype=np.int64)
    classifier = TurnClassifier(fit_heads(table, rows, c), TEXT_DIM, thresholds, table.model_id)
    decisions: dict[int, TurnDecision] = {}
    for test in tests:
        decisions.update(combine_rows(classifier, table, test, scores))
    return classifier, decisions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--turns", type=Path, default=DEFAULT_TURNS)
    parser.add_argument("--out", type=Path, default=DEFAULT_WEIGHTS)
    parser.add_argument(
        "--backend", default="turns", choices=EMBEDDINGS, help="the embeddings the heads read"
    )
    args = parser.parse_args()
    table = load_table(load_labelled_turns(args.turns), backend=args.backend)
    classifier, decisions = fit(table, plain_text=args.backend != "turns")
    data = classifier.to_dict()
    data["trained_on"] = {
        "turns": len(table.turns),
        "conversations": len(set(table.groups)),
        "sources": sorted(set(table.sources.tolist())),
        "sha256": hashlib.sha256(args.turns.read_bytes()).hexdigest()[:16],
        "loso_exact_accuracy": round(exact_accuracy(table, decisions), 4),
        "loso_error_cost": round(error_cost(table, decisions), 4),
        "loso_topic_accuracy": round(topic_accuracy(table, decisions)[0], 4),
    }
    args.out.write_text(json.dumps(data, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"wrote {args.out}: thresholds {classifier.thresholds}, {data['trained_on']}")
    topic, cosine = topic_accuracy(table, decisions)
    print(f"topic_changed right on turns after another: {topic:.4f} (the best cosine threshold "
          f"alone: {cosine:.4f})")  # fmt: skip


if __name__ == "__main__":
    main()
