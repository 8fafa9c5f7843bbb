"""Plan terms: the tier and interval a subscription gets, what a cycle grants (R9, R16–R19)."""

from __future__ import annotations

from dataclasses import dataclass

from app.catalog import PlanSpec
from app.errors import InvalidInput
from app.kinds import BillingInterval
from app.plans.cycles import months_in
from app.units import CREDIT_SCALE

ROLLOVER_CAP_MULTIPLE = 2  # R16, R19


@dataclass(frozen=True)
class Terms:
    """What one subscription cycle gives: Actions per month and Data Credits per month."""

    plan_code: str
    credit_tier: int | None  # whole credits per month; None during a trial
    interval: BillingInterval
    monthly_actions: int
    monthly_credits_units: int

    @property
    def cycle_grant_units(self) -> int:
        """The Data Credits granted at the start of a cycle: a month's, or a year's (R17)."""
        return cycle_grant(self.monthly_credits_units, self.interval)

    @property
    def cap_units(self) -> int:
        """R19: the balance never passes 2x the cycle's grant through a top-up or rollover."""
        return credit_cap(self.monthly_credits_units, self.interval)


def resolve_terms(
    plan: PlanSpec, credit_tier: int | None, interval: BillingInterval | None
) -> Terms:
    """Validate a choice of tier and interval against the plan; fill the defaults (R30)."""
    tier = plan.credit_tiers[0] if credit_tier is None else credit_tier
    if tier not in plan.credit_tiers:
        offered = ", ".join(str(t) for t in plan.credit_tiers)
        raise InvalidInput(f"plan {plan.code} has no credit tier {tier}; choose one of {offered}")
    chosen = interval or plan.default_interval()
    if chosen not in plan.intervals:
        offered = ", ".join(i.value for i in plan.intervals)
        raise InvalidInput(f"plan {plan.code} is not offered {chosen.value}; it is {offered}")
    return Terms(
        plan_code=plan.code,
        credit_tier=tier,
        interval=chosen,
        monthly_actions=plan.monthly_actions,
        monthly_credits_units=tier * CREDIT_SCALE,
    )


def trial_terms(plan: PlanSpec, trial_credits_units: int) -> Terms:
    """R31: a trial has the plan's Actions capacity and a fixed Data Credit grant."""
    return Terms(
        plan_code=plan.code,
        credit_tier=None,
        interval=BillingInterval.MONTHLY,
        monthly_actions=plan.monthly_actions,
        monthly_credits_units=trial_credits_units,
    )


def cycle_grant(monthly_credits_units: int, interval: BillingInterval) -> int:
    return monthly_credits_units * months_in(interval)


def credit_cap(monthly_credits_units: int, interval: BillingInterval) -> int:
    """`dataCredits.cap` of a workspace from its stored terms (R16, R19)."""
    return ROLLOVER_CAP_MULTIPLE * cycle_grant(monthly_credits_units, interval)
