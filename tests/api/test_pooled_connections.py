"""On PostgreSQL: pooled connections skip asyncpg's reset query (app.db.PooledConnection),
and what that query would have cleaned up still cannot reach the next request: a transaction
left open is rolled back when its connection goes back to the pool."""

import re
import tokenize
from pathlib import Path

import asyncpg
import pytest

from app.db import PooledConnection, connection


@pytest.fixture
def pool(database):
    if not database.is_postgres:
        pytest.skip("PostgreSQL's connection pool")
    return connection()._pool


@pytest.fixture
async def observer(database):
    """A connection of its own, outside the pool, to watch the pool's backends."""
    conn = await asyncpg.connect(database.url.replace("postgres://", "postgresql://"))
    yield conn
    await conn.close()


async def test_pooled_connections_send_no_reset_query(pool, observer):
    async with pool.acquire() as conn:
        assert type(conn._con) is PooledConnection
        assert conn._con.get_reset_query() == ""
        pid = await conn.fetchval("SELECT pg_backend_pid()")
    # The pool's default would have run "... RESET ALL;" on release: the backend's last
    # statement is still ours.
    query = "SELECT state, query FROM pg_stat_activity WHERE pid = $1"
    assert [dict(r) for r in await observer.fetch(query, pid)] == [
        {"state": "idle", "query": "SELECT pg_backend_pid()"}
    ]


async def test_a_transaction_left_open_is_rolled_back_on_release(pool, observer):
    async with pool.acquire() as conn:
        pid = await conn.fetchval("SELECT pg_backend_pid()")
        transaction = conn.transaction()
        await transaction.start()
        await conn.execute("CREATE TABLE pool_probe (n integer)")
        await conn.execute("INSERT INTO pool_probe VALUES (1)")
    query = "SELECT state, query FROM pg_stat_activity WHERE pid = $1"
    assert [dict(r) for r in await observer.fetch(query, pid)] == [
        {"state": "idle", "query": "ROLLBACK"}
    ]
    assert await observer.fetchval("SELECT to_regclass('pool_probe')") is None


# SQL that leaves state on the session, in any string literal of the served code.
SESSION_STATE = re.compile(
    r"""pg_advisory_(?!unlock)|set_config\(|\bLISTEN\b|^\w*["']+\s*SET\s+(?!LOCAL\b)"""
    r"""|\bDISCARD\b|\bPREPARE\s|\bWITH\s+HOLD\b|\bCREATE\s+TEMP"""
)


def _strings(path: Path) -> list[str]:
    with path.open("rb") as source:
        tokens = tokenize.tokenize(source.readline)
        return [t.string for t in tokens if t.type == tokenize.STRING]


def test_no_code_takes_session_state_a_pooled_connection_would_keep():
    """What asyncpg's reset query undid, nothing here does: the one advisory lock is the
    migrator's, and the one LISTEN the live updates listener's, each on a connection of its own
    (app/db.py, app/events/listener.py). A new one must not come in unnoticed."""
    root = Path(__file__).resolve().parents[2]
    found = [
        (str(path.relative_to(root)), text[:40])
        for folder in ("app", "graphql_schema", "jobs")
        for path in sorted((root / folder).rglob("*.py"))
        for text in _strings(path)
        if SESSION_STATE.search(text)
    ]
    assert found == [
        ("app/config.py", '"""Where migrations run and live updates'),  # prose: the direct URL
        ("app/db.py", '"""A pooled connection that skips asyncp'),  # says there is none
        ("app/db.py", '"SELECT pg_advisory_lock($1)"'),  # the migrator's own connection
        ("app/events/listener.py", '"""Each API process\'s ear for changes ot'),  # LISTEN: its own
        ("app/startup.py", '" and live updates (LISTEN) need a direc'),  # prose: a warning
    ]
