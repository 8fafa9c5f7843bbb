"""R24/R21: the rows a charge writes always name a workspace, workbook and run that exist.

PostgreSQL checks these references once per statement (migration 0006) instead of once per row
through foreign keys; SQLite keeps its foreign keys. Either way the database refuses a row that
names a missing parent, a change of a stored reference, and the deletion of a parent.
"""

import uuid
from typing import Any

import asyncpg
import pytest

from app.db import connection, fetch, fetch_one
from tests.api.test_ledger import DB_ERRORS

# (table, reference column, column the copies must change to stay unique, columns left out)
CASES = [
    ("charge", "workspace_id", "id", ()),
    ("charge", "workbook_id", "id", ()),
    ("charge", "run_id", "id", ()),
    ("ledger_entry", "workspace_id", None, ("id",)),
    ("idempotency_record", "workspace_id", "key", ("id",)),
]


REFERENCE_PARENTS = [("workspace_id", "workspace"), ("workbook_id", "workbook"), ("run_id", "run")]


async def _charged(api) -> dict[str, Any]:
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    run = await api.start_run(t.admin_key, wb)
    charge = await api.record_usage(
        t.admin_key,
        wb,
        kind="ENRICHMENT",
        provider="apollo",
        dataType="phone",
        results=1,
        runId=run["id"],
    )
    return {"workspace": t.id, "workbook": wb, "run": run["id"], "charge": charge["id"], "t": t}


async def _source_row(table: str, ids: dict[str, Any]) -> dict[str, Any]:
    where = "id = $1" if table == "charge" else "workspace_id = $1"
    arg = ids["charge"] if table == "charge" else ids["workspace"]
    row = await fetch_one(connection(), f"SELECT * FROM {table} WHERE {where} LIMIT 1", arg)
    assert row is not None
    return row


async def _count(table: str, workspace_id: str) -> int:
    row = await fetch_one(
        connection(), f"SELECT COUNT(*) AS n FROM {table} WHERE workspace_id = $1", workspace_id
    )
    assert row is not None
    return row["n"]


async def _insert_copies(table: str, rows: list[dict[str, Any]]) -> None:
    """All rows in one statement, as a batch writes them."""
    await fetch(connection(), *_copies_statement(table, rows))


def _copies_statement(table: str, rows: list[dict[str, Any]]) -> tuple[str, ...]:
    columns = list(rows[0])
    width = len(columns)
    values = ", ".join(
        "(" + ", ".join(f"${r * width + c + 1}" for c in range(width)) + ")"
        for r in range(len(rows))
    )
    params = [row[c] for row in rows for c in columns]
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES {values}", *params


def _copy(source: dict[str, Any], unique: str | None, left_out: tuple[str, ...]) -> dict[str, Any]:
    row = {k: v for k, v in source.items() if k not in left_out}
    if unique is not None:
        row[unique] = str(uuid.uuid4())
    return row


@pytest.mark.parametrize(("table", "column", "unique", "left_out"), CASES)
async def test_r24_a_row_naming_a_missing_parent_is_refused_with_its_whole_statement(
    api, database, table, column, unique, left_out
):
    ids = await _charged(api)
    source = await _source_row(table, ids)
    before = await _count(table, ids["workspace"])
    # Control: the same copies with their parents in place go in.
    await _insert_copies(table, [_copy(source, unique, left_out) for _ in range(2)])
    assert await _count(table, ids["workspace"]) == before + 2
    bad = _copy(source, unique, left_out)
    bad[column] = str(uuid.uuid4())
    rows = [_copy(source, unique, left_out), _copy(source, unique, left_out), bad]
    message = "does not exist" if database.is_postgres else "FOREIGN KEY constraint failed"
    with pytest.raises(DB_ERRORS, match=message):
        await _insert_copies(table, rows)
    # Nothing of the statement stayed, the good rows before the bad one included.
    assert await _count(table, ids["workspace"]) == before + 2


@pytest.mark.parametrize(("table", "column", "unique", "left_out"), CASES)
async def test_r24_a_temporary_table_cannot_stand_in_for_a_missing_parent(
    api, database, table, column, unique, left_out
):
    """A session's temporary table of the parent's name comes first on its search_path; the
    check must still look in the real one, as a foreign key does."""
    if not database.is_postgres:
        pytest.skip("SQLite checks with its foreign keys")
    ids = await _charged(api)
    source = await _source_row(table, ids)
    before = await _count(table, ids["workspace"])
    parent = dict(REFERENCE_PARENTS)[column]
    bad = _copy(source, unique, left_out)
    bad[column] = fake = str(uuid.uuid4())
    # A session of its own: the check's plan is made there, with the temporary table in sight.
    conn = await asyncpg.connect(database.url)
    try:
        with pytest.raises(asyncpg.ForeignKeyViolationError, match="does not exist"):
            async with conn.transaction():
                await conn.execute(f"CREATE TEMP TABLE {parent} (id uuid) ON COMMIT DROP")
                await conn.execute(f"INSERT INTO {parent} (id) VALUES ($1)", uuid.UUID(fake))
                await conn.execute(*_copies_statement(table, [bad]))
    finally:
        await conn.close()
    assert await _count(table, ids["workspace"]) == before


@pytest.mark.parametrize("parent", ["workspace", "workbook", "run"])
async def test_r21_workspaces_workbooks_and_runs_are_never_deleted(api, parent):
    ids = await _charged(api)
    unused_workbook = await api.create_workbook(ids["t"].admin_key, "Unused")
    targets = [ids[parent]] + ([unused_workbook] if parent == "workbook" else [])
    for target in targets:
        with pytest.raises(DB_ERRORS, match=f"{parent} rows are never deleted"):
            await fetch(connection(), f"DELETE FROM {parent} WHERE id = $1", target)
        assert await fetch_one(connection(), f"SELECT id FROM {parent} WHERE id = $1", target)


async def test_r21_parents_are_never_truncated(api, database):
    if not database.is_postgres:
        pytest.skip("SQLite has no TRUNCATE")
    ids = await _charged(api)
    for parent in ("run", "workbook", "workspace"):
        with pytest.raises(DB_ERRORS, match=f"{parent} rows are never deleted"):
            await fetch(connection(), f"TRUNCATE {parent} CASCADE")
    assert await fetch_one(connection(), "SELECT id FROM run WHERE id = $1", ids["run"])


@pytest.mark.parametrize("parent", ["workspace", "workbook", "run"])
async def test_r24_a_parent_id_never_changes(api, parent):
    ids = await _charged(api)
    with pytest.raises(DB_ERRORS, match=f"{parent} ids never change"):
        query = f"UPDATE {parent} SET id = $2 WHERE id = $1"
        await fetch(connection(), query, ids[parent], str(uuid.uuid4()))


@pytest.mark.parametrize(
    ("table", "column", "other"),
    [
        ("charge", "workspace_id", "workspace"),
        ("charge", "workbook_id", "workbook"),
        ("charge", "run_id", "run"),
        ("idempotency_record", "workspace_id", "workspace"),
    ],
)
async def test_r24_a_stored_reference_never_changes_even_to_an_existing_parent(
    api, table, column, other
):
    ids, elsewhere = await _charged(api), await _charged(api)
    with pytest.raises(DB_ERRORS, match=f"{table} references never change"):
        await fetch(
            connection(),
            f"UPDATE {table} SET {column} = $2 WHERE workspace_id = $1",
            ids["workspace"],
            elsewhere[other],
        )
    # Other columns still change: a refund updates its charge.
    await fetch(
        connection(),
        f"UPDATE {table} SET created_at = created_at WHERE workspace_id = $1",
        ids["workspace"],
    )
