"""Group commit for single charges of one hot workspace (PostgreSQL; issue 20).

Concurrent charges of one workspace queue on its row lock, one transaction each. Here, the
first charge of a workspace with none in flight in this process goes alone (no added latency
when idle); the charges that arrive while one is in flight wait in memory, in arrival order,
and go together as ONE transaction of the batch machinery (app.usage.charging.transact) as
soon as it ends: the same per-item idempotency claims, the same decisions in the same order,
the same rows as if each had been charged alone in that order. Each caller gets its own
outcome from its own item. A group holds at most MAX_GROUP items; past MAX_QUEUE waiting, a
charge goes alone (the row lock keeps it exact, as it does across processes). A group whose
transaction fails unexpectedly is charged again item by item, so one bad item fails only its
own caller.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

from tortoise.backends.base.client import BaseDBAsyncClient

from app import held
from app.query_budget import unbudgeted_context
from app.usage.items import Item

log = logging.getLogger(__name__)

MAX_GROUP = 100  # items in one transaction: about 10 ms of it on this machine
MAX_QUEUE = 1_000  # items waiting for one workspace; past it a charge goes alone

# (workspace, items, now, one_by_one): app.usage.charging.transact
Transact = Callable[[uuid.UUID, list[Item], datetime, bool], Awaitable[None]]

# TALLY_GROUP_COMMIT (app.config), set at startup; it applies to PostgreSQL only, where SQLite
# serializes every transaction anyway.
enabled = True


def wanted(conn: BaseDBAsyncClient) -> bool:
    return enabled and conn.capabilities.dialect == "postgres"


@dataclass
class _Waiting:
    item: Item
    now: datetime
    done: asyncio.Future[None]


@dataclass
class _Lane:
    """One workspace's charges in this process: one in flight, the others waiting."""

    loop: asyncio.AbstractEventLoop
    waiting: deque[_Waiting] = field(default_factory=deque)
    drainer: asyncio.Task[None] | None = None


_lanes: dict[uuid.UUID, _Lane] = {}
stats = {"groups": 0, "grouped": 0, "alone": 0, "retried": 0}  # for tests and benchmarks


async def submit(workspace_id: uuid.UUID, item: Item, now: datetime, transact: Transact) -> None:
    """Charge a prepared item; its outcome is set on it when this returns."""
    loop = asyncio.get_running_loop()
    lane = _lanes.get(workspace_id)
    if lane is not None and lane.loop is not loop:  # left by a loop that is gone (tests)
        lane = None
    if lane is None:
        lane = _lanes[workspace_id] = _Lane(loop)
        stats["alone"] += 1
        try:
            await transact(workspace_id, [item], now, False)
        finally:
            _hand_over(workspace_id, lane, transact)
        return
    if len(lane.waiting) >= MAX_QUEUE:
        stats["alone"] += 1
        await transact(workspace_id, [item], now, False)
        return
    waiting = _Waiting(item, now, loop.create_future())
    lane.waiting.append(waiting)  # before any await: the lane may close at the next one
    try:
        await held.let_go()  # the group's statements go on the drainer's connections
    except BaseException:
        # Given up here: not charged, unless the drainer took its group meanwhile (then as
        # a request cancelled after its commit; a retry with its key replays).
        waiting.done.cancel()
        raise
    await waiting.done


def _hand_over(workspace_id: uuid.UUID, lane: _Lane, transact: Transact) -> None:
    """After the lone charge: the waiting ones go in groups, or the lane closes."""
    if lane.waiting:
        # Not in the context of the request that started it: the drainer charges other
        # requests' items for as long as they keep coming, and its statements are theirs.
        drain = _drain(workspace_id, lane, transact)
        lane.drainer = lane.loop.create_task(drain, context=unbudgeted_context())
    elif _lanes.get(workspace_id) is lane:
        del _lanes[workspace_id]


async def _drain(workspace_id: uuid.UUID, lane: _Lane, transact: Transact) -> None:
    try:
        while group := _take(lane):
            await _charge_group(workspace_id, group, transact)
    finally:
        if _lanes.get(workspace_id) is lane:
            del _lanes[workspace_id]
        for waiting in lane.waiting:  # only when cancelled (the loop is closing)
            waiting.done.cancel()


def _take(lane: _Lane) -> list[_Waiting]:
    """The next group, in arrival order; a caller that gave up before it was sent is not
    charged (one that gives up later is, like a request cancelled after its commit)."""
    group: list[_Waiting] = []
    while lane.waiting and len(group) < MAX_GROUP:
        waiting = lane.waiting.popleft()
        if not waiting.done.done():
            group.append(waiting)
    return group


async def _charge_group(workspace_id: uuid.UUID, group: list[_Waiting], transact: Transact) -> None:
    # The latest arrival's instant: no item is charged before the instant it was checked at.
    now = max(w.now for w in group)
    try:
        await transact(workspace_id, [w.item for w in group], now, True)
    except Exception:
        log.warning("group of %d charges failed; charging each alone", len(group), exc_info=True)
        await _each_alone(workspace_id, group, transact)
        return
    stats["groups"] += 1
    stats["grouped"] += len(group)
    for waiting in group:
        if not waiting.done.done():
            waiting.done.set_result(None)


async def _each_alone(workspace_id: uuid.UUID, group: list[_Waiting], transact: Transact) -> None:
    """The rolled-back group's items again, one transaction each, in the same order."""
    for waiting in group:
        item = waiting.item
        item.outcome, item.first = None, None  # as prepared: the rollback undid the rest
        stats["retried"] += 1
        try:
            await transact(workspace_id, [item], waiting.now, False)
        except Exception as error:  # this caller's own failure, and only its
            if not waiting.done.done():
                waiting.done.set_exception(error)
            continue
        if not waiting.done.done():
            waiting.done.set_result(None)
