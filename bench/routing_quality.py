"""Routing quality by k-fold cross-validation on labelled data, against the baselines.

For each fold, profiles are built from the other folds only; every prompt gets an out-of-fold
prediction from Switchboard's estimator and from a plain similarity-weighted kNN on the same
embeddings. Prints one Markdown table: single models, oracle, kNN, the router at its presets,
AIQ of router / kNN / single-model hull, all from the same run.

    .venv/bin/python bench/routing_quality.py --data ../shared/data/routing/routerbench_train.jsonl
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from app.crossval import cross_validate
from app.labelled import read_labelled


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, action="append", required=True)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    data = read_labelled(args.data)
    result = cross_validate(data, folds=args.folds, seed=args.seed)
    print(result.markdown())
    np.set_printoptions(precision=4)


if __name__ == "__main__":
    main()
