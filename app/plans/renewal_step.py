"""One step of a workspace's life at a month boundary (R14-R18, R21, R29). Pure.

Every boundary is a month after the billing anchor. At each, Actions renew (R15); when it is
also the end of the cycle (a month, a year or the trial) the Data Credits roll over and any
pending change takes effect. The scheduler applies one step at a time, so a workspace that is
months behind catches up period by period, each with its own cap.
"""

from __future__ import annotations

import functools
from datetime import datetime
from enum import StrEnum
from typing import NamedTuple

from app.catalog import BillingSpec, PlanSpec
from app.kinds import BillingInterval, WorkspaceStatus
from app.plans.changes import choice_of, tier_down
from app.plans.cycles import months_in, next_boundary
from app.plans.rollover import CreditRenewal, Ending, carried, renew_credits
from app.plans.terms import Terms, resolve_terms
from app.units import CREDIT_SCALE


class RenewalKind(StrEnum):
    ACTIONS = "ACTIONS"  # a month inside an annual cycle: Actions only
    CYCLE = "CYCLE"  # the end of a cycle: Actions and Data Credits, pending change applied
    TRIAL_END = "TRIAL_END"  # the trial's end: the chosen plan, or free, starts (R18)


# The values a step is planned from and to are NamedTuples: immutable, and built per workspace
# per step by the renewal sweep, where a frozen dataclass's __init__ (a call per field) was a
# tenth of the planning.
class Pending(NamedTuple):
    plan_code: str
    credit_tier: int | None
    interval: BillingInterval | None


class State(NamedTuple):
    """What a renewal reads of a workspace row."""

    plan_code: str
    credit_tier: int | None
    interval: BillingInterval
    status: WorkspaceStatus
    anchor: datetime
    period_start: datetime
    period_end: datetime
    actions_period_end: datetime
    actions_capacity: int
    actions_used: int
    balance: int
    pending: Pending | None


class Step(NamedTuple):
    kind: RenewalKind
    at: datetime  # the boundary: the new period starts here
    terms: Terms  # in force from `at`
    status: WorkspaceStatus
    anchor: datetime
    period_start: datetime
    period_end: datetime
    actions_period_end: datetime
    actions_expired: int  # Actions left unused, gone (R15)
    credits: CreditRenewal | None  # None on an Actions-only month

    @property
    def opens_cycle(self) -> bool:
        return self.credits is not None


def plan_step(state: State, plans: dict[str, PlanSpec], billing: BillingSpec) -> Step:
    """The step due at `state.actions_period_end`."""
    at = state.actions_period_end
    actions_expired = state.actions_capacity - state.actions_used
    current = _catalog_terms(state, plans)
    if at < state.period_end:
        return Step(
            kind=RenewalKind.ACTIONS,
            at=at,
            terms=current,
            status=state.status,
            anchor=state.anchor,
            period_start=state.period_start,
            period_end=state.period_end,
            actions_period_end=next_boundary(state.anchor, at, 1),
            actions_expired=actions_expired,
            credits=None,
        )
    trial = state.status is WorkspaceStatus.TRIALING
    terms = _next_terms(state, plans, billing, current)
    # A trial's end starts a subscription: its anchor is that moment (R14, R18).
    anchor = at if trial else state.anchor
    months = months_in(terms.interval)
    next_month = next_boundary(anchor, at, 1)
    return Step(
        kind=RenewalKind.TRIAL_END if trial else RenewalKind.CYCLE,
        at=at,
        terms=terms,
        status=WorkspaceStatus.ACTIVE,
        anchor=anchor,
        period_start=at,
        period_end=next_month if months == 1 else next_boundary(anchor, at, months),
        actions_period_end=next_month,
        actions_expired=actions_expired,
        credits=_roll_credits(state, plans, billing, current, terms),
    )


def _catalog_terms(state: State, plans: dict[str, PlanSpec]) -> Terms:
    """The catalog's terms for the stored plan and tier: what the next period grants."""
    plan = plans[state.plan_code]
    return _terms(plan.code, state.credit_tier, state.interval, plan.monthly_actions)


# Terms are immutable; a sweep asks for a few, many times. typed: an interval's text and its
# member are equal keys, and the member must come back.
@functools.lru_cache(maxsize=1024, typed=True)
def _terms(
    plan_code: str, credit_tier: int | None, interval: BillingInterval, monthly_actions: int
) -> Terms:
    if credit_tier is None:  # a trial: its grant is what the workspace was given
        return Terms(plan_code, None, interval, monthly_actions, 0)
    return Terms(plan_code, credit_tier, interval, monthly_actions, credit_tier * CREDIT_SCALE)


def _next_terms(
    state: State, plans: dict[str, PlanSpec], billing: BillingSpec, current: Terms
) -> Terms:
    if state.pending is not None:
        p = state.pending
        return resolve_terms(plans[p.plan_code], p.credit_tier, p.interval)
    if state.status is WorkspaceStatus.TRIALING:
        return resolve_terms(plans[billing.free_plan], None, None)
    return current


def _roll_credits(
    state: State, plans: dict[str, PlanSpec], billing: BillingSpec, old: Terms, new: Terms
) -> CreditRenewal:
    free = plans[billing.free_plan]
    if state.status is WorkspaceStatus.TRIALING:
        ending, down = Ending.TRIAL, False
    else:
        ending = Ending.ANNUAL if old.interval is BillingInterval.ANNUAL else Ending.MONTHLY
        down = tier_down(choice_of(old, plans), choice_of(new, plans))
    keep = carried(
        state.balance,
        ending,
        to_free=new.plan_code == free.code,
        tier_down=down,
        keep_on_free=free.credit_tiers[0] * CREDIT_SCALE,
    )
    return renew_credits(state.balance, keep, new.cycle_grant_units, new.cap_units)
