"""Charging usage: one report or a batch of up to 1,000, in one transaction (R2–R13, R23, R25).

The transaction claims every item's idempotency key first (a concurrent retry of a key waits on
the unique index), then locks the rows the batch touches in app.locks' order — the workspace,
workbooks, runs — and decides each item against the state the items before it left
(`app.usage.rules`). Accepted items are written with a handful of set-based statements
(`app.usage.writes`); refused ones release their key, so they leave no trace (R13,
`app.usage.claims`). A single `recordUsage` is a batch
of one: the same rules, the same code.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import TypedDict

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from app import held, locks, validation
from app.catalog.store import catalog_at
from app.db import connection
from app.errors import ErrorCode, InvalidInput, NotFound, Refused
from app.events import watch
from app.events.steps import Steps
from app.events.store import emit
from app.events.watch import Refusals
from app.idempotency import replay_recorded, request_hash
from app.kinds import is_billable
from app.models import Charge
from app.usage import group_commit, optimistic, topping
from app.usage import rules as charge_rules
from app.usage.claims import claim, first_of_each_key, outcome_of, replay, settle_claims
from app.usage.costs import CatalogCache, Usage, cost_of
from app.usage.items import (
    MAX_BATCH,
    OPERATION,
    ChargeRecord,
    Item,
    Locked,
    Outcome,
    UsageReport,
)
from app.usage.owned import Owned, runs_of, workbooks_of
from app.usage.pricing import Cost
from app.usage.rows import claim_and_lock
from app.usage.rules import Debit, WorkspaceMeters
from app.usage.settling import left, note, step
from app.usage.state import locked_state
from app.usage.writes import Writes, record, write
from app.workspaces.auth import Bearer


async def charge_one(
    caller: uuid.UUID | Bearer, report: UsageReport, now: datetime
) -> Charge | ChargeRecord:
    """One report of the caller's workspace (its key, if not looked up yet, is checked by the
    first read); a refusal is raised. On PostgreSQL, while a charge of the same workspace is
    in flight, its transaction is shared with the others that arrive meanwhile
    (app.usage.group_commit); validation and pricing stay the caller's own. Its first read
    and its one statement, when it goes as one, share a pooled connection (app.held)."""
    client = connection()
    async with held.holding(client):
        workspace_id, items = await _prepared(caller, [report], now)
        item = items[0]
        if item.outcome is None:
            if group_commit.wanted(client):
                await group_commit.submit(workspace_id, item, now, transact)
            else:
                await transact(workspace_id, [item], now)
    outcome = outcome_of(item)
    if isinstance(outcome, Refused):
        raise outcome
    return outcome


async def charge_batch(
    workspace_id: uuid.UUID, reports: list[UsageReport], now: datetime
) -> list[Outcome]:
    """Each report's charge or refusal, in order. Invalid input fails the whole batch before
    anything is charged; refusals (R9–R13, R23, R25) are per item."""
    if not 1 <= len(reports) <= MAX_BATCH:
        raise InvalidInput(f"a batch holds 1 to {MAX_BATCH:,} items; got {len(reports):,}")
    _, items = await _prepared(workspace_id, reports, now)
    pending = [item for item in items if item.outcome is None]
    if pending:
        await transact(workspace_id, pending, now)
    return [outcome_of(item) for item in items]


async def _prepared(
    caller: uuid.UUID | Bearer, reports: list[UsageReport], now: datetime
) -> tuple[uuid.UUID, list[Item]]:
    """The caller's workspace, and the reports checked, spelled one way and priced, before any
    transaction."""
    single = len(reports) == 1
    items = [Item(r, "" if single else f"items[{i}]: ") for i, r in enumerate(reports)]
    state = single and optimistic.wanted(connection())  # app.usage.optimistic reads rows
    workspace_id, workbooks, catalog = await workbooks_of(caller, items, now, state)
    runs = await runs_of(workspace_id, items)
    for item in items:
        item.report = _normalized(item, workbooks, runs, now)
        item.fingerprint = request_hash(OPERATION, item.report)
    await _price(workspace_id, items, CatalogCache(now, catalog))
    for item in items:
        item.priced_at, item.catalog = now, catalog
    return workspace_id, items


async def transact(
    workspace_id: uuid.UUID, pending: list[Item], now: datetime, one_by_one: bool = False
) -> None:
    """Prepared items, each decided in order in one transaction; their outcomes set.
    `one_by_one`: events fire as if each item had been charged alone (app.events.steps)."""
    if one_by_one:
        pending = await _alone_if_repriced(workspace_id, pending, now)
        if not pending:
            return
        # A group of one waited for the charge before it: its rows read again, it may still
        # go as one statement (app.usage.optimistic).
        if len(pending) == 1 and await optimistic.charged(workspace_id, pending[0], now, True):
            return
    elif len(pending) == 1 and await optimistic.charged(workspace_id, pending[0], now):
        return
    await held.let_go()  # the transaction takes a connection of its own
    async with in_transaction() as conn:
        claimed = first_of_each_key(pending)
        rows = None
        if conn.capabilities.dialect == "postgres":
            # The claim and the locks in one statement: one round trip, not four.
            rows = await claim_and_lock(conn, workspace_id, pending, claimed, now)
            taken = set(rows.before)
        else:
            taken = await claim(conn, workspace_id, claimed, now)
        fresh = [i for i in pending if i.report.idempotency_key not in taken]
        await _charge(conn, workspace_id, fresh, now, rows, one_by_one)
    await replay(workspace_id, [i for i in pending if i.report.idempotency_key in taken])


async def _alone_if_repriced(
    workspace_id: uuid.UUID, items: list[Item], now: datetime
) -> list[Item]:
    """A group of app.usage.group_commit is recorded at its latest arrival's instant, `now`.
    An item priced for an earlier instant, when another catalog version is in force at `now`
    (R40: a charge is priced by the catalog of the instant it is recorded at), is charged
    alone first, at the instant it was priced for; the others are returned for the group."""
    earlier = [i for i in items if i.priced_at is not None and i.priced_at != now]
    if not earlier:
        return items
    # The group's instant is its latest arrival's, priced then: its catalog, without a read.
    latest = [i.catalog for i in items if i.priced_at == now]
    catalog = latest[0] if latest and latest[0] is not None else await catalog_at(now)
    stale = [i for i in earlier if i.catalog is not catalog]
    for item in stale:
        assert item.priced_at is not None
        await transact(workspace_id, [item], item.priced_at)
    alone = {id(i) for i in stale}
    return [i for i in items if id(i) not in alone]


def _with_label(item: Item, error: InvalidInput | NotFound) -> InvalidInput | NotFound:
    if not item.label:
        return error
    return type(error)(f"{item.label}{error.message}")


class _Respelled(TypedDict, total=False):
    """The ids of a report spelled as stored: what `_normalized` changes, if anything."""

    workbook_id: str
    run_id: str | None
    table_id: str | None


def _normalized(
    item: Item, workbooks: dict[str, Owned], runs: dict[str, Owned], now: datetime
) -> UsageReport:
    """Validate, and spell ids one way so a retry's fingerprint matches however it wrote them."""
    report = item.report
    try:
        validation.idempotency_key(report.idempotency_key)
        validation.text(report.table_id, "tableId", validation.MAX_TABLE_ID)
        if report.sent_at is not None:
            run_started = runs[report.run_id].created_at if report.run_id is not None else None
            charge_rules.check_sent_at(report.sent_at, run_started, now)
    except InvalidInput as error:
        raise _with_label(item, error) from None
    changes: _Respelled = {}
    workbook = workbooks[report.workbook_id]
    if report.workbook_id != workbook.id:
        changes["workbook_id"] = workbook.id
    if report.run_id is not None:
        run = runs[report.run_id]
        if run.workbook_id != workbook.id:
            message = f"run {run.id} belongs to workbook {run.workbook_id}"
            raise _with_label(item, InvalidInput(message))
        if run.table_id is not None and report.table_id not in (None, run.table_id):
            message = f"run {run.id} is in table {run.table_id!r}, not {report.table_id!r}"
            raise _with_label(item, InvalidInput(message))
        if report.run_id != run.id:
            changes["run_id"] = run.id
        if report.table_id != (table_id := report.table_id or run.table_id):
            changes["table_id"] = table_id
    # Most clients already spell ids this way: a copy per item is a cost worth skipping.
    return replace(report, **changes) if changes else report


async def _price(workspace_id: uuid.UUID, items: list[Item], catalog: CatalogCache) -> None:
    """Each item's cost at the catalog in force at the charge's instant (R40)."""
    # A batch repeats a few usages: price each once. The key has the count's type because
    # True == 1, and cost_of refuses a bool count.
    costs: dict[tuple[Usage, type], Cost] = {}
    for item in items:
        usage = item.report.usage
        key = (usage, type(usage.results))
        if key in costs:
            item.cost = costs[key]
            continue
        try:
            item.cost = costs[key] = await cost_of(usage, catalog)
        except InvalidInput as error:
            # A retry of a charge whose price row was since edited away still replays (R13).
            # The ORM's reads take a pool connection each: not while holding one (app.held).
            await held.let_go()
            replayed = await replay_recorded(
                workspace_id, item.report.idempotency_key, OPERATION, item.report, _load_charge
            )
            if replayed is None:
                raise _with_label(item, error) from None
            item.outcome = replayed


async def _load_charge(result_id: str) -> Charge:
    return await Charge.get(id=uuid.UUID(result_id))


async def _charge(
    conn: BaseDBAsyncClient,
    workspace_id: uuid.UUID,
    items: list[Item],
    now: datetime,
    locked: locks.ChargeRows | None,
    one_by_one: bool = False,
) -> None:
    if not items:
        return
    state = await locked_state(conn, workspace_id, items, locked, now)
    writes = Writes()
    refused = Refusals()
    steps = await Steps.begin(conn, workspace_id, state.watched) if one_by_one else None
    holders: dict[str, Item] = {}  # the accepted item holding each key
    for item in items:
        report = item.report
        if report.idempotency_key in holders:  # a repeat: answers like the holder
            item.first = holders[report.idempotency_key]
            continue
        run = state.runs.get(report.run_id) if report.run_id else None
        limit = state.limits[report.workbook_id]
        cost, billable = item.cost, is_billable(report.usage.kind)
        assert cost is not None

        def decide(meters: WorkspaceMeters) -> Debit:
            return charge_rules.decide(cost, billable, meters, limit, run, report.sent_at)  # noqa: B023

        try:
            debit = await _decide(conn, state, writes, workspace_id, decide, now)
        except Refused as refusal:
            # Per item; the key stays free, so a later item with it is a new request (R13).
            item.outcome = refusal
            note(refused, refusal, report)
            if steps is not None:
                step(steps, state, report, refusal.code)
            continue
        charge_rules.apply(debit, state.meters, limit, run)
        holders[report.idempotency_key] = item
        record(item, debit, state, writes, workspace_id, now)
        if state.buying and (units := topping.after_charge(state.buying, state.meters)):
            await topping.buy(conn, state.buying, state.meters, writes, workspace_id, units, now)
        if steps is not None:
            step(steps, state, report, None)
    claimed = first_of_each_key(items)
    await settle_claims(conn, workspace_id, claimed, holders)
    await write(conn, workspace_id, state, writes, now)
    if steps is not None:
        await steps.finish(conn, workspace_id, now)  # the live subscribers: told by write()
        return
    if state.buying:
        await emit(conn, workspace_id, state.buying.events, now)
    # write() told the live subscribers when something was charged (app.events.bus)
    await watch.settle(conn, workspace_id, left(state), now, refused, notify=False)


async def _decide(
    conn: BaseDBAsyncClient,
    state: Locked,
    writes: Writes,
    workspace_id: uuid.UUID,
    decide: Callable[[WorkspaceMeters], Debit],
    now: datetime,
) -> Debit:
    """R25's decision; short of credits, an auto top-up that makes the charge fit is bought
    first (R37), and nothing is bought when none does."""
    try:
        return decide(state.meters)
    except Refused as refusal:
        short = refusal.code is ErrorCode.INSUFFICIENT_DATA_CREDITS
        units = topping.to_fit(state.buying, state.meters, decide) if short and state.buying else 0
        if not units:
            raise
        assert state.buying is not None
        await topping.buy(conn, state.buying, state.meters, writes, workspace_id, units, now)
        return decide(state.meters)
