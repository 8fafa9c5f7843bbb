"""Services take row locks in app.locks' one order, workspace before workbook, even where a
change's event (R34) is what locks the workspace: otherwise a charge holding the workspace and
waiting for the workbook deadlocks with it. PostgreSQL only; the interleaving is made, not
hoped for: another connection holds the workspace's row, the service is left waiting, then that
connection asks for the workbook's row."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import asyncpg
import pytest

from app.db import asyncpg_dsn, connection, fetch
from app.workspaces.workbooks import set_spend_limit

pytestmark = pytest.mark.usefixtures("postgres_only")


async def _waiting_on_a_lock(conn: asyncpg.Connection, pid: int) -> bool:
    """Whether any backend but `pid` waits on a row or tuple lock."""
    rows = await conn.fetch(
        "SELECT 1 FROM pg_stat_activity WHERE pid <> $1 AND wait_event_type = 'Lock'"
        " AND datname = current_database()",
        pid,
    )
    return bool(rows)


async def test_r11_a_limit_that_fires_its_event_waits_for_a_charge_holding_the_workspace(
    api, database
):
    t = await api.create_workspace("enterprise")
    wb = await api.create_workbook(t.admin_key)
    holder = await asyncpg.connect(asyncpg_dsn(database.url))
    try:
        await holder.execute("BEGIN; SET LOCAL lock_timeout = '5s'")
        # What a charge does first: the workspace's row.
        await holder.execute(
            "SELECT 1 FROM workspace WHERE id = $1 FOR NO KEY UPDATE", uuid.UUID(t.id)
        )
        # A limit of 0 is reached at once: it fires workbook.spend_limit_reached.
        setting = asyncio.create_task(set_spend_limit(uuid.UUID(t.id), wb, 0, datetime.now(UTC)))
        for _ in range(500):
            if await _waiting_on_a_lock(holder, holder.get_server_pid()) or setting.done():
                break
            await asyncio.sleep(0.01)
        assert not setting.done(), "set_spend_limit did not wait for the workspace's row"
        # Then the charge asks for the workbook's row: it must be free, not held by the
        # service that waits on us (a deadlock, which PostgreSQL breaks by failing one).
        await holder.execute(
            "SELECT 1 FROM workbook WHERE id = $1 FOR NO KEY UPDATE", uuid.UUID(wb)
        )
        await holder.execute("COMMIT")
        changed = await setting
    finally:
        await holder.close()
    assert changed.spend_limit == 0
    events = await fetch(
        connection(), "SELECT type FROM event WHERE workspace_id = $1 ORDER BY seq", t.id
    )
    assert [e["type"] for e in events].count("workbook.spend_limit_reached") == 1
