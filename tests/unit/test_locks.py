"""Row locks go through app.locks only, in one order (charge, workspace, workbook, run)."""

import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tortoise.transactions import in_transaction

from app import locks
from app.db import connection

APP = Path(__file__).resolve().parents[2] / "app"
LOCKING = re.compile(r"FOR (NO KEY )?UPDATE|FOR SHARE|SKIP LOCKED|select_for_update", re.I)


def test_no_service_takes_a_row_lock_outside_app_locks():
    offenders = [
        f"{path.relative_to(APP.parent)}:{n}"
        for path in APP.rglob("*.py")
        if path.name != "locks.py" and "migrations" not in path.parts
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if LOCKING.search(line)
    ]
    assert offenders == []


async def test_a_lock_out_of_order_fails_at_once(database):
    workspace_id, run_id = uuid.uuid4(), uuid.uuid4()
    with pytest.raises(locks.LockOrderError, match="a workspace row locked after a run row"):
        async with in_transaction() as conn:
            await locks.run(conn, workspace_id, run_id)
            await locks.workspace(conn, workspace_id)
    async with in_transaction() as conn:  # the order itself, and a level twice, are fine
        await locks.charge(conn, workspace_id, uuid.uuid4())
        await locks.workspace_row(conn, workspace_id)
        await locks.workbook_rows(conn, [str(uuid.uuid4())], "id")
        await locks.run_rows(conn, [str(run_id)], "id")
        await locks.run(conn, workspace_id, run_id)
        now = datetime.now(UTC)
        await locks.claim_deliveries(conn, now - timedelta(days=3650), now, 1)
    with pytest.raises(locks.LockOrderError, match="a run row locked after a webhook_delivery"):
        async with in_transaction() as conn:
            await locks.claim_deliveries(conn, datetime.now(UTC), datetime.now(UTC), 1)
            await locks.run(conn, workspace_id, run_id)


async def test_a_lock_outside_a_transaction_is_refused(database):
    with pytest.raises(locks.LockOrderError, match="outside a transaction"):
        await locks.workspace_row(connection(), uuid.uuid4())
