"""Idempotency keys of a batch (R13): claimed first, in key order, released when refused,
and replayed from the record when an earlier request holds them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from app.db import fetch, in_list
from app.idempotency import key_reused
from app.models import Charge, IdempotencyRecord
from app.usage.items import OPERATION, Item, Outcome


def first_of_each_key(items: list[Item]) -> list[Item]:
    """One claim per key: the key's first item's request and result id."""
    seen: dict[str, Item] = {}
    for item in items:
        seen.setdefault(item.report.idempotency_key, item)
    return list(seen.values())


def outcome_of(item: Item) -> Outcome:
    if item.first is None:
        assert item.outcome is not None
        return item.outcome
    if item.first.fingerprint != item.fingerprint:
        return key_reused(item.report.idempotency_key)
    return outcome_of(item.first)


_CLAIM_COLUMNS = "workspace_id, key, operation, request_hash, result_id, created_at"
_CLAIMED = " ON CONFLICT (workspace_id, key) DO NOTHING RETURNING key"
# PostgreSQL: three arrays instead of six parameters a row (planning a 6,000-parameter VALUES
# list cost more than the insert itself), and only the keys already taken come back: usually
# none, instead of 1,000 rows to decode.
CLAIM_UNNEST = (
    f"WITH claimed AS (INSERT INTO idempotency_record ({_CLAIM_COLUMNS})"
    " SELECT $1::uuid, k, $2, h, r, $3"
    " FROM unnest($4::text[], $5::text[], $6::text[]) WITH ORDINALITY AS t(k, h, r, n)"
    " ORDER BY n" + _CLAIMED + ")"
    " SELECT k AS key FROM unnest($4::text[]) AS k WHERE k NOT IN (SELECT key FROM claimed)"
)


# The same claim as CTEs ahead of the charge's locks (app.locks.charge_rows): `claim_taken`
# yields the keys already taken.
CLAIM_CTES = (
    f"claim_ins AS (INSERT INTO idempotency_record ({_CLAIM_COLUMNS})"
    " SELECT $1::uuid, k, $2, h, r, $3"
    " FROM unnest($4::text[], $5::text[], $6::text[]) WITH ORDINALITY AS t(k, h, r, n)"
    " ORDER BY n" + _CLAIMED + "),"
    " claim_taken AS (SELECT k FROM unnest($4::text[]) AS k"
    " WHERE k NOT IN (SELECT key FROM claim_ins))"
)


def claim_ctes(
    workspace_id: uuid.UUID, items: list[Item], now: datetime
) -> tuple[str, str, list[Any]]:
    """`claim` as CTEs for app.locks.charge_rows (PostgreSQL): (CTEs, the CTE of the keys
    already taken, their arguments). Keys in the same order as `claim`'s."""
    ordered = sorted(items, key=lambda i: i.report.idempotency_key)
    keys = [item.report.idempotency_key for item in ordered]
    hashes = [item.fingerprint for item in ordered]
    results = [str(item.charge_id) for item in ordered]
    return CLAIM_CTES, "claim_taken", [workspace_id, OPERATION, now, keys, hashes, results]


CLAIM_ONE = (
    f"INSERT INTO idempotency_record ({_CLAIM_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)" + _CLAIMED
)


# Several workspaces' claims, one key each (app.usage.coalesced), in the order given: it
# yields the workspace of each key claimed.
CLAIM_EACH = (
    f"INSERT INTO idempotency_record ({_CLAIM_COLUMNS}) SELECT w, k, o, h, r, c"
    " FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[],"
    " $6::timestamptz[]) WITH ORDINALITY AS u(w, k, o, h, r, c, n)"
    " ORDER BY n ON CONFLICT (workspace_id, key) DO NOTHING RETURNING workspace_id"
)


def claim_each(claims: list[tuple[uuid.UUID, Item, datetime]]) -> tuple[str, list[Any]]:
    """`CLAIM_EACH` of (workspace, item, instant), each row as `claim_one`'s."""
    rows = [claim_one(*claim)[1] for claim in claims]
    return CLAIM_EACH, [list(column) for column in zip(*rows, strict=True)]


def claim_one(workspace_id: uuid.UUID, item: Item, now: datetime) -> tuple[str, list[Any]]:
    """One item's claim as a statement (PostgreSQL, app.usage.optimistic): it yields the key
    when claimed, nothing when the key is taken."""
    report = item.report
    args = [workspace_id, report.idempotency_key, OPERATION, item.fingerprint, str(item.charge_id)]
    return CLAIM_ONE, [*args, now]


async def claim(
    conn: BaseDBAsyncClient, workspace_id: uuid.UUID, items: list[Item], now: datetime
) -> set[str]:
    """Claim every key; returns those already taken. Sorted, so two batches sharing keys
    wait on each other instead of deadlocking."""
    ordered = sorted(items, key=lambda i: i.report.idempotency_key)
    keys = [item.report.idempotency_key for item in ordered]
    if conn.capabilities.dialect == "postgres":
        hashes = [item.fingerprint for item in ordered]
        results = [str(item.charge_id) for item in ordered]
        args = (workspace_id, OPERATION, now, keys, hashes, results)
        return {row["key"] for row in await fetch(conn, CLAIM_UNNEST, *args)}
    values = ", ".join(
        f"(${6 * n + 1}, ${6 * n + 2}, ${6 * n + 3}, ${6 * n + 4}, ${6 * n + 5}, ${6 * n + 6})"
        for n in range(len(ordered))
    )
    params: list[Any] = []
    for item in ordered:
        params += [str(workspace_id), item.report.idempotency_key, OPERATION]
        params += [item.fingerprint, str(item.charge_id), now]
    query = f"INSERT INTO idempotency_record ({_CLAIM_COLUMNS}) VALUES {values}" + _CLAIMED
    rows = await fetch(conn, query, *params)
    return set(keys) - {row["key"] for row in rows}


async def replay(workspace_id: uuid.UUID, items: list[Item]) -> None:
    """Keys an earlier request holds: its charge if it was this request, else a refusal."""
    if not items:
        return
    keys = [i.report.idempotency_key for i in items]
    records = await IdempotencyRecord.filter(workspace_id=workspace_id, key__in=keys)
    by_key = {r.key: r for r in records}
    charge_ids = [uuid.UUID(r.result_id) for r in records if r.operation == OPERATION]
    charges = {c.id: c for c in await Charge.filter(id__in=charge_ids)}
    for item in items:
        record = by_key[item.report.idempotency_key]
        if (record.operation, record.request_hash) != (OPERATION, item.fingerprint):
            item.outcome = key_reused(item.report.idempotency_key)
        else:
            item.outcome = charges[uuid.UUID(record.result_id)]


async def settle_claims(
    conn: BaseDBAsyncClient,
    workspace_id: uuid.UUID,
    claimed: list[Item],
    holders: dict[str, Item],
) -> None:
    """A key nobody holds is released: a refused request leaves no trace (R13). A key held by
    a later item than the one claimed for (the first was refused) records that item."""
    free = [c.report.idempotency_key for c in claimed if c.report.idempotency_key not in holders]
    if free:
        await fetch(
            conn,
            f"DELETE FROM idempotency_record WHERE workspace_id = $1 AND key IN"
            f" ({in_list(free, 2)})",
            str(workspace_id),
            *free,
        )
    for first in claimed:
        holder = holders.get(first.report.idempotency_key)
        if holder is not None and holder is not first:
            await fetch(
                conn,
                "UPDATE idempotency_record SET request_hash = $3, result_id = $4"
                " WHERE workspace_id = $1 AND key = $2",
                str(workspace_id),
                holder.report.idempotency_key,
                holder.fingerprint,
                str(holder.charge_id),
            )
