"""Single charges of different workspaces written by one set-based statement (PostgreSQL;
issue 20).

A single charge is written by one statement of its own (app.usage.optimistic). PostgreSQL's
work for it is mostly per statement and per part of it, not per row: a batch of five items costs
it about a quarter of five single charges (bench/README.md). So here the first charge of this
process with none in flight goes alone (no added latency when idle), and those that become
ready while one is in flight wait in memory until it ends (or MAX_WAIT has passed: a statement
waiting for a row lock holds up no other workspace), then go together, a group at a time, as a
batch of several workspaces: one claim of all their keys, their workspaces locked in id order
and each updated only if still the version its charge read, their workbooks likewise, and one
insert each of the charges, ledger entries and rollups. A group takes no row another
transaction holds (app.locks skips it): it never waits while holding the others' rows. Unless
every claim and every row held, `tally_moved()` rolls all of it back and each charge is written
alone, as before. Each is decided in Python as it would be alone; the statement only applies
what was decided. A group has one charge a workspace (a second waits for the next group) and
at most MAX_GROUP. A charge whose workbook has a spend limit goes alone (its workbook row is
updated, not only locked).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

import asyncpg
from tortoise.backends.base.client import BaseDBAsyncClient, TransactionalDBClient

from app import held, locks
from app.bulk import combined, unnest_arrays, unnest_insert
from app.db import connection, fetch
from app.events import bus
from app.history.service import usage_upsert_each
from app.query_budget import unbudgeted_context
from app.usage.claims import claim_each
from app.usage.items import Item, Seen
from app.usage.writes import CHARGE_COLUMNS, LEDGER_COLUMNS, Writes, debit_totals, usage_of

log = logging.getLogger(__name__)

MAX_GROUP = 16  # charges in one statement
MAX_QUEUE = 1_000  # charges waiting; past it a charge goes alone
# Seconds the first charge waiting for a group waits at most for the statement in flight to end
# (a statement that waits for a row lock does not hold up other workspaces' charges).
MAX_WAIT = 0.005

# TALLY_COALESCE_CHARGES (app.config), set at startup.
enabled = True
stats = {"alone": 0, "groups": 0, "grouped": 0, "retried": 0}  # for tests and benchmarks


class Member(NamedTuple):
    """A single charge decided against the rows its first read saw (app.usage.optimistic)."""

    workspace_id: uuid.UUID
    item: Item
    writes: Writes
    seen: Seen
    now: datetime


Statement = Callable[[Member], tuple[str, list[Any]]]


@dataclass
class _Waiting:
    member: Member
    # True: written with its group; None: the group was rolled back, to be written alone.
    done: asyncio.Future[bool | None]


@dataclass
class _Writer:
    """This process's charges: those written alone in flight, the others waiting for a
    group."""

    loop: asyncio.AbstractEventLoop
    client: BaseDBAsyncClient  # the pool's, which the group's statement goes through
    alone: int = 0  # charges in flight by their own statement
    waiting: deque[_Waiting] = field(default_factory=deque)
    drainer: asyncio.Task[None] | None = None  # sending the waiting ones, a group at a time
    timer: asyncio.TimerHandle | None = None  # starts the drainer after MAX_WAIT


_writers: dict[BaseDBAsyncClient, _Writer] = {}


async def write(member: Member, alone: Statement) -> bool:
    """Write the charge, by its own statement (`alone`) or with others; False when its claim
    or its rows did not hold, and then nothing of it was written."""
    client = connection()
    if not (enabled and _groupable(member)) or isinstance(client, TransactionalDBClient):
        return await _send(client, *alone(member))  # in a transaction: the caller's own
    writer = _current(client)
    if len(writer.waiting) >= MAX_QUEUE:
        return await _send(client, *alone(member))
    if not writer.alone and writer.drainer is None:
        writer.alone += 1
        try:
            stats["alone"] += 1
            return await _send(client, *alone(member))
        finally:
            writer.alone -= 1
            _start_drainer(writer)
    waiting = _Waiting(member, writer.loop.create_future())
    writer.waiting.append(waiting)  # before any await: the writer may go idle at the next
    if writer.drainer is None and writer.timer is None:
        # Not later than MAX_WAIT, however long the statement in flight waits for a lock.
        writer.timer = writer.loop.call_later(MAX_WAIT, _start_drainer, writer)
    try:
        await held.let_go()  # the group goes on the drainer's connection
    except BaseException:
        waiting.done.cancel()  # not written, unless its group was taken meanwhile
        raise
    if await waiting.done:
        return True
    stats["retried"] += 1
    return await _send(client, *alone(member))


def _groupable(member: Member) -> bool:
    """A group's statement locks its workbooks and updates nothing else than the workspaces:
    no spend limit, no auto top-up, no run."""
    writes = member.writes
    return not writes.limit_spent and not writes.top_ups and not writes.runs


def _current(client: BaseDBAsyncClient) -> _Writer:
    """The writer of the pool `client` (tests open several databases in turn)."""
    loop = asyncio.get_running_loop()
    writer = _writers.get(client)
    if writer is None or writer.loop is not loop:
        for gone in [c for c, w in _writers.items() if w.loop is not loop]:
            del _writers[gone]  # left by a loop that is gone (tests)
        writer = _writers[client] = _Writer(loop, client)
    return writer


async def _send(client: BaseDBAsyncClient, query: str, args: list[Any]) -> bool:
    try:
        await fetch(client, query, *args)
    except (asyncpg.SerializationError, asyncpg.DeadlockDetectedError):
        return False  # rolled back whole, every claim with it
    return True


def _start_drainer(writer: _Writer) -> None:
    """The waiting charges sent in groups, one statement at a time, until none is left."""
    if writer.timer is not None:
        writer.timer.cancel()
        writer.timer = None
    if writer.waiting and writer.drainer is None:
        # Not in the context of the request that started it: its statements are others'.
        drainer = writer.loop.create_task(_drain(writer), context=unbudgeted_context())
        writer.drainer = drainer


async def _drain(writer: _Writer) -> None:
    try:
        while group := _take(writer):
            await _write_group(writer.client, group)
    finally:
        writer.drainer = None
        for waiting in writer.waiting:  # only when cancelled (the loop is closing)
            waiting.done.cancel()
        writer.waiting.clear()


def _take(writer: _Writer) -> list[_Waiting]:
    """The next group, in arrival order, one charge a workspace, ordered by workspace; a
    caller that gave up before it was sent is not written."""
    group: dict[uuid.UUID, _Waiting] = {}
    later: list[_Waiting] = []
    while writer.waiting and len(group) < MAX_GROUP:
        waiting = writer.waiting.popleft()
        if waiting.done.done():
            continue
        if waiting.member.workspace_id in group:
            later.append(waiting)
        else:
            group[waiting.member.workspace_id] = waiting
    writer.waiting.extendleft(reversed(later))
    return [group[w] for w in sorted(group)]


async def _write_group(client: BaseDBAsyncClient, group: list[_Waiting]) -> None:
    written = False
    try:
        written = await _send(client, *together([waiting.member for waiting in group]))
    except Exception:
        log.warning("statement of %d charges failed; writing each alone", len(group), exc_info=True)
    finally:  # every caller answered, even when the drainer is cancelled (the loop closing)
        for waiting in group:
            if not waiting.done.done():
                waiting.done.set_result(True if written else None)
    if written:
        stats["groups"] += 1
        stats["grouped"] += len(group)


def together(members: list[Member]) -> tuple[str, list[Any]]:
    """One statement of the members' charges (each of another workspace, in id order)."""
    statements: list[tuple[str, list[Any]]] = [
        claim_each([(m.workspace_id, m.item, m.now) for m in members]),
        # Each once its key is claimed: a retry waits on the key first.
        (locks.workspaces_in_order("w0"), []),
        _workspaces(members),
        _workbooks(members),
        unnest_insert("charge", CHARGE_COLUMNS, [c for m in members for c in m.writes.charges],
                      arrays=True),
    ]  # fmt: skip
    ledger = [row for m in members for row in m.writes.ledger]
    if ledger:
        statements.append(unnest_insert("ledger_entry", LEDGER_COLUMNS, ledger, arrays=True))
    usage = usage_upsert_each([(m.workspace_id, usage_of(m.writes)) for m in members])
    if usage:
        statements.append(usage)
    # How many there are, as a parameter: the statement's text is the same for any number.
    statements.append(("SELECT $1::integer AS n", [len(members)]))
    count = f"(SELECT n FROM w{len(statements) - 1})"
    main = (
        f"SELECT CASE WHEN (SELECT count(*) FROM w2) = {count}"
        f" AND (SELECT count(*) FROM w3) = {count} THEN 1 ELSE tally_moved() END"
    )
    return combined(statements, main=main)


def _workspaces(members: list[Member]) -> tuple[str, list[Any]]:
    """Each workspace's debit, only where the row is still the version read; a notification
    where it is live (app.events.bus)."""
    rows = [
        (m.workspace_id, *debit_totals(m.writes), m.seen.workspace_version,
         bus.payload(m.workspace_id, bus.Change.STATE))
        for m in members
    ]  # fmt: skip
    columns = [("id", "uuid"), ("actions", "bigint"), ("credits", "bigint"),
               ("settle", "bigint"), ("version", "text"), ("payload", "text")]  # fmt: skip
    select, args = unnest_arrays(columns, rows)
    channel = len(args) + 1
    return (
        "UPDATE workspace w SET actions_used = w.actions_used + v.actions,"
        " credit_balance = w.credit_balance - v.credits,"
        " credits_held = w.credits_held - v.settle"
        f" FROM ({select}) AS v WHERE w.id = v.id AND w.id IN (SELECT id FROM w1)"
        " AND w.xmin = v.version::xid"
        f" RETURNING CASE WHEN w.{bus.LIVE} THEN pg_notify(${channel}, v.payload) END",
        [*args, bus.CHANNEL],
    )


def _workbooks(members: list[Member]) -> tuple[str, list[Any]]:
    """Each charge's workbook locked as the version read, after its workspace."""
    rows = [(m.item.report.workbook_id, m.seen.workbook_version) for m in members]
    select, args = unnest_arrays([("id", "uuid"), ("version", "text")], rows)
    return locks.workbooks_unchanged(select, "w2"), args
