"""Billing-anchor date arithmetic (R14). Pure functions of the anchor; nothing drifts."""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta

from app.kinds import BillingInterval


def add_months(anchor: datetime, months: int) -> datetime:
    """The anchor moved by whole months, the day clamped to the month's last day.

    Always computed from the original anchor, so a 31st anchor gives Feb 28 then Mar 31.
    """
    year, month0 = divmod(anchor.month - 1 + months, 12)
    year += anchor.year
    day = min(anchor.day, _days_in(year, month0 + 1))
    return anchor.replace(year=year, month=month0 + 1, day=day)


def _days_in(year: int, month: int) -> int:
    # calendar.monthrange works out the month's first weekday too: a sweep's hot path.
    if month == 2:
        return 29 if calendar.isleap(year) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def months_in(interval: BillingInterval) -> int:
    """Months in one billing cycle: annual plans renew yearly (R17)."""
    return 12 if interval is BillingInterval.ANNUAL else 1


def months_since(anchor: datetime, boundary: datetime) -> int:
    """How many months after `anchor` a boundary lies (a boundary is `add_months(anchor, n)`).

    Clamping only moves the day within its month, so the month count alone identifies it.
    """
    return (boundary.year - anchor.year) * 12 + boundary.month - anchor.month


def next_boundary(anchor: datetime, boundary: datetime, months: int) -> datetime:
    """The boundary `months` after `boundary`, counted from the anchor so it never drifts."""
    return add_months(anchor, months_since(anchor, boundary) + months)


def fraction_left(start: datetime, end: datetime, now: datetime) -> tuple[int, int]:
    """The part of [start, end) still ahead at `now`, as (numerator, denominator) in
    microseconds, clamped between 0 and 1 (R33: the stored cycle may lie in the past)."""
    total = _micros(end - start)
    left = min(max(_micros(end - now), 0), total)
    return left, total


def _micros(delta: timedelta) -> int:  # whole microseconds, exactly
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
