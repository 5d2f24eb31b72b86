"""Graded prompts: the suite a model is profiled on, its version, and stratified samples.

A suite is JSON Lines, one item a line, in the shape of the shared calibration files
(``id``, ``prompt``, ``metric`` and the gold fields that metric needs; ``source`` and ``kind``
optional). The bundled default suite is ``app/data/suite/default.jsonl`` (written by
``scripts/make_default_suite.py``); any other file is read in place, never copied.

The suite version is a content hash of the loaded items: answers are stored under
(model, item id, suite version), so editing a suite never mixes answers to two versions of it.

HumanEval-style rows, whose ``prompt`` is a Python stub to complete, are wrapped in an
instruction (the stub is kept as ``stub``, and the reference is stub + ``canonical_solution``).
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final

from app.errors import ConfigError

DEFAULT_SUITE: Final = Path(__file__).resolve().parent.parent / "data" / "suite" / "default.jsonl"

KINDS: Final = (
    "knowledge", "maths", "reasoning", "reading", "code", "translation", "assistant",
)  # fmt: skip
"""The kinds of request a suite is stratified over."""

CODE_INSTRUCTION: Final = (
    "Complete the following Python function. Reply with the complete function (and any imports "
    "it needs) in one ```python code block.\n\n{stub}"
)

_KIND_BY_METRIC: Final = {
    "mcq_accuracy": "knowledge",
    "exact_match": "knowledge",
    "math_metric": "maths",
    "numeric": "maths",
    "python_tests": "code",
    "chess_accuracy": "reasoning",
    "superglue_exact_match": "reading",
    "superglue_clozetest": "reading",
    "meteor_score": "reading",
    "chrf": "translation",
    "rubric": "assistant",
}
_KIND_BY_SOURCE: Final = (
    ("WMT", "translation"),
    ("NarrativeQA", "reading"),
    ("PubMedQA", "reading"),
    ("FinQA", "maths"),
    ("MathQA", "maths"),
    ("MMLUPro_math", "maths"),
    ("Ethics", "reasoning"),
    ("SocialiQA", "reasoning"),
    ("formal_logic", "reasoning"),
    ("CausalReasoning", "reasoning"),
)


@dataclass(frozen=True)
class SuiteItem:
    """One graded prompt: what is sent, how the reply is graded, and the gold to grade against."""

    id: str
    prompt: str
    metric: str
    kind: str
    source: str
    answer: str | None = None
    """The gold answer (a letter, a number, a short text, a reference text)."""
    aliases: tuple[str, ...] = ()
    """Other accepted answers (exact-match graders)."""
    tolerance: float | None = None
    """Absolute tolerance for numeric answers (None: a relative 1e-6)."""
    test: str | None = None
    """Python that defines ``check(candidate)`` (``python_tests``)."""
    entry_point: str | None = None
    stub: str | None = None
    """Code the answer completes (HumanEval's prompt): prepended when the answer lacks it."""
    solution: str | None = None
    """A reference solution: code that passes ``test``, or a worked answer."""
    criteria: str | None = None
    """What a good answer must do, for the judge (``rubric``)."""

    def record(self) -> dict[str, object]:
        """The item as a JSON object (what the suite file holds), without empty fields."""
        raw = asdict(self)
        raw["aliases"] = list(self.aliases)
        return {k: v for k, v in raw.items() if v not in (None, [], "")}


def infer_kind(metric: str, source: str) -> str:
    """The kind of a row that does not name one: by its source, else by its metric."""
    for marker, kind in _KIND_BY_SOURCE:
        if marker in source:
            return kind
    return _KIND_BY_METRIC.get(metric, "knowledge")


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return value if isinstance(value, str) else json.dumps(value)


def _is_code_stub(prompt: str) -> bool:
    try:
        compile(prompt + "    pass\n", "<stub>", "exec")
    except (SyntaxError, ValueError):
        return False
    return "def " in prompt


def item_from_row(row: dict[str, object], default_source: str) -> SuiteItem:
    """A ``SuiteItem`` from one JSON object; ``ValueError`` says what is missing."""
    for required in ("id", "prompt", "metric"):
        if not isinstance(row.get(required), str) or not row[required]:
            raise ValueError(f"needs a string {required!r}")
    metric = str(row["metric"])
    source = str(row.get("source") or default_source)
    prompt = str(row["prompt"])
    stub = _text(row.get("stub"))
    solution = _text(row.get("solution"))
    canonical = _text(row.get("canonical_solution"))
    if metric == "python_tests" and stub is None and _is_code_stub(prompt):
        stub, prompt = prompt, CODE_INSTRUCTION.format(stub=prompt)
        solution = solution or (stub + canonical if canonical else None)
    aliases = row.get("aliases") or ()
    tolerance = row.get("tolerance")
    return SuiteItem(
        id=str(row["id"]),
        prompt=prompt,
        metric=metric,
        kind=str(row.get("kind") or infer_kind(metric, source)),
        source=source,
        answer=_text(row.get("answer")),
        aliases=tuple(str(a) for a in aliases) if isinstance(aliases, list) else (),
        tolerance=float(tolerance) if isinstance(tolerance, int | float) else None,
        test=_text(row.get("test")),
        entry_point=_text(row.get("entry_point")),
        stub=stub,
        solution=solution,
        criteria=_text(row.get("criteria")),
    )


@dataclass(frozen=True)
class Suite:
    items: list[SuiteItem]
    path: Path
    version: str

    @property
    def name(self) -> str:
        return "default" if self.path == DEFAULT_SUITE else str(self.path)


def suite_version(items: list[SuiteItem]) -> str:
    """A content hash of the items (order-independent)."""
    digest = hashlib.sha256()
    for item in sorted(items, key=lambda i: i.id):
        digest.update(json.dumps(item.record(), sort_keys=True).encode() + b"\n")
    return digest.hexdigest()[:12]


def load_suite(spec: str | Path = "default") -> Suite:
    """The suite ``spec`` names: ``"default"`` (bundled) or a JSON Lines path, read in place."""
    path = DEFAULT_SUITE if str(spec) == "default" else Path(spec).expanduser()
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except OSError as exc:
        raise ConfigError(f"cannot read suite {path}: {exc.strerror}") from exc
    items: list[SuiteItem] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not isinstance(row, dict):
                raise ValueError("not a JSON object")
            item = item_from_row(row, default_source=path.stem)
        except ValueError as exc:
            raise ConfigError(f"{path}:{number}: not a suite item ({exc})") from exc
        if item.id in seen:
            raise ConfigError(f"{path}:{number}: duplicate id {item.id!r}")
        seen.add(item.id)
        items.append(item)
    if not items:
        raise ConfigError(f"suite {path} holds no items")
    return Suite(items, path, suite_version(items))


def _order(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def stratified_sample(items: list[SuiteItem], n: int | None) -> list[SuiteItem]:
    """``n`` items spread evenly over kinds, and within a kind over sources (deterministic).

    Kinds take turns, each giving its next item, and within a kind the sources take turns, so
    every kind (and as many sources as ``n`` allows) is represented. A larger ``n`` extends a
    smaller one's sample, so a bigger run reuses every answer of a smaller one. The sample keeps
    the suite's order.
    """
    if n is None or n >= len(items):
        return list(items)
    by_kind: dict[str, dict[str, list[SuiteItem]]] = defaultdict(lambda: defaultdict(list))
    for item in items:
        by_kind[item.kind][item.source].append(item)
    queues: list[list[SuiteItem]] = []
    for kind in sorted(by_kind, key=_order):
        sources = [sorted(group, key=lambda i: _order(i.id)) for group in by_kind[kind].values()]
        sources.sort(key=lambda group: _order(group[0].source))
        interleaved = [group[i] for i in range(max(map(len, sources))) for group in sources
                       if i < len(group)]  # fmt: skip
        queues.append(interleaved)
    chosen: set[str] = set()
    depth = 0
    while len(chosen) < n:
        for queue in queues:
            if depth < len(queue) and len(chosen) < n:
                chosen.add(queue[depth].id)
        depth += 1
    return [item for item in items if item.id in chosen]


def without(items: list[SuiteItem], metrics: set[str]) -> list[SuiteItem]:
    """``items`` less those graded by one of ``metrics``."""
    return [item for item in items if item.metric not in metrics]
