"""charge_rules.decide and estimates.coverage: R25's order, R11's limit, holds, tables of cases."""

from datetime import UTC, datetime

import pytest

from app.errors import Refused
from app.kinds import RunStatus
from app.usage.estimates import coverage
from app.usage.pricing import Cost
from app.usage.rules import Debit, LimitState, RunState, WorkspaceMeters, decide

U = 10_000  # units per Data Credit
STOP = datetime(2025, 1, 31, 10, 0, tzinfo=UTC)


def meters(actions: int = 100, balance: int = 100 * U, held: int = 0) -> WorkspaceMeters:
    return WorkspaceMeters(actions, balance, held)


def limit(value: int | None = None, spent: int = 0) -> LimitState:
    return LimitState("Leads", value, spent)


def run(budget: int | None = None, spent: int = 0, hold: int = 0, **kw) -> RunState:
    return RunState(kw.get("status", RunStatus.RUNNING), kw.get("ended_at"), budget, spent, hold)


# (cost, meters, limit, run) -> the refusal R25 names first, or the debit.
CASES = [
    ("fits", Cost(10, 5 * U), meters(), limit(), None, Debit(10, 5 * U, 0, False)),
    ("actions first", Cost(101, 500 * U), meters(), limit(0), run(0), "ACTIONS_EXHAUSTED"),
    ("credits second", Cost(1, 101 * U), meters(), limit(0), run(0), "INSUFFICIENT_DATA_CREDITS"),
    (
        "limit third",
        Cost(1, 11 * U),
        meters(),
        limit(10 * U),
        run(0),
        "WORKBOOK_SPEND_LIMIT_REACHED",
    ),
    ("budget last", Cost(1, 2 * U), meters(), limit(10 * U), run(U), "RUN_BUDGET_EXCEEDED"),
    ("exact actions", Cost(100, 0), meters(), limit(), None, Debit(100, 0, 0, False)),
    ("exact credits", Cost(1, 100 * U), meters(), limit(), None, Debit(1, 100 * U, 0, False)),
    (
        "held not available",
        Cost(1, 60 * U),
        meters(held=50 * U),
        limit(),
        None,
        "INSUFFICIENT_DATA_CREDITS",
    ),
    (
        "own hold counts",
        Cost(1, 60 * U),
        meters(held=50 * U),
        limit(),
        run(hold=50 * U),
        Debit(1, 60 * U, 50 * U, False),
    ),
    (
        "limit reached, 0 credits",
        Cost(1, 0),
        meters(),
        limit(5 * U, 5 * U),
        None,
        "WORKBOOK_SPEND_LIMIT_REACHED",
    ),
    ("limit of 0", Cost(1, 0), meters(), limit(0), None, "WORKBOOK_SPEND_LIMIT_REACHED"),
    (
        "up to the limit",
        Cost(1, 5 * U),
        meters(),
        limit(10 * U, 5 * U),
        None,
        Debit(1, 5 * U, 0, True),
    ),
    ("exact budget", Cost(1, 3 * U), meters(), limit(), run(4 * U, U), Debit(1, 3 * U, 0, False)),
]


@pytest.mark.parametrize(("name", "cost", "m", "lim", "r", "expected"), CASES)
def test_r25_decide_names_the_first_refusal_in_order(name, cost, m, lim, r, expected):
    if isinstance(expected, Debit):
        assert decide(cost, True, m, lim, r, None) == expected, name
    else:
        with pytest.raises(Refused) as refused:
            decide(cost, True, m, lim, r, None)
        assert refused.value.code.value == expected, name


def test_r03_free_work_fits_anything_but_a_stopped_run():
    exhausted = meters(actions=0, balance=0)
    assert decide(Cost(0, 0), False, exhausted, limit(0), run(0), None) == Debit(0, 0, 0, False)
    stopped = run(status=RunStatus.STOPPED, ended_at=STOP)
    with pytest.raises(Refused) as refused:
        decide(Cost(0, 0), False, exhausted, limit(), stopped, None)
    assert refused.value.code.value == "RUN_STOPPED"
    before = datetime(2025, 1, 31, 9, 59, tzinfo=UTC)
    assert decide(Cost(1, U), True, meters(), limit(), stopped, before).credits == U


@pytest.mark.parametrize(
    ("cost", "billable", "m", "lim", "flags", "refusal"),
    [
        (Cost(10, U), True, meters(), None, (True, True, True), None),
        (Cost(101, 200 * U), True, meters(), limit(0), (False, False, False), "ACTIONS_EXHAUSTED"),
        (Cost(101, 0), True, meters(), limit(0), (False, True, False), "ACTIONS_EXHAUSTED"),
        (Cost(1, 0), True, meters(), limit(0), (True, True, False), "WORKBOOK_SPEND_LIMIT_REACHED"),
        (
            Cost(1, 50 * U),
            True,
            meters(held=60 * U),
            limit(100 * U),
            (True, False, True),
            "INSUFFICIENT_DATA_CREDITS",
        ),
        (Cost(0, 0), False, meters(actions=0), limit(0), (True, True, True), None),
    ],
)
def test_r07_coverage_flags_come_from_the_charge_rules(cost, billable, m, lim, flags, refusal):
    c = coverage(cost, billable, m, lim)
    assert (c.actions_covered, c.credits_covered, c.limit_covered) == flags
    assert (c.refusal.value if c.refusal else None, c.covered) == (refusal, refusal is None)
