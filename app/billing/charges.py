"""Billing charges: what each cycle is billed in money, recorded with the change that caused it."""

from __future__ import annotations

import uuid
from datetime import datetime

from tortoise.backends.base.client import BaseDBAsyncClient

from app.catalog import PlanSpec
from app.errors import InvalidInput
from app.kinds import BillingInterval, ChargeKind
from app.models import BillingCharge, Workspace
from app.plans.terms import Terms


async def bill(
    conn: BaseDBAsyncClient,
    workspace_id: uuid.UUID,
    kind: ChargeKind,
    *,
    period_start: datetime,
    terms: Terms,
    amount_cents: int,
    description: str,
    now: datetime,
    credits: int = 0,
    charge_id: uuid.UUID | None = None,
    idempotency_key: str | None = None,
) -> BillingCharge:
    return await BillingCharge.create(
        using_db=conn,
        id=charge_id or uuid.uuid4(),
        workspace_id=workspace_id,
        kind=kind.value,
        period_start=period_start,
        plan_code=terms.plan_code,
        credit_tier=terms.credit_tier,
        billing_interval=terms.interval.value,
        credits=credits,
        amount_cents=amount_cents,
        description=description,
        idempotency_key=idempotency_key,
        created_at=now,
    )


async def list_billing_charges(
    workspace: Workspace, start: datetime | None, end: datetime | None
) -> list[BillingCharge]:
    """Charges created in [start, end); with neither, those billed on the current cycle."""
    query = BillingCharge.filter(workspace_id=workspace.id)
    if start is None and end is None:
        query = query.filter(period_start=workspace.period_start)
    if start is not None and end is not None and end <= start:
        raise InvalidInput("to must be after from")
    if start is not None:
        query = query.filter(created_at__gte=start)
    if end is not None:
        query = query.filter(created_at__lt=end)
    return list(await query.order_by("created_at", "kind", "id"))


def plan_fee_description(plan: PlanSpec, terms: Terms, start: datetime) -> str:
    interval = "year" if terms.interval is BillingInterval.ANNUAL else "month"
    return (
        f"{plan.name} plan, {terms.credit_tier:,} Data Credits a month, one {interval}"
        f" from {start.date().isoformat()}"
    )
