"""The decision log: what an entry says, what the savings add up to, and that it never blocks
or fails the call it records."""

from __future__ import annotations

import asyncio
import logging

import pytest

from app.catalog import Catalog, ModelEntry
from app.pipeline.decision_log import BUCKET_S, Call, DecisionLog
from app.schemas import Usage
from app.selection.selector import Candidate, Decision
from app.state import JsonDict, StateUnavailable
from app.state.memory import MemoryStore

NOW = 1_700_000_000.0 - 1_700_000_000.0 % 3600 + 1800  # half past some hour


def _model(model_id: str, price_in: float, price_out: float) -> ModelEntry:
    return ModelEntry(id=model_id, adapter="openai_compat", base_url="http://127.0.0.1:9/v1",
                      price={"input_per_mtok": price_in, "output_per_mtok": price_out},
                      context_window=4096)  # fmt: skip


CATALOG = Catalog(models=[_model("cheap", 0.1, 0.2), _model("strong", 10.0, 30.0),
                          _model("vision-only", 50.0, 100.0)])  # fmt: skip


def _decision(chosen: str = "cheap") -> Decision:
    return Decision(
        decision_id="dec_1",
        model=chosen,
        capabilities=["json"],
        cost_weight=20.0,
        prompt_tokens=100,
        candidates=[
            Candidate("cheap", 0.6, 0.00004, 0.599, True, "chosen"),
            Candidate("strong", 0.9, 0.0091, 0.72, True, "lower utility"),
            Candidate("vision-only", 0.99, 0.03, 0.39, False, "lacks vision"),
        ],
        order=["cheap", "strong"],
    )


def _call(**changes: object) -> Call:
    fields: dict[str, object] = {
        "decision": _decision(), "model": "cheap", "key_name": "team-a", "latency_s": 0.5,
        "overhead_s": 0.004, "cost_usd": 0.00005,
        "usage": Usage(prompt_tokens=100, completion_tokens=200, total_tokens=300),
    }  # fmt: skip
    return Call(**(fields | changes))


def test_an_entry_says_where_the_call_went_and_what_the_strongest_model_would_cost() -> None:
    entry = DecisionLog(MemoryStore(), CATALOG).entry(_call(fallbacks=["x"]), NOW)
    assert entry == {
        "ts": NOW, "decision_id": "dec_1", "key": "team-a", "model": "cheap",
        "capabilities": ["json"], "latency_ms": 500.0, "overhead_ms": 4.0, "cost_usd": 0.00005,
        # the strongest *eligible* candidate, priced with the call's real usage
        "strongest_model": "strong", "strongest_cost_usd": (100 * 10.0 + 200 * 30.0) / 1e6,
        "fallbacks": ["x"], "cache_hit": False, "streamed": False, "api": "chat",
            "error": None,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "strongest"),
    [({"usage": None}, ("strong", 0.0091)),  # no usage: the selector's estimate
     ({"model": "strong", "cost_usd": 0.007}, ("strong", 0.007)),  # it was the strongest
     ({"decision": None, "model": "strong", "cost_usd": 0.007}, (None, 0.007)),  # named model
     ({"error": "upstream_timeout", "cost_usd": 0.0}, (None, 0.0)),
     ({"decision": None, "cache_hit": True, "cost_usd": 0.0}, (None, 0.0))],
)  # fmt: skip
def test_only_routed_answered_calls_claim_savings(
    changes: dict[str, object], strongest: tuple[str | None, float]
) -> None:
    assert DecisionLog(MemoryStore(), CATALOG).strongest(_call(**changes)) == strongest


async def test_savings_add_up_per_window_and_per_model() -> None:
    log = DecisionLog(MemoryStore(), CATALOG)
    log.write(_call(), NOW)
    log.write(_call(), NOW - 600)
    log.write(_call(model="strong", cost_usd=0.007), NOW - 3 * 3600)  # in the day, not the hour
    log.write(_call(), NOW - 30 * 3600)  # older than a day: not counted
    await log.drain()
    savings = await log.savings(NOW)
    strong_cost = (100 * 10.0 + 200 * 30.0) / 1e6
    hour, day = savings["windows"]["hour"], savings["windows"]["day"]
    assert hour == {
        "calls": 2, "cost_usd": 0.0001, "strongest_cost_usd": round(2 * strong_cost, 9),
        "saved_usd": round(2 * strong_cost - 0.0001, 9),
        "models": [{"model": "cheap", "calls": 2, "share": 1.0, "cost_usd": 0.0001,
                    "strongest_cost_usd": round(2 * strong_cost, 9)}],
    }  # fmt: skip
    assert day["calls"] == 3 and day["cost_usd"] == 0.0071
    assert [(m["model"], m["calls"], round(m["share"], 3)) for m in day["models"]] == [
        ("cheap", 2, 0.667), ("strong", 1, 0.333)]  # fmt: skip
    timeline = savings["timeline"]
    assert all(p["start"] % 3600 == 0 for p in timeline) and timeline[-1]["start"] == NOW - 1800
    assert sum(p["calls"] for p in timeline) == 3
    assert savings["bucket_s"] == BUCKET_S


async def test_recent_entries_newest_first_and_filtered_by_model() -> None:
    log = DecisionLog(MemoryStore(), CATALOG)
    for i, model in enumerate(["cheap", "strong", "cheap"]):
        log.write(_call(model=model), NOW + i)
        await log.drain()
    assert [e["ts"] for e in await log.recent(10)] == [NOW + 2, NOW + 1, NOW]
    assert [e["ts"] for e in await log.recent(1, "cheap")] == [NOW + 2]


class _BrokenStore(MemoryStore):
    async def log_decision(self, entry: JsonDict, max_entries: int, ttl_s: float) -> None:
        raise StateUnavailable("shared state (Redis) is unavailable: ConnectionError")


class _SlowStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()

    async def log_decision(self, entry: JsonDict, max_entries: int, ttl_s: float) -> None:
        await self.release.wait()
        await super().log_decision(entry, max_entries, ttl_s)


async def test_a_failing_store_costs_a_warning_never_the_call(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = DecisionLog(_BrokenStore(), CATALOG)
    with caplog.at_level(logging.WARNING, logger="app.pipeline.decision_log"):
        log.write(_call(), NOW)  # returns at once, raises nothing
        await log.drain()
    assert "entry not stored (StateUnavailable" in caplog.text


async def test_writes_never_wait_and_pile_up_only_to_a_bound(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = _SlowStore()
    log = DecisionLog(store, CATALOG, max_pending=3)
    with caplog.at_level(logging.WARNING, logger="app.pipeline.decision_log"):
        for i in range(5):
            log.write(_call(), NOW + i)
    assert "one entry dropped" in caplog.text
    store.release.set()
    await log.drain()
    assert len(await log.recent(10)) == 3


def test_a_write_without_an_event_loop_is_dropped_not_raised() -> None:
    log = DecisionLog(MemoryStore(), CATALOG)
    log.write(_call(), NOW)  # e.g. a sync caller in a worker thread
