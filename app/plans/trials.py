"""Telling a trial's workspace that it ends soon (R34: subscription.trial_ending, 3 days
before). Each workspace is told once: the conditional UPDATE that records it is the claim."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from tortoise.transactions import in_transaction

from app.db import connection, fetch, fetch_one
from app.events.rules import NewEvent
from app.events.store import emit
from app.kinds import WorkspaceStatus

NOTICE = timedelta(days=3)
TRIAL_ENDING = "subscription.trial_ending"
_DUE = (
    "status = $1 AND trial_ending_sent_at IS NULL AND trial_ends_at IS NOT NULL"
    " AND trial_ends_at <= $2"
)


async def count_trials_ending(now: datetime) -> int:
    row = await fetch_one(
        connection(),
        f"SELECT COUNT(*) AS n FROM workspace WHERE {_DUE}",
        WorkspaceStatus.TRIALING.value,
        now + NOTICE,
    )
    return int(row["n"]) if row else 0


async def notify_trials_ending(now: datetime, batch_size: int = 100) -> int:
    """Emit subscription.trial_ending for every trial ending within 3 days; returns how many."""
    told = 0
    while True:
        rows = await fetch(
            connection(),
            f"SELECT id FROM workspace WHERE {_DUE} ORDER BY trial_ends_at LIMIT {int(batch_size)}",
            WorkspaceStatus.TRIALING.value,
            now + NOTICE,
        )
        for row in rows:
            told += await _tell(uuid.UUID(str(row["id"])), now)
        if len(rows) < batch_size:
            return told


async def _tell(workspace_id: uuid.UUID, now: datetime) -> int:
    async with in_transaction() as conn:
        claimed = await fetch(
            conn,
            f"UPDATE workspace SET trial_ending_sent_at = $3 WHERE id = $4 AND {_DUE}"
            " RETURNING trial_ends_at",
            WorkspaceStatus.TRIALING.value,
            now + NOTICE,
            now,
            str(workspace_id),
        )
        if not claimed:
            return 0  # another scheduler told it, or the trial ended meanwhile
        ends = claimed[0]["trial_ends_at"]
        ends_at = ends if isinstance(ends, datetime) else datetime.fromisoformat(str(ends))
        event = NewEvent(TRIAL_ENDING, {"trialEndsAt": ends_at.isoformat()})
        await emit(conn, workspace_id, [event], now)
        return 1
