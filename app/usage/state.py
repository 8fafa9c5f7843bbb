"""The state a charge is decided against (app.usage.rules): the workspace's meters, its
workbooks' limits and its runs' budgets and holds, from rows read under lock (app.locks) or, for
one statement's charge, as its first read saw them (app.usage.optimistic)."""

from __future__ import annotations

import uuid
from datetime import datetime

from tortoise.backends.base.client import BaseDBAsyncClient

from app import locks
from app.events import watch
from app.events.watch import Limited, Watched
from app.kinds import RunStatus
from app.usage import topping
from app.usage.items import Item, Locked, as_datetime, parse_uuid
from app.usage.rows import RUN_COLUMNS, WORKBOOK_COLUMNS, WORKSPACE_COLUMNS
from app.usage.rules import LimitState, RunState, WorkspaceMeters


async def locked_state(
    conn: BaseDBAsyncClient,
    workspace_id: uuid.UUID,
    items: list[Item],
    locked: locks.ChargeRows | None,
    now: datetime,
) -> Locked:
    """The rows the batch touches, locked in app.locks' order and read as they are now
    (`locked`: already, by `claim_and_lock`)."""
    if locked is None:
        ws = await locks.workspace_row(conn, workspace_id, WORKSPACE_COLUMNS)
        rows = await locks.workbook_rows(
            conn, [i.report.workbook_id for i in items], ", ".join(WORKBOOK_COLUMNS)
        )
    else:
        # Only the rows of the items charged now: those of keys already taken stay out.
        ws, wanted = locked.workspace, {i.report.workbook_id for i in items}
        rows = [r for r in locked.workbooks if str(r["id"]) in wanted]
    assert ws is not None
    watched = watch.watched_of(ws)
    remaining = ws["actions_capacity"] - ws["actions_used"]
    meters = WorkspaceMeters(remaining, ws["credit_balance"], ws["credits_held"])
    limits = {str(r["id"]): LimitState(r["name"], r["spend_limit"], r["spent"]) for r in rows}
    epochs = {str(r["id"]): r["spend_epoch"] for r in rows}
    for r in rows:
        watched.workbooks[parse_uuid(str(r["id"]))] = Limited(
            r["spend_limit"], r["spent"], r["limit_reached_headroom"]
        )
    runs, ttl = await _runs(conn, items, watched, locked)
    period_start = as_datetime(ws["period_start"])
    buying = await topping.buying_for(ws, period_start, now)
    return Locked(meters, period_start, limits, epochs, runs, ttl, watched, buying)


async def _runs(
    conn: BaseDBAsyncClient, items: list[Item], watched: Watched, locked: locks.ChargeRows | None
) -> tuple[dict[str, RunState], dict[str, int]]:
    run_ids = [i.report.run_id for i in items if i.report.run_id is not None]
    if not run_ids:
        return {}, {}
    if locked is None:
        rows = await locks.run_rows(conn, run_ids, ", ".join(RUN_COLUMNS))
    else:
        wanted = set(run_ids)
        rows = [r for r in locked.runs if str(r["id"]) in wanted]
    runs = {
        str(r["id"]): RunState(
            RunStatus(r["status"]), as_datetime(r["ended_at"]), r["budget"], r["spent"], r["hold"]
        )
        for r in rows
    }
    for r in rows:
        fired = r["budget_exhausted_headroom"]
        watched.runs[parse_uuid(str(r["id"]))] = Limited(r["budget"], r["spent"], fired)
    return runs, {str(r["id"]): r["hold_ttl_seconds"] for r in rows}
