"""The fit's leave-one-source-out under other settings of the turn classifier, as a table.

    .venv/bin/python bench/turn_fit_variants.py [--variant NAME:KEY=VALUE,...] ...

Each variant refits the heads leaving one source out at a time and chooses thresholds exactly
as ``scripts/fit_turn_classifier.py`` does (``fit``), with one thing changed: ``C`` (inverse L2
strength of the capability heads), ``gram`` (scale of the hashed n-gram block), ``emb`` (scale
of the embedding block) or ``share`` (the share of each source's conversations kept in every
training fold, picked by a hash of the conversation id: how accuracy grows with the data; the
held-out source is always decided whole). Prints exact set pooled, over all sources but
``original``, the mean over sources, the weighted error count and each capability's recall.
About five minutes per variant on 2 cores.

    .venv/bin/python bench/turn_fit_variants.py [--turns PATH] --variant all: --variant half:share=0.5
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import scripts.fit_turn_classifier as fitting
from app.selection.turns import CAPABILITIES, load_labelled_turns

DEFAULT = ("today:", "C=3:C=3", "grams x2:gram=2", "grams x0.5:gram=0.5", "embedding x2:emb=2")


def _kept(conversation: str, share: float) -> bool:
    digest = hashlib.sha256(conversation.encode()).digest()
    return int.from_bytes(digest[:4], "big") < share * 2**32


def run(table: fitting.Table, settings: dict[str, float]) -> list[str]:
    scale = np.ones(table.x.shape[1], dtype=np.float32)
    width = table.embeddings.shape[1]
    scale[:width] = settings.get("emb", 1.0)
    scale[width : width + fitting.TEXT_DIM] = settings.get("gram", 1.0)
    scaled = fitting.Table(table.turns, table.embeddings, table.model_id, table.x * scale,
                           table.xf.copy(), table.previous, table.labels)  # fmt: skip
    scaled.xf[:, : table.x.shape[1]] *= scale
    folds = fitting.source_folds(scaled)
    if "share" in settings:
        kept = np.array([_kept(t.conversation, settings["share"]) for t in table.turns])
        folds = [(train[kept[train]], test) for train, test in folds]
    _, decisions = fitting.fit(scaled, settings.get("C", fitting.C_CAPABILITY), folds=folds)
    rows = np.array(sorted(decisions))
    right = np.array([set(decisions[i].capabilities) == set(table.turns[i].labels) for i in rows])
    sources = table.sources[rows]
    per_source = [right[sources == s].mean() for s in dict.fromkeys(sources.tolist())]
    recall = []
    for c in CAPABILITIES:
        needed = [i for i in rows if c in table.turns[i].labels]
        recall.append(np.mean([c in decisions[i].capabilities for i in needed]))
    return [f"{fitting.exact_accuracy(table, decisions):.4f}", f"{right[sources != 'original'].mean():.4f}",
            f"{np.mean(per_source):.4f}", f"{fitting.error_cost(table, decisions):.4f}",
            *[f"{r:.3f}" for r in recall]]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variant", action="append", help="NAME:KEY=VALUE,... (repeatable)")
    parser.add_argument("--turns", type=Path, help="labelled turns (default: the shipped ones)")
    args = parser.parse_args()
    table = fitting.load_table(load_labelled_turns(args.turns) if args.turns else None)
    print("| variant | exact pooled | all but original | source mean | weighted errors |"
          + "".join(f" {c} recall |" for c in CAPABILITIES))  # fmt: skip
    print("|---" * (5 + len(CAPABILITIES)) + "|")
    for variant in args.variant or DEFAULT:
        name, _, spec = variant.partition(":")
        settings = {k: float(v) for k, v in (p.split("=") for p in spec.split(",") if p)}
        print(f"| {name} | " + " | ".join(run(table, settings)) + " |", flush=True)


if __name__ == "__main__":
    main()
