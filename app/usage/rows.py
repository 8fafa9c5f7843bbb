"""The rows a charge locks and reads, and on PostgreSQL its idempotency claim with them: one
statement, one round trip (app.locks.charge_rows), where SQLite takes each lock in turn."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from app import locks
from app.events import watch
from app.usage import topping
from app.usage.claims import claim_ctes
from app.usage.items import Item, Seen

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


def _named(columns: str) -> tuple[tuple[str, str], ...]:
    """Each of a select list's (expression, name): ROW() takes no aliases."""
    pairs = []
    for column in columns.split(","):
        expression, _, alias = column.strip().partition(" AS ")
        pairs.append((expression, alias or expression))
    if not all(name.isidentifier() for _, name in pairs):  # a comma inside an expression
        raise RuntimeError(f"name each column of {columns!r} plainly, or split it otherwise")
    return tuple(pairs)


_WORKSPACE = _named(WORKSPACE_COLUMNS)


@functools.lru_cache(maxsize=8)
def state_columns(workspace_id: str, workbook: str) -> str:
    """Two columns a single charge's first read adds on PostgreSQL (app.usage.owned): the
    workspace's row and the workbook's (`workbook`: its alias in the read), each a record
    led by the row's version, for app.usage.optimistic. `workspace_id`: the expression for
    the workspace's id, in the read's scope."""
    ws = ", ".join(expression for expression, _ in _WORKSPACE)
    wb = ", ".join(f"{workbook}.{c}" for c in WORKBOOK_COLUMNS)
    return (
        f"(SELECT ROW(xmin::text, {ws}) FROM workspace WHERE id = {workspace_id}) AS __workspace,"
        f" ROW({workbook}.xmin::text, {wb}) AS __workbook"
    )


def seen_of(row: Mapping[str, Any]) -> Seen | None:
    """`state_columns`' two records as plain rows; None when either is missing."""
    ws, wb = row.get("__workspace"), row.get("__workbook")
    if ws is None or wb is None or wb[0] is None:
        return None
    workspace = {name: value for (_, name), value in zip(_WORKSPACE, ws[1:], strict=True)}
    workbook = dict(zip(WORKBOOK_COLUMNS, wb[1:], strict=True))
    return Seen(workspace, workbook, ws[0], wb[0])
