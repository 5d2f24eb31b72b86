"""How often Switchboard's graders agree with RouterArena's own scores on real answers.

The shared RouterArena file carries, for two hosted models, each real answer and the score
RouterArena's grader gave it. This grades the same answers with ``app.profiling.graders`` and
prints agreement per metric and per reference model (meteor: mean absolute difference and
correlation, since it is a continuous score), then the HumanEval canonical solutions' pass rate.

    .venv/bin/python bench/grader_agreement.py [--show METRIC] [--data DIR]
"""

from __future__ import annotations

import argparse
import json
import os
from collections import defaultdict
from pathlib import Path

import numpy as np

from app.profiling.graders import grade
from app.profiling.suite import item_from_row, load_suite

DATA = Path(
    os.environ.get("SWITCHBOARD_CALIBRATION")
    or Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "calibration"
)
"""The shared calibration files, beside the repository (or where SWITCHBOARD_CALIBRATION says)."""


def agreement_rows(path: Path) -> list[tuple[str, str, str, float, float | None, str]]:
    """(metric, model, id, reference score, our score, our reason) for every scored answer."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        raw = json.loads(line)
        item = item_from_row(raw, default_source="routerarena")
        for model, ref in raw["reference"].items():
            ours = grade(item, ref["answer"])
            rows.append((item.metric, model, item.id, float(ref["score"]), ours.score, ours.reason))
    return rows


def table(rows: list[tuple[str, str, str, float, float | None, str]]) -> str:
    groups: dict[tuple[str, str], list[tuple[float, float | None]]] = defaultdict(list)
    for metric, model, _, ref, ours, _ in rows:
        groups[(metric, model)].append((ref, ours))
        groups[(metric, "both")].append((ref, ours))
    lines = [
        "| metric | reference model | answers | agreement | skipped |",
        "|---|---|---|---|---|",
    ]
    checkable = [0, 0]
    for (metric, model), pairs in sorted(groups.items()):
        graded = [(r, o) for r, o in pairs if o is not None]
        skipped = len(pairs) - len(graded)
        if metric == "meteor_score":
            ref, ours = np.array(graded).T
            corr = float(np.corrcoef(ref, ours)[0, 1])
            cell = f"mean abs diff {np.abs(ref - ours).mean():.3f}, r = {corr:.2f}"
        else:
            agree = sum(r == o for r, o in graded)
            cell = f"{agree / len(graded):.1%} ({agree}/{len(graded)})"
            if model == "both":
                checkable[0] += agree
                checkable[1] += len(graded)
        lines.append(f"| {metric} | {model} | {len(pairs)} | {cell} | {skipped} |")
    lines.append(f"| all checkable | both | {checkable[1]} | "
                 f"{checkable[0] / checkable[1]:.1%} ({checkable[0]}/{checkable[1]}) | |")  # fmt: skip
    return "\n".join(lines)


def humaneval(path: Path) -> str:
    from app.profiling.graders import python_tests

    suite = load_suite(path)
    passed = sum(python_tests(i, f"```python\n{i.solution}\n```").score == 1.0 for i in suite.items)
    return f"HumanEval canonical solutions passing in the sandbox: {passed}/{len(suite.items)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--show", help="print the disagreements of one metric")
    parser.add_argument("--no-code", action="store_true", help="skip the HumanEval check")
    args = parser.parse_args()
    rows = agreement_rows(args.data / "routerarena.jsonl")
    print(table(rows))
    if args.show:
        for metric, model, item_id, ref, ours, reason in rows:
            if metric == args.show and ref != ours:
                print(f"{item_id} [{model}] reference {ref} ours {ours}: {reason}")
    if not args.no_code:
        print()
        print(humaneval(args.data / "humaneval.jsonl"))


if __name__ == "__main__":
    main()
