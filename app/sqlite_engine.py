"""tortoise's SQLite engine, with transactions that take the write lock when they begin (R33).

tortoise begins transactions with a plain (deferred) BEGIN. A deferred transaction that reads,
then writes while another process has committed a write since its read, cannot upgrade its
snapshot: SQLite answers "database is locked" at once, without waiting out the busy timeout.
`BEGIN IMMEDIATE` takes the write lock first, waiting up to the busy timeout for it, so a job
run beside `tally serve` (or a second process) delays a request instead of failing it. Within
one process tortoise already runs one transaction at a time, so nothing is lost in parallelism.

The wrapper also runs callbacks right after its commit (`after_commit`), never after a
rollback: live updates (app.events.bus) publish there what PostgreSQL's NOTIFY delivers on
commit.

Named as the connection's `engine` in app.db's configuration; it is tortoise's own SQLite
client otherwise (a subclass: no private function replaced).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Hashable, Sequence
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient, TransactionContext
from tortoise.backends.sqlite.client import (
    SqliteClient,
    SqliteTransactionContext,
    SqliteTransactionWrapper,
)
from tortoise.exceptions import TransactionManagementError

from app.query_budget import count_query


class _Counted(SqliteClient):
    """Every statement counts against the request's budget (app.query_budget).

    tortoise's `translate_exceptions` decorator drops the return types of the methods it
    wraps, hence the annotated results below."""

    async def execute_insert(self, query: str, values: list[Any]) -> int:
        count_query()
        row_id: int = await super().execute_insert(query, values)
        return row_id

    async def execute_many(self, query: str, values: list[list[Any]]) -> None:
        count_query()
        await super().execute_many(query, values)

    async def execute_query(
        self, query: str, values: list[Any] | None = None
    ) -> tuple[int, Sequence[dict[str, Any]]]:
        count_query()
        result: tuple[int, Sequence[dict[str, Any]]] = await super().execute_query(query, values)
        return result

    async def execute_query_dict(
        self, query: str, values: list[Any] | None = None
    ) -> list[dict[str, Any]]:
        count_query()
        rows: list[dict[str, Any]] = await super().execute_query_dict(query, values)
        return rows

    async def execute_script(self, query: str) -> None:
        count_query()
        await super().execute_script(query)


class ImmediateTransactionWrapper(_Counted, SqliteTransactionWrapper):
    def __init__(self, connection: SqliteClient) -> None:
        super().__init__(connection)
        self.committed: dict[Hashable, Callable[[], None]] = {}  # run after the commit

    async def begin(self) -> None:
        try:
            await self._connection.commit()
            await self._connection.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise TransactionManagementError(exc) from exc

    async def commit(self) -> None:
        await super().commit()
        callbacks, self.committed = self.committed, {}
        for callback in callbacks.values():
            callback()

    async def rollback(self) -> None:
        self.committed = {}
        await super().rollback()


def after_commit(conn: BaseDBAsyncClient, key: Hashable, callback: Callable[[], None]) -> None:
    """Run `callback` once the transaction `conn` is in commits (once per `key`); nothing if
    it rolls back. Outside a transaction (or on a nested one's savepoint, which tortoise
    wraps in its own class) the outermost transaction is found; with none, it runs now."""
    client: Any = conn
    for _ in range(10):  # a nested transaction's wrapper holds its parent in `_parent`
        if isinstance(client, ImmediateTransactionWrapper):
            client.committed.setdefault(key, callback)
            return
        client = getattr(client, "_parent", None)
        if client is None:
            break
    callback()


class ImmediateSqliteClient(_Counted):
    def _in_transaction(self) -> TransactionContext:
        return SqliteTransactionContext(ImmediateTransactionWrapper(self), self._lock)


client_class = ImmediateSqliteClient
