"""Opening the database: migrations on start, the ORM, and raw SQL for the hot path."""

from __future__ import annotations

import re
import socket
import sqlite3
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
from tortoise import Tortoise, get_connection
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.exceptions import DBConnectionError
from tortoise.migrations.api import migrate

from app import held
from app.query_budget import count_query

APP_LABEL = "tally"
MIGRATION_LOCK_ID = 7_220_001  # pg_advisory_lock key: one migrator at a time
_PG_DEFAULTS = {"minsize": "1", "maxsize": "20"}
_SQLITE_DEFAULTS = {"busy_timeout": "30000"}
CONNECT_TIMEOUT = 5.0  # seconds


def is_postgres(url: str) -> bool:
    return url.startswith(("postgres://", "postgresql://", "asyncpg://"))


def _with_defaults(url: str) -> str:
    parts = urlsplit(url)
    params = dict(parse_qsl(parts.query))
    for key, value in (_PG_DEFAULTS if is_postgres(url) else _SQLITE_DEFAULTS).items():
        params.setdefault(key, value)
    scheme = "postgres" if is_postgres(url) else parts.scheme
    return urlunsplit((scheme, parts.netloc, parts.path, urlencode(params), parts.fragment))


class PooledConnection(asyncpg.Connection):  # type: ignore[misc]  # asyncpg ships no types
    """A pooled connection that skips asyncpg's reset query on release.

    The default query (advisory unlock, CLOSE ALL, UNLISTEN, RESET ALL) is one more round
    trip after every statement run outside a transaction: eight a batch before this, and as
    many as the queries of a single `recordUsage`. Tally's pooled connections take no
    session state to undo: no advisory locks (the migration lock has its own connection), no
    LISTEN, no session SET, no cursor outliving its transaction. asyncpg still rolls back a
    transaction left open, whatever this returns.
    """

    def get_reset_query(self) -> str:
        return ""

    # Every statement counts against the request's budget (app.query_budget), but for
    # transaction control: a budget that ran out at asyncpg's BEGIN raised inside tortoise's
    # `in_transaction` before it was entered, so its pooled connection was never released (60
    # such requests left the pool empty and every later request waiting). Every transaction
    # holds at least one counted statement, so the bound still holds.
    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        if not (args and _is_control(args[0])):
            count_query()
        return await super().execute(*args, **kwargs)

    async def executemany(self, *args: Any, **kwargs: Any) -> Any:
        count_query()
        return await super().executemany(*args, **kwargs)

    async def fetch(self, *args: Any, **kwargs: Any) -> Any:
        count_query()
        return await super().fetch(*args, **kwargs)

    async def fetchrow(self, *args: Any, **kwargs: Any) -> Any:
        count_query()
        return await super().fetchrow(*args, **kwargs)

    async def fetchval(self, *args: Any, **kwargs: Any) -> Any:
        count_query()
        return await super().fetchval(*args, **kwargs)


_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")


def _is_control(query: Any) -> bool:
    return isinstance(query, str) and query.lstrip()[:9].upper().startswith(_CONTROL)


def tortoise_config(url: str) -> dict[str, Any]:
    connection = expand_db_url(_with_defaults(url))
    if is_postgres(url):
        connection["credentials"]["connection_class"] = PooledConnection
        # A connection attempt to a server that does not answer gives up after this long
        # (asyncpg's default is 60 s): a request waits that long before its 503.
        connection["credentials"].setdefault("timeout", CONNECT_TIMEOUT)
    else:
        connection["engine"] = "app.sqlite_engine"  # BEGIN IMMEDIATE (R33)
    return {
        "connections": {"default": connection},
        "apps": {
            APP_LABEL: {
                "models": ["app.models"],
                "default_connection": "default",
                "migrations": "app.migrations",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


def asyncpg_dsn(url: str, database: str | None = None) -> str:
    parts = urlsplit(url)
    path = f"/{database}" if database is not None else parts.path
    return urlunsplit(("postgresql", parts.netloc, path, "", ""))


async def create_postgres_database(url: str) -> None:
    """Create the database named in `url` when it does not exist yet."""
    name = urlsplit(url).path.lstrip("/")
    conn = await asyncpg.connect(asyncpg_dsn(url, "postgres"))
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def migrate_database(url: str) -> None:
    """Apply pending migrations; on PostgreSQL one process at a time (advisory lock)."""
    config = tortoise_config(url)
    if not is_postgres(url):
        await migrate(config=config)
        await Tortoise.close_connections()
        return
    await create_postgres_database(url)
    lock = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await lock.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_ID)
        await migrate(config=config)
        await Tortoise.close_connections()
    finally:
        await lock.close()  # closing the session releases the advisory lock


async def open_database(url: str, direct_url: str | None = None) -> None:
    """Migrate (through `direct_url` when given: pgbouncer in transaction mode would keep the
    migration lock on whichever server connection took it), then initialise the ORM for
    every task of this process."""
    await migrate_database(direct_url or url)
    await Tortoise.init(config=tortoise_config(url), _enable_global_fallback=True)


async def close_database() -> None:
    await Tortoise.close_connections()


def connection() -> BaseDBAsyncClient:
    return get_connection("default")


def in_list(values: Sequence[Any], start: int = 1) -> str:
    """Placeholders for `values` in an IN (...) list, numbered from `start`."""
    return ", ".join(f"${n}" for n in range(start, start + len(values)))


_PLACEHOLDER = re.compile(r"\$(\d+)")


def _dialect_sql(conn: BaseDBAsyncClient, query: str) -> str:
    """Queries are written with PostgreSQL's $n; SQLite takes the same as ?n."""
    if conn.capabilities.dialect == "sqlite":
        return _PLACEHOLDER.sub(r"?\1", query)
    return query


async def fetch(conn: BaseDBAsyncClient, query: str, *args: Any) -> Sequence[dict[str, Any]]:
    if held.enabled and (hold := held.held_for(conn)) is not None:
        return await held.run(hold, query, args)  # a single charge's connection (app.held)
    # execute_query_dict, not execute_query: tortoise's asyncpg client drops the RETURNING
    # rows of any statement that starts with UPDATE, INSERT or DELETE.
    return await conn.execute_query_dict(_dialect_sql(conn, query), list(args))


async def fetch_one(conn: BaseDBAsyncClient, query: str, *args: Any) -> dict[str, Any] | None:
    rows = await fetch(conn, query, *args)
    return rows[0] if rows else None


_UNAVAILABLE = (
    ConnectionError,  # refused, reset, aborted, a broken pipe
    TimeoutError,
    socket.gaierror,  # the host's name does not resolve
    DBConnectionError,
    asyncpg.PostgresConnectionError,  # SQLSTATE class 08: the connection failed or is gone
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.CannotConnectNowError,  # starting up or shutting down
    asyncpg.TooManyConnectionsError,
)
_UNAVAILABLE_TEXT = ("connection is closed", "connection was closed", "pool is closing")


def is_unavailable(error: BaseException) -> bool:
    """Whether `error`, or an error it was raised from, says the database cannot be reached
    now, as opposed to a query it refused: a client should retry later (503)."""
    for _ in range(10):  # the chain of causes, bounded
        if isinstance(error, _UNAVAILABLE):
            return True
        message = str(error)
        if isinstance(error, asyncpg.InterfaceError) and message.startswith(_UNAVAILABLE_TEXT):
            return True
        if isinstance(error, sqlite3.OperationalError) and "database is locked" in message:
            return True  # still locked after the busy timeout
        cause = error.__cause__ or error.__context__
        if cause is None:
            return False
        error = cause
    return False


def pool_stats() -> tuple[int, int] | None:
    """(connections, idle ones) of the PostgreSQL pool, for a gauge; None on SQLite.

    tortoise keeps its asyncpg pool in a private attribute: read with a default, so a
    tortoise that moves it only loses the gauge, never a request."""
    pool = getattr(connection(), "_pool", None)
    if pool is None or not hasattr(pool, "get_size"):
        return None
    return int(pool.get_size()), int(pool.get_idle_size())
