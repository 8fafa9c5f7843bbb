"""The rows a charge locks and reads, and on PostgreSQL its idempotency claim with them: one
statement, one round trip (app.locks.charge_rows), where SQLite takes each lock in turn."""

from __future__ import annotations

import uuid
from datetime import datetime

from tortoise.backends.base.client import BaseDBAsyncClient

from app import locks
from app.events import watch
from app.usage import topping
from app.usage.claims import claim_ctes
from app.usage.items import Item

WORKSPACE_COLUMNS = (
    f"credit_balance, credits_held, period_start, {watch.WORKSPACE_COLUMNS}, {topping.COLUMNS}"
)
WORKBOOK_COLUMNS = ("id", "name", "spend_limit", "spent", "spend_epoch", "limit_reached_headroom")
RUN_COLUMNS = (
    "id",
    "status",
    "ended_at",
    "budget",
    "spent",
    "hold",
    "hold_ttl_seconds",
    "budget_exhausted_headroom",
)


async def claim_and_lock(
    conn: BaseDBAsyncClient,
    workspace_id: uuid.UUID,
    items: list[Item],
    claimed: list[Item],
    now: datetime,
) -> locks.ChargeRows:
    """PostgreSQL: the claim of every key of `claimed`, then the workspace, workbook and run
    rows of every item, locked in app.locks' order, in one statement. The claim comes first,
    as when it was a statement of its own: a concurrent request with one of the keys waits on
    the unique index before it waits on any row."""
    workbook_ids = [i.report.workbook_id for i in items]
    run_ids = [i.report.run_id for i in items if i.report.run_id is not None]
    return await locks.charge_rows(
        conn,
        workspace_id,
        WORKSPACE_COLUMNS,
        (workbook_ids, WORKBOOK_COLUMNS),
        (run_ids, RUN_COLUMNS),
        before=claim_ctes(workspace_id, claimed, now),
    )
