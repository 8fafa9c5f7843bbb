"""Money: what a cycle, an upgrade's remainder and a top-up cost, in cents (R19, R20, R32).

Money rounds half-up to the cent once per billing charge; everything before that is exact.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from app.catalog import BillingSpec, PlanSpec
from app.kinds import BillingInterval
from app.plans.cycles import fraction_left, months_in
from app.units import CENT_SCALE, CREDIT_SCALE, usd_to_cents


def cycle_price_cents(
    plan: PlanSpec, credit_tier: int, interval: BillingInterval, billing: BillingSpec
) -> int:
    """The plan's base fee plus its monthly credits at the base price, times the months."""
    credits = Decimal(credit_tier) if plan.bill_credits else Decimal(0)
    monthly = Decimal(plan.base_fee_cents) / CENT_SCALE + credits * billing.credit_price_usd
    return usd_to_cents(monthly * months_in(interval))


def prorated_cents(difference_cents: int, start: datetime, end: datetime, now: datetime) -> int:
    """The price difference for the part of the cycle left at `now` (R20, R33)."""
    left, total = fraction_left(start, end, now)
    if total == 0 or difference_cents <= 0:
        return 0
    # Half-up in integers: exact however long the cycle is in microseconds.
    return (2 * difference_cents * left + total) // (2 * total)


def top_up_price_cents(credit_units: int, billing: BillingSpec) -> int:
    """R19: the base credit price plus the premium (0.04 x 1.30 = 0.052 a credit)."""
    per_credit = billing.credit_price_usd * (1 + billing.top_up_premium)
    return usd_to_cents(Decimal(credit_units) / CREDIT_SCALE * per_credit)
