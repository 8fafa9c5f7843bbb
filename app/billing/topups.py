"""One-time Data Credit top-ups (R19): paid plans only, up to the cap, billed with a premium."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from tortoise.backends.base.client import BaseDBAsyncClient

from app import validation
from app.billing.charges import bill
from app.billing.money import top_up_price_cents
from app.catalog.store import billing_spec
from app.db import fetch_one
from app.errors import ErrorCode, InvalidInput, Refused
from app.idempotency import run_once
from app.kinds import ChargeKind, EntryType, Meter, WorkspaceStatus
from app.ledger import Posting, post
from app.models import BillingCharge, Workspace
from app.plans.subscriptions import lock_workspace, stored_terms
from app.units import units_to_credits


@dataclass(frozen=True)
class TopUpRequest:
    credits: int  # units
    idempotency_key: str
    meter: Meter = Meter.DATA_CREDITS


async def purchase_top_up(
    workspace_id: uuid.UUID, request: TopUpRequest, now: datetime
) -> BillingCharge:
    validation.idempotency_key(request.idempotency_key)
    if request.meter is Meter.ACTIONS:
        raise Refused(
            ErrorCode.ACTIONS_NOT_PURCHASABLE,
            "Actions are the plan tier's fixed monthly capacity and cannot be bought;"
            " a higher plan tier has more",
        )
    if request.meter is not Meter.DATA_CREDITS:
        # Held credits are part of the balance, set aside for runs (R6): not for sale.
        meter = request.meter.value
        raise InvalidInput(f"meter {meter} cannot be bought; a top-up is of DATA_CREDITS")
    if request.credits <= 0:
        raise InvalidInput("credits must be more than 0")
    billing = await billing_spec()

    async def effect(conn: BaseDBAsyncClient, charge_id: uuid.UUID) -> BillingCharge:
        row = await lock_workspace(conn, workspace_id)
        _refuse_unless_allowed(row, request.credits, billing.free_plan)
        after = await fetch_one(
            conn,
            "UPDATE workspace SET credit_balance = credit_balance + $2 WHERE id = $1"
            " RETURNING credit_balance",
            str(workspace_id),
            request.credits,
        )
        assert after is not None
        posting = Posting(Meter.DATA_CREDITS, request.credits, after["credit_balance"])
        await post(conn, workspace_id, EntryType.TOP_UP, [posting], now)
        return await bill(
            conn,
            workspace_id,
            ChargeKind.TOP_UP,
            period_start=row.period_start,
            terms=stored_terms(row),
            amount_cents=top_up_price_cents(request.credits, billing),
            credits=request.credits,
            description=f"Top-up of {units_to_credits(request.credits):,} Data Credits",
            now=now,
            charge_id=charge_id,
            idempotency_key=request.idempotency_key,
        )

    async def replay(result_id: str) -> BillingCharge:
        return await BillingCharge.get(id=uuid.UUID(result_id))

    return await run_once(
        workspace_id=workspace_id,
        key=request.idempotency_key,
        operation="purchaseTopUp",
        request=request,
        now=now,
        effect=effect,
        replay=replay,
    )


def _refuse_unless_allowed(row: Workspace, credits: int, free_plan: str) -> None:
    if row.status == WorkspaceStatus.TRIALING.value or row.plan_code == free_plan:
        raise Refused(
            ErrorCode.PLAN_FEATURE_UNAVAILABLE,
            "top-ups are for paid plans; a trial or the free plan cannot buy Data Credits",
        )
    cap = stored_terms(row).cap_units
    if row.credit_balance + credits > cap:
        room = max(cap - row.credit_balance, 0)
        raise Refused(
            ErrorCode.TOP_UP_EXCEEDS_ROLLOVER_LIMIT,
            f"the balance would be {units_to_credits(row.credit_balance + credits):,}, past the"
            f" rollover limit of {units_to_credits(cap):,}; at most"
            f" {units_to_credits(room):,} can be bought now",
        )
