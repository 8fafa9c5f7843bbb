"""Which plan changes take effect at once and which wait for the cycle end (R20, R21, R27, R30)."""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple

from app.catalog import PlanSpec
from app.kinds import BillingInterval
from app.plans.terms import Terms


class ChangeKind(StrEnum):
    NONE = "NONE"  # the current terms again: only withdraws a pending change (R27)
    UPGRADE = "UPGRADE"  # at once, prorated (R20)
    DOWNGRADE = "DOWNGRADE"  # at the cycle end (R21); so is any change of interval (R30)


# A NamedTuple, not a frozen dataclass: two per renewal in the sweep's hot path (renewal_step).
class Choice(NamedTuple):
    """A plan, a credit tier (monthly Data Credits) and a billing interval."""

    plan_code: str
    rank: int
    credit_tier: int
    interval: BillingInterval


def tier_down(current: Choice, target: Choice) -> bool:
    """R17/R29: a renewal at a lower tier is one where the rank or the credits go down."""
    return target.rank < current.rank or target.credit_tier < current.credit_tier


def classify(current: Choice, target: Choice) -> ChangeKind:
    if target == current:
        return ChangeKind.NONE
    if target.interval != current.interval or tier_down(current, target):
        return ChangeKind.DOWNGRADE
    return ChangeKind.UPGRADE


def choice_of(terms: Terms, plans: dict[str, PlanSpec]) -> Choice:
    """The plan's rank beside the terms' tier (0 in a trial) and interval."""
    return Choice(
        terms.plan_code, plans[terms.plan_code].rank, terms.credit_tier or 0, terms.interval
    )
