"""R38's pure parts: which instants are answered, and the snapshot the readings make."""

from datetime import UTC, datetime, timedelta

import pytest

from app.errors import InvalidInput
from app.history.balance import (
    READ_AT,
    READ_LATEST,
    Readings,
    check_instant,
    check_not_future,
    snapshot_of,
)
from app.history.plan_periods import plan_changes
from app.kinds import BillingInterval
from app.plans.terms import Terms

CREATED = datetime(2025, 1, 31, 10, tzinfo=UTC)
NOW = datetime(2025, 3, 1, tzinfo=UTC)
US = timedelta(microseconds=1)


def test_r38_from_the_creation_on_and_not_in_the_future():
    assert check_instant(CREATED, CREATED, NOW) is False  # the creation's instant is answered
    assert check_instant(NOW, CREATED, NOW) is False
    assert check_instant(NOW + US, CREATED, NOW) is True  # past the clock: ask the ledger
    with pytest.raises(InvalidInput, match="before the workspace was created"):
        check_instant(CREATED - US, CREATED, NOW)


def test_r38_past_the_clock_is_answered_up_to_the_latest_entry():
    """R33: `tally jobs run --now` may have moved the ledger past the server's clock."""
    ahead = NOW + timedelta(days=40)
    check_not_future(ahead, NOW, ahead)
    check_not_future(NOW + US, NOW, ahead)
    for latest in (ahead, None):
        with pytest.raises(InvalidInput, match="in the future"):
            check_not_future(ahead + US, NOW, latest)


def readings(**values: object) -> Readings:
    base = dict(
        created_at=CREATED,
        credits=25_000_000,
        held=1_000_000,
        actions_remaining=14_000,
        plan_code="launch",
        actions_capacity=15_000,
    )
    return Readings(**{**base, **values})  # type: ignore[arg-type]


def test_r38_a_snapshot_is_the_readings_with_used_and_available_derived():
    s = snapshot_of(NOW, readings())
    assert (s.at, s.plan_code, s.actions_capacity, s.actions_used) == (NOW, "launch", 15_000, 1_000)
    assert (s.credits, s.held, s.available) == (25_000_000, 1_000_000, 24_000_000)


def test_r38_a_meter_never_moved_is_zero():
    s = snapshot_of(NOW, readings(held=None, credits=None, actions_remaining=None))
    assert (s.credits, s.held, s.available, s.actions_used) == (0, 0, 0, 15_000)


def test_r38_no_plan_recorded_is_an_error_not_a_guess():
    with pytest.raises(RuntimeError, match="no plan recorded"):
        snapshot_of(NOW, readings(plan_code=None, actions_capacity=None))


def test_r38_each_meter_and_the_plan_is_one_ordered_lookup():
    for meter in ("DATA_CREDITS", "HELD_CREDITS", "ACTIONS"):
        assert f"meter = '{meter}' AND created_at <= $2" in READ_AT
        assert f"meter = '{meter}' ORDER BY created_at DESC, id DESC LIMIT 1" in READ_LATEST
    assert READ_AT.count("ORDER BY created_at DESC, id DESC LIMIT 1") == 3
    assert READ_AT.count("ORDER BY started_at DESC, id DESC LIMIT 1") == 2


def test_r38_a_renewal_step_writes_the_plan_history_only_when_it_changes():
    terms = Terms("launch", 2500, BillingInterval.MONTHLY, 15_000, 25_000_000)
    assert not plan_changes(terms, 15_000, ("launch", 2500, "MONTHLY", 15_000))
    assert plan_changes(terms, 15_000, ("launch", 5000, "MONTHLY", 15_000))
    assert plan_changes(terms, 15_000, ("launch", 2500, "ANNUAL", 15_000))
    assert plan_changes(terms, 15_000, ("launch", 2500, "MONTHLY", 16_000))  # after an upgrade
    assert plan_changes(terms, 15_000, ("growth", None, "MONTHLY", 40_000))
