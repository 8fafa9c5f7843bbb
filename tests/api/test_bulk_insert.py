"""app.bulk.insert_many: every row lands exactly as given, on both databases.

On PostgreSQL a column with one value in every row is sent once as a scalar; these cases pin
that it still gives one row per input row with the right values, NULLs included.
"""

import uuid
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from app.bulk import _unnest_insert, insert_many
from app.db import connection, fetch

TABLE = "bulk_probe"
COLUMNS = [
    ("id", "integer"),
    ("owner", "text"),
    ("note", "text"),
    ("amount", "bigint"),
    ("flag", "boolean"),
]
AT = datetime(2025, 1, 31, 10, 0, tzinfo=UTC)


@pytest.fixture
async def probe(database):
    conn = connection()
    await fetch(conn, f"DROP TABLE IF EXISTS {TABLE}")
    await fetch(
        conn,
        f"CREATE TABLE {TABLE} (id INTEGER, owner TEXT, note TEXT, amount BIGINT, flag BOOLEAN)",
    )
    yield conn
    await fetch(conn, f"DROP TABLE {TABLE}")


async def read_back(conn):
    rows = await fetch(conn, f"SELECT id, owner, note, amount, flag FROM {TABLE} ORDER BY id")
    return [
        (
            r["id"],
            r["owner"],
            r["note"],
            r["amount"],
            bool(r["flag"]) if r["flag"] is not None else None,
        )
        for r in rows
    ]


CASES = {
    "mixed constant and varying, with NULLs": [
        (1, "ws-a", None, 500, True),
        (2, "ws-a", "second", 0, True),
        (3, "ws-a", None, 9_007_199_254_740_993, True),
    ],
    "a constant NULL column": [(1, "ws-a", None, 5, False), (2, "ws-b", None, 6, None)],
    "one row": [(7, "ws-a", "only", -3, None)],
    "identical rows stay separate rows": [(4, "ws-a", "same", 1, True)] * 3,
    "every column varies": [(1, "a", "x", 1, True), (2, "b", "y", 2, False)],
}


@pytest.mark.parametrize("rows", CASES.values(), ids=CASES.keys())
async def test_insert_many_reads_back_exactly(probe, rows):
    await insert_many(probe, TABLE, COLUMNS, rows)
    assert await read_back(probe) == sorted(rows, key=lambda row: row[0])


async def test_insert_many_of_nothing_writes_nothing(probe):
    await insert_many(probe, TABLE, COLUMNS, [])
    assert await read_back(probe) == []


def test_postgres_statement_sends_repeated_values_once():
    query, args = _unnest_insert(
        "t",
        [("a", "text"), ("b", "bigint"), ("at", "timestamptz")],
        [("x", 1, AT), ("x", 2, AT)],
    )
    assert query == (
        "INSERT INTO t (a, b, at) SELECT $1::text AS a, u.b, $3::timestamptz AS at"
        " FROM unnest($2::bigint[]) AS u(b)"
    )
    assert args == ["x", [1, 2], AT]


def test_postgres_statement_keeps_one_array_when_nothing_varies():
    query, args = _unnest_insert("t", [("a", "text"), ("b", "bigint")], [("x", 1)] * 2)
    assert query == (
        "INSERT INTO t (a, b) SELECT u.a, $2::bigint AS b FROM unnest($1::text[]) AS u(a)"
    )
    assert args == [["x", "x"], 1]


def test_postgres_statement_of_one_row_selects_scalars_and_unnests_nothing():
    # A single charge's rows: no array for PostgreSQL to build and unpack.
    query, args = _unnest_insert("t", [("a", "text"), ("at", "timestamptz")], [("x", AT)])
    assert query == "INSERT INTO t (a, at) SELECT $1::text AS a, $2::timestamptz AS at"
    assert args == ["x", AT]


def test_postgres_statement_keeps_instants_apart_across_a_dst_fold():
    # 01:30 happens twice in New York on 2025-11-02: equal in Python, an hour apart in time.
    early = datetime(2025, 11, 2, 1, 30, tzinfo=ZoneInfo("America/New_York"))
    late = early.replace(fold=1)
    assert early == late and early.utcoffset() != late.utcoffset()
    columns = [("n", "integer"), ("at", "timestamptz")]
    query, args = _unnest_insert("t", columns, [(1, early), (2, late)])
    assert query == (
        "INSERT INTO t (n, at) SELECT u.n, u.at FROM unnest($1::integer[], $2::timestamptz[])"
        " AS u(n, at)"
    )
    assert args == [[1, 2], [early, late]]


REF_A = uuid.UUID("5b0c6c1e-0d7a-4c1e-9b51-2f3c4d5e6f70")
REF_B = uuid.UUID("0e9a4c55-1f6b-4a7e-8a2b-3c4d5e6f7a81")


@pytest.mark.parametrize(
    "refs",
    [
        [REF_A, REF_A, REF_A],
        [REF_A, REF_B, REF_A],
        [None, REF_B],
        [REF_B, uuid.UUID(str(REF_B))],
        [REF_A],
        [None],
    ],
    ids=["one object", "varying", "with NULL", "equal, not the same object", "one row", "NULL"],
)
async def test_insert_many_takes_uuids_as_postgres_does_and_as_text_on_sqlite(database, refs):
    conn = connection()
    column = "UUID" if database.is_postgres else "CHAR(36)"  # tortoise's UUIDField on each
    await fetch(conn, "DROP TABLE IF EXISTS bulk_uuid_probe")
    await fetch(conn, f"CREATE TABLE bulk_uuid_probe (n INTEGER, ref {column})")
    try:
        rows = [(n, ref) for n, ref in enumerate(refs)]
        await insert_many(conn, "bulk_uuid_probe", [("n", "integer"), ("ref", "uuid")], rows)
        back = await fetch(conn, "SELECT n, ref FROM bulk_uuid_probe ORDER BY n")
        expected = [None if ref is None else str(ref) for ref in refs]
        assert [None if r["ref"] is None else str(r["ref"]) for r in back] == expected
    finally:
        await fetch(conn, "DROP TABLE bulk_uuid_probe")
