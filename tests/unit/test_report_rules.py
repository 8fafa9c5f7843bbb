"""The operator report's arithmetic (issue 19): ranges, months, used up, shares, rows."""

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from app.errors import InvalidInput
from app.reports.rules import (
    ChargeSum,
    CycleEnd,
    ExpirySum,
    MonthRow,
    PlanRow,
    check_range,
    month_rows,
    months,
    plan_rows,
    share,
    used_up,
)

NEW_YORK = timezone(timedelta(hours=-5))


def at(y, m, d, hh=0, minute=0, tz=UTC):
    return datetime(y, m, d, hh, minute, tzinfo=tz)


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (at(2025, 1, 1), at(2025, 2, 1), ["2025-01"]),  # the end is excluded
        (at(2025, 1, 1), at(2025, 2, 1, 0, 1), ["2025-01", "2025-02"]),
        (at(2025, 1, 31, 23), at(2025, 2, 1, 1), ["2025-01", "2025-02"]),
        (at(2024, 11, 15), at(2025, 2, 15), ["2024-11", "2024-12", "2025-01", "2025-02"]),
        # UTC months, whatever the zone the instants were written in
        (
            at(2025, 1, 31, 20, tz=NEW_YORK),
            at(2025, 2, 28, 20, tz=NEW_YORK),
            ["2025-02", "2025-03"],
        ),
    ],
)
def test_months_are_the_utc_calendar_months_the_range_touches(start, end, expected):
    assert months(start, end) == expected


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        (at(2025, 2, 1), at(2025, 2, 1), "must be after"),
        (at(2025, 2, 1), at(2025, 1, 1), "must be after"),
        (at(2020, 1, 1), at(2025, 1, 6), "longer than 1830 days"),
    ],
)
def test_a_bad_range_is_invalid_input(start, end, message):
    with pytest.raises(InvalidInput, match=message):
        check_range(start, end)


def test_five_years_is_the_longest_range():
    start = at(2020, 1, 1)
    assert check_range(start, start + timedelta(days=1830)) == (start, start + timedelta(1830))


@pytest.mark.parametrize(
    ("actions_left", "expected"),
    [
        (0, True),  # used == capacity at the month's end
        (1, False),
        (15000, False),  # nothing used
        (None, False),  # an empty month (a catch-up's): nothing used
    ],
)
def test_used_up_means_no_actions_left_at_the_end_of_the_month(actions_left, expected):
    assert used_up(CycleEnd("launch", False, actions_left)) is expected


@pytest.mark.parametrize(
    ("part", "whole", "expected"),
    [
        (0, 0, None),
        (0, 5, Decimal("0")),
        (1, 10, Decimal("0.1")),
        (1, 3, Decimal("0.3333")),
        (2, 3, Decimal("0.6667")),  # half-up at the fourth place
        (1, 8, Decimal("0.125")),
        (7, 7, Decimal("1")),
    ],
)
def test_share_rounds_half_up_to_four_places(part, whole, expected):
    assert share(part, whole) == expected


def test_plan_rows_count_each_plan_and_its_trials_apart_and_add_its_money():
    cycles = [
        CycleEnd("launch", False, 0),
        CycleEnd("launch", False, 12),
        CycleEnd("launch", False, 0),
        CycleEnd("growth", True, 0),  # a trial of growth
        CycleEnd("growth", False, None),
        CycleEnd("free", False, 0),
    ]
    charges = [
        ChargeSum("2025-01", "PLAN_FEE", "launch", 18500),
        ChargeSum("2025-02", "PLAN_FEE", "launch", 18500),
        ChargeSum("2025-02", "PRORATION", "growth", 4512),
        ChargeSum("2025-02", "TOP_UP", "launch", 520),
        ChargeSum("2025-01", "PLAN_FEE", "enterprise", 2_400_000),  # money, no cycle in range
    ]
    assert plan_rows(cycles, charges) == [
        PlanRow("enterprise", False, 0, 0, 2_400_000, 0),
        PlanRow("free", False, 1, 1, 0, 0),
        PlanRow("growth", False, 1, 0, 4512, 0),
        PlanRow("growth", True, 1, 1, 0, 0),
        PlanRow("launch", False, 3, 2, 37000, 520),
    ]
    assert plan_rows(cycles, charges)[-1].used_up_share == Decimal("0.6667")
    assert plan_rows(cycles, charges)[0].used_up_share is None


def test_month_rows_list_every_month_with_zeros():
    expiries = [ExpirySum("2025-02", 1_000_000, 0), ExpirySum("2025-03", 25_000_000, 5_000_000)]
    charges = [
        ChargeSum("2025-02", "PLAN_FEE", "launch", 18500),
        ChargeSum("2025-02", "PLAN_FEE", "growth", 49500),
        ChargeSum("2025-02", "TOP_UP", "launch", 5200),
        ChargeSum("2025-03", "PRORATION", "growth", 1),
    ]
    names = ["2025-01", "2025-02", "2025-03", "2025-04"]
    assert month_rows(names, expiries, charges) == [
        MonthRow("2025-01", 0, 0, 0, 0),
        MonthRow("2025-02", 1_000_000, 0, 68000, 5200),
        MonthRow("2025-03", 25_000_000, 5_000_000, 1, 0),
        MonthRow("2025-04", 0, 0, 0, 0),
    ]
