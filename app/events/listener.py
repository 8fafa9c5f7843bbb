"""Each API process's ear for changes other processes commit (app.events.bus).

PostgreSQL: one dedicated connection per process LISTENs on the channel, never a connection of
the ORM's pool (LISTEN is session state, which app.db.PooledConnection does not reset, and a
pooled connection is lent to requests between notifications). Each notification is handed to
the hub, which wakes that workspace's subscribers. Beside it, through the pool, the lease that
keeps this process's subscribers' workspaces live is renewed every RENEW_EVERY seconds
(charges notify only live ones: app.events.bus.LEASE). The connection is checked every few
seconds; when it is lost, the listener connects again, backing off up to a few seconds, and
then wakes every subscriber, since notifications sent meanwhile were missed.

SQLite: one process serves the file, and its own commits publish directly; other processes
(`tally jobs run` beside `tally serve`) are seen through `PRAGMA data_version`, which changes
when another connection commits: polled each second, a change wakes every subscriber.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import asyncpg

from app.db import asyncpg_dsn, connection, is_postgres
from app.events.bus import CHANNEL, EVERYTHING, RENEW_EVERY, Change, Hub, hub, keep_live, parse

log = logging.getLogger("tally.live")

CONNECT_TIMEOUT = 5.0  # seconds
CHECK_EVERY = 5.0  # seconds between checks that the connection still answers
RETRY_MIN, RETRY_MAX = 0.25, 5.0  # seconds between attempts to connect again
SQLITE_POLL = 1.0  # seconds between reads of PRAGMA data_version
APP_NAME = "tally-live"  # the listening connection's name in pg_stat_activity


class _Background:
    """A task of the process's lifespan, stopped with it."""

    _task: asyncio.Task[None] | None = None

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


class PostgresListener(_Background):
    def __init__(self, url: str, into: Hub = hub, renew_every: float = RENEW_EVERY) -> None:
        self.dsn = asyncpg_dsn(url)
        self.hub = into
        self.connected = asyncio.Event()
        self.renew_every = renew_every

    async def start(self, wait: float = CONNECT_TIMEOUT) -> None:
        """Listen from now on; returns once listening (or after `wait` seconds, the listener
        trying on in the background)."""
        self._task = asyncio.create_task(self._both(), name="tally-live-listener")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.connected.wait(), wait)

    async def _both(self) -> None:
        await asyncio.gather(self._run(), self._renew())

    def _notified(self, conn: Any, pid: int, channel: str, text: str) -> None:
        parsed = parse(text)
        if parsed is not None:
            self.hub.publish(*parsed)

    async def _run(self) -> None:
        delay = RETRY_MIN
        while True:
            try:
                await self._listen()
                delay = RETRY_MIN  # it was up; the next loss retries at once
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("live updates: listening failed (%r); retrying in %.2g s", error, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX)

    async def _listen(self) -> None:
        conn = await asyncpg.connect(
            self.dsn, timeout=CONNECT_TIMEOUT, server_settings={"application_name": APP_NAME}
        )
        lost = asyncio.Event()
        try:
            conn.add_termination_listener(lambda _: lost.set())
            await conn.add_listener(CHANNEL, self._notified)
            self.connected.set()
            self.hub.publish_everywhere()  # what was committed while nobody listened
            while not lost.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lost.wait(), CHECK_EVERY)
                if not lost.is_set():
                    await conn.fetchval("SELECT 1", timeout=CONNECT_TIMEOUT)
            raise ConnectionError("the listening connection was closed")
        finally:
            self.connected.clear()
            conn.terminate()  # no goodbye to a server that may not answer

    async def _renew(self) -> None:
        """This process's subscribers' workspaces stay live (app.events.bus.LEASE), through
        the pool: never on the listening connection, where a wait on a row's lock would hold
        back every notification. Subscribers whose lease had run out read again. Only those
        that want the workspace's state need a lease: events notify whether or not."""
        while True:
            await asyncio.sleep(self.renew_every)
            try:
                lapsed = await keep_live(self.hub.workspaces(Change.STATE))
            except Exception as error:
                log.warning("live updates: renewing the leases failed (%r); retrying", error)
                continue
            for workspace_id in lapsed:
                self.hub.publish(workspace_id, EVERYTHING)


class SqliteWatcher(_Background):
    def __init__(self, into: Hub = hub, interval: float = SQLITE_POLL) -> None:
        self.hub = into
        self.interval = interval

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="tally-live-sqlite")

    async def _run(self) -> None:
        seen: object = None
        while True:
            try:
                version = await self._version()
            except Exception as error:
                log.warning("live updates: PRAGMA data_version failed: %r", error)
            else:
                if seen is not None and version != seen:
                    self.hub.publish_everywhere()
                seen = version
            await asyncio.sleep(self.interval)

    @staticmethod
    async def _version() -> object:
        _, rows = await connection().execute_query("PRAGMA data_version")
        return rows[0][0] if rows else None


Listener = PostgresListener | SqliteWatcher


async def start_listening(url: str) -> Listener:
    listener: Listener = PostgresListener(url) if is_postgres(url) else SqliteWatcher()
    await listener.start()
    return listener
