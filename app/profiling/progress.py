"""What a bootstrap shows while it runs, and the table it ends with.

On a terminal, one line per model (done/total, running accuracy, spend, ETA, errors) is redrawn
in place a few times a second; anywhere else (a log, CI) a plain line is printed each time a
model passes another tenth of its work, so logs stay short. No tqdm: it is an optional extra.
"""

from __future__ import annotations

import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TextIO

REDRAW_S = 0.25


@dataclass
class _Line:
    total: int
    done: int = 0
    graded: int = 0
    score: float = 0.0
    spent: float = 0.0
    errors: int = 0
    started: float = field(default_factory=time.monotonic)
    resumed: int = 0
    reported_tenth: int = -1
    note: str = ""

    def render(self, name: str, width: int) -> str:
        accuracy = f"{self.score / self.graded:.2f}" if self.graded else "  - "
        elapsed = time.monotonic() - self.started
        left = self.total - self.done
        fresh = self.done - self.resumed
        eta = "done" if left == 0 else _duration(elapsed / fresh * left) if fresh else "?"
        errors = f"  {self.errors} errors" if self.errors else ""
        note = f"  {self.note}" if self.note else ""
        return (f"{name:<{width}} {self.done:>5}/{self.total:<5} acc {accuracy}  "
                f"${self.spent:.4f}  eta {eta}{errors}{note}")  # fmt: skip


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class Progress:
    """Per-model progress on ``stream`` (a TTY is redrawn in place)."""

    def __init__(self, totals: dict[str, int], stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.lines = {model: _Line(total) for model, total in totals.items()}
        self.width = max((len(m) for m in totals), default=10)
        self._drawn = 0
        self._last_draw = 0.0
        self._draw(force=True)

    def resume(self, model: str, scores: list[float | None]) -> None:
        """Count answers a previous run stored (they do not enter the ETA)."""
        line = self.lines[model]
        line.done = line.resumed = len(scores)
        graded = [s for s in scores if s is not None]
        line.graded, line.score = len(graded), sum(graded)
        self._changed(model, force=True)

    def record(self, model: str, score: float | None, cost_usd: float) -> None:
        line = self.lines[model]
        line.done += 1
        line.spent += cost_usd
        if score is not None:
            line.graded += 1
            line.score += score
        self._changed(model)

    def error(self, model: str) -> None:
        if model in self.lines:
            self.lines[model].errors += 1
            self._changed(model)

    def note(self, model: str, text: str) -> None:
        if model in self.lines:
            self.lines[model].note = text
            self._changed(model, force=True)

    def _changed(self, model: str, force: bool = False) -> None:
        if self.tty:
            self._draw(force)
            return
        line = self.lines[model]
        tenth = line.done * 10 // max(1, line.total)
        if force or tenth > line.reported_tenth:
            line.reported_tenth = tenth
            print(line.render(model, self.width), file=self.stream, flush=True)

    def _draw(self, force: bool = False) -> None:
        if not self.tty:
            return
        now = time.monotonic()
        if not force and now - self._last_draw < REDRAW_S:
            return
        self._last_draw = now
        up = f"\x1b[{self._drawn}F" if self._drawn else ""
        body = "".join(f"\x1b[2K{line.render(m, self.width)}\n" for m, line in self.lines.items())
        self.stream.write(up + body)
        self.stream.flush()
        self._drawn = len(self.lines)

    def close(self) -> None:
        self._draw(force=True)


@dataclass(frozen=True)
class Row:
    """One graded answer, as the summary sees it."""

    model: str
    kind: str
    source: str
    score: float | None
    cost_usd: float
    latency_ms: float
    output_tokens: int | None = None


def _accuracy_table(rows: list[Row], group: str, models: list[str]) -> list[str]:
    cells: dict[tuple[str, str], list[float]] = defaultdict(list)
    for row in rows:
        if row.score is not None:
            cells[(getattr(row, group), row.model)].append(row.score)
    keys = sorted({getattr(r, group) for r in rows})
    lines = [f"| {group} | " + " | ".join(models) + " |", "|---" * (len(models) + 1) + "|"]
    for key in keys:
        values = [cells.get((key, m)) for m in models]
        rendered = [f"{sum(v) / len(v):.2f} ({len(v)})" if v else "-" for v in values]
        lines.append(f"| {key} | " + " | ".join(rendered) + " |")
    return lines


def summary(rows: list[Row], models: list[str], skipped: dict[str, int]) -> str:
    """Accuracy per kind and per source, then mean cost and latency per model (Markdown)."""
    lines = ["accuracy by kind (mean score, graded answers):", ""]
    lines += _accuracy_table(rows, "kind", models)
    if len({r.source for r in rows}) > 1:
        lines += ["", "accuracy by source:", "", *_accuracy_table(rows, "source", models)]
    lines += ["", "| model | answers | graded | mean score | mean cost $ | mean latency ms | "
              "output tok/s |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for model in models:
        mine = [r for r in rows if r.model == model]
        graded = [r.score for r in mine if r.score is not None]
        if not mine:
            continue
        mean = f"{sum(graded) / len(graded):.3f}" if graded else "-"
        cost = sum(r.cost_usd for r in mine) / len(mine)
        latency = sum(r.latency_ms for r in mine) / len(mine)
        timed = [r for r in mine if r.output_tokens]
        seconds = sum(r.latency_ms for r in timed) / 1000
        speed = f"{sum(r.output_tokens or 0 for r in timed) / seconds:.1f}" if seconds else "-"
        lines.append(f"| {model} | {len(mine)} | {len(graded)} | {mean} | {cost:.6f} | "
                     f"{latency:.0f} | {speed} |")  # fmt: skip
    if skipped:
        lines += ["", "skipped (not graded): " + ", ".join(f"{n} {why}" for why, n in
                                                          sorted(skipped.items()))]  # fmt: skip
    return "\n".join(lines)
