"""The workbooks and runs a usage report names, read as the caller's own before anything is
charged (any other is NOT_FOUND); the workbooks' read also brings the catalog version in force
(R40), and may check the caller's key (app.workspaces.auth.Bearer), so a charge makes one read
for all three."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from app import validation
from app.catalog import Catalog
from app.catalog.store import adopt, in_force_columns, last_read
from app.db import connection, fetch, in_list
from app.errors import NotFound
from app.usage.items import Item, as_datetime
from app.usage.rows import seen_of, state_columns
from app.workspaces.auth import KEY_COLUMNS, Bearer, key_matches, principal_of


class Owned(NamedTuple):
    """What a report's workbook or run must be checked against before anything is charged."""

    id: str
    workbook_id: str  # a workbook's own id
    table_id: str | None = None
    created_at: datetime | None = None  # a run's start (R23)


async def workbooks_of(
    caller: uuid.UUID | Bearer, items: list[Item], now: datetime, state: bool = False
) -> tuple[uuid.UUID, dict[str, Owned], Catalog]:
    """The caller's workspace, the items' workbooks in it, and the catalog in force at `now`
    (R40) read with them: one round trip for all. A `Bearer` caller's key is checked in the
    same statement; a bad key is refused before anything about the input is. `state` (one
    item, PostgreSQL): its workspace's and workbook's rows come too, set on it as `seen`."""
    raw = [item.report.workbook_id for item in items]
    catalog = in_force_columns(1, 2)
    if not isinstance(caller, Bearer):
        extra = f", {state_columns('w.workspace_id', 'w')}" if state else ""
        select = f"SELECT w.id, w.id AS workbook_id, {catalog}{extra} FROM workbook w"
        found: list[dict[str, Any]] = []
        owned = await _owned(select, caller, raw, "workbook", [now, last_read()], found)
        if state:
            items[0].seen = seen_of(found[0])
        return caller, owned, adopt(found[0]["catalog_id"], found[0]["catalog_body"])
    try:
        ids = _parsed(raw, "workbook")
    except NotFound:  # a malformed id
        await caller.principal()  # who asks comes first: a bad key is refused as such
        raise
    wanted = sorted(set(ids.values()))
    extra = f", {state_columns('k.workspace_id', 'w')}" if state else ""
    rows = await fetch(
        connection(),
        f"SELECT {KEY_COLUMNS}, w.id, w.id AS workbook_id, {catalog}{extra} FROM api_key k"
        f" LEFT JOIN workbook w ON w.workspace_id = k.workspace_id"
        f" AND w.id IN ({in_list(wanted, 4)}) WHERE {key_matches(3)}",
        now,
        last_read(),
        caller.key_hash,
        *wanted,
    )
    principal = principal_of(rows[0] if rows else None)
    caller.accepted(principal)
    workspace_id = principal.require_workspace()
    owned = _found([r for r in rows if r["id"] is not None], ids, "workbook")
    if state:
        items[0].seen = seen_of(rows[0])
    return workspace_id, owned, adopt(rows[0]["catalog_id"], rows[0]["catalog_body"])


async def runs_of(workspace_id: uuid.UUID, items: list[Item]) -> dict[str, Owned]:
    raw = [item.report.run_id for item in items if item.report.run_id is not None]
    if not raw:
        return {}
    select = "SELECT id, workbook_id, table_id, created_at FROM run"
    return await _owned(select, workspace_id, raw, "run")


async def _owned(
    select: str,
    workspace_id: uuid.UUID,
    raw_ids: list[str],
    what: str,
    first: list[Any] | None = None,
    rows_out: list[dict[str, Any]] | None = None,
) -> dict[str, Owned]:
    """Rows of the caller's workspace by id as the client spelled it; any other is NOT_FOUND.
    Plain SQL, not the ORM's query builder: about 200 µs of CPU less a read, and a one-item
    request makes two of these. `first`: `select`'s own parameters ($1, $2, ...), before
    ours; `rows_out` receives the rows as read."""
    ids = _parsed(raw_ids, what)
    wanted = sorted(set(ids.values()))
    own = len(first or [])
    rows = await fetch(
        connection(),
        f"{select} WHERE workspace_id = ${own + 1} AND id IN ({in_list(wanted, own + 2)})",
        *(first or []),
        str(workspace_id),
        *wanted,
    )
    if rows_out is not None:
        rows_out.extend(rows)
    return _found(rows, ids, what)


def _parsed(raw_ids: list[str], what: str) -> dict[str, str]:
    """Each id as the client spelled it, and as stored."""
    return {raw: str(validation.object_id(raw, what)) for raw in set(raw_ids)}


def _found(rows: Sequence[dict[str, Any]], ids: dict[str, str], what: str) -> dict[str, Owned]:
    found = {
        str(r["id"]): Owned(
            str(r["id"]),
            str(r["workbook_id"]),
            r.get("table_id"),
            as_datetime(r.get("created_at")),
        )
        for r in rows
    }
    for raw, parsed in ids.items():
        if parsed not in found:
            raise NotFound(f"{what} {raw} not found")
    return {raw: found[parsed] for raw, parsed in ids.items()}
