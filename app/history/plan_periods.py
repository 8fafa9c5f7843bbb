"""The plan history (R38): which plan and Actions capacity a workspace ran on, from when.

The ledger holds every meter's balance after each change, but not the plan or the capacity of
the cycle then; `plan_period` does. A row is written in the same transaction as each change of
either (creation, an upgrade, leaving free, a renewal step that changes them), stamped with the
transaction's `now`, the instant its ledger entries carry too: a balance at any instant then
reads the plan and the meters of the same moment, and a change that rolls back leaves neither.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from tortoise.backends.base.client import BaseDBAsyncClient

from app.models import PlanPeriod
from app.plans.terms import Terms


class PlanChange(StrEnum):
    """Why a row was written; a renewal step writes its kind (ACTIONS, CYCLE, TRIAL_END)."""

    CREATED = "CREATED"
    UPGRADE = "UPGRADE"
    SUBSCRIBED = "SUBSCRIBED"  # leaving free (R28)


async def record_plan(
    conn: BaseDBAsyncClient,
    workspace_id: uuid.UUID,
    terms: Terms,
    actions_capacity: int,
    now: datetime,
    source: str,
) -> None:
    """From `now` on, the workspace runs on `terms` with `actions_capacity` (in `conn`'s
    transaction, the one that makes the change)."""
    await PlanPeriod.create(
        using_db=conn,
        workspace_id=workspace_id,
        started_at=now,
        plan_code=terms.plan_code,
        credit_tier=terms.credit_tier,
        billing_interval=terms.interval.value,
        actions_capacity=actions_capacity,
        source=source,
    )


def plan_changes(
    terms: Terms, actions_capacity: int, before: tuple[str, int | None, str, int]
) -> bool:
    """Whether a renewal step changes what `plan_period` records: (plan, tier, interval,
    capacity) as stored before the step."""
    after = (terms.plan_code, terms.credit_tier, terms.interval.value, actions_capacity)
    return after != before
