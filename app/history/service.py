"""Usage history (R24): daily rollups kept in the charge and refund transactions, and read.

`add_usage` runs inside the transaction that writes a charge or a refund, so the rollups are
exactly the charges and refunds committed, and a rolled-back charge leaves no trace in them.
`usage_history` reads only the rollups: 90 days cost at most 90 days of rollup rows, however
many charges they sum. `usage_history_from_charges` computes the same answer from the charges
and refunds themselves; it is slow, and it is the reference the tests hold the rollups to.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from app import validation
from app.bulk import unnest_arrays
from app.db import connection, fetch
from app.errors import InvalidInput
from app.history.own_keys import own_key_figures
from app.history.rules import (
    UsageDelta,
    UsageDimension,
    UsageRow,
    day_range,
    delta_of_charge,
    delta_of_refund,
    dimensions,
    group_deltas,
    row_key,
    sort_rows,
    sum_amounts,
    sum_deltas,
    with_names,
)
from app.models import Charge, Refund, Workbook
from app.workspaces.workbooks import get_workbook

_BATCH = 1_000  # rows per upsert: 10 parameters each, far below PostgreSQL's 32,767

UPSERT = """
INSERT INTO usage_daily (workspace_id, day, period_start, workbook_id, table_id, provider, kind,
                         actions, credits, results)
VALUES {values}
ON CONFLICT (workspace_id, day, period_start, workbook_id, table_id, provider, kind)
DO UPDATE SET actions = usage_daily.actions + excluded.actions,
              credits = usage_daily.credits + excluded.credits,
              results = usage_daily.results + excluded.results
"""


async def add_usage(
    conn: BaseDBAsyncClient, workspace_id: uuid.UUID, deltas: Sequence[UsageDelta]
) -> None:
    """Add deltas to the rollups, in the caller's transaction.

    Duplicate keys are summed first (one upsert cannot touch a row twice) and rows are written
    in key order, so concurrent batches lock shared rows in the same order and never deadlock.
    """
    for query, args in usage_upserts(workspace_id, deltas):
        await fetch(conn, query, *args)


def usage_upserts(
    workspace_id: uuid.UUID, deltas: Sequence[UsageDelta]
) -> list[tuple[str, list[Any]]]:
    """`add_usage`'s statements and their arguments, for a caller that sends them with others
    in one statement (app.usage.writes)."""
    rows = sum_deltas(deltas)
    statements = []
    for chunk in (rows[i : i + _BATCH] for i in range(0, len(rows), _BATCH)):
        values = ", ".join(
            "(" + ", ".join(f"${i * 10 + j}" for j in range(1, 11)) + ")" for i in range(len(chunk))
        )
        args = [arg for d in chunk for arg in _upsert_args(workspace_id, d)]
        statements.append((UPSERT.format(values=values), args))
    return statements


_COLUMNS = [("workspace_id", "uuid"), ("day", "date"), ("period_start", "timestamptz"),
            ("workbook_id", "uuid"), ("table_id", "text"), ("provider", "text"),
            ("kind", "text"), ("actions", "bigint"), ("credits", "bigint"),
            ("results", "bigint")]  # fmt: skip


def usage_upsert_each(
    deltas: Sequence[tuple[uuid.UUID, Sequence[UsageDelta]]],
) -> tuple[str, list[Any]] | None:
    """Several workspaces' deltas (app.usage.coalesced) as one upsert of arrays: one text
    whatever their number. Each workspace's summed as `add_usage` sums them; the rows in key
    order when the workspaces come in id order. None when nothing moves."""
    rows = [_upsert_args(ws, d) for ws, ds in deltas for d in sum_deltas(ds)]
    if not rows:
        return None
    select, args = unnest_arrays(_COLUMNS, rows)
    return UPSERT.replace("VALUES {values}", select), args


def _upsert_args(workspace_id: uuid.UUID, d: UsageDelta) -> list[Any]:
    day, period_start, workbook_id, table_id, provider, kind = d.key()
    return [
        str(workspace_id),
        day,
        period_start,
        str(workbook_id),
        table_id,
        provider,
        kind,
        d.actions,
        d.credits,
        d.results,
    ]


def charge_usage(charge: Charge) -> UsageDelta:
    """A charge as history counts it, in the stored cycle it was charged in (R33)."""
    return _charge_delta(charge, charge.actions, charge.credits, charge.results)


def charges_usage(charges: Iterable[Charge]) -> list[UsageDelta]:
    """Many charges as history counts them. Charges alike in all but their amounts are summed
    first and counted once: `delta_of_charge` is linear in the amounts, and a batch of 1,000
    charges holds a few dozen such groups."""
    sums = sum_amounts(charges, _alike)
    return [_charge_delta(first, *total) for first, total in sums.values()]


def _alike(c: Charge) -> tuple[Any, ...]:
    """Everything `delta_of_charge` reads but the amounts. Equal datetimes on either side of a
    DST fold are different instants, so their offsets count too."""
    offsets = (c.created_at.utcoffset(), c.period_start and c.period_start.utcoffset())
    alike = (c.created_at, c.period_start, c.workbook_id, c.table_id, c.kind, c.provider, c.model)
    return (*alike, c.own_api_key, *offsets)


def _charge_delta(charge: Charge, actions: int, credits: int, results: int) -> UsageDelta:
    return delta_of_charge(
        created_at=charge.created_at,
        period_start=_cycle_of(charge),
        workbook_id=charge.workbook_id,
        table_id=charge.table_id,
        kind=charge.kind,
        provider=charge.provider,
        model=charge.model,
        own_api_key=charge.own_api_key,
        actions=actions,
        credits=credits,
        results=results,
    )


def refund_usage(charge: Charge, refund: Refund) -> UsageDelta:
    """A refund on its own day and cycle, under its charge's keys (R22)."""
    return delta_of_refund(
        created_at=refund.created_at,
        period_start=_cycle_of(refund),
        workbook_id=charge.workbook_id,
        table_id=charge.table_id,
        kind=charge.kind,
        provider=charge.provider,
        model=charge.model,
        credits=refund.credits,
    )


def _cycle_of(row: Charge | Refund) -> datetime:
    if row.period_start is None:  # written before migration 0004 knew the cycle
        raise ValueError(f"{type(row).__name__} {row.id} has no period_start")
    return row.period_start


@dataclass(frozen=True)
class HistoryQuery:
    """A checked request: the UTC days [first, after), dimensions, and filters."""

    workspace_id: uuid.UUID
    first: date
    after: date
    dims: tuple[UsageDimension, ...]
    workbook_id: uuid.UUID | None
    table_id: str | None


async def history_query(
    workspace_id: uuid.UUID,
    start: datetime,
    end: datetime,
    group_by: Sequence[UsageDimension],
    workbook_id: str | uuid.UUID | None = None,
    table_id: str | None = None,
) -> HistoryQuery:
    """Validate a request: INVALID_INPUT for a bad range or groupBy, NOT_FOUND for a workbook
    that is not the caller's."""
    first, after = day_range(start, end)
    dims = dimensions(group_by)
    validation.text(table_id, "tableId", validation.MAX_TABLE_ID)
    if table_id == "":
        raise InvalidInput("tableId must not be empty; leave it out for every table")
    workbook = None if workbook_id is None else await get_workbook(workspace_id, workbook_id)
    return HistoryQuery(
        workspace_id, first, after, dims, workbook.id if workbook else None, table_id
    )


async def usage_history(
    workspace_id: uuid.UUID,
    start: datetime,
    end: datetime,
    group_by: Sequence[UsageDimension],
    workbook_id: str | uuid.UUID | None = None,
    table_id: str | None = None,
    own_keys: bool = False,
) -> list[UsageRow]:
    """Usage in the UTC days overlapping [start, end), grouped and sorted by `group_by` (R24).

    Reads only the daily rollups, grouped in SQL; with `own_keys`, also the own-key charges
    (their results and savings: app.history.own_keys), two statements more.
    """
    q = await history_query(workspace_id, start, end, group_by, workbook_id, table_id)
    sql, args = _history_sql(q)
    rows = [_row(r, q.dims) for r in await fetch(connection(), sql, *args)]
    if own_keys:
        figures = await own_key_figures(
            workspace_id, q.first, q.after, q.dims, q.workbook_id, q.table_id
        )
        rows = [_with_own_keys(row, figures.get(row_key(row, q.dims))) for row in rows]
    return sort_rows(rows, q.dims)


def _with_own_keys(row: UsageRow, figures: tuple[int, int] | None) -> UsageRow:
    if figures is None:
        return row
    return replace(row, own_key_results=figures[0], own_key_savings=figures[1])


_COLUMN = {
    UsageDimension.DAY: "u.day",
    UsageDimension.CYCLE: "u.period_start",
    UsageDimension.WORKBOOK: "u.workbook_id",
    UsageDimension.TABLE: "u.table_id",
    UsageDimension.PROVIDER: "u.provider",
    UsageDimension.KIND: "u.kind",
}


def _history_sql(q: HistoryQuery) -> tuple[str, list[Any]]:
    keys = [f"{_COLUMN[d]} AS {_alias(d)}" for d in q.dims]
    group = [_COLUMN[d] for d in q.dims]
    join = ""
    if UsageDimension.WORKBOOK in q.dims:
        keys.append("w.name AS workbook_name")
        group.append("w.name")
        join = " JOIN workbook w ON w.id = u.workbook_id"
    args: list[Any] = [str(q.workspace_id), q.first, q.after]
    where = "u.workspace_id = $1 AND u.day >= $2 AND u.day < $3"
    if q.workbook_id is not None:
        args.append(str(q.workbook_id))
        where += f" AND u.workbook_id = ${len(args)}"
    if q.table_id is not None:
        args.append(q.table_id)
        where += f" AND u.table_id = ${len(args)}"
    sums = (
        "COALESCE(SUM(u.actions), 0) AS actions, COALESCE(SUM(u.credits), 0) AS credits,"
        " COALESCE(SUM(u.results), 0) AS results"
    )
    sql = f"SELECT {', '.join([*keys, sums])} FROM usage_daily u{join} WHERE {where}"
    if group:
        sql += f" GROUP BY {', '.join(group)}"
    return sql, args


def _alias(d: UsageDimension) -> str:
    return f"k_{d.value.lower()}"  # "table" alone is a reserved word


def _row(r: dict[str, Any], dims: Sequence[UsageDimension]) -> UsageRow:
    """A result row; SQLite returns dates, instants and ids as text, PostgreSQL as values."""
    keys: dict[str, Any] = {}
    if UsageDimension.DAY in dims:
        keys["day"] = _as_date(r["k_day"])
    if UsageDimension.CYCLE in dims:
        keys["cycle_start"] = _as_instant(r["k_cycle"])
    if UsageDimension.WORKBOOK in dims:
        keys["workbook_id"] = uuid.UUID(str(r["k_workbook"]))
        keys["workbook_name"] = r["workbook_name"]
    if UsageDimension.TABLE in dims:
        keys["table_id"] = r["k_table"] or None
    if UsageDimension.PROVIDER in dims:
        keys["provider"] = r["k_provider"] or None
    if UsageDimension.KIND in dims:
        keys["kind"] = r["k_kind"]
    return UsageRow(
        **keys, actions=int(r["actions"]), credits=int(r["credits"]), results=int(r["results"])
    )


def _as_date(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


def _as_instant(value: datetime | str) -> datetime:
    instant = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return instant.astimezone(UTC)


async def usage_history_from_charges(
    workspace_id: uuid.UUID,
    start: datetime,
    end: datetime,
    group_by: Sequence[UsageDimension],
    workbook_id: str | uuid.UUID | None = None,
    table_id: str | None = None,
) -> list[UsageRow]:
    """The same answer from every charge and refund in the range, grouped in Python.

    Slow and exact: the reference that the rollups are tested against.
    """
    q = await history_query(workspace_id, start, end, group_by, workbook_id, table_id)
    lo, hi = (datetime.combine(d, time(0), tzinfo=UTC) for d in (q.first, q.after))
    charges = await Charge.filter(workspace_id=workspace_id, created_at__gte=lo, created_at__lt=hi)
    refunds = await Refund.filter(
        workspace_id=workspace_id, created_at__gte=lo, created_at__lt=hi
    ).prefetch_related("charge")
    deltas = [charge_usage(c) for c in charges]
    deltas += [refund_usage(r.charge, r) for r in refunds]
    kept = [
        d
        for d in deltas
        if not d.moves_nothing()
        and (q.workbook_id is None or d.workbook_id == q.workbook_id)
        and (q.table_id is None or d.table_id == q.table_id)
    ]
    rows = group_deltas(kept, q.dims)
    names = {w.id: w.name for w in await Workbook.filter(workspace_id=workspace_id)}
    return sort_rows(with_names(rows, names), q.dims)
