"""Live updates: which subscribers of this process wait on which workspace, and telling them
that a change to it committed (API.md "subscriptions").

A change says so with `notify`, inside its transaction. On PostgreSQL that is `pg_notify`,
which the server delivers only if and when the transaction commits, to every process, in
commit order; each process's listener (app.events.listener) hands it to its hub. On SQLite,
where one process owns the file, the transaction wrapper publishes to the hub right after its
commit (app.sqlite_engine.after_commit); a rollback publishes nothing either way. The payload
is small: the workspace id and what kind of change it was.

A subscriber holds a wake-up flag and the kinds of change pending, never the changes
themselves: its memory is the same whatever the rate of changes. A slow one merges wake-ups and
then reads what is there (the workspace as it is now, or the stored events after the last it
sent), so updates may merge but the last committed state always arrives.
"""

from __future__ import annotations

import asyncio
import enum
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from app import locks
from app.db import connection, fetch
from app.errors import QuotaExceeded
from app.sqlite_engine import after_commit

CHANNEL = "tally"
# A workspace's charges notify only while it is live: a subscriber somewhere leased it, setting
# workspace.live_until LEASE seconds ahead (`keep_live`), and each process's listener renews
# the leases of its subscribers every RENEW_EVERY seconds (a lease with more than FRESH left is
# not written again). NOTIFY cost a charge about 45 µs of PostgreSQL's CPU with two API
# processes listening and 150 µs with eight (bench/notify.py), for workspaces nobody watched.
LEASE = 90.0
FRESH = 60.0  # above the longest gap between renewals, and what stalls them, with room
RENEW_EVERY = 20.0
LEASE_LOCK_WAIT = "2s"  # a row lock held longer: the listener's next renewal takes the lease
# The condition, in a statement that updates the workspace's row, for a notification to be sent.
LIVE = "live_until > now()"


class Change(enum.IntFlag):
    NONE = 0
    STATE = 1  # meters, plan, limits, workbooks: what `Workspace` shows
    EVENTS = 2  # events were written
    KEYS = 4  # an API key was revoked


EVERYTHING = Change.STATE | Change.EVENTS | Change.KEYS


def payload(workspace_id: uuid.UUID, change: Change) -> str:
    return f"{workspace_id}:{int(change)}"


def payload_sql(workspace_id: str, change: Change) -> str:
    """`payload` as a SQL expression over a uuid column, for a statement that notifies many
    workspaces at once (the renewal sweep): no id spelled in Python, none sent."""
    return f"{workspace_id}::text || ':{int(change)}'"


def parse(text: str) -> tuple[uuid.UUID, Change] | None:
    """A payload `payload` made; None for anything else (it is not ours to act on)."""
    workspace, _, kinds = text.partition(":")
    if not kinds.isdigit() or len(kinds) > 2:
        return None
    try:
        return uuid.UUID(workspace), Change(int(kinds) & EVERYTHING)
    except ValueError:
        return None


class Subscriber:
    """One subscription's wake-up: the kinds of change it wants, and those pending."""

    __slots__ = ("_pending", "_wake", "key_id", "wants", "workspace_id")

    def __init__(self, workspace_id: uuid.UUID, key_id: uuid.UUID | None, wants: Change) -> None:
        self.workspace_id = workspace_id
        self.key_id = key_id
        self.wants = wants
        self._pending = Change.NONE
        self._wake = asyncio.Event()

    def tell(self, change: Change) -> None:
        wanted = change & self.wants
        if wanted:
            self._pending |= wanted
            self._wake.set()

    def take(self) -> Change:
        """What changed since the last `take` or `wait`, without waiting."""
        change, self._pending = self._pending, Change.NONE
        self._wake.clear()
        return change

    async def wait(self, seconds: float | None = None) -> Change:
        """What changed since the last `take` or `wait`; NONE after `seconds` of no change."""
        if not self._pending:
            try:
                async with asyncio.timeout(seconds):
                    await self._wake.wait()
            except TimeoutError:
                return Change.NONE
        return self.take()


class Hub:
    """This process's subscribers by workspace, and how many each API key holds."""

    def __init__(self) -> None:
        self._workspaces: dict[uuid.UUID, set[Subscriber]] = {}
        self._keys: Counter[uuid.UUID] = Counter()

    @contextmanager
    def subscribe(
        self, workspace_id: uuid.UUID, key_id: uuid.UUID | None, wants: Change, cap: int
    ) -> Iterator[Subscriber]:
        """A subscriber for the block; QUOTA_EXCEEDED when the key holds `cap` already."""
        if key_id is not None and self._keys[key_id] >= cap:
            raise QuotaExceeded(
                f"this API key has {cap} open subscriptions, the most a key may hold"
                " (TALLY_MAX_SUBSCRIPTIONS_PER_KEY); complete one first"
            )
        subscriber = Subscriber(workspace_id, key_id, wants)
        self._workspaces.setdefault(workspace_id, set()).add(subscriber)
        if key_id is not None:
            self._keys[key_id] += 1
        try:
            yield subscriber
        finally:
            self._remove(subscriber)

    def _remove(self, subscriber: Subscriber) -> None:
        subscribers = self._workspaces.get(subscriber.workspace_id)
        if subscribers is not None:
            subscribers.discard(subscriber)
            if not subscribers:
                del self._workspaces[subscriber.workspace_id]
        if subscriber.key_id is not None:
            self._keys[subscriber.key_id] -= 1
            if self._keys[subscriber.key_id] <= 0:
                del self._keys[subscriber.key_id]

    def publish(self, workspace_id: uuid.UUID, change: Change) -> None:
        for subscriber in self._workspaces.get(workspace_id, ()):
            subscriber.tell(change)

    def publish_everywhere(self, change: Change = EVERYTHING) -> None:
        """Every subscriber re-reads: after notifications may have been missed (the listener
        lost its connection, or another process wrote the SQLite file)."""
        for subscribers in self._workspaces.values():
            for subscriber in subscribers:
                subscriber.tell(change)

    def workspaces(self, wanting: Change) -> list[uuid.UUID]:
        """The workspaces with a subscriber in this process that wants any of `wanting`."""
        return [
            workspace
            for workspace, subscribers in self._workspaces.items()
            if any(subscriber.wants & wanting for subscriber in subscribers)
        ]

    def count(self) -> int:
        return sum(len(s) for s in self._workspaces.values())

    def held_by(self, key_id: uuid.UUID) -> int:
        return self._keys[key_id]


hub = Hub()


def _is_sqlite(conn: BaseDBAsyncClient) -> bool:
    return conn.capabilities.dialect == "sqlite"


def _publish_after_commit(conn: BaseDBAsyncClient, workspace_id: uuid.UUID, change: Change) -> None:
    after_commit(conn, ("live", workspace_id, change), lambda: hub.publish(workspace_id, change))


async def notify(conn: BaseDBAsyncClient, workspace_id: uuid.UUID, change: Change) -> None:
    """Tell the workspace's subscribers, in every process, once the transaction of `conn`
    commits. PostgreSQL folds the same notification sent twice in one transaction into one."""
    if _is_sqlite(conn):
        _publish_after_commit(conn, workspace_id, change)
        return
    await fetch(conn, "SELECT pg_notify($1, $2)", CHANNEL, payload(workspace_id, change))


def notify_returning(
    conn: BaseDBAsyncClient, workspace_id: uuid.UUID, change: Change, first: int
) -> tuple[str, list[str]]:
    """`notify` for a change that updates the workspace's row anyway (the charge path): a
    RETURNING clause for that UPDATE, its parameters numbered from `first`, so the notification
    costs no round trip, sent only while the workspace is live (LEASE). The UPDATE and
    `keep_live` write the same row, so they take its lock in turn: a charge that commits after
    a subscriber's lease sees it and notifies; one before, the subscriber's first read (made
    after its lease) sees. On SQLite the clause is empty and the publication is recorded now."""
    if _is_sqlite(conn):
        _publish_after_commit(conn, workspace_id, change)
        return "", []
    clause = f" RETURNING CASE WHEN {LIVE} THEN pg_notify(${first}, ${first + 1}) END"
    return clause, [CHANNEL, payload(workspace_id, change)]


async def keep_live(workspace_ids: list[uuid.UUID]) -> list[uuid.UUID]:
    """The workspaces have a subscriber: their charges notify for LEASE seconds from now. A
    subscriber calls this after registering with the hub and before its first read; each
    process's listener again every RENEW_EVERY seconds. Returns those whose lease had run
    out. Waits at most LEASE_LOCK_WAIT for a row's lock (PostgreSQL's lock_timeout)."""
    if not workspace_ids or _is_sqlite(connection()):
        return []
    async with in_transaction() as conn:
        await fetch(conn, f"SET LOCAL lock_timeout = '{LEASE_LOCK_WAIT}'")
        rows = await locks.lease_workspaces(conn, [str(w) for w in workspace_ids], LEASE, FRESH)
    return [uuid.UUID(str(r["id"])) for r in rows if r["lapsed"]]


async def notify_events(conn: BaseDBAsyncClient, workspace_id: uuid.UUID) -> None:
    """Events of the workspace are about to be written: its row locked (so they commit in seq
    order, app.locks.workspace_for_events) and its subscribers told, in one statement."""
    if _is_sqlite(conn):
        _publish_after_commit(conn, workspace_id, Change.EVENTS)
        return
    notification = (CHANNEL, payload(workspace_id, Change.EVENTS))
    await locks.workspace_for_events(conn, workspace_id, notification)
