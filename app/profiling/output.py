"""What a bootstrap leaves in its directory: ``labelled.jsonl`` and the profiles built from it.

``labelled.jsonl`` is the documented labelled format, one line per graded item:
``{"id", "prompt", "scores": {model: 0..1}, "cost": {model: usd}, "latency_ms": {model: ms},
"task": kind, "source"}``, with every model the store holds answers from for this suite
version (so adding a model keeps every other model's column). Models are named as the catalog's
``profile_id`` (else ``id``) says, the name the service looks profiles up by. Profiles are built
as ``switchboard profiles build`` builds them, into the same directory.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from app.catalog import Catalog
from app.embedding.encoder import Encoder
from app.profiling.progress import Row
from app.profiling.store import Answer, AnswerStore
from app.profiling.suite import Suite, SuiteItem

LABELLED = "labelled.jsonl"


@dataclass(frozen=True)
class Written:
    prompts: int
    models: list[str]
    profiles: bool


def final_score(store: AnswerStore, answer: Answer, judge: str | None) -> float | None:
    """The answer's grade: its own, else the chosen judge's, else any judge's."""
    if answer.score is not None:
        return answer.score
    judgements = [j for (name, m, i, s), j in store.judgements.items()
                  if (m, i, s) == (answer.model, answer.item, answer.suite) and j.score is not None
                  and (judge is None or name == judge)]  # fmt: skip
    return judgements[-1].score if judgements else None


def summary_rows(
    store: AnswerStore, items: list[SuiteItem], version: str, judge: str | None
) -> list[Row]:
    """Every stored answer to ``items`` of this suite version, as summary rows."""
    wanted = {item.id: item for item in items}
    rows = []
    for (_, item_id, suite), answer in store.answers.items():
        item = wanted.get(item_id)
        if suite == version and item is not None:
            score = final_score(store, answer, judge)
            rows.append(Row(answer.model, item.kind, item.source, score, answer.cost_usd,
                            answer.latency_ms, answer.completion_tokens))  # fmt: skip
    return rows


def labelled_records(
    store: AnswerStore, suite: Suite, catalog: Catalog, judge: str | None
) -> list[dict[str, object]]:
    by_item: dict[str, list[Answer]] = {}
    for (_, item_id, version), answer in store.answers.items():
        if version == suite.version:
            by_item.setdefault(item_id, []).append(answer)
    order = {model_id: i for i, model_id in enumerate(catalog.ids)}
    for answers in by_item.values():  # columns in catalog order, whichever answered first
        answers.sort(key=lambda a: (order.get(a.model, len(order)), a.model))
    records: list[dict[str, object]] = []
    for item in suite.items:
        scores: dict[str, float] = {}
        cost: dict[str, float] = {}
        latency: dict[str, float] = {}
        for answer in by_item.get(item.id, []):
            score = final_score(store, answer, judge)
            if score is None:
                continue
            entry = catalog.get(answer.model)
            name = entry.data_name if entry else answer.model
            scores[name] = score
            cost[name] = round(answer.cost_usd, 10)
            latency[name] = round(answer.latency_ms, 1)
        if scores:
            records.append({"id": item.id, "prompt": item.prompt, "scores": scores,
                            "cost": cost, "latency_ms": latency, "task": item.kind,
                            "source": item.source})  # fmt: skip
    return records


def write_labelled(path: Path, records: list[dict[str, object]]) -> None:
    """Write atomically: a reader never sees half a file."""
    partial = path.with_suffix(".jsonl.partial")
    with partial.open("w", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    partial.replace(path)


def write_outputs(
    out: Path,
    store: AnswerStore,
    suite: Suite,
    catalog: Catalog,
    encoder: Encoder,
    judge: str | None = None,
    cache_dir: Path | None = None,
) -> Written:
    """``out/labelled.jsonl`` and the profiles in ``out`` (if anything was graded)."""
    from app.offline.crossval import embed_cached, profiles_from
    from app.selection.labelled import read_labelled
    from app.selection.profiles import save_profiles

    records = labelled_records(store, suite, catalog, judge)
    write_labelled(out / LABELLED, records)
    models = list(dict.fromkeys(m for r in records for m in r["scores"]))  # type: ignore[attr-defined]
    if not records:
        return Written(0, [], profiles=False)
    data = read_labelled([out / LABELLED])
    profiles = profiles_from(data, embed_cached(encoder, data.prompts, cache_dir), encoder.model_id)
    save_profiles(profiles, out)
    return Written(len(records), models, profiles=True)
