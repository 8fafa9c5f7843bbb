"""Plan changes: upgrades at once, downgrades at the cycle end, cancellations (R20, R21, R27-R30).

Each change runs in one transaction holding the workspace row, so a change, a top-up and a
renewal of the same workspace never interleave; charges keep their conditional updates.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from app import audit, locks, validation
from app.billing.charges import bill, plan_fee_description
from app.billing.money import cycle_price_cents, prorated_cents
from app.catalog import BillingSpec, PlanSpec
from app.catalog.store import timeline
from app.db import fetch_one
from app.errors import InvalidInput, NotFound
from app.events import types, watch
from app.events.store import emit
from app.history.plan_periods import PlanChange, record_plan
from app.idempotency import run_once
from app.kinds import BillingInterval, ChargeKind, EntryType, Meter, WorkspaceStatus
from app.ledger import Posting, post
from app.models import Workspace
from app.plans.changes import ChangeKind, choice_of, classify
from app.plans.cycles import add_months, months_in
from app.plans.terms import Terms, resolve_terms


@dataclass(frozen=True)
class PlanChangeRequest:
    plan: str
    idempotency_key: str
    credit_tier: int | None = None
    billing_interval: BillingInterval | None = None


@dataclass(frozen=True)
class PlanCatalog:
    """The plans and billing terms a plan change reads, as in force at its instant (R40).

    `plans` holds plans removed before it too, as they last were (a workspace may be on one);
    only those `offered` can be chosen."""

    plans: dict[str, PlanSpec]
    billing: BillingSpec
    offered: frozenset[str] = frozenset()

    @property
    def free(self) -> PlanSpec:
        return self.plans[self.billing.free_plan]


async def _catalog(now: datetime) -> PlanCatalog:
    versions = await timeline(now)
    current = versions.at(now)
    offered = frozenset(p.code for p in current.plans)
    return PlanCatalog(versions.held_plans(now), current.billing, offered)


async def lock_workspace(conn: BaseDBAsyncClient, workspace_id: uuid.UUID) -> Workspace:
    row = await locks.workspace(conn, workspace_id)
    if row is None:
        raise NotFound("workspace not found")
    return row


def plan_state(row: Workspace) -> dict[str, object]:
    """What the audit log records of a workspace's plan (R39)."""
    pending = None
    if row.pending_plan_code is not None:
        pending = {"plan": row.pending_plan_code, "creditTier": row.pending_credit_tier,
                   "billingInterval": row.pending_interval}  # fmt: skip
    return {
        "plan": row.plan_code,
        "creditTier": row.credit_tier,
        "billingInterval": row.billing_interval,
        "status": row.status,
        "pendingChange": pending,
    }


def stored_terms(row: Workspace) -> Terms:
    """The terms the workspace runs on now, as stored (not as the catalog gives its plan)."""
    return Terms(
        row.plan_code,
        row.credit_tier,
        BillingInterval(row.billing_interval),
        row.actions_capacity,
        row.monthly_credits,
    )


def target_terms(row: Workspace, plan: PlanSpec, request: PlanChangeRequest) -> Terms:
    """R30: keep the current interval when the new plan offers it."""
    interval = request.billing_interval
    current = BillingInterval(row.billing_interval)
    if interval is None and current in plan.intervals:
        interval = current
    return resolve_terms(plan, request.credit_tier, interval)


async def change_plan(
    workspace_id: uuid.UUID, request: PlanChangeRequest, now: datetime
) -> Workspace:
    validation.idempotency_key(request.idempotency_key)
    catalog = await _catalog(now)
    code = validation.label(request.plan, "plan") or ""
    plan = catalog.plans.get(code) if code in catalog.offered else None
    if plan is None:
        raise InvalidInput(f"unknown plan {request.plan!r}")

    async def effect(conn: BaseDBAsyncClient, result_id: uuid.UUID) -> Workspace:
        row = await lock_workspace(conn, workspace_id)
        before = plan_state(row)
        from_plan, ends = row.plan_code, row.period_end
        target = target_terms(row, plan, request)
        immediate = await _change(conn, row, target, catalog, now, result_id)
        if immediate is not None:  # R34: sent when made, immediate or scheduled
            at = now if immediate else ends
            changed = types.plan_changed(from_plan, target.plan_code, target.credit_tier, at,
                                         immediate)  # fmt: skip
            await emit(conn, workspace_id, [changed], now)
        await watch.after(conn, workspace_id, now)  # an upgrade's grant and capacity re-arm
        changed_row = await Workspace.get(id=workspace_id, using_db=conn)
        await audit.record(conn, workspace_id, "plan.change", f"workspace:{workspace_id}",
                           before, plan_state(changed_row), now)  # fmt: skip
        return changed_row

    async def replay(_: str) -> Workspace:
        return await Workspace.get(id=workspace_id)

    return await run_once(
        workspace_id=workspace_id,
        key=request.idempotency_key,
        operation="changePlan",
        request=request,
        now=now,
        effect=effect,
        replay=replay,
    )


async def _change(
    conn: BaseDBAsyncClient,
    row: Workspace,
    target: Terms,
    catalog: PlanCatalog,
    now: datetime,
    charge_id: uuid.UUID,
) -> bool | None:
    """Apply the change; True if it took effect now, False if scheduled for the cycle end,
    None if there was nothing to change (the current terms: a pending change withdrawn)."""
    to_free = target.plan_code == catalog.free.code
    if row.status == WorkspaceStatus.TRIALING.value:
        # R28: a plan chosen during a trial starts when the trial ends; free is the default.
        await _set_pending(conn, row, None if to_free else target, WorkspaceStatus.TRIALING)
        return False
    if row.plan_code == catalog.free.code and not to_free:
        await _start_subscription(conn, row, target, catalog, now, charge_id)
        return True
    current = stored_terms(row)
    kind = classify(choice_of(current, catalog.plans), choice_of(target, catalog.plans))
    if kind is ChangeKind.UPGRADE:
        await _upgrade(conn, row, current, target, catalog, now, charge_id)
        return True
    if kind is ChangeKind.NONE:
        await _set_pending(conn, row, None, WorkspaceStatus.ACTIVE)  # R27: replaces it
        return None
    status = WorkspaceStatus.CANCELED if to_free else WorkspaceStatus.ACTIVE
    await _set_pending(conn, row, target, status)
    return False


async def _set_pending(
    conn: BaseDBAsyncClient, row: Workspace, target: Terms | None, status: WorkspaceStatus
) -> None:
    row.pending_plan_code = target.plan_code if target else None
    row.pending_credit_tier = target.credit_tier if target else None
    row.pending_interval = target.interval.value if target else None
    row.status = status.value
    await row.save(
        using_db=conn,
        update_fields=["pending_plan_code", "pending_credit_tier", "pending_interval", "status"],
    )


_UPGRADE = """
UPDATE workspace
   SET plan_code = $2, credit_tier = $3, monthly_credits = $4, actions_capacity = $5,
       credit_balance = credit_balance + $6, status = $7,
       pending_plan_code = NULL, pending_credit_tier = NULL, pending_interval = NULL
 WHERE id = $1
RETURNING actions_capacity - actions_used AS actions_remaining, credit_balance
"""


async def _upgrade(
    conn: BaseDBAsyncClient,
    row: Workspace,
    current: Terms,
    target: Terms,
    catalog: PlanCatalog,
    now: datetime,
    charge_id: uuid.UUID,
) -> None:
    """R20: the new capacity now (used stays), the grant difference now, the price difference
    for the part of the stored cycle left (R33)."""
    grant = target.cycle_grant_units - current.cycle_grant_units
    capacity = max(target.monthly_actions, row.actions_used)
    after = await fetch_one(
        conn,
        _UPGRADE,
        str(row.id),
        target.plan_code,
        target.credit_tier,
        target.monthly_credits_units,
        capacity,
        grant,
        WorkspaceStatus.ACTIVE.value,
    )
    assert after is not None
    postings = [
        Posting(Meter.ACTIONS, capacity - row.actions_capacity, after["actions_remaining"]),
        Posting(Meter.DATA_CREDITS, grant, after["credit_balance"]),
    ]
    await post(conn, row.id, EntryType.GRANT, postings, now)
    await record_plan(conn, row.id, target, capacity, now, PlanChange.UPGRADE)  # R38
    old_price = _price(current, catalog)
    difference = _price(target, catalog) - old_price
    amount = prorated_cents(difference, row.period_start, row.period_end, now)
    if amount > 0:
        await bill(
            conn,
            row.id,
            ChargeKind.PRORATION,
            period_start=row.period_start,
            terms=target,
            amount_cents=amount,
            credits=grant,
            description=(
                f"Upgrade to {catalog.plans[target.plan_code].name}, {target.credit_tier:,}"
                f" Data Credits a month, for the rest of the cycle ending"
                f" {row.period_end.date().isoformat()}"
            ),
            now=now,
            charge_id=charge_id,
        )


def _price(terms: Terms, catalog: PlanCatalog) -> int:
    assert terms.credit_tier is not None
    plan = catalog.plans[terms.plan_code]
    return cycle_price_cents(plan, terms.credit_tier, terms.interval, catalog.billing)


_START = """
UPDATE workspace
   SET plan_code = $2, credit_tier = $3, billing_interval = $4, status = $5, anchor_at = $6,
       period_start = $6, period_end = $7, actions_period_end = $8, actions_capacity = $9,
       actions_used = 0, monthly_credits = $10, credit_balance = credit_balance + $11,
       pending_plan_code = NULL, pending_credit_tier = NULL, pending_interval = NULL
 WHERE id = $1
RETURNING credit_balance
"""


async def _start_subscription(
    conn: BaseDBAsyncClient,
    row: Workspace,
    target: Terms,
    catalog: PlanCatalog,
    now: datetime,
    charge_id: uuid.UUID,
) -> None:
    """R28: leaving free anchors a new subscription now, with its full grant and fresh
    Actions."""
    grant = target.cycle_grant_units
    after = await fetch_one(
        conn,
        _START,
        str(row.id),
        target.plan_code,
        target.credit_tier,
        target.interval.value,
        WorkspaceStatus.ACTIVE.value,
        now,
        add_months(now, months_in(target.interval)),
        add_months(now, 1),
        target.monthly_actions,
        target.monthly_credits_units,
        grant,
    )
    assert after is not None
    remaining = row.actions_capacity - row.actions_used
    await post(conn, row.id, EntryType.EXPIRY, [Posting(Meter.ACTIONS, -remaining, 0)], now)
    grants = [
        Posting(Meter.ACTIONS, target.monthly_actions, target.monthly_actions),
        Posting(Meter.DATA_CREDITS, grant, after["credit_balance"]),
    ]
    await post(conn, row.id, EntryType.GRANT, grants, now)
    await record_plan(conn, row.id, target, target.monthly_actions, now, PlanChange.SUBSCRIBED)
    await bill(
        conn,
        row.id,
        ChargeKind.PLAN_FEE,
        period_start=now,
        terms=target,
        amount_cents=_price(target, catalog),
        credits=grant,
        description=plan_fee_description(catalog.plans[target.plan_code], target, now),
        now=now,
        charge_id=charge_id,
    )


async def withdraw_pending_change(workspace_id: uuid.UUID, now: datetime) -> Workspace:
    """R21: take a pending change back; idempotent by nature."""
    async with in_transaction() as conn:
        row = await lock_workspace(conn, workspace_id)
        before = plan_state(row)
        status = WorkspaceStatus(row.status)
        if status is WorkspaceStatus.CANCELED:
            status = WorkspaceStatus.ACTIVE
        await _set_pending(conn, row, None, status)
        if plan_state(row) != before:
            target = f"workspace:{workspace_id}"
            after = plan_state(row)
            await audit.record(conn, workspace_id, "plan.withdraw", target, before, after, now)
    return row


async def cancel_subscription(workspace_id: uuid.UUID, now: datetime) -> Workspace:
    """R21: a downgrade to free at the cycle end. On free there is nothing to cancel; during a
    trial it withdraws a chosen plan, so the trial ends on free."""
    catalog = await _catalog(now)
    async with in_transaction() as conn:
        row = await lock_workspace(conn, workspace_id)
        before = (row.pending_plan_code, row.status)
        state = plan_state(row)
        if row.status == WorkspaceStatus.TRIALING.value:
            await _set_pending(conn, row, None, WorkspaceStatus.TRIALING)
        elif row.plan_code != catalog.free.code:
            free = resolve_terms(catalog.free, None, None)
            await _set_pending(conn, row, free, WorkspaceStatus.CANCELED)
        if (row.pending_plan_code, row.status) != before:
            free_code = catalog.free.code
            changed = types.plan_changed(row.plan_code, free_code, None, row.period_end, False)
            await emit(conn, workspace_id, [changed], now)
            await audit.record(conn, workspace_id, "plan.cancel", f"workspace:{workspace_id}",
                               state, plan_state(row), now)  # fmt: skip
    return row
