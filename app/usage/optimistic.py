"""A single charge as one statement, without a transaction of its own (PostgreSQL; issue 20).

Under row locks a charge costs five round trips: its first read, BEGIN, the claim with the
locks, the writes, COMMIT. Most charges change rows no other request is changing, so a single
charge is decided (app.usage.rules, the same decision) against the workspace's and workbook's
rows its first read brought, unlocked (app.usage.owned), and written here by ONE statement,
which PostgreSQL runs as its own transaction. In it the idempotency key is claimed first (R13:
a concurrent request with the key waits on the unique index); the workspace is updated and the
workbook locked, or updated when it has a limit, only where each row is still the version that
was read (app.locks.unchanged_since); the charge, its ledger entries and rollups are written;
and unless the claim and both rows held, `tally_moved()` (migration 0013) raises SQLSTATE
40001, so nothing of it stays, the claim included. The ledger's balances after come from the
rows as read; the versions make those the rows the statement changed. Two round trips.

A charge that would be refused, fire an event or touch an alert (R34, R35), may buy an auto
top-up (R37), is in a run, finds its key taken or its rows changed, goes the locked way
(app.usage.charging.transact), which decides again from the rows as they are then. A charge
that waited behind another of its workspace (app.usage.group_commit) and found itself alone
reads its rows again first: three round trips, still fewer than the locked way's four.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from app import locks
from app.bulk import combined
from app.db import connection, fetch
from app.errors import Refused
from app.events import bus, watch
from app.kinds import is_billable
from app.usage import coalesced, rules
from app.usage.claims import claim_one
from app.usage.items import Item, Seen
from app.usage.rows import seen_of, state_columns
from app.usage.settling import left
from app.usage.state import locked_state
from app.usage.writes import Writes, inserts, record, workspace_update

# TALLY_OPTIMISTIC_CHARGES (app.config), set at startup.
enabled = True
stats = {"written": 0, "moved": 0}  # for tests and benchmarks

# w0 the claim, w1 the workspace, w2 the workbook: each yields one row when it held.
_MAIN = (
    "SELECT CASE WHEN (SELECT count(*) FROM w1) = 1 AND (SELECT count(*) FROM w2) = 1"
    " THEN 1 ELSE tally_moved() END"
)


def wanted(conn: BaseDBAsyncClient) -> bool:
    return enabled and conn.capabilities.dialect == "postgres"


async def charged(workspace_id: uuid.UUID, item: Item, now: datetime, reread: bool = False) -> bool:
    """The item charged by one statement against the rows its first read saw (`reread`: read
    again now, for it waited behind another charge of its workspace), when nothing but the
    charge itself follows from it; False leaves the item as prepared, for the locked way."""
    if item.seen is None or item.report.run_id is not None:
        return False
    if reread:
        item.seen = await _rows_now(workspace_id, item)
    seen = item.seen
    if seen is None or seen.workspace["auto_topup_threshold"] is not None:
        return False  # R37 may buy: the locked way
    rows = locks.ChargeRows(seen.workspace, [seen.workbook], [], [])
    state = await locked_state(connection(), workspace_id, [item], rows, now)
    report, cost = item.report, item.cost
    assert cost is not None
    limit = state.limits[report.workbook_id]
    billable = is_billable(report.usage.kind)
    try:
        debit = rules.decide(cost, billable, state.meters, limit, None, report.sent_at)
    except Refused:  # a refusal may fire its event (R34): the locked way decides it again
        return False
    rules.apply(debit, state.meters, limit, None)
    writes = Writes()
    record(item, debit, state, writes, workspace_id, now)
    if watch.quiet(left(state)) and await written(workspace_id, item, writes, seen, now):
        return True
    item.outcome = None
    return False


async def _rows_now(workspace_id: uuid.UUID, item: Item) -> Seen | None:
    """The item's workspace and workbook rows as they are now, as its first read gave them."""
    query = f"SELECT {state_columns('$1', 'w')} FROM workbook w WHERE w.id = $2"
    rows = await fetch(connection(), query, workspace_id, item.report.workbook_id)
    return seen_of(rows[0]) if rows else None


async def written(
    workspace_id: uuid.UUID, item: Item, writes: Writes, seen: Seen, now: datetime
) -> bool:
    """Write the item's decided charge (`writes`) if its rows are still as `seen`; False when
    they are not or its key is taken, and then nothing was written. It may go in one
    statement with other workspaces' charges (app.usage.coalesced)."""
    member = coalesced.Member(workspace_id, item, writes, seen, now)
    if await coalesced.write(member, _statement):
        stats["written"] += 1
        return True
    stats["moved"] += 1
    return False


def _statement(member: coalesced.Member) -> tuple[str, list[Any]]:
    """The charge alone, as one statement: the claim (w0), the workspace updated and the
    workbook locked as the versions read (w1, w2), the inserts; unless all three held,
    `tally_moved()`."""
    workspace_id, item, writes, seen, now = member
    told, told_args = bus.notify_returning(connection(), workspace_id, bus.Change.STATE, first=7)
    assert told, "PostgreSQL's UPDATE returns a row for w1 to count"
    workspace = workspace_update(
        workspace_id,
        writes,
        f" AND {locks.unchanged_since(6, 'w0')}{told}",
        [seen.workspace_version, *told_args],
    )
    return combined(
        [claim_one(workspace_id, item, now), workspace, _workbook(item, writes, seen),
         *inserts(workspace_id, writes)],
        main=_MAIN,
    )  # fmt: skip


def _workbook(item: Item, writes: Writes, seen: Seen) -> tuple[str, list[object]]:
    """The workbook's spend moves only under a limit (R11); either way it must not change
    before the charge commits."""
    workbook_id = item.report.workbook_id
    if workbook_id not in writes.limit_spent:
        return locks.workbook_unchanged("w1"), [workbook_id, seen.workbook_version]
    return (
        "UPDATE workbook SET spent = spent + $3 WHERE id = $1 AND"
        f" {locks.unchanged_since(2, 'w1')} RETURNING 1",
        [workbook_id, seen.workbook_version, writes.limit_spent[workbook_id]],
    )
