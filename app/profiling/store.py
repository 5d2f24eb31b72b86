"""The answer store: every answer and judgement of a bootstrap, appended as it arrives.

``DIR/answers.jsonl`` holds one JSON object a line, flushed and fsynced before the next call's
result is taken, so an interrupted run (Ctrl-C, kill, power loss) loses at most the calls that
were in flight. Answers are keyed by (model, item id, suite version), judgements by (judge,
model, item id, suite version); a rerun sends only what is missing, so it never pays twice.
A line cut off by a kill is dropped on the next open. ``DIR/.lock`` keeps two runs from
writing the same store at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Final

from app.errors import ConfigError

STORE: Final = "answers.jsonl"


@dataclass(frozen=True)
class Answer:
    """One model's reply to one item, graded, with what it cost."""

    model: str
    item: str
    suite: str
    reply: str
    score: float | None
    reason: str
    cost_usd: float
    latency_ms: float
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_estimated: bool = False
    """True when the provider reported no usage and the cost is our token estimate."""
    type: str = field(default="answer")


@dataclass(frozen=True)
class Judgement:
    """A judge model's grade of one stored answer."""

    judge: str
    model: str
    item: str
    suite: str
    score: float | None
    reason: str
    cost_usd: float
    type: str = field(default="judgement")


class AnswerStore:
    """The store of one output directory. Use as a context manager (it holds the lock)."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / STORE
        self.directory = directory
        self.answers: dict[tuple[str, str, str], Answer] = {}
        self.judgements: dict[tuple[str, str, str, str], Judgement] = {}
        self._file: IO[str] | None = None
        self._lock: IO[str] | None = None

    def __enter__(self) -> AnswerStore:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = (self.directory / ".lock").open("w")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise ConfigError(f"another bootstrap is writing {self.directory}") from None
        self._load()
        self._file = self.path.open("a", encoding="utf-8")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._file is not None:
            self._file.close()
        if self._lock is not None:
            self._lock.close()

    def _load(self) -> None:
        if not self.path.exists():
            return
        raw = self.path.read_bytes()
        complete = raw[: raw.rfind(b"\n") + 1]
        if len(complete) != len(raw):  # a line cut off by a kill: drop it
            with self.path.open("r+b") as fh:
                fh.truncate(len(complete))
        for line in complete.decode("utf-8").split("\n"):
            if line.strip():
                with contextlib.suppress(ValueError, TypeError, KeyError):
                    self._index(json.loads(line))

    def _index(self, record: dict[str, object]) -> None:
        if record.get("type") == "judgement":
            judgement = Judgement(**record)  # type: ignore[arg-type]
            key = (judgement.judge, judgement.model, judgement.item, judgement.suite)
            self.judgements[key] = judgement
        else:
            answer = Answer(**record)  # type: ignore[arg-type]
            self.answers[(answer.model, answer.item, answer.suite)] = answer

    def answer(self, model: str, item: str, suite: str) -> Answer | None:
        return self.answers.get((model, item, suite))

    def judgement(self, judge: str, model: str, item: str, suite: str) -> Judgement | None:
        return self.judgements.get((judge, model, item, suite))

    def add(self, record: Answer | Judgement) -> None:
        """Append ``record`` durably (written, flushed and fsynced before this returns)."""
        assert self._file is not None, "open the store with `with AnswerStore(dir) as store`"
        self._file.write(json.dumps(asdict(record), ensure_ascii=False) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())
        self._index(asdict(record))

    def models(self, suite: str) -> list[str]:
        """Models with at least one answer to this suite version, in first-answer order."""
        return list(dict.fromkeys(m for (m, _, s) in self.answers if s == suite))

    def other_versions(self, suite: str) -> int:
        """How many stored answers belong to other suite versions (kept, not used)."""
        return sum(1 for (_, _, s) in self.answers if s != suite)
