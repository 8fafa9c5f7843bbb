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
from collections.abc import Sequence
from typing import Any

from tortoise.backends.base.client import TransactionContext
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
    async def begin(self) -> None:
        try:
            await self._connection.commit()
            await self._connection.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise TransactionManagementError(exc) from exc


class ImmediateSqliteClient(_Counted):
    def _in_transaction(self) -> TransactionContext:
        return SqliteTransactionContext(ImmediateTransactionWrapper(self), self._lock)


client_class = ImmediateSqliteClient
