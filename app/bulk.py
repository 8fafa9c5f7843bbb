"""Many rows in one statement: a batch of charges costs a few round trips, not one per row."""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import Sequence
from datetime import datetime
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
    type, which unnest() needs. PostgreSQL takes `uuid.UUID` values in binary; SQLite stores
    UUIDs as their text, as tortoise does."""
    if not rows:
        return
    if conn.capabilities.dialect == "postgres":
        query, args = _unnest_insert(table, columns, rows)
        await fetch(conn, query, *args)
        return
    names = ", ".join(name for name, _ in columns)
    width = len(columns)
    per_statement = max(1, _SQLITE_MAX_PARAMS // width)
    for start in range(0, len(rows), per_statement):
        chunk = rows[start : start + per_statement]
        values = ", ".join(
            "(" + ", ".join(f"${r * width + c + 1}" for c in range(width)) + ")"
            for r in range(len(chunk))
        )
        params = [str(v) if isinstance(v, uuid.UUID) else v for row in chunk for v in row]
        await fetch(conn, f"INSERT INTO {table} ({names}) VALUES {values}", *params)


def unnest_insert(
    table: str,
    columns: Sequence[tuple[str, str]],
    rows: Sequence[Sequence[Any]],
    arrays: bool = False,
) -> tuple[str, list[Any]]:
    """`insert_many`'s statement on PostgreSQL and its arguments, unsent (`arrays`: as
    `unnest_arrays` gives the rows)."""
    if arrays:
        select, args = unnest_arrays(columns, rows)
        return f"INSERT INTO {table} ({_names(tuple(columns))}) {select}", args
    return _unnest_insert(table, columns, rows)


_PLACEHOLDER = re.compile(r"\$(\d+)")


def combined(
    statements: Sequence[tuple[str, Sequence[Any]]], returning: str = "", main: str = ""
) -> tuple[str, list[Any]]:
    """Several data-modifying statements as one (PostgreSQL): each a CTE, its placeholders
    renumbered, so they cost one round trip. They see one snapshot and none may change a row
    another changes; every one runs to completion. `returning` is the main query's select list
    over the first statement's RETURNING rows (`w0`), e.g. to read what it computed; `main`,
    the whole main query instead (statement n is `w{n}` in it; it takes no parameters)."""
    ctes: list[str] = []
    args: list[Any] = []
    for n, (query, values) in enumerate(statements):
        ctes.append(f"w{n} AS ({_shifted(query, len(args))})")
        args += values
    select = main or (f"SELECT {returning} FROM w0" if returning else "SELECT 1")
    return f"WITH {', '.join(ctes)} {select}", args


@functools.lru_cache(maxsize=1024)  # a charge's statements come in a few shapes
def _shifted(query: str, offset: int) -> str:
    """`query` with each $n placeholder moved up by `offset`."""
    return _PLACEHOLDER.sub(lambda m: f"${int(m.group(1)) + offset}", query)


def _unnest_insert(
    table: str, columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[Any]]
) -> tuple[str, list[Any]]:
    """INSERT ... SELECT FROM unnest(arrays) (`unnest_rows`)."""
    select, args = unnest_rows(columns, rows)
    return f"INSERT INTO {table} ({_names(tuple(columns))}) {select}", args


@functools.lru_cache(maxsize=256)
def _names(columns: tuple[tuple[str, str], ...]) -> str:
    return ", ".join(name for name, _ in columns)


def unnest_arrays(
    columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[Any]]
) -> tuple[str, list[Any]]:
    """`unnest_rows` with every column an array, however many rows and whatever they hold:
    one text for any few rows, so a statement made of them is prepared and planned once."""
    select = _unnest_sql(tuple(columns), (False,) * len(columns))
    return select, [list(column) for column in zip(*rows, strict=True)]


def unnest_rows(
    columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[Any]]
) -> tuple[str, list[Any]]:
    """The rows as `SELECT ... FROM unnest(arrays)`, each column named, placeholders from $1.
    A column with one value in every row (the workspace, the time, often the run) goes in
    once as a scalar: encoding and unpacking arrays of repeats was a good part of a batch's
    cost on both sides of the wire. One row (a single charge) is a SELECT of scalars alone."""
    if len(rows) == 1:
        return _unnest_sql(tuple(columns), (True,) * len(columns)), list(rows[0])
    values = [list(column) for column in zip(*rows, strict=True)]
    same = [_constant(column) for column in values]
    if all(same):
        same[0] = False  # unnest needs one array to give the row count
    args = [
        column[0] if constant else column for column, constant in zip(values, same, strict=True)
    ]
    return _unnest_sql(tuple(columns), tuple(same)), args


@functools.lru_cache(maxsize=256)  # the text depends only on which columns are constant
def _unnest_sql(columns: tuple[tuple[str, str], ...], same: tuple[bool, ...]) -> str:
    select, arrays, varying = [], [], []
    for n, ((name, pg_type), constant) in enumerate(zip(columns, same, strict=True), start=1):
        if constant:
            select.append(f"${n}::{pg_type} AS {name}")
        else:
            arrays.append(f"${n}::{pg_type}[]")
            varying.append(name)
            select.append(f"u.{name}")
    if not arrays:
        return f"SELECT {', '.join(select)}"
    return f"SELECT {', '.join(select)} FROM unnest({', '.join(arrays)}) AS u({', '.join(varying)})"


def _constant(column: list[Any]) -> bool:
    """One value in every row. Datetimes of one zone compare equal across a DST fold while
    being different instants, so their offsets must match too."""
    first = column[0]
    # The last value first: a varying column usually differs there, and then the whole
    # column need not be compared (a UUID's == is Python code).
    if column[-1] != first or column.count(first) != len(column):
        return False
    if isinstance(first, datetime):
        # Every offset, read in C (a generator's frame a value cost more than the reading).
        return len(set(map(datetime.utcoffset, column))) == 1
    return True
