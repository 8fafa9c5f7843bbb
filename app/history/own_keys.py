"""Own-key savings in usage history (R5, R24, R40): the results delivered with the customer's
own provider or AI key, and what they would have cost at the catalog in force when each was
recorded ("you saved 45 Data Credits").

Read from the own-key charges themselves, not from the rollups (which count them as Actions
only): one statement, grouped in SQL by the rollup's keys, by what prices a charge (provider,
data type, model, tokens) and by which catalog version was in force, so a group is priced by
one version and its sum is exact. A partial index on own-key charges (migration 0011) keeps it
to those charges, however many others the range holds.

Like `results`, both are of the results delivered: a later refund takes neither back (R22
takes back Data Credits, and an own-key charge took none), so a past day never changes.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, time
from typing import Any

from app.catalog import Catalog
from app.catalog.store import timeline
from app.db import connection, fetch
from app.history.rules import KEY_FIELD, UsageDimension, history_provider, utc
from app.kinds import UsageKind, is_billable
from app.usage.pricing import ai_credits

# The UTC day of a charge, as each database spells it (PostgreSQL: whatever the session's zone).
_DAY = {
    "postgres": "CAST(created_at AT TIME ZONE 'UTC' AS DATE)",
    "sqlite": "date(created_at)",
}
_GROUP = "period_start, workbook_id, table_id, kind, provider, data_type, model, input_tokens," \
    " output_tokens"  # fmt: skip


def would_cost(catalog: Catalog, row: dict[str, Any]) -> int:
    """Data Credit units of a group of own-key charges at `catalog`'s prices: what they would
    have cost without the customer's key (R4, R6); nothing for what the catalog does not price
    (a free kind, a model name it does not know, a billable kind without a provider)."""
    kind = UsageKind(row["kind"])
    if not is_billable(kind):
        return 0
    if kind is UsageKind.AI:
        model = next((m for m in catalog.ai_models if m.code == row["model"]), None)
        if model is None:
            return 0
        per_charge = ai_credits(model, int(row["input_tokens"]), int(row["output_tokens"]))
        return per_charge * int(row["charges"])  # each charge rounds up on its own (R6)
    price = next(
        (
            p
            for p in catalog.prices
            if (p.provider, p.data_type) == (row["provider"], row["data_type"]) and p.kind is kind
        ),
        None,
    )
    return 0 if price is None else price.credits_units * int(row["results"])


def _bucket(bounds: Sequence[datetime]) -> str:
    """Which version's stretch of the range a charge is in: 0 before the first bound."""
    if not bounds:
        return "0"
    whens = " ".join(f"WHEN created_at < ${i + 4} THEN {i}" for i in range(len(bounds)))
    return f"CASE {whens} ELSE {len(bounds)} END"


async def own_key_figures(
    workspace_id: uuid.UUID,
    first: date,
    after: date,
    dims: Sequence[UsageDimension],
    workbook_id: uuid.UUID | None,
    table_id: str | None,
) -> dict[tuple[Any, ...], tuple[int, int]]:
    """(own-key results, savings in Data Credit units) by the rows' keys for `dims`, over the
    UTC days [first, after)."""
    lo, hi = (datetime.combine(d, time(0), tzinfo=UTC) for d in (first, after))
    versions = await timeline(hi)
    bounds = [start for start, _ in versions.starts if lo < start < hi]
    stretches = [lo, *bounds]
    conn = connection()
    args: list[Any] = [str(workspace_id), lo, hi, *bounds]
    where = "workspace_id = $1 AND own_api_key AND created_at >= $2 AND created_at < $3"
    if workbook_id is not None:
        args.append(str(workbook_id))
        where += f" AND workbook_id = ${len(args)}"
    if table_id is not None:
        args.append(table_id)
        where += f" AND table_id = ${len(args)}"
    day, bucket = _DAY[conn.capabilities.dialect], _bucket(bounds)
    # Without a version boundary in the range the bucket is the constant 0, which GROUP BY
    # would read as a column position (an error on both databases): it is left out then.
    group = f"{day}, {bucket}, {_GROUP}" if bounds else f"{day}, {_GROUP}"
    rows = await fetch(
        conn,
        f"SELECT {day} AS day, {bucket} AS bucket, {_GROUP}, SUM(results) AS results,"
        f" COUNT(*) AS charges FROM charge WHERE {where} GROUP BY {group}",
        *args,
    )
    figures: dict[tuple[Any, ...], tuple[int, int]] = {}
    for row in rows:
        catalog = versions.at(stretches[int(row["bucket"])])
        key = _key(row, dims)
        results, saved = figures.get(key, (0, 0))
        figures[key] = (results + int(row["results"]), saved + would_cost(catalog, row))
    return figures


def _key(row: dict[str, Any], dims: Sequence[UsageDimension]) -> tuple[Any, ...]:
    """The group's keys as `usage_history`'s rows hold them (rules.KEY_FIELD's order)."""
    day, start = row["day"], row["period_start"]
    if start is not None and not isinstance(start, datetime):
        start = datetime.fromisoformat(str(start))  # SQLite: text
    values = {
        "day": day if isinstance(day, date) else date.fromisoformat(str(day)),
        "cycle_start": None if start is None else utc(start),
        "workbook_id": uuid.UUID(str(row["workbook_id"])),
        "table_id": row["table_id"] or None,
        "provider": history_provider(row["kind"], row["provider"], row["model"]),
        "kind": row["kind"],
    }
    return tuple(values[KEY_FIELD[d]] for d in dims)
