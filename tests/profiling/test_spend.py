"""The budget: reservations of worst cases, replaced by real costs."""

from __future__ import annotations

from app.profiling.spend import Budget


def test_reservations_never_let_spend_pass_the_limit() -> None:
    budget = Budget(1.0)
    assert budget.reserve(0.4) and budget.reserve(0.4)
    assert not budget.reserve(0.4), "a third worst case would pass the limit"
    budget.settle(0.4, 0.1)
    assert budget.reserve(0.4)
    assert budget.spent_usd + budget.reserved_usd <= 1.0


def test_in_flight_count_returns_to_zero_whatever_the_float_sums() -> None:
    budget = Budget(10.0)
    amounts = [0.1, 0.2, 0.3, 0.07, 0.013]
    for usd in amounts:
        assert budget.reserve(usd)
    for usd in reversed(amounts):
        budget.settle(usd, usd / 3)
    assert budget.holds == 0 and budget.reserved_usd == 0.0


def test_free_calls_reserve_nothing() -> None:
    budget = Budget(0.0)
    assert budget.reserve(0.0) and budget.holds == 0
