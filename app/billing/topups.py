"""One-time Data Credit top-ups (R19): paid plans only, up to the cap, billed with a premium."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from tortoise.backends.base.client import BaseDBAsyncClient

from app import audit, validation
from app.billing.charges import bill
from app.billing.money import top_up_price_cents
from app.catalog import BillingSpec
from app.catalog.store import billing_spec
from app.db import fetch_one
from app.errors import ErrorCode, InvalidInput, Refused
from app.events import types, watch
from app.events.store import emit
from app.idempotency import run_once
from app.kinds import ChargeKind, EntryType, Meter, WorkspaceStatus
from app.ledger import Posting, post
from app.models import BillingCharge, Workspace
from app.plans.subscriptions import lock_workspace, stored_terms
from app.units import cents_to_usd, units_to_credits


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
    billing = await billing_spec(now)

    async def effect(conn: BaseDBAsyncClient, charge_id: uuid.UUID) -> BillingCharge:
        row = await lock_workspace(conn, workspace_id)
        _refuse_unless_allowed(row, request.credits, billing.free_plan)
        bought = await buy(
            conn,
            row,
            request.credits,
            billing,
            now,
            auto=False,
            charge_id=charge_id,
            idempotency_key=request.idempotency_key,
        )
        await watch.after(conn, workspace_id, now)  # credits re-arm depletion and alerts
        after = {"credits": units_to_credits(request.credits),
                 "price": cents_to_usd(bought.amount_cents)}  # fmt: skip
        await audit.record(conn, workspace_id, "topup.purchase", f"top_up:{bought.id}", None,
                           after, now)  # fmt: skip
        return bought

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


async def buy(
    conn: BaseDBAsyncClient,
    row: Workspace,
    units: int,
    billing: BillingSpec,
    now: datetime,
    *,
    auto: bool,
    charge_id: uuid.UUID | None = None,
    idempotency_key: str | None = None,
) -> BillingCharge:
    """Add `units` to the balance, with its ledger entry, its billing charge and its event;
    the caller has checked the plan and the cap (R19, R37)."""
    after = await fetch_one(
        conn,
        "UPDATE workspace SET credit_balance = credit_balance + $2 WHERE id = $1"
        " RETURNING credit_balance",
        str(row.id),
        units,
    )
    assert after is not None
    posting = Posting(Meter.DATA_CREDITS, units, after["credit_balance"])
    await post(conn, row.id, EntryType.TOP_UP, [posting], now)
    price = top_up_price_cents(units, billing)
    charge = await bill(
        conn,
        row.id,
        ChargeKind.TOP_UP,
        period_start=row.period_start,
        terms=stored_terms(row),
        amount_cents=price,
        credits=units,
        description=f"{'Auto top-up' if auto else 'Top-up'} of"
        f" {units_to_credits(units):,} Data Credits",
        now=now,
        charge_id=charge_id,
        idempotency_key=idempotency_key,
    )
    await emit(conn, row.id, [types.topup_purchased(charge.id, units, price, auto)], now)
    return charge


def paid_plan(row: Workspace, free_plan: str) -> bool:
    return row.status != WorkspaceStatus.TRIALING.value and row.plan_code != free_plan


def _refuse_unless_allowed(row: Workspace, credits: int, free_plan: str) -> None:
    if not paid_plan(row, free_plan):
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
