"""Routing quality by k-fold cross-validation on labelled data, against the baselines.

For each fold, profiles are built from the other folds only; every prompt gets an out-of-fold
prediction from Switchboard's estimator and from a plain similarity-weighted kNN on the same
embeddings. Prints one Markdown table: single models, oracle, kNN, the router at its presets,
AIQ of router / kNN / single-model hull, all from the same run.

    .venv/bin/python bench/routing_quality.py --data ../shared/data/routing/routerbench_train.jsonl
    .venv/bin/python bench/routing_quality.py --data ... --backend onnx   (the transformer)
    .venv/bin/python bench/routing_quality.py --data ... --max-tokens 64 --seed 1

``--max-tokens`` sets how many tokens of each prompt the encoder reads (default: the
service's, ``app.embedding.encoder.DEFAULT_MAX_TOKENS``; 0 = the model's whole window).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from app.embedding.encoder import DEFAULT_BACKEND, DEFAULT_MAX_TOKENS, load_encoder
from app.offline.crossval import cross_validate
from app.selection.labelled import read_labelled


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, action="append", required=True)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--backend",
        choices=["static", "onnx", "onnx-int8", "torch"],
        default=DEFAULT_BACKEND,
        help="embedding backend for profiles and queries alike",
    )
    parser.add_argument("--max-tokens", type=int, default=DEFAULT_MAX_TOKENS)
    args = parser.parse_args()
    data = read_labelled(args.data)
    encoder = load_encoder(backend=args.backend, max_tokens=args.max_tokens or None)
    result = cross_validate(data, folds=args.folds, seed=args.seed, encoder=encoder)
    print(f"embeddings: {encoder.model_id}\n")
    print(result.markdown())


if __name__ == "__main__":
    main()
