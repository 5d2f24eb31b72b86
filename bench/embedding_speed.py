"""Embedding backends side by side: speed, fidelity to the reference, and what it changes.

For each backend (sentence-transformers on torch = the reference, fp32 ONNX, int8 ONNX, static
vectors), and for the encoder that reads glasses turns (all-mpnet-base-v2 in ONNX, ``turns``: a
model of its own, so no cosine to the reference), in one run on this machine: start-up time, median time of one short query and of one
of the prompts of ``--data`` cut to 2,000 characters, throughput on those prompts (run as
``switchboard predict`` runs them), and the cosine of each vector to the reference (static
vectors are of another kind: their cosine to the reference says little). Then, per backend,
the median cosine between two of those prompts and the cosine of paraphrase pairs against
pairs that ask another thing (what the response cache must tell apart). ``--turns`` adds how often the bundled turn classifier decides a labelled glasses turn
the same way on int8 and on fp32 embeddings (it accepts either precision of the same weights).
Routing quality per backend: ``bench/routing_quality.py --backend ...``.

    .venv/bin/python bench/embedding_speed.py --data ../shared/data/routing/routerdc7_train.jsonl --turns
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from app.embedding.encoder import Encoder, load_encoder
from app.embedding.turn_model import load_turn_encoder
from app.selection.labelled import read_labelled

QUERIES = ["What breed is that dog?", "Will it rain this afternoon in Oslo, should I take a coat?"]
PAIRS = [
    ("paraphrase", "What is the capital of France?", "What's the capital of France?"),
    ("paraphrase", "How do I boil an egg?", "How can I boil an egg?"),
    ("another question", "What is the capital of France?", "What is the capital of Spain?"),
    ("another question", "Is 17 a prime number?", "Is 19 a prime number?"),
]
"""What the response cache must tell apart: a paraphrase hits, another question must not."""


def single_query_ms(encoder: Encoder, repeats: int = 100) -> float:
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        encoder.encode([QUERIES[i % 2]])
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def long_query_ms(encoder: Encoder, prompts: list[str], repeats: int = 100) -> float:
    times = []
    for prompt in prompts[:repeats]:
        start = time.perf_counter()
        encoder.encode([prompt[:2000]])
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def turn_agreement() -> tuple[int, float, float, float]:
    """Turns, share decided alike, and exact-set accuracy of the bundled classifier on each."""
    from app.selection.turns import TurnClassifier
    from scripts.fit_turn_classifier import decide_rows, load_table

    results, labels = [], []
    classifier = None
    for backend in ("onnx", "onnx-int8"):
        table = load_table(backend=backend)
        classifier = classifier or TurnClassifier.for_embeddings(table.model_id)  # MiniLM's
        assert classifier is not None
        rows = np.arange(len(table.turns), dtype=np.int64)
        results.append(decide_rows(classifier, table, rows))
        labels = [t.labels for t in table.turns]
    fp32, int8 = results
    same = np.mean([(fp32[i].capabilities, fp32[i].followup) == (int8[i].capabilities,
                    int8[i].followup) for i in fp32])  # fmt: skip
    exact = [np.mean([r[i].capabilities == labels[i] for i in r]) for r in results]
    return len(labels), float(same), float(exact[0]), float(exact[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, action="append", required=True)
    parser.add_argument("--limit", type=int, default=2000, help="prompts to time (first N)")
    parser.add_argument("--turns", action="store_true", help="turn-classifier agreement too")
    args = parser.parse_args()
    prompts = read_labelled(args.data).prompts[: args.limit]
    threadpool_limits(limits=1, user_api="blas")  # as in the service
    print(f"{len(prompts)} prompts from {', '.join(p.name for p in args.data)}\n")
    print(
        "| backend | start-up (s) | one short query, median (ms) | one prompt of up to 2,000 "
        "characters, median (ms) | prompts/s | cosine to reference, min / median |"
    )
    print("|---|---|---|---|---|---|")
    reference = None
    similarity: list[str] = []
    longest = sorted(prompts, key=len)[-100:]
    for backend in ("torch", "onnx", "onnx-int8", "static", "turns"):
        start = time.perf_counter()
        if backend == "turns":
            encoder = load_turn_encoder(Path.home() / ".cache" / "switchboard")
        else:
            encoder = load_encoder(backend=backend)  # type: ignore[arg-type]
        startup = time.perf_counter() - start
        encoder.encode(prompts[:16])
        single = single_query_ms(encoder)
        long = long_query_ms(encoder, longest)
        start = time.perf_counter()
        vectors = encoder.encode(prompts)
        rate = len(prompts) / (time.perf_counter() - start)
        reference = vectors if reference is None else reference
        if vectors.shape == reference.shape:
            cosine = (vectors * reference).sum(axis=1)
            fidelity = f"{cosine.min():.4f} / {np.median(cosine):.4f}"
        else:
            fidelity = "another model"
        print(f"| {backend} | {startup:.2f} | {single:.2f} | {long:.2f} | {rate:.0f} | "
              f"{fidelity} |")  # fmt: skip
        some = vectors[:200] @ vectors[:200].T
        pairs = [float(encoder.encode([a])[0] @ encoder.encode([b])[0]) for _, a, b in PAIRS]
        similarity.append(f"| {backend} | {np.median(some[np.triu_indices(len(some), 1)]):.2f} | "
                          + " | ".join(f"{c:.3f}" for c in pairs) + " |")  # fmt: skip
    print("\n| backend | median cosine of two prompts (first 200) | "
          + " | ".join(f"{kind}: {a!r} / {b!r}" for kind, a, b in PAIRS) + " |")  # fmt: skip
    print("|---|---|" + "---|" * len(PAIRS))
    print("\n".join(similarity))
    if args.turns:
        n, same, exact32, exact8 = turn_agreement()
        print(f"\nTurn classifier on {n} labelled glasses turns: the same decision on fp32 and "
              f"int8 embeddings for {same:.1%}; exact capability set right {exact32:.1%} (fp32) "
              f"vs {exact8:.1%} (int8), in-sample.")  # fmt: skip


if __name__ == "__main__":
    main()
