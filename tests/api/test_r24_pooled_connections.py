"""R24 on PostgreSQL: pooled connections skip asyncpg's reset query (app.db.PooledConnection),
and what that query would have cleaned up still cannot reach the next request: a transaction
left open is rolled back when its connection goes back to the pool."""

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


async def test_r24_pooled_connections_send_no_reset_query(pool, observer):
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


async def test_r24_a_transaction_left_open_is_rolled_back_on_release(pool, observer):
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
