"""Many rows in one statement: a batch of charges costs a few round trips, not one per row."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from app.db import fetch

# SQLite allows 32,766 bound parameters per statement (since 3.32).
_SQLITE_MAX_PARAMS = 32_000


async def insert_many(
    conn: BaseDBAsyncClient,
    table: str,
    columns: Sequence[tuple[str, str]],
    rows: Sequence[Sequence[Any]],
) -> None:
    """Insert `rows` (tuples in `columns` order); `columns` pairs a name with its PostgreSQL
    type, which unnest() needs. UUIDs go in as strings so both databases store them alike."""
    if not rows:
        return
    names = ", ".join(name for name, _ in columns)
    if conn.capabilities.dialect == "postgres":
        arrays = ", ".join(f"${i}::{pg_type}[]" for i, (_, pg_type) in enumerate(columns, 1))
        query = f"INSERT INTO {table} ({names}) SELECT * FROM unnest({arrays})"
        await fetch(conn, query, *(list(column) for column in zip(*rows, strict=True)))
        return
    width = len(columns)
    per_statement = max(1, _SQLITE_MAX_PARAMS // width)
    for start in range(0, len(rows), per_statement):
        chunk = rows[start : start + per_statement]
        values = ", ".join(
            "(" + ", ".join(f"${r * width + c + 1}" for c in range(width)) + ")"
            for r in range(len(chunk))
        )
        params = [value for row in chunk for value in row]
        await fetch(conn, f"INSERT INTO {table} ({names}) VALUES {values}", *params)
