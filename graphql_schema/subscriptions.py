"""Live updates (API.md "subscriptions"): `workspaceUpdated` and `events(types)`, served over
graphql-transport-ws on /graphql (graphql_schema.websocket).

Each subscription registers with this process's hub (app.events.bus) for its workspace, then
loops: wait for a change, read what is there now, send it. Nothing is queued per subscriber
but a flag: `workspaceUpdated` reads the workspace once per wake-up (changes close together
merge; the last committed state always arrives), and `events` reads the stored events after
the last one it sent, a bounded page at a time, so it is exact whatever the rate and however
slow the client. Two reads of one subscription are at least MIN_GAP apart, which bounds what a
busy workspace costs the database per subscriber.

The key is checked again when one of the workspace's keys is revoked, and every KEY_CHECK
seconds anyway: a refused key closes the socket (4403), with every subscription on it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import AbstractContextManager
from typing import TypeVar

import strawberry

from app.db import is_unavailable
from app.errors import InvalidInput, Unauthenticated
from app.events.bus import Change, Subscriber, hub, keep_live
from app.events.store import events_after, last_seq
from app.events.types import ALL_TYPES
from app.query_budget import renew_budget
from app.workspaces.service import get_workspace
from graphql_schema.context import Context, Info
from graphql_schema.types.events import Event
from graphql_schema.types.workspace import Workspace

MIN_GAP = 0.1  # seconds between two reads of one subscription
KEY_CHECK = 30.0  # seconds: the key is checked again at least this often
EVENTS_PAGE = 100  # events read at once
RETRY = 1.0  # seconds before reading again when the database did not answer
REVOKED = 4403
T = TypeVar("T")
log = logging.getLogger("tally.live")


class Live:
    """One subscription's side of the hub: its workspace, its waits and its reads."""

    def __init__(
        self,
        context: Context,
        workspace_id: uuid.UUID,
        key_id: uuid.UUID | None,
        lease: bool = True,
    ):
        self.context = context
        self.workspace_id = workspace_id
        self.key_id = key_id
        self.last_read = -MIN_GAP
        # Our charges' notifications asked for (app.events.bus.keep_live), or not needed:
        # events notify whether or not a workspace is leased.
        self.live = not lease

    @classmethod
    async def open(cls, info: Info, lease: bool = True) -> Live:
        context = info.context
        if context.websocket is None:
            raise InvalidInput("subscriptions are served over a WebSocket (graphql-transport-ws)")
        principal = await context.principal()
        return cls(context, principal.require_workspace(), principal.key_id, lease)

    def subscribe(self, wants: Change) -> AbstractContextManager[Subscriber]:
        """Registered with the hub for the block; QUOTA_EXCEEDED past the key's cap."""
        cap = self.context.settings.max_subscriptions_per_key
        return hub.subscribe(self.workspace_id, self.key_id, wants | Change.KEYS, cap)

    async def changed(self, subscriber: Subscriber) -> None:
        """Returns once something the subscriber wants changed, MIN_GAP after the last read;
        closes the socket instead when the key is no longer accepted."""
        while True:
            change = await subscriber.wait(KEY_CHECK)
            if change & Change.KEYS or change is Change.NONE:
                await self._check_key()
            if change & ~Change.KEYS:
                break
        gap = self.last_read + MIN_GAP - asyncio.get_running_loop().time()
        if gap > 0:
            await asyncio.sleep(gap)
            if subscriber.take() & Change.KEYS:  # the rest is read next anyway
                await self._check_key()

    async def _lease(self) -> None:
        """Our workspace's charges notify from now on (app.events.bus.keep_live). Past a row
        lock held longer than the lease waits, the process's listener takes the lease at its
        next renewal and wakes this subscriber to read again."""
        try:
            await keep_live([self.workspace_id])
        except Exception as error:
            if is_unavailable(error):
                raise  # read() tries again
            log.warning("live updates: no lease for %s yet (%r)", self.workspace_id, error)
        self.live = True

    async def _check_key(self) -> None:
        try:
            accepted = await self.context.key_still_accepted()
        except Exception as error:
            if is_unavailable(error):
                return  # checked again at the next change or KEY_CHECK
            raise
        if not accepted:
            await self.context.close_socket(REVOKED, "Forbidden: the API key was revoked")
            raise Unauthenticated("the API key was revoked")

    async def read(self, load: Callable[[], Awaitable[T]]) -> T:
        """`load`, with a new query budget for it and the answer's fields, again after RETRY
        while the database does not answer."""
        while True:
            self.last_read = asyncio.get_running_loop().time()
            self.context.refresh()
            renew_budget(self.context.settings.max_queries)
            try:
                if not self.live:  # registered with the hub already, and before the first read
                    await self._lease()
                return await load()
            except Exception as error:
                if not is_unavailable(error):
                    raise
            await asyncio.sleep(RETRY)


def event_types(types: list[str] | None) -> list[str] | None:
    if types is None:
        return None
    unknown = sorted(set(types) - set(ALL_TYPES))
    if unknown:
        raise InvalidInput(f"unknown event types {unknown}; known: {', '.join(ALL_TYPES)}")
    return sorted(set(types)) or None


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="The caller's workspace now, then after each committed change to its "
        "meters, plan, limits or workbooks. Changes close together may arrive as one update; "
        "the last committed state always arrives."
    )
    async def workspace_updated(self, info: Info) -> AsyncGenerator[Workspace, None]:
        live = await Live.open(info)
        with live.subscribe(Change.STATE | Change.EVENTS) as subscriber:
            while True:
                row = await live.read(functools.partial(get_workspace, live.workspace_id))
                yield Workspace(row=row)
                await live.changed(subscriber)

    @strawberry.subscription(
        description="Each event of the caller's workspace committed from now on, in order; "
        "`types` keeps only those (API.md's event types)."
    )
    async def events(
        self, info: Info, types: list[str] | None = None
    ) -> AsyncGenerator[Event, None]:
        wanted = event_types(types)
        live = await Live.open(info, lease=False)  # events notify unleased
        with live.subscribe(Change.EVENTS) as subscriber:
            seq = await live.read(functools.partial(last_seq, live.workspace_id))
            while True:
                await live.changed(subscriber)
                while True:
                    load = functools.partial(
                        events_after, live.workspace_id, seq, wanted, EVENTS_PAGE
                    )
                    page = await live.read(load)
                    for row in page:
                        seq = row.seq
                        yield Event(row=row)
                    if len(page) < EVENTS_PAGE:
                        break
