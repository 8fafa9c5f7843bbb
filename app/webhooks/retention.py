"""Deliveries are kept for a while (TALLY_WEBHOOK_RETENTION_DAYS), then pruned with their
attempts by the `webhook-retention` job; pending ones are never pruned, events never."""

from __future__ import annotations

from datetime import datetime

from tortoise.transactions import in_transaction

from app.db import connection, fetch, fetch_one, in_list

_OLD = "status <> 'PENDING' AND created_at < $1"


async def count_prunable(before: datetime) -> int:
    row = await fetch_one(
        connection(), f"SELECT COUNT(*) AS n FROM webhook_delivery WHERE {_OLD}", before
    )
    return int(row["n"]) if row else 0


async def prune_deliveries(before: datetime, batch_size: int = 1_000) -> int:
    """Delete finished deliveries created before `before`, a batch per transaction; returns
    how many."""
    pruned = 0
    while True:
        async with in_transaction() as conn:
            rows = await fetch(
                conn,
                f"SELECT id FROM webhook_delivery WHERE {_OLD} ORDER BY created_at"
                f" LIMIT {int(batch_size)}",
                before,
            )
            ids = [str(r["id"]) for r in rows]
            if ids:
                marks = in_list(ids)
                await fetch(
                    conn, f"DELETE FROM webhook_attempt WHERE delivery_id IN ({marks})", *ids
                )
                await fetch(conn, f"DELETE FROM webhook_delivery WHERE id IN ({marks})", *ids)
        pruned += len(ids)
        if len(ids) < batch_size:
            return pruned
