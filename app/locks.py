"""Every row lock a service takes, in one order: charge, workspace, workbook, run, then webhook
deliveries (claimed by the delivery worker, in transactions that lock nothing else).

Two transactions that lock rows in the same order wait for each other instead of deadlocking
(Saleor's `lock_objects` does the same). So no service writes `FOR UPDATE` itself
(tests/unit/test_locks.py fails if one does), several rows of one table are locked in id
order, and a transaction that asks for a lock out of order fails at once, in tests as in
production, instead of deadlocking one day under load.

Locks are `FOR NO KEY UPDATE`, never `FOR UPDATE`: a charge in flight holds a key-share lock on
its workspace (its usage rollup row references it), and `FOR UPDATE` conflicts with that. SQLite
has no row locks: its transactions take the whole file's write lock when they begin
(app.sqlite_engine), which serializes them instead.
"""

from __future__ import annotations

import functools
import uuid
import weakref
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from tortoise.backends.base.client import BaseDBAsyncClient, TransactionalDBClient

from app.db import fetch, in_list
from app.models import Charge, Run, Workbook, Workspace

CHARGE, WORKSPACE, WORKBOOK, RUN, DELIVERY = range(5)
_NAMES = ("charge", "workspace", "workbook", "run", "webhook_delivery")
# The deepest level each open transaction has locked so far.
_taken: weakref.WeakKeyDictionary[BaseDBAsyncClient, int] = weakref.WeakKeyDictionary()


class LockOrderError(AssertionError):
    """A bug: a transaction asked for a lock out of the one order."""


def _take(conn: BaseDBAsyncClient, level: int) -> None:
    if not isinstance(conn, TransactionalDBClient):
        raise LockOrderError("a row lock outside a transaction would be released at once")
    deepest = _taken.get(conn, -1)
    if level < deepest:
        raise LockOrderError(f"a {_NAMES[level]} row locked after a {_NAMES[deepest]} row")
    _taken[conn] = level


def _clause(conn: BaseDBAsyncClient, skip_locked: bool = False) -> str:
    if conn.capabilities.dialect == "sqlite":
        return ""
    return " FOR NO KEY UPDATE SKIP LOCKED" if skip_locked else " FOR NO KEY UPDATE"


async def _rows(
    conn: BaseDBAsyncClient, level: int, columns: str, ids: Sequence[str]
) -> list[dict[str, Any]]:
    _take(conn, level)
    if not ids:
        return []
    wanted = sorted(set(ids))
    query = (
        f"SELECT {columns} FROM {_NAMES[level]} WHERE id IN ({in_list(wanted)})"
        f" ORDER BY id{_clause(conn)}"
    )
    return list(await fetch(conn, query, *wanted))


async def charge(
    conn: BaseDBAsyncClient, workspace_id: uuid.UUID, charge_id: uuid.UUID
) -> Charge | None:
    _take(conn, CHARGE)
    query = Charge.filter(id=charge_id, workspace_id=workspace_id).using_db(conn)
    return await query.select_for_update(no_key=True).first()


async def workspace(conn: BaseDBAsyncClient, workspace_id: uuid.UUID) -> Workspace | None:
    _take(conn, WORKSPACE)
    query = Workspace.filter(id=workspace_id).using_db(conn)
    return await query.select_for_update(no_key=True).first()


async def workspace_row(
    conn: BaseDBAsyncClient, workspace_id: uuid.UUID, columns: str = "id"
) -> dict[str, Any] | None:
    """The workspace's row as plain values (the charge path reads a few columns)."""
    rows = await _rows(conn, WORKSPACE, columns, [str(workspace_id)])
    return rows[0] if rows else None


async def workbook_rows(
    conn: BaseDBAsyncClient, workbook_ids: Sequence[str], columns: str
) -> list[dict[str, Any]]:
    return await _rows(conn, WORKBOOK, columns, workbook_ids)


async def run_rows(
    conn: BaseDBAsyncClient, run_ids: Sequence[str], columns: str
) -> list[dict[str, Any]]:
    return await _rows(conn, RUN, columns, run_ids)


async def workbook(
    conn: BaseDBAsyncClient, workspace_id: uuid.UUID, workbook_id: uuid.UUID
) -> Workbook | None:
    _take(conn, WORKBOOK)
    query = Workbook.filter(id=workbook_id, workspace_id=workspace_id).using_db(conn)
    return await query.select_for_update(no_key=True).first()


async def run(conn: BaseDBAsyncClient, workspace_id: uuid.UUID, run_id: uuid.UUID) -> Run | None:
    _take(conn, RUN)
    query = Run.filter(id=run_id, workspace_id=workspace_id).using_db(conn)
    return await query.select_for_update(no_key=True).first()


async def runs_holding(conn: BaseDBAsyncClient, workspace_id: uuid.UUID) -> list[Run]:
    """Every run of the workspace that holds credits, in id order."""
    _take(conn, RUN)
    query = Run.filter(workspace_id=workspace_id, hold__gt=0).using_db(conn).order_by("id")
    return list(await query.select_for_update(no_key=True))


async def claim_workspaces(
    conn: BaseDBAsyncClient, where: str, args: Sequence[Any], order_by: str, limit: int
) -> list[uuid.UUID]:
    """Up to `limit` workspaces matching `where`, skipping those another transaction holds:
    any number of schedulers share due work without waiting on each other."""
    rows = await claim_workspace_rows(conn, where, args, order_by, limit, "id")
    return [uuid.UUID(str(r["id"])) for r in rows]


async def claim_workspace_rows(
    conn: BaseDBAsyncClient,
    where: str,
    args: Sequence[Any],
    order_by: str,
    limit: int,
    columns: str = "*",
) -> list[dict[str, Any]]:
    """`claim_workspaces`, returning the claimed rows' `columns` as they are once locked."""
    _take(conn, WORKSPACE)
    query = (
        f"SELECT {columns} FROM workspace WHERE {where} ORDER BY {order_by}"
        f" LIMIT {int(limit)}{_clause(conn, skip_locked=True)}"
    )
    return list(await fetch(conn, query, *args))


async def claim_deliveries(
    conn: BaseDBAsyncClient, now: datetime, lease_until: datetime, limit: int
) -> list[dict[str, Any]]:
    """Up to `limit` webhook deliveries due by `now`, oldest first, skipping those another
    transaction holds, leased until `lease_until` (their next_attempt_at) so that no other
    worker takes them once this transaction commits (R36: no attempt is sent twice)."""
    _take(conn, DELIVERY)
    query = (
        "UPDATE webhook_delivery SET next_attempt_at = $2 WHERE id IN ("
        "SELECT id FROM webhook_delivery WHERE status = 'PENDING' AND next_attempt_at <= $1"
        f" ORDER BY next_attempt_at LIMIT {int(limit)}{_clause(conn, skip_locked=True)})"
        " RETURNING id, workspace_id, event_id, endpoint_id, attempts"
    )
    return list(await fetch(conn, query, now, lease_until))


async def lease_workspaces(
    conn: BaseDBAsyncClient, workspace_ids: Sequence[str], lease: float, fresh: float
) -> list[dict[str, Any]]:
    """The live-update lease (app.events.bus.keep_live), PostgreSQL: the workspaces whose
    lease has less than `fresh` seconds left, locked in id order and leased `lease` seconds
    from now, in one statement; each row's `lapsed` says whether its lease had run out."""
    _take(conn, WORKSPACE)
    query = (
        "WITH due AS (SELECT id, live_until FROM workspace WHERE id = ANY($1::uuid[])"
        " AND (live_until IS NULL OR live_until < now() + make_interval(secs => $3))"
        " ORDER BY id FOR NO KEY UPDATE)"
        " UPDATE workspace AS w SET live_until = now() + make_interval(secs => $2) FROM due"
        " WHERE w.id = due.id RETURNING w.id, coalesce(due.live_until <= now(), true) AS lapsed"
    )
    return list(await fetch(conn, query, sorted(set(workspace_ids)), lease, fresh))


async def workspace_for_events(
    conn: BaseDBAsyncClient, workspace_id: uuid.UUID, notify: tuple[str, str]
) -> None:
    """The workspace's row, locked while its events are written (app.events.store), so one
    workspace's events commit in the order of their seq: the `events` subscription sends them
    by seq. Most transactions that write events locked it already, for the change itself; the
    others (a test ping, an endpoint the delivery worker disables) take it here, as their last
    lock: nothing they do after writing events waits on another row, so this cannot deadlock,
    and it stays outside the one order above. `notify` (channel, payload: app.events.bus)
    rides in the same statement. SQLite serializes whole transactions: nothing to lock."""
    if conn.capabilities.dialect == "sqlite":
        return
    if not isinstance(conn, TransactionalDBClient):
        raise LockOrderError("a row lock outside a transaction would be released at once")
    channel, payload = notify
    query = f"SELECT pg_notify($2, $3) FROM workspace WHERE id = $1{_clause(conn)}"
    await fetch(conn, query, str(workspace_id), channel, payload)


class ChargeRows(NamedTuple):
    """What `charge_rows` read: the workspace's row (None if it does not exist), its
    workbooks' and runs' rows in id order, and the rows of the statement run before them."""

    workspace: dict[str, Any] | None
    workbooks: list[dict[str, Any]]
    runs: list[dict[str, Any]]
    before: list[Any]


async def charge_rows(
    conn: BaseDBAsyncClient,
    workspace_id: uuid.UUID,
    workspace_columns: str,
    workbooks: tuple[Sequence[str], Sequence[str]],
    runs: tuple[Sequence[str], Sequence[str]],
    before: tuple[str, str, list[Any]] | None = None,
) -> ChargeRows:
    """The workspace, workbook and run rows of a charge locked in this module's order with
    one statement on PostgreSQL (one round trip, not three). `workbooks` and `runs` are
    (ids, plain column names). `before` is (CTEs, the name of one that yields a value,
    their arguments from $1): the charge's idempotency claim, run to completion before the
    first lock is taken, its values returned in `before`. Each lock waits on its row as
    `_rows` does, and a locked row is read as it is once locked (PostgreSQL rereads a row it
    waited for), so what comes back is what the other statements would have read."""
    if conn.capabilities.dialect != "postgres":
        raise RuntimeError("charge_rows is PostgreSQL's; SQLite takes the locks one by one")
    _take(conn, WORKSPACE)
    args = list(before[2]) if before else []
    args.append(str(workspace_id))
    counts = []
    for level, (ids, _) in ((WORKBOOK, workbooks), (RUN, runs)):
        wanted = sorted(set(ids))
        if wanted:
            _take(conn, level)
        args += wanted
        counts.append(len(wanted))
    query = _charge_rows_sql(
        workspace_columns, counts[0], tuple(workbooks[1]), counts[1], tuple(runs[1]),
        before[:2] if before else None, len(before[2]) if before else 0, _clause(conn),
    )  # fmt: skip
    rows = await fetch(conn, query, *args)
    if not rows:
        return ChargeRows(None, [], [], [])
    found = dict(rows[0])

    def named(level: int, columns: Sequence[str]) -> list[dict[str, Any]]:
        values = found.pop(f"__locked_{_NAMES[level]}", None) or []
        return [dict(zip(columns, v, strict=True)) for v in values]

    found_workbooks, found_runs = named(WORKBOOK, workbooks[1]), named(RUN, runs[1])
    taken = list(found.pop("__before", None) or [])
    return ChargeRows(found, found_workbooks, found_runs, taken)


@functools.lru_cache(maxsize=256)  # a charge's statement comes in a few shapes
def _charge_rows_sql(
    workspace_columns: str,
    workbook_count: int,
    workbook_columns: tuple[str, ...],
    run_count: int,
    run_columns: tuple[str, ...],
    before: tuple[str, str] | None,
    before_args: int,
    clause: str,
) -> str:
    """`charge_rows`' statement: its placeholders are `before`'s arguments, the workspace's
    id, then the wanted workbook ids and run ids, each sorted."""
    ctes, gate = [], "TRUE"
    if before is not None:
        ctes.append(before[0])
        gate = f"(SELECT count(*) FROM {before[1]}) >= 0"  # runs `before` first
    position = before_args + 1
    ctes.append(
        f"locked_ws AS (SELECT {workspace_columns} FROM workspace WHERE id = ${position}"
        f" AND {gate}{clause})"
    )
    arrays, previous = [], "locked_ws"
    for level, count, columns in ((WORKBOOK, workbook_count, workbook_columns),
                                  (RUN, run_count, run_columns)):  # fmt: skip
        if not count:
            continue
        first, position = position + 1, position + count
        name = f"locked_{_NAMES[level]}"
        # Each table's locks wait for the one before it (a subquery the planner runs first).
        ctes.append(
            f"{name} AS (SELECT {', '.join(columns)} FROM {_NAMES[level]}"
            f" WHERE id IN ({in_list(range(count), first)})"
            f" AND EXISTS (SELECT 1 FROM {previous}) ORDER BY id{clause})"
        )
        row = ", ".join(f"{name}.{c}" for c in columns)
        arrays.append(f"ARRAY(SELECT ROW({row}) FROM {name} ORDER BY id) AS __{name}")
        previous = name
    if before is not None:
        arrays.append(f"ARRAY(SELECT * FROM {before[1]}) AS __before")
    return (
        f"WITH {', '.join(ctes)} SELECT locked_ws.*"
        + "".join(f", {a}" for a in arrays)
        + " FROM locked_ws"
    )


def unchanged_since(version: int, after: str) -> str:
    """A condition for a charge's statement that runs as its own transaction, without locks
    taken before (app.usage.optimistic): the row is still the version read, the text
    parameter $`version` (an UPDATE, or `workbook_unchanged`'s lock, waits for a row another
    transaction is changing and then tests its new version), and the CTE `after` has yielded
    a row, which makes it run first: the idempotency claim, then each lock in this module's
    order."""
    return f"xmin = ${version}::text::xid AND EXISTS (SELECT 1 FROM {after})"


def workbook_unchanged(after: str) -> str:
    """A charge's workbook, $1, locked as `unchanged_since` its version $2 (after `after`):
    nothing about it may change before the charge commits (a spend limit set meanwhile waits)."""
    return f"SELECT 1 FROM workbook WHERE id = $1 AND {unchanged_since(2, after)}{_NO_KEY_UPDATE}"


def workspaces_in_order(claimed: str) -> str:
    """Several charges' workspaces (app.usage.coalesced), those whose key the CTE `claimed`
    claimed (its `workspace_id`), locked in id order, and none another transaction holds: it
    is left out (SKIP LOCKED), which fails the statement at once rather than hold the others'
    rows while it waits."""
    return (
        f"SELECT id FROM workspace WHERE id IN (SELECT workspace_id FROM {claimed})"
        f" ORDER BY id{_NO_KEY_UPDATE} SKIP LOCKED"
    )


def workbooks_unchanged(versions: str, after: str) -> str:
    """Several charges' workbooks, each locked as `unchanged_since` its version, after the CTE
    `after` (their workspaces' update) has yielded a row, and none another transaction holds
    (as `workspaces_in_order`): `versions` a select of (id, version)."""
    return (
        f"SELECT 1 FROM workbook b JOIN ({versions}) AS v ON b.id = v.id"
        f" WHERE b.xmin = v.version::xid AND EXISTS (SELECT 1 FROM {after})"
        f" ORDER BY b.id{_NO_KEY_UPDATE} OF b SKIP LOCKED"
    )


_NO_KEY_UPDATE = " FOR NO KEY UPDATE"


CATALOG_LOCK_TIMEOUT = "5s"


async def catalog_versions(conn: BaseDBAsyncClient) -> None:
    """Hold back every read of the catalog until this transaction ends (R40).

    A new version's instant is read after this lock is granted: a read that began before
    waited for nothing and was for an earlier instant; a read for an instant at or after it
    began after the lock and waits here until the version commits, then sees it. PostgreSQL:
    ACCESS EXCLUSIVE on catalog_version, which even plain SELECTs wait for, given up after
    CATALOG_LOCK_TIMEOUT (a long transaction that read the catalog holds it off) so charges are
    never held back longer. Outside the row order above: the transaction that takes it writes
    only the version and its audit entry. SQLite: BEGIN IMMEDIATE serialized the writers.
    """
    if not isinstance(conn, TransactionalDBClient):
        raise LockOrderError("a table lock outside a transaction would be released at once")
    if conn.capabilities.dialect == "sqlite":
        return
    await fetch(conn, f"SET LOCAL lock_timeout = '{CATALOG_LOCK_TIMEOUT}'")
    await fetch(conn, "LOCK TABLE catalog_version IN ACCESS EXCLUSIVE MODE")
