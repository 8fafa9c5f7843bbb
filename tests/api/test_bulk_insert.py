"""app.bulk.insert_many: every row lands exactly as given, on both databases.

On PostgreSQL a column with one value in every row is sent once as a scalar; these cases pin
that it still gives one row per input row with the right values, NULLs included.
"""

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
async def test_r24_insert_many_reads_back_exactly(probe, rows):
    await insert_many(probe, TABLE, COLUMNS, rows)
    assert await read_back(probe) == sorted(rows, key=lambda row: row[0])


async def test_r24_insert_many_of_nothing_writes_nothing(probe):
    await insert_many(probe, TABLE, COLUMNS, [])
    assert await read_back(probe) == []


def test_r24_postgres_statement_sends_repeated_values_once():
    query, args = _unnest_insert(
        "t",
        [("a", "text"), ("b", "bigint"), ("at", "timestamptz")],
        [("x", 1, AT), ("x", 2, AT)],
    )
    assert query == (
        "INSERT INTO t (a, b, at) SELECT $1::text, u.b, $3::timestamptz"
        " FROM unnest($2::bigint[]) AS u(b)"
    )
    assert args == ["x", [1, 2], AT]


def test_r24_postgres_statement_keeps_one_array_when_nothing_varies():
    query, args = _unnest_insert("t", [("a", "text"), ("b", "bigint")], [("x", 1)] * 2)
    assert query == "INSERT INTO t (a, b) SELECT u.a, $2::bigint FROM unnest($1::text[]) AS u(a)"
    assert args == [["x", "x"], 1]


def test_r24_postgres_statement_keeps_instants_apart_across_a_dst_fold():
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
