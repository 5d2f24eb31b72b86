"""How well the turn classifier (``app/turns.py``) decides turns written by someone else.

Leave one source out: for each source of ``data/glasses_turns.jsonl`` (each written
independently, in its own style), fit the heads on all the other sources, choose the thresholds
by cross-validation over those other sources in three groups of whole sources (so the left-out
source never tunes anything), and
decide the left-out source's conversations turn by turn, follow-ups inheriting the capabilities
*predicted* for the turn before, as in service. The photos are generated first
(``scripts/make_glasses_images.py``) and looked at as the service does (``app.selection.photo_look``).

    .venv/bin/python bench/capabilities_cv.py [--fast] [--no-photo-look] [--routerdc PATH]
        [--backend turns|onnx|static|...] [--leave-out SOURCE,SOURCE,...] [--spoken]

Prints, per left-out source: exact-set accuracy, recall and precision of each capability, and the
same turns decided by two baselines: always-vision (``vision`` whenever there is a photo) and a
keyword rule. Then the shipped classifier on ordinary text prompts (how many it judges to need
``web_search``: none should), and its decision time after the embedding. ``--fast`` uses the
shipped thresholds instead of the nested choice (quicker, slightly optimistic);
``--no-photo-look`` refits without reading the photos, to show what the look adds;
``--spoken`` decides the left-out turns as a speech recogniser writes them (lower case, no
punctuation), the heads still fitted on the turns as written.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from app.selection.photo_look import look_at
from app.selection.turns import (
    CAPABILITIES,
    LabelledTurn,
    TurnClassifier,
    TurnContext,
    load_labelled_turns,
)
from scripts.fit_turn_classifier import (
    EMBEDDINGS,
    ERROR_COSTS,
    TEXT_DIM,
    Table,
    choose_thresholds,
    combine_rows,
    encoder_for,
    error_cost,
    fit_heads,
    load_table,
    out_of_fold_scores,
    score_rows,
    source_folds,
    source_group_folds,
)
from scripts.make_glasses_images import ensure_images

ROUTERDC = Path("/work/shared/data/routing/routerdc7_train.jsonl")
INNER_FOLDS = 3  # thresholds for each left-out source: sources of the rest in 3 groups
Decided = dict[int, tuple[str, ...]]

_SEEING = re.compile(
    r"\b(this|that|these|those|here|look|looking|see|read|describe|front of me|which one|"
    r"how many|colou?r|sign|label|menu|screen|picture|photo)\b"
)
_PUNCTUATION = re.compile(r"[^\w\s']")
_FRESH = re.compile(
    r"\b(weather|rain|forecast|news|today|tonight|tomorrow|now|open|close|closes|hours|price|"
    r"stock|shares?|score|game|match|traffic|delay|delayed|train|bus|flight|near|nearby|latest|"
    r"current|currently|this week|weekend|reviews?|tickets?|playing|showing)\b"
)


def keyword_rule(turn: LabelledTurn) -> tuple[str, ...]:
    """The baseline a keyword list gives: each turn on its own words, no conversation."""
    text = turn.text.lower()
    vision = turn.has_image and bool(_SEEING.search(text))
    return tuple(c for c, on in zip(CAPABILITIES, (vision, bool(_FRESH.search(text))), strict=True)
                 if on)  # fmt: skip


def always_vision(turn: LabelledTurn) -> tuple[str, ...]:
    return ("vision",) if turn.has_image else ()


def metrics(turns: list[LabelledTurn], said: list[tuple[str, ...]]) -> dict[str, float]:
    out = {"turns": float(len(turns))}
    out["exact"] = float(
        np.mean([set(s) == set(t.labels) for t, s in zip(turns, said, strict=True)])
    )
    for c in CAPABILITIES:
        truth = np.array([c in t.labels for t in turns])
        got = np.array([c in s for s in said])
        out[f"{c} recall"] = float(got[truth].mean()) if truth.any() else float("nan")
        out[f"{c} precision"] = float(truth[got].mean()) if got.any() else float("nan")
    return out


def spoken(turns: list[LabelledTurn]) -> list[LabelledTurn]:
    """The turns as a speech recogniser writes them: lower case, punctuation dropped."""
    return [replace(t, text=_PUNCTUATION.sub("", t.text).lower().strip() or t.text) for t in turns]


def loso(
    table: Table,
    fast: bool,
    leave_out: list[str] | None = None,
    heard: Table | None = None,
    plain_text: bool = False,
) -> Decided:
    """Every turn decided by heads fitted without its source (thresholds: see the docstring);
    with ``leave_out``, only those sources' turns, by heads fitted without all of them; with
    ``heard`` (the same turns otherwise written), the left-out turns are decided as written
    there; ``plain_text`` for a text reader's heads (``choose_thresholds``)."""
    shipped = _shipped(table.model_id).thresholds
    seen = heard or table  # what the left-out turns are decided on
    decided: Decided = {}
    folds = source_folds(table)
    if leave_out:
        out = np.isin(table.sources, leave_out)
        rows = np.arange(len(table.turns), dtype=np.int64)
        folds = [(rows[~out], rows[out])]
    for train, test in folds:
        heads = fit_heads(table, train)
        if fast:
            thresholds = shipped
        else:
            inner = table.subset(train)
            scores, tests = out_of_fold_scores(inner, source_group_folds(inner, INNER_FOLDS))
            thresholds = choose_thresholds(inner, scores, tests, plain_text)
        classifier = TurnClassifier(heads, TEXT_DIM, thresholds, table.model_id)
        rows = np.sort(test)
        decisions = combine_rows(classifier, seen, rows, score_rows(heads, seen, rows))
        decided.update({i: d.capabilities for i, d in decisions.items()})
        source = ", ".join(dict.fromkeys(table.turns[int(i)].source for i in rows))
        print(f"  left out {source}: thresholds {thresholds}", file=sys.stderr)
    return decided


def table_of(table: Table, decided: Decided) -> None:
    """Per source, pooled, and pooled without ``original`` (over the turns decided)."""
    rules: dict[str, Callable[[LabelledTurn], tuple[str, ...]]] = {
        "always-vision": always_vision,
        "keyword": keyword_rule,
    }
    head = ("| left out | turns | exact | vision R / P | web_search R / P | always-vision exact "
            "(vision R) | keyword exact |")  # fmt: skip
    print(head)
    print("|---|---|---|---|---|---|---|")
    rows_of = np.array(sorted(decided), dtype=np.int64)
    sources = table.sources[rows_of]
    groups = {s: rows_of[sources == s] for s in dict.fromkeys(sources.tolist())}
    groups["all (pooled)"] = rows_of
    if "original" in groups:
        groups["all but original"] = rows_of[sources != "original"]
    for name, rows in groups.items():
        if not len(rows):
            continue
        turns = [table.turns[i] for i in rows]
        m = metrics(turns, [decided[i] for i in rows])
        base = {k: metrics(turns, [rule(t) for t in turns]) for k, rule in rules.items()}
        print(
            f"| {name} | {len(turns)} | {m['exact']:.3f} "
            f"| {m['vision recall']:.2f} / {m['vision precision']:.2f} "
            f"| {m['web_search recall']:.2f} / {m['web_search precision']:.2f} "
            f"| {base['always-vision']['exact']:.3f} ({base['always-vision']['vision recall']:.2f}) "
            f"| {base['keyword']['exact']:.3f} |"
        )


def show_errors(table: Table, decided: Decided, limit: int) -> None:
    for source in dict.fromkeys(table.sources[sorted(decided)].tolist()):
        wrong = [i for i in np.flatnonzero(table.sources == source)
                 if set(decided[i]) != set(table.turns[i].labels)]  # fmt: skip
        print(f"\n{source}: {len(wrong)} wrong")
        for i in wrong[:limit]:
            t = table.turns[i]
            before = table.turns[i - 1].text[:40] if t.index else ""
            print(f"  said {'+'.join(decided[i]) or '-':18s} truth {'+'.join(t.labels) or '-':18s}"
                  f"{'F' if t.followup else ' '} {t.frame[:1]} {t.text[:70]!r}  <- {before!r}")  # fmt: skip


def data_table(turns: list[LabelledTurn]) -> None:
    """What each source holds (the table of docs/glasses_labels.md, "The labelled data")."""
    print("| source | conversations | turns | vision | web_search | both | neither | follow-ups "
          "| with a photo | empty frame | asks time/place |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    sources = list(dict.fromkeys(t.source for t in turns))
    for name in [*sources, "total"]:
        rows = [t for t in turns if name in (t.source, "total")]
        kinds = [set(t.labels) for t in rows]
        counts = [
            len({t.conversation for t in rows}), len(rows),
            sum(k == {"vision"} for k in kinds), sum(k == {"web_search"} for k in kinds),
            sum(len(k) == 2 for k in kinds), sum(not k for k in kinds),
            sum(t.followup for t in rows), sum(t.has_image for t in rows),
            sum(t.has_image and t.frame != "photo" for t in rows), sum(bool(t.asks) for t in rows),
        ]  # fmt: skip
        print(f"| {name} | " + " | ".join(str(c) for c in counts) + " |")


def text_prompts(path: Path, start: int, stop: int) -> list[str]:
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line)["prompt"] for k, line in enumerate(lines) if start <= k < stop]


def _shipped(model_id: str) -> TurnClassifier:
    classifier = TurnClassifier.for_embeddings(model_id)
    if classifier is None:
        raise SystemExit(
            f"no bundled turn classifier for {model_id}: scripts/fit_turn_classifier.py"
        )
    return classifier


def web_search_on_text(classifier: TurnClassifier, path: Path, backend: str) -> None:
    """How many ordinary text prompts (no photo, no client context) get ``web_search``."""
    encoder = encoder_for(backend)
    for start, stop in ((0, 600), (600, 10**9)):
        prompts = text_prompts(path, start, stop)
        if not prompts:
            continue
        vectors = encoder.encode(prompts)
        flagged = [p for p, v in zip(prompts, vectors, strict=True)
                   if "web_search" in classifier.decide(v, None, TurnContext(p, False)).capabilities]  # fmt: skip
        print(f"\n{path.name} prompts {start}-{start + len(prompts) - 1}: "
              f"{len(flagged)} of {len(prompts)} judged to need web_search")  # fmt: skip
        for prompt in flagged[:5]:
            print(f"  - {prompt[:110]!r}")


def timing(classifier: TurnClassifier, table: Table, path: Path) -> None:
    """Median / p99 of decide() after the embedding, and of the look at a photo (ms)."""
    turns, rows = table.turns, range(len(table.turns))
    long_texts = text_prompts(path, 0, 200) if path.exists() else []
    cases = [(t.text, table.embeddings[i]) for i, t in zip(rows, turns, strict=True)]
    cases += [(p * (1 + 6000 // max(1, len(p))), table.embeddings[0]) for p in long_texts[:50]]
    for label, chunk in (
        ("glasses turns", cases[: len(turns)]),
        ("6,000+ char prompts", cases[len(turns) :]),
    ):
        if not chunk:
            continue
        times = []
        for text, vector in chunk:
            context = TurnContext(text, True, [], None, True, True)
            start = time.perf_counter()
            classifier.decide(vector, vector, context)
            times.append(1000 * (time.perf_counter() - start))
        times.sort()
        print(f"decide() after the embedding, {label}: median {statistics.median(times):.3f} ms, "
              f"p99 {times[int(0.99 * (len(times) - 1))]:.3f} ms")  # fmt: skip
    photos = [p for p in ensure_images(turns) if p is not None]
    looks = []
    for photo in photos:
        data = photo.read_bytes()
        start = time.perf_counter()
        look_at(data)
        looks.append(1000 * (time.perf_counter() - start))
    looks.sort()
    print(f"look at the photo ({len(looks)} generated JPEGs): median {statistics.median(looks):.3f} ms, "
          f"p99 {looks[int(0.99 * (len(looks) - 1))]:.3f} ms")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fast", action="store_true", help="shipped thresholds, no nesting")
    parser.add_argument("--no-photo-look", action="store_true", help="refit without the look")
    parser.add_argument("--routerdc", type=Path, default=ROUTERDC)
    parser.add_argument(
        "--backend",
        default="turns",
        choices=EMBEDDINGS,
        help="the embeddings the heads read (turns: what glasses turns are read "
        "on; onnx / static: the router's MiniLM vectors)",
    )
    parser.add_argument("--leave-out", type=lambda s: s.split(","), default=None,
                        metavar="SOURCE,SOURCE", help="fit without all these sources at once and "
                        "decide only theirs (e.g. the sources written last)")  # fmt: skip
    parser.add_argument("--show-errors", type=int, default=0, metavar="N",
                        help="print up to N wrongly decided turns per source")  # fmt: skip
    parser.add_argument("--spoken", action="store_true",
                        help="decide the left-out turns lower-cased, without punctuation")  # fmt: skip
    parser.add_argument("--data-table", action="store_true",
                        help="only print what each source holds")  # fmt: skip
    args = parser.parse_args()
    turns = load_labelled_turns()
    if args.data_table:
        data_table(turns)
        return
    table = load_table(turns, photos=not args.no_photo_look, backend=args.backend)
    print(f"{len(turns)} turns in {len(set(table.groups))} conversations from "
          f"{len(set(table.sources.tolist()))} sources; {sum(t.has_image for t in turns)} "
          "with a photo\n")  # fmt: skip
    heard = (load_table(spoken(turns), photos=not args.no_photo_look, backend=args.backend)
             if args.spoken else None)  # fmt: skip
    decided = loso(table, args.fast, args.leave_out, heard, plain_text=args.backend != "turns")
    how = ("Sources left out together (heads fitted on the others" if args.leave_out
           else "Leave one source out (heads fitted on the other sources")  # fmt: skip
    print(f"{how}; R = recall, P = precision):\n")
    table_of(table, decided)
    truth = {i: turns[i].labels for i in decided}
    if args.show_errors:
        show_errors(table, decided, args.show_errors)
    cost = error_cost(table, {i: _Said(d) for i, d in decided.items()})  # type: ignore[misc]
    print(f"\nweighted errors per turn ({', '.join(f'{k} {v:g}' for k, v in ERROR_COSTS.items())}): "
          f"{cost:.3f}; turns {len(truth)}")  # fmt: skip
    classifier = _shipped(table.model_id)
    if args.routerdc.exists():
        web_search_on_text(classifier, args.routerdc, args.backend)
    print()
    timing(classifier, table, args.routerdc)


class _Said:
    """A decision's capabilities, for :func:`error_cost`."""

    def __init__(self, capabilities: tuple[str, ...]) -> None:
        self.capabilities = capabilities


if __name__ == "__main__":
    main()
