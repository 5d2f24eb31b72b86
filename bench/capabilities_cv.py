"""Cross-validated accuracy of the turn classifier (``app/selection/turns.py``) on the glasses set.

5-fold CV grouped by conversation (no conversation is split across folds). Each held-out
conversation is decided turn by turn, follow-ups inheriting the capabilities *predicted* for
the turn before, as in service. The photos are generated first (``scripts/make_glasses_
images.py``) and a turn has an image iff its file exists; the classifier never reads pixels.

    .venv/bin/python bench/capabilities_cv.py [--nested] [--seeds 0 1 2]

``--nested`` also chooses the thresholds inside each outer training fold (inner grouped CV),
so the threshold choice never sees the held-out conversations.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from sklearn.model_selection import GroupKFold

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from app.selection.turns import CAPABILITIES, TurnClassifier, TurnDecision, load_labelled_turns
from scripts.fit_turn_classifier import (
    FOLDS,
    TEXT_DIM,
    Table,
    _grid,
    choose_thresholds,
    cross_validate,
    decide_rows,
    fit,
    fit_heads,
    load_table,
)
from scripts.make_glasses_images import ensure_images


def scores(table: Table, decisions: dict[int, TurnDecision]) -> dict[str, float]:
    """Accuracy, recall and precision per capability; exact set; follow-up and topic change."""
    rows = sorted(decisions)
    turns = [table.turns[i] for i in rows]
    out: dict[str, float] = {}
    for c in CAPABILITIES:
        truth = np.array([c in t.labels for t in turns])
        said = np.array([c in decisions[i].capabilities for i in rows])
        out[f"{c} accuracy"] = float(np.mean(truth == said))
        out[f"{c} recall"] = float(said[truth].mean()) if truth.any() else 1.0
        out[f"{c} precision"] = float(truth[said].mean()) if said.any() else 1.0
    exact = np.array(
        [set(decisions[i].capabilities) == set(t.labels) for i, t in zip(rows, turns, strict=True)]
    )
    later = np.array([t.index > 0 for t in turns])
    followup = np.array([t.followup for t in turns])
    out["exact set"] = float(exact.mean())
    out["exact set, first turns"] = float(exact[~later].mean())
    out["exact set, follow-ups"] = float(exact[followup].mean())
    out["exact set, no photo"] = float(exact[[not t.has_image for t in turns]].mean())
    said_f = np.array([decisions[i].followup for i in rows])
    out["follow-up accuracy"] = float(np.mean(said_f[later] == followup[later]))
    out["follow-up recall"] = float(said_f[followup].mean())
    out["follow-up precision"] = float(followup[said_f].mean()) if said_f.any() else 1.0
    topic = np.array([t.topic_changed for t in turns])
    said_t = np.array([decisions[i].topic_changed for i in rows])
    out["topic_changed accuracy"] = float(np.mean(said_t[later] == topic[later]))
    out["topic_changed recall"] = float(said_t[topic].mean())
    return out


def nested(table: Table, seed: int) -> dict[int, TurnDecision]:
    """Outer grouped CV; thresholds chosen by an inner grouped CV on each outer training part."""
    decisions: dict[int, TurnDecision] = {}
    outer = GroupKFold(n_splits=FOLDS, shuffle=True, random_state=seed)
    for train, test in outer.split(table.x, groups=table.groups):
        train_turns = [table.turns[i] for i in train]
        inner = Table(
            train_turns,
            table.embeddings[train],
            table.model_id,
            table.x[train],
            table.xf[train],
            np.array([i - 1 if t.index else -1 for i, t in enumerate(train_turns)]),
            table.labels[train],
        )
        thresholds = choose_thresholds(inner, cross_validate(inner, _grid(), seed=seed))
        heads = fit_heads(table, np.asarray(train, dtype=np.int64))
        classifier = TurnClassifier(heads, TEXT_DIM, thresholds, table.model_id)
        decisions.update(decide_rows(classifier, table, np.sort(test)))
    return decisions


def latency(table: Table) -> tuple[float, float, float]:
    """Load time of the bundled weights, and median / p99 of one ``decide`` call (ms)."""
    start = time.perf_counter()
    classifier = TurnClassifier.load()
    load_ms = 1000 * (time.perf_counter() - start)
    times = []
    rows = np.arange(len(table.turns), dtype=np.int64)
    for _ in range(3):
        start = time.perf_counter()
        decide_rows(classifier, table, rows)
        times.append((time.perf_counter() - start) / len(rows))
    per_turn = 1000 * np.array(times)
    return load_ms, float(np.median(per_turn)), float(per_turn.max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nested", action="store_true", help="also run nested CV (slower)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    args = parser.parse_args()
    turns = load_labelled_turns()
    images = ensure_images(turns)
    turns = [replace(t, has_image=images[i] is not None) for i, t in enumerate(turns)]
    table = load_table(turns)
    print(
        f"{len(turns)} turns in {len(set(table.groups))} conversations; "
        f"{sum(t.has_image for t in turns)} with a photo, "
        f"{sum(bool(t.labels) for t in turns)} needing a capability, "
        f"{sum(t.followup for t in turns)} follow-ups, "
        f"{sum(t.topic_changed for t in turns)} topic changes"
    )
    columns: dict[str, dict[str, float]] = {}
    for seed in args.seeds:
        if seed == 0:
            classifier, decisions = fit(table)
            print(f"thresholds (CV-chosen, shipped): {classifier.thresholds}")
        else:
            by = cross_validate(table, [TurnClassifier.load().thresholds], seed=seed)
            decisions = next(iter(by.values()))
        columns[f"CV seed {seed}"] = scores(table, decisions)
        if args.nested:
            columns[f"nested seed {seed}"] = scores(table, nested(table, seed))
    names = list(next(iter(columns.values())))
    print(f"\n{'':28s}" + "".join(f"{c:>16s}" for c in columns))
    for name in names:
        print(f"{name:28s}" + "".join(f"{columns[c][name]:16.3f}" for c in columns))
    load_ms, median_ms, worst_ms = latency(table)
    print(
        f"\nload {load_ms:.1f} ms; decide() after the embedding: "
        f"median {median_ms:.3f} ms per turn (worst of 3 passes {worst_ms:.3f} ms)"
    )


if __name__ == "__main__":
    main()
