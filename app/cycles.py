"""Billing-anchor date arithmetic (R14). Pure functions of the anchor; nothing drifts."""

from __future__ import annotations

import calendar
from datetime import datetime

from app.kinds import BillingInterval


def add_months(anchor: datetime, months: int) -> datetime:
    """The anchor moved by whole months, the day clamped to the month's last day.

    Always computed from the original anchor, so a 31st anchor gives Feb 28 then Mar 31.
    """
    year, month0 = divmod(anchor.month - 1 + months, 12)
    year += anchor.year
    day = min(anchor.day, calendar.monthrange(year, month0 + 1)[1])
    return anchor.replace(year=year, month=month0 + 1, day=day)


def months_in(interval: BillingInterval) -> int:
    """Months in one billing cycle: annual plans renew yearly (R17)."""
    return 12 if interval is BillingInterval.ANNUAL else 1
