"""Auto top-ups inside a charge batch (R37, rules in app.billing.autotopup).

A charge refused for Data Credits buys first when the top-up makes the whole charge fit (every
check of R25 passes with the credits bought); a charge that leaves `available` below the
threshold buys after it. Purchases go into the batch's own writes, so their ledger entries
keep the batch's order and the workspace is updated once.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from app.billing.autotopup import AutoTopUp, amount
from app.billing.charges import bill
from app.billing.money import top_up_price_cents
from app.catalog import BillingSpec
from app.catalog.store import billing_spec
from app.errors import Refused
from app.events import types
from app.events.rules import NewEvent
from app.kinds import BillingInterval, ChargeKind, WorkspaceStatus
from app.plans.terms import Terms
from app.units import units_to_credits
from app.usage.rules import Debit, WorkspaceMeters
from app.usage.writes import Writes, record_top_up

# What the charge path reads of the workspace for auto top-ups, beside its meters.
COLUMNS = (
    "plan_code, credit_tier, billing_interval, status, monthly_credits, auto_topup_threshold,"
    " auto_topup_credits, auto_topup_max_per_cycle, auto_topup_used"
)


@dataclass
class Buying:
    config: AutoTopUp
    terms: Terms
    period_start: datetime
    billing: BillingSpec
    used: int  # purchases this cycle, this batch's included
    events: list[NewEvent]

    def units(self, balance: int) -> int:
        return amount(replace(self.config, used=self.used), balance, self.terms.cap_units)


async def buying_for(
    row: Mapping[str, Any], period_start: datetime, now: datetime
) -> Buying | None:
    """The workspace's auto top-up for this batch, if it has one and a paid plan, priced by
    the catalog in force at the charge's instant `now` (R40)."""
    if row["auto_topup_threshold"] is None or row["auto_topup_credits"] is None:
        return None
    billing = await billing_spec(now)  # read only by workspaces that set auto top-up
    if row["status"] == WorkspaceStatus.TRIALING.value or row["plan_code"] == billing.free_plan:
        return None  # settings kept after a move to free apply again on a paid plan
    config = AutoTopUp(
        row["auto_topup_threshold"],
        row["auto_topup_credits"],
        row["auto_topup_max_per_cycle"],
        row["auto_topup_used"],
    )
    interval = BillingInterval(row["billing_interval"])
    terms = Terms(
        row["plan_code"], row["credit_tier"], interval, row["actions_capacity"],
        row["monthly_credits"],
    )  # fmt: skip
    return Buying(config, terms, period_start, billing, config.used, [])


def to_fit(
    buying: Buying, meters: WorkspaceMeters, decide: Callable[[WorkspaceMeters], Debit]
) -> int:
    """The top-up that makes a charge refused for credits fit, or 0 when none does."""
    units = buying.units(meters.balance)
    if not units:
        return 0
    try:
        decide(replace(meters, balance=meters.balance + units))
    except Refused:
        return 0
    return units


def after_charge(buying: Buying, meters: WorkspaceMeters) -> int:
    """What to buy once a charge has left `available` where it is (0: nothing)."""
    return buying.units(meters.balance) if meters.available < buying.config.threshold else 0


async def buy(
    conn: BaseDBAsyncClient,
    buying: Buying,
    meters: WorkspaceMeters,
    writes: Writes,
    workspace_id: uuid.UUID,
    units: int,
    now: datetime,
) -> None:
    meters.balance += units
    buying.used += 1
    record_top_up(writes, workspace_id, units, meters.balance, now)
    price = top_up_price_cents(units, buying.billing)
    charge = await bill(
        conn,
        workspace_id,
        ChargeKind.TOP_UP,
        period_start=buying.period_start,
        terms=buying.terms,
        amount_cents=price,
        credits=units,
        description=f"Auto top-up of {units_to_credits(units):,} Data Credits",
        now=now,
    )
    buying.events.append(types.topup_purchased(charge.id, units, price, auto=True))
