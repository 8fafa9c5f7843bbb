"""tortoise's SQLite engine, with transactions that take the write lock when they begin (R33).

tortoise begins transactions with a plain (deferred) BEGIN. A deferred transaction that reads,
then writes while another process has committed a write since its read, cannot upgrade its
snapshot: SQLite answers "database is locked" at once, without waiting out the busy timeout.
`BEGIN IMMEDIATE` takes the write lock first, waiting up to the busy timeout for it, so a job
run beside `tally serve` (or a second process) delays a request instead of failing it. Within
one process tortoise already runs one transaction at a time, so nothing is lost in parallelism.

Named as the connection's `engine` in app.db's configuration; it is tortoise's own SQLite
client otherwise (a subclass: no private function replaced).
"""

from __future__ import annotations

import sqlite3

from tortoise.backends.base.client import TransactionContext
from tortoise.backends.sqlite.client import (
    SqliteClient,
    SqliteTransactionContext,
    SqliteTransactionWrapper,
)
from tortoise.exceptions import TransactionManagementError


class ImmediateTransactionWrapper(SqliteTransactionWrapper):
    async def begin(self) -> None:
        try:
            await self._connection.commit()
            await self._connection.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise TransactionManagementError(exc) from exc


class ImmediateSqliteClient(SqliteClient):
    def _in_transaction(self) -> TransactionContext:
        return SqliteTransactionContext(ImmediateTransactionWrapper(self), self._lock)


client_class = ImmediateSqliteClient
