"""One pooled connection for the statements of one single charge (PostgreSQL; issue 20).

A single `recordUsage` makes two statements outside any transaction: its first read and, most
of the time, the one statement that writes it (app.usage.optimistic). Each through tortoise
takes a connection from asyncpg's pool and gives it back: about 45 µs of CPU a statement more
than on a connection already held (bench/README.md). Inside `holding()`, `run` sends the
statements of the task that opened it, on the pool's own client, over one connection taken at
the first and given back at the end, or earlier by `let_go()`: before the charge waits in a
group-commit lane or opens a transaction, so a request never holds one connection while it
waits for another (the pool would run dry under load and every such request wait).

Not tortoise's public API: its `acquire_connection()` hands over the raw asyncpg connection,
and the errors tortoise translates (`translate_exceptions`) are translated here the same way.
So it is fenced: on only for the tortoise version it was written for and unless
TALLY_FAST_PATHS=off (`enabled`, set at startup), and tests/concurrency/test_held_connection.py
compares its answers and errors with tortoise's own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

import asyncpg
from tortoise.backends.base.client import BaseDBAsyncClient, TransactionalDBClient
from tortoise.exceptions import IntegrityError, OperationalError, TransactionManagementError

from app.versions import major_minor

log = logging.getLogger("tally")

WRITTEN_FOR = ("tortoise-orm", (1, 1))
enabled = False  # app.startup: fast paths on and the version it was written for


def wanted(mode: str) -> bool:
    """Whether to hold connections under TALLY_FAST_PATHS=`mode` with this tortoise."""
    if mode == "off":
        return False
    found = version(WRITTEN_FOR[0])
    if major_minor(found) != WRITTEN_FOR[1]:
        log.warning("held connections off: written for tortoise-orm 1.1.x, found %s", found)
        return False
    return True


@dataclass
class _Hold:
    client: BaseDBAsyncClient
    task: asyncio.Task[Any] | None
    wrapper: Any = None  # tortoise's PoolConnectionWrapper, entered
    connection: Any = None  # the raw asyncpg connection, while held
    done: bool = False


_hold: ContextVar[_Hold | None] = ContextVar("tally_held_connection", default=None)


@asynccontextmanager
async def holding(client: BaseDBAsyncClient) -> AsyncIterator[None]:
    """Statements `run` sends on `client` (the pool's, not a transaction's) from this task
    share one connection until the block ends or `let_go()`."""
    if (
        not enabled
        or client.capabilities.dialect != "postgres"
        or isinstance(client, TransactionalDBClient)  # a transaction has its connection
    ):
        yield
        return
    hold = _Hold(client, asyncio.current_task())
    token = _hold.set(hold)
    try:
        yield
    finally:
        _hold.reset(token)
        await _release(hold)


async def let_go() -> None:
    """Give the held connection back now; later statements take the pool's as usual."""
    hold = _hold.get()
    if hold is not None and hold.task is asyncio.current_task():
        await _release(hold)


async def _release(hold: _Hold) -> None:
    hold.done = True
    wrapper, hold.wrapper, hold.connection = hold.wrapper, None, None
    if wrapper is not None:
        await wrapper.__aexit__(None, None, None)


def held_for(client: BaseDBAsyncClient) -> _Hold | None:
    hold = _hold.get()
    if hold is None or hold.done or hold.client is not client:
        return None
    # A task started inside the block (a group-commit drainer) copies the context: not its.
    return hold if hold.task is asyncio.current_task() else None


async def run(hold: _Hold, query: str, args: Sequence[Any]) -> list[dict[str, Any]]:
    """`query` on the held connection, its rows as tortoise's `execute_query_dict` gives them."""
    try:
        if hold.connection is None:
            wrapper = hold.client.acquire_connection()
            hold.connection = await wrapper.__aenter__()
            hold.wrapper = wrapper
        rows = await hold.connection.fetch(query, *args)
    except (asyncpg.SyntaxOrAccessError, asyncpg.exceptions.DataError) as error:
        raise OperationalError(error) from error
    except asyncpg.IntegrityConstraintViolationError as error:
        raise IntegrityError(error) from error
    except asyncpg.InvalidTransactionStateError as error:
        raise TransactionManagementError(error) from error
    return [dict(row) for row in rows]
