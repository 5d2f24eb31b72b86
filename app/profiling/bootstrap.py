"""``switchboard profiles bootstrap``: profile catalog models on a graded suite.

The run: choose the models (default: every catalog model that can be called: key set, or
local), take the suite (or a stratified ``--limit`` sample of it), see what the store in the
output directory already holds, print the estimated cost of the rest and ask before spending
(unless ``--yes``), then send each missing (model, item) call through the service's adapters
and gateway, at most ``--concurrency`` at a time, grade each reply, and store it at once.
Open-ended items are sent only with ``--judge`` (without one they cannot be graded, so they
are skipped and counted). Paid calls stop cleanly once the next one might pass
``--budget-usd``; what was answered is kept. At the end ``labelled.jsonl`` and the profiles are
rebuilt from every model's stored answers, and a summary table is printed.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from app.catalog import Catalog, ModelEntry, load_catalog
from app.embedding.encoder import count_tokens, load_encoder
from app.errors import ConfigError, UpstreamAuthError, UpstreamError
from app.profiling import judge as judging
from app.profiling import spend
from app.profiling.fleet import Fleet, open_fleet
from app.profiling.graders import JUDGED, grade
from app.profiling.output import final_score, summary_rows, write_outputs
from app.profiling.progress import Progress, summary
from app.profiling.sandbox import sandbox_layers
from app.profiling.spend import Budget, is_free, worst_case_usd
from app.profiling.store import Answer, AnswerStore, Judgement
from app.profiling.suite import Suite, SuiteItem, load_suite, stratified_sample
from app.schemas import ChatMessage, ChatRequest
from app.settings import Settings

GIVE_UP_AFTER = 3
"""Consecutive failed calls (each already retried by the gateway) after which a model is dropped."""
MIN_OUTPUT = 64


@dataclass(frozen=True)
class Options:
    out: Path
    catalog: Path | None = None
    models: list[str] | None = None
    suite: str = "default"
    limit: int | None = None
    budget_usd: float = 5.0
    concurrency: int = 8
    judge: str | None = None
    yes: bool = False


@dataclass
class Plan:
    suite: Suite
    items: list[SuiteItem]
    models: list[ModelEntry]
    judge: ModelEntry | None
    pending: dict[str, list[SuiteItem]]
    to_judge: list[tuple[str, SuiteItem]]
    skipped: Counter[str] = field(default_factory=Counter)
    stored: int = 0


def choose_models(catalog: Catalog, names: list[str] | None) -> list[ModelEntry]:
    """The named models, or every model that can be called now; ``ConfigError`` otherwise."""
    if not names:
        chosen = [m for m in catalog.models if not m.missing_key()]
        if not chosen:
            raise ConfigError("no catalog model can be called: set a provider key, or add one")
        return chosen
    chosen = []
    for name in names:
        entry = catalog.get(name)
        if entry is None:
            raise ConfigError(f"model {name!r} is not in the catalog; known: {catalog.ids}")
        if entry.missing_key():
            raise ConfigError(f"model {name!r} needs {entry.api_key_env}, which is not set")
        chosen.append(entry)
    return chosen


def output_limit(entry: ModelEntry, item: SuiteItem) -> int:
    """``max_tokens`` for this call: the grader's limit, within the model's context window."""
    room = entry.context_window - count_tokens(item.prompt) - MIN_OUTPUT
    return min(spend.max_tokens(item.metric), room)


def make_plan(options: Options, catalog: Catalog, store: AnswerStore) -> Plan:
    suite = load_suite(options.suite)
    models = choose_models(catalog, options.models)
    judge = choose_models(catalog, [options.judge])[0] if options.judge else None
    skipped: Counter[str] = Counter()
    gradable = suite.items
    if judge is None:
        gradable = [i for i in suite.items if i.metric not in JUDGED]
        if len(gradable) < len(suite.items):
            skipped["open-ended (need --judge)"] = len(suite.items) - len(gradable)
    items = stratified_sample(gradable, options.limit)
    plan = Plan(suite, items, models, judge, {}, [], skipped)
    for entry in models:
        todo = []
        for item in items:
            stored = store.answer(entry.id, item.id, suite.version)
            if stored is not None:
                plan.stored += 1
                judged = judge and store.judgement(judge.id, entry.id, item.id, suite.version)
                if judge and item.metric in JUDGED and stored.score is None and not judged:
                    plan.to_judge.append((entry.id, item))
            elif output_limit(entry, item) < MIN_OUTPUT:
                skipped["too long for the context window"] += 1
            else:
                todo.append(item)
        plan.pending[entry.id] = todo
    return plan


def estimate(plan: Plan) -> tuple[str, float]:
    """The cost table shown before spending, and the estimated paid total."""
    lines = [f"{'model':<32} {'calls':>6} {'prompt tok':>11} {'output tok':>11} {'est. cost':>11}"]
    total = 0.0
    for entry in plan.models:
        items = plan.pending[entry.id]
        prompt = sum(count_tokens(i.prompt) for i in items)
        output = sum(min(spend.expected_output(i.metric), output_limit(entry, i)) for i in items)
        usd = sum(
            spend.estimate_usd(entry, i.prompt, spend.expected_output(i.metric)) for i in items
        )
        total += usd
        cost = "free" if is_free(entry) else f"${usd:.4f}"
        lines.append(f"{entry.id:<32} {len(items):>6} {prompt:>11,} {output:>11,} {cost:>11}")
    if plan.judge is not None:
        judged = sum(1 for e in plan.models for i in plan.pending[e.id] if i.metric in JUDGED)
        judged += len(plan.to_judge)
        filler = "x" * 4 * spend.JUDGE_PROMPT_TOKENS
        usd = judged * spend.estimate_usd(plan.judge, filler, spend.JUDGE_EXPECTED_OUTPUT)
        total += usd
        cost = "free" if is_free(plan.judge) else f"${usd:.4f}"
        lines.append(f"{'judge ' + plan.judge.id:<32} {judged:>6} {'':>11} {'':>11} {cost:>11}")
    lines.append(f"{'total (paid models)':<32} {'':>30} {'$' + f'{total:.4f}':>11}")
    return "\n".join(lines), total


def confirm(total_usd: float, options: Options, stdin: TextIO) -> None:
    """Ask before paid calls; refuse without a terminal unless ``--yes``."""
    if options.yes or total_usd <= 0:
        return
    if not stdin.isatty():
        raise ConfigError(
            "this run makes paid calls and stdin is not a terminal to confirm them: "
            "rerun with --yes to go ahead"
        )
    reply = input(f"this run will spend about ${total_usd:.4f} (never more than "
                  f"${options.budget_usd:.2f}); go ahead? [y/N] ")  # fmt: skip
    if reply.strip().lower() not in ("y", "yes"):
        raise ConfigError("cancelled: nothing was sent")


class _Dropped(Exception):
    """A queued call to a model the run has stopped calling."""


@dataclass(frozen=True)
class Called:
    """What one call returned and cost."""

    reply: str
    cost: float
    latency_ms: float
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    estimated: bool = False
    """True when the provider reported no usage (the cost is our token estimate)."""


class Runner:
    """Sends the planned calls, grades and stores each answer as it arrives."""

    def __init__(self, plan: Plan, fleet: Fleet, store: AnswerStore, budget: Budget,
                 progress: Progress, concurrency: int) -> None:  # fmt: skip
        self.plan, self.fleet, self.store, self.budget = plan, fleet, store, budget
        self.progress = progress
        self.slots = asyncio.Semaphore(concurrency)
        # A llama.cpp server answers one request at a time: queueing more only runs their
        # timeouts down while they wait. One call in flight per local server.
        self.local = {m: asyncio.Semaphore(1) for m, e in fleet.entries.items() if e.launch}
        self.failures: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.dropped: dict[str, str] = {}
        self.settled = asyncio.Condition()

    async def run(self) -> None:
        # Item-major order: the models advance together, so a budget that runs out leaves
        # every model answered on the same prompts rather than the first model on all of them.
        pending = [(m, items) for m, items in self.plan.pending.items() if m in self.fleet.entries]
        longest = max((len(items) for _, items in pending), default=0)
        jobs = [self._answer(self.fleet.entries[m], items[i])
                for i in range(longest) for m, items in pending if i < len(items)]  # fmt: skip
        jobs += [self._judge(model, item) for model, item in self.plan.to_judge]
        await asyncio.gather(*jobs)

    async def _call(self, entry: ModelEntry, prompt: str, limit: int) -> Called:
        """One call through the gateway, its reservation settled with what it really cost."""
        local = self.local.get(entry.id)
        if local is None:
            return await self._send(entry, prompt, limit)
        async with local:
            if entry.id in self.dropped:  # dropped while this call queued for the server
                raise _Dropped(entry.id)
            return await self._send(entry, prompt, limit)

    async def _send(self, entry: ModelEntry, prompt: str, limit: int) -> Called:
        reserved = 0.0 if is_free(entry) else worst_case_usd(entry, prompt, limit)
        request = ChatRequest(model=entry.id, messages=[ChatMessage(role="user", content=prompt)],
                              max_tokens=limit, temperature=0.0)  # fmt: skip
        started = time.perf_counter()
        try:
            completion, _ = await self.fleet.gateway.complete(request, [entry.id])
        except UpstreamError:
            await self._settle(reserved, 0.0)
            raise
        except BaseException:  # cancelled (Ctrl-C): release the reservation, wake no one
            self.budget.settle(reserved, 0.0)
            raise
        latency_ms = (time.perf_counter() - started) * 1000
        reply = (completion.choices[0].message.content or "") if completion.choices else ""
        usage = completion.usage
        if usage is not None and (usage.prompt_tokens or usage.completion_tokens):
            cost = entry.cost_usd(usage.prompt_tokens, usage.completion_tokens)
            await self._settle(reserved, cost)
            return Called(reply, cost, latency_ms, usage.prompt_tokens, usage.completion_tokens)
        # No usage reported: record our estimate, but let the budget count the worst case.
        cost = entry.cost_usd(count_tokens(prompt), count_tokens(reply))
        await self._settle(reserved, max(reserved, cost))
        return Called(reply, cost, latency_ms, estimated=True)

    async def _admit(self, entry: ModelEntry, prompt: str, limit: int) -> bool:
        """Reserve the call's worst case; while calls are in flight, wait for them to settle.

        Only when nothing is in flight and the call still does not fit is the budget spent:
        then no paid call starts any more, and the run ends with what it has.
        """
        if entry.id in self.dropped:
            return False
        if is_free(entry):
            return True
        worst = worst_case_usd(entry, prompt, limit)
        async with self.settled:
            while not self.budget.reserve(worst):
                if self.budget.exhausted or self.budget.holds == 0:
                    self.budget.exhausted = True
                    self._budget_reached()
                    return False
                await self.settled.wait()
        return True

    def _budget_reached(self) -> None:
        for entry in self.fleet.entries.values():
            if not is_free(entry) and entry.id not in self.dropped:
                self.dropped[entry.id] = "budget reached"
                for line in (entry.id, f"judge {entry.id}"):
                    self.progress.note(line, "stopped: budget reached")

    async def _settle(self, reserved: float, actual: float) -> None:
        self.budget.settle(reserved, actual)
        async with self.settled:
            self.settled.notify_all()

    def _failed(self, entry: ModelEntry, label: str, exc: UpstreamError) -> None:
        self.failures[entry.id] += 1
        self.errors[f"{entry.id}: {exc.message[:120]}"] += 1
        self.progress.error(label)
        if isinstance(exc, UpstreamAuthError) or self.failures[entry.id] >= GIVE_UP_AFTER:
            self.dropped.setdefault(entry.id, exc.message)
            self.progress.note(label, f"gave up: {exc.message[:80]}")

    async def _answer(self, entry: ModelEntry, item: SuiteItem) -> None:
        limit = output_limit(entry, item)
        async with self.slots:
            if not await self._admit(entry, item.prompt, limit):
                return
            try:
                called = await self._call(entry, item.prompt, limit)
            except UpstreamError as exc:
                self._failed(entry, entry.id, exc)
                return
            except _Dropped:
                return
            self.failures[entry.id] = 0
            graded = await asyncio.to_thread(grade, item, called.reply)
            self.store.add(Answer(entry.id, item.id, self.plan.suite.version, called.reply,
                                  graded.score, graded.reason, called.cost, called.latency_ms,
                                  called.prompt_tokens, called.completion_tokens,
                                  called.estimated))  # fmt: skip
            self.progress.record(entry.id, graded.score, called.cost)
        if self.plan.judge is not None and item.metric in JUDGED:
            await self._judge(entry.id, item)

    async def _judge(self, model: str, item: SuiteItem) -> None:
        judge = self.plan.judge
        answer = self.store.answer(model, item.id, self.plan.suite.version)
        if judge is None or answer is None:
            return
        label = f"judge {judge.id}"
        prompt = judging.judge_prompt(item, answer.reply)
        async with self.slots:
            if not await self._admit(judge, prompt, spend.JUDGE_MAX_TOKENS):
                return
            try:
                called = await self._call(judge, prompt, spend.JUDGE_MAX_TOKENS)
            except UpstreamError as exc:
                self._failed(judge, label, exc)
                return
            except _Dropped:
                return
            graded = judging.parse_verdict(called.reply)
            self.store.add(Judgement(judge.id, model, item.id, self.plan.suite.version,
                                     graded.score, graded.reason, called.cost))  # fmt: skip
            self.progress.record(label, graded.score, called.cost)


def _progress(plan: Plan, store: AnswerStore) -> Progress:
    totals = {e.id: len(plan.items) for e in plan.models}
    judged = sum(1 for e in plan.models for i in plan.pending[e.id] if i.metric in JUDGED)
    if plan.judge is not None and judged + len(plan.to_judge):
        totals[f"judge {plan.judge.id}"] = judged + len(plan.to_judge)
    progress = Progress(totals)
    for entry in plan.models:
        stored = [store.answer(entry.id, i.id, plan.suite.version) for i in plan.items]
        progress.resume(entry.id, [final_score(store, a, None) for a in stored if a is not None])
    return progress


async def bootstrap(
    options: Options, settings: Settings, out: TextIO = sys.stdout, stdin: TextIO = sys.stdin
) -> None:
    """Run a bootstrap to the end (or to the budget); ``ConfigError`` for what a user must fix."""
    catalog = load_catalog(options.catalog or settings.catalog)
    choose_models(catalog, options.models)  # a typo fails before anything is created
    with AnswerStore(options.out) as store:
        plan = make_plan(options, catalog, store)
        table, total = estimate(plan)
        print(f"suite {plan.suite.name} (version {plan.suite.version}): {len(plan.items)} of "
              f"{len(plan.suite.items)} items; {plan.stored} answers already stored in "
              f"{options.out}", file=out)  # fmt: skip
        if any(i.metric == "python_tests" for i in plan.items):
            print("code is graded in a sandbox: " + ", ".join(sandbox_layers()), file=out)
        print(table, file=out, flush=True)
        confirm(total, options, stdin)
        budget = Budget(options.budget_usd)
        callable_models = [*plan.models, *([plan.judge] if plan.judge else [])]
        async with open_fleet(list({e.id: e for e in callable_models}.values()), settings) as fleet:
            for model, reason in fleet.failed.items():
                print(f"not profiled: {model}: {reason}", file=out)
            progress = _progress(plan, store)
            runner = Runner(plan, fleet, store, budget, progress, options.concurrency)
            try:
                await runner.run()
            finally:
                progress.close()
        _finish(options, settings, plan, store, catalog, budget, runner, out)


def _finish(options: Options, settings: Settings, plan: Plan, store: AnswerStore,
            catalog: Catalog, budget: Budget, runner: Runner, out: TextIO) -> None:  # fmt: skip
    encoder = load_encoder(settings.embedding_model, settings.embedding_backend, settings.cache_dir)
    judge = plan.judge.id if plan.judge else None
    written = write_outputs(options.out, store, plan.suite, catalog, encoder, judge,
                            settings.cache_dir)  # fmt: skip
    rows = summary_rows(store, plan.items, plan.suite.version, judge)
    skipped = Counter(plan.skipped)
    for row in rows:
        if row.score is None:
            skipped["answers not graded"] += 1
    print("\n" + summary(rows, store.models(plan.suite.version), dict(skipped)), file=out)
    print(f"\npaid spend this run: ${budget.spent_usd:.4f} (budget ${options.budget_usd:.2f})",
          file=out)  # fmt: skip
    for error, count in runner.errors.most_common(10):
        print(f"failed calls (not stored, retried on the next run): {count} x {error}", file=out)
    for model, reason in runner.dropped.items():
        print(f"{model}: stopped early ({reason}); rerun to continue", file=out)
    if store.other_versions(plan.suite.version):
        print(f"note: {store.other_versions(plan.suite.version)} stored answers belong to "
              "another suite version and are not used", file=out)  # fmt: skip
    if written.profiles:
        print(f"profiles: {written.prompts} prompts x {len(written.models)} models in "
              f"{options.out}; serve them with SWITCHBOARD_PROFILES={options.out}",
              file=out)  # fmt: skip
    else:
        print("no graded answers yet: no profiles written", file=out)
