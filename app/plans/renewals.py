"""Renewing cycles: find due workspaces, claim them in the database, apply each due step.

Due work is found by `actions_period_end` (every boundary is a month one) and claimed with row
locks that skip rows another transaction holds (app.locks.claim_workspaces), so schedulers in
any number of processes share the work without waiting on each other. Each step is applied
by a conditional UPDATE on the boundary and recorded in `renewal`, unique per (workspace,
period start): a step is applied once whatever runs twice, and a crash rolls back whole
batches.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from app import locks
from app.billing.charges import bill, plan_fee_description
from app.billing.money import cycle_price_cents
from app.catalog import BillingSpec, PlanSpec
from app.catalog.store import Timeline, timeline
from app.db import connection, fetch, fetch_one
from app.events import watch
from app.events.store import emit
from app.history.plan_periods import plan_changes, record_plan
from app.kinds import ChargeKind, EntryType, WorkspaceStatus
from app.ledger import Posting, post
from app.models import Renewal, Workspace
from app.plans import renewal_batch
from app.plans.renewal_batch import announced, follow, postings, state_of
from app.plans.renewal_step import Step, plan_step
from app.runs.service import release_all_holds

log = logging.getLogger("tally.renewals")

DEFAULT_BATCH = 100
# Batches in flight at once in one process, each its own transaction and connection: while one
# is planned in Python the others are written. bench/renewals.py at 100,000 due workspaces on a
# 2-core machine, one process: 17.7 s with 2, 12.3 s with 3, 11.9 s with 4.
LANES = 4


@dataclass
class SweepResult:
    workspaces: int = 0
    steps: Counter[str] = field(default_factory=Counter)
    failed: list[uuid.UUID] = field(default_factory=list)

    @property
    def renewals(self) -> int:
        return sum(self.steps.values())


@dataclass(frozen=True)
class Scope:
    """Which due workspaces a sweep takes: all, trials only, or named ones."""

    trials_only: bool = False
    workspace_ids: Collection[uuid.UUID] | None = None


def _where(now: datetime, scope: Scope, skip: Collection[uuid.UUID]) -> tuple[str, list[object]]:
    clauses = ["actions_period_end <= $1"]
    args: list[object] = [now]
    if scope.trials_only:
        clauses.append(f"status = '{WorkspaceStatus.TRIALING.value}'")
    for ids, op in ((scope.workspace_ids, "IN"), (skip or None, "NOT IN")):
        if ids is not None:
            marks = ", ".join(f"${len(args) + i + 1}" for i in range(len(ids)))
            clauses.append(f"id {op} ({marks or 'NULL'})")
            args.extend(str(i) for i in ids)
    return " AND ".join(clauses), args


async def count_due(now: datetime, scope: Scope = Scope()) -> int:
    where, args = _where(now, scope, ())
    row = await fetch_one(connection(), f"SELECT COUNT(*) AS n FROM workspace WHERE {where}", *args)
    return int(row["n"]) if row else 0


async def _claim(
    conn: BaseDBAsyncClient, now: datetime, scope: Scope, skip: set[uuid.UUID], limit: int
) -> list[uuid.UUID]:
    where, args = _where(now, scope, skip)
    return await locks.claim_workspaces(conn, where, args, "actions_period_end", limit)


async def sweep(
    now: datetime,
    scope: Scope = Scope(),
    *,
    batch_size: int = DEFAULT_BATCH,
    on_progress: Callable[[int], None] | None = None,
    set_based: bool | None = None,
    lanes: int = LANES,
) -> SweepResult:
    """Apply every step due by `now` to every due workspace in scope, period by period.

    Batches are claimed skipping rows other transactions hold; what was skipped (a workspace
    busy with a charge, or with another scheduler) is then taken one at a time, waiting for
    its lock, so a busy workspace is renewed in this sweep too and never twice. `set_based`
    (default: on PostgreSQL) writes each batch with one statement (app.plans.renewal_batch);
    off, each workspace's steps are written one by one (`advance`), as on SQLite; set-based,
    `lanes` batches are in flight at once. A batch that fails is retried one workspace at a
    time, so one bad workspace cannot hold back the rest.
    """
    # Each step is priced by the catalog in force at its boundary (R40), all of them by now.
    catalogs = await timeline(now)
    if set_based is None:
        set_based = connection().capabilities.dialect == "postgres"
    result = SweepResult()
    skip: set[uuid.UUID] = set()

    async def lane() -> None:
        while True:
            try:
                async with in_transaction() as conn:
                    if set_based:
                        ids, steps = await _advance_batch(
                            conn, now, scope, skip, batch_size, catalogs
                        )
                    else:
                        ids = await _claim(conn, now, scope, skip, batch_size)
                        steps = [await advance(conn, i, now, catalogs) for i in ids]
            except Exception:
                log.exception("renewal batch failed; retrying its workspaces one at a time")
                async with in_transaction() as conn:
                    ids = await _claim(conn, now, scope, skip, batch_size)
                steps = [await _advance_alone(i, now, catalogs, result, skip) for i in ids]
            if not ids:
                return
            _count(result, steps, len(ids), on_progress)

    # Set-based, a batch is planned in Python while the ones before are written: LANES
    # batches in flight, each its own transaction, claimed as that many schedulers claim theirs.
    await asyncio.gather(*(lane() for _ in range(lanes if set_based else 1)))
    for workspace_id in await _still_due(now, scope, skip):
        steps = [await _advance_alone(workspace_id, now, catalogs, result, skip)]
        _count(result, steps, 1, on_progress)
    return result


async def _advance_batch(
    conn: BaseDBAsyncClient,
    now: datetime,
    scope: Scope,
    skip: set[uuid.UUID],
    limit: int,
    catalogs: Timeline,
) -> tuple[list[uuid.UUID], list[list[str]]]:
    """Claim a batch with its rows, plan every step in Python and write them in one statement;
    the workspaces the set path does not cover go through `advance`, in this transaction."""
    where, args = _where(now, scope, skip)
    rows = await locks.claim_workspace_rows(
        conn, where, args, "actions_period_end", limit, renewal_batch.COLUMNS
    )
    batch = renewal_batch.Batch(now)
    # Positionally: the claim selects renewal_batch.COLUMNS, Row's own fields in order.
    workspaces = [renewal_batch.Row(*row.values()) for row in rows]
    planned = [renewal_batch.plan_workspace(ws, now, catalogs, batch) for ws in workspaces]
    await renewal_batch.write(conn, batch)
    steps = [
        done if done is not None else await advance(conn, ws.id, now, catalogs)
        for ws, done in zip(workspaces, planned, strict=True)
    ]
    return [ws.id for ws in workspaces], steps


def _count(
    result: SweepResult,
    steps: list[list[str]],
    claimed: int,
    on_progress: Callable[[int], None] | None,
) -> None:
    for done in steps:
        result.steps.update(done)
    result.workspaces += sum(1 for done in steps if done)
    if on_progress is not None:
        on_progress(claimed)


async def _still_due(now: datetime, scope: Scope, skip: set[uuid.UUID]) -> list[uuid.UUID]:
    where, args = _where(now, scope, skip)
    rows = await fetch(connection(), f"SELECT id FROM workspace WHERE {where}", *args)
    return [uuid.UUID(str(r["id"])) for r in rows]


async def _advance_alone(
    workspace_id: uuid.UUID,
    now: datetime,
    catalogs: Timeline,
    result: SweepResult,
    skip: set[uuid.UUID],
) -> list[str]:
    """One workspace in its own transaction, waiting for its row; a failure is logged and
    skipped for the rest of the sweep, so one bad workspace cannot block the others."""
    try:
        async with in_transaction() as conn:
            await locks.workspace_row(conn, workspace_id)
            return await advance(conn, workspace_id, now, catalogs)
    except Exception:
        log.exception("workspace %s could not be renewed; skipped this sweep", workspace_id)
        skip.add(workspace_id)
        result.failed.append(workspace_id)
        return []


async def advance(
    conn: BaseDBAsyncClient,
    workspace_id: uuid.UUID,
    now: datetime,
    catalogs: Timeline,
) -> list[str]:
    """Apply each step due by `now`, oldest first, so every period gets its own cap, and
    its own catalog: the one in force at its boundary (R40)."""
    done: list[str] = []
    row = await Workspace.filter(id=workspace_id).using_db(conn).first()
    while row is not None and row.actions_period_end <= now:
        boundary = row.actions_period_end
        plans, billing = catalogs.held_plans(boundary), catalogs.at(boundary).billing
        step = plan_step(state_of(row), plans, billing)
        if step.credits is not None and step.credits.after < row.credits_held:
            # Expiry or the cap would take credits a run holds: release the holds first, so
            # R15–R18 apply as written and available never goes below zero.
            await release_all_holds(conn, workspace_id, now)
            row.credits_held = 0
        if await _apply(conn, row, step, plans, billing, now):
            done.append(step.kind.value)
            follow(row, step)
            await emit(conn, workspace_id, announced(step), now)
        else:  # another process moved this workspace first: re-read and re-plan
            row = await Workspace.filter(id=workspace_id).using_db(conn).first()
    if done:
        await watch.after(conn, workspace_id, now)  # grants and fresh Actions re-arm (R34)
    return done


# The step applies only to the state it was computed from; anything else re-plans.
_APPLY = """
UPDATE workspace
   SET plan_code = $5, credit_tier = $6, billing_interval = $7, status = $8, anchor_at = $9,
       period_start = $10, period_end = $11, actions_period_end = $12,
       actions_capacity = $13, actions_used = 0, credit_balance = $14, monthly_credits = $15,
       pending_plan_code = CASE WHEN $16 THEN NULL ELSE pending_plan_code END,
       pending_credit_tier = CASE WHEN $16 THEN NULL ELSE pending_credit_tier END,
       pending_interval = CASE WHEN $16 THEN NULL ELSE pending_interval END,
       auto_topup_used = CASE WHEN $16 THEN 0 ELSE auto_topup_used END
 WHERE id = $1 AND actions_period_end = $2 AND credit_balance = $3 AND actions_used = $4
RETURNING id
"""


async def _apply(
    conn: BaseDBAsyncClient,
    row: Workspace,
    step: Step,
    plans: dict[str, PlanSpec],
    billing: BillingSpec,
    now: datetime,
) -> bool:
    terms, credits = step.terms, step.credits
    balance = credits.after if credits is not None else row.credit_balance
    updated = await fetch_one(
        conn,
        _APPLY,
        str(row.id),
        step.at,
        row.credit_balance,
        row.actions_used,
        terms.plan_code,
        terms.credit_tier,
        terms.interval.value,
        step.status.value,
        step.anchor,
        step.period_start,
        step.period_end,
        step.actions_period_end,
        terms.monthly_actions,
        balance,
        terms.monthly_credits_units if step.opens_cycle else row.monthly_credits,
        step.opens_cycle,
    )
    if updated is None:
        return False  # another process moved this workspace first; re-read and re-plan
    await Renewal.create(
        using_db=conn,
        workspace_id=row.id,
        period_start=step.at,
        kind=step.kind.value,
        plan_code=terms.plan_code,
        credit_tier=terms.credit_tier,
        billing_interval=terms.interval.value,
        credits_before=row.credit_balance,
        credits_expired=credits.expired if credits else 0,
        credits_granted=credits.granted if credits else 0,
        credits_capped=credits.capped if credits else 0,
        credits_after=balance,
        actions_capacity=terms.monthly_actions,
        processed_at=now,
    )
    await _post_step(conn, row, step, now)
    before = (row.plan_code, row.credit_tier, row.billing_interval, row.actions_capacity)
    if plan_changes(terms, terms.monthly_actions, before):  # R38: the plan history
        await record_plan(conn, row.id, terms, terms.monthly_actions, now, step.kind.value)
    if step.opens_cycle:
        await _bill_cycle(conn, row.id, step, plans, billing, now)
    return True


async def _post_step(conn: BaseDBAsyncClient, row: Workspace, step: Step, now: datetime) -> None:
    entries = [Posting(meter, amount, after, kind) for kind, meter, amount, after in postings(step)]
    await post(conn, row.id, EntryType.GRANT, entries, now)


async def _bill_cycle(
    conn: BaseDBAsyncClient,
    workspace_id: uuid.UUID,
    step: Step,
    plans: dict[str, PlanSpec],
    billing: BillingSpec,
    now: datetime,
) -> None:
    terms = step.terms
    assert terms.credit_tier is not None
    price = cycle_price_cents(plans[terms.plan_code], terms.credit_tier, terms.interval, billing)
    if price > 0:
        await bill(
            conn,
            workspace_id,
            ChargeKind.PLAN_FEE,
            period_start=step.period_start,
            terms=terms,
            amount_cents=price,
            credits=terms.cycle_grant_units,
            description=plan_fee_description(plans[terms.plan_code], terms, step.period_start),
            now=now,
        )
