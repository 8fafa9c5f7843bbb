"""Stopping the in-process scheduler (jobs.scheduler) while a tick runs: the running tick
finishes (the database is not closed under it, and what it was doing is done) and the ticks
queued behind it do not start; none is cancelled, so nothing is logged as an error (APScheduler
logs a cancelled job with its traceback). PostgreSQL: a row lock holds the tick mid-sweep."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import asyncpg
import pytest

from app.db import asyncpg_dsn, connection, fetch
from jobs.scheduler import Scheduler

pytestmark = pytest.mark.usefixtures("postgres_only")


async def test_r14_stopping_mid_tick_lets_the_renewal_finish_and_cancels_nothing(
    api, database, clock, caplog
):
    # given: a workspace due for renewal whose row another transaction holds, so the renewals
    # tick waits for it in the middle of its sweep (a busy workspace is waited for, R14)
    t = await api.create_workspace("launch")
    clock.shift(timedelta(days=32))
    other = await asyncpg.connect(asyncpg_dsn(database.url))
    holding = other.transaction()
    await holding.start()
    await other.fetch("SELECT 1 FROM workspace WHERE id = $1 FOR UPDATE", t.id)
    caplog.set_level(logging.INFO)
    scheduler = Scheduler(60)
    scheduler.start()
    await asyncio.sleep(0.5)  # every job's first tick submitted; renewals waits on the row

    # when the scheduler stops meanwhile, and the row is let go a moment later
    stopping = asyncio.create_task(scheduler.stop())
    await asyncio.sleep(0.3)
    assert not stopping.done()  # it waits for the running tick
    await holding.rollback()
    await other.close()
    await asyncio.wait_for(stopping, timeout=30)
    await asyncio.sleep(0.05)  # what a cancelled task would log, logged

    # then the tick finished its work, and nothing failed or was cancelled
    renewed = await fetch(connection(), "SELECT count(*) AS n FROM renewal WHERE workspace_id = $1",
                          t.id)  # fmt: skip
    assert renewed[0]["n"] == 1
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]
