"""R36: finished deliveries and their attempts are pruned after TALLY_WEBHOOK_RETENTION_DAYS
by the `webhook-retention` job; pending deliveries and every event stay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.db import connection, fetch
from jobs.registry import JOBS, due, run_job
from tests.api.test_r36_webhook_endpoints import TEST, create

NOW = datetime(2025, 6, 1, tzinfo=UTC)


async def age(delivery_id: str, status: str, days: int, attempts: int) -> None:
    created = NOW - timedelta(days=days)
    await fetch(
        connection(),
        "UPDATE webhook_delivery SET status = $2, created_at = $3 WHERE id = $1",
        delivery_id,
        status,
        created,
    )
    for _ in range(attempts):
        await fetch(
            connection(),
            "INSERT INTO webhook_attempt (delivery_id, attempted_at, response_status, error,"
            " duration_ms) VALUES ($1, $2, 500, 'answered 500', 3)",
            delivery_id,
            created,
        )


async def kept(workspace_id: str) -> tuple[list[str], int, int]:
    """(statuses of the workspace's deliveries, its attempts, its events)."""
    c = connection()
    rows = await fetch(
        c,
        "SELECT status FROM webhook_delivery WHERE workspace_id = $1 ORDER BY created_at",
        workspace_id,
    )
    attempts = await fetch(
        c,
        "SELECT COUNT(*) AS n FROM webhook_attempt a JOIN webhook_delivery d"
        " ON d.id = a.delivery_id WHERE d.workspace_id = $1",
        workspace_id,
    )
    events = await fetch(c, "SELECT COUNT(*) AS n FROM event WHERE workspace_id = $1", workspace_id)
    return [r["status"] for r in rows], int(attempts[0]["n"]), int(events[0]["n"])


async def test_r36_retention_prunes_finished_deliveries_and_keeps_events(api, monkeypatch):
    t = await api.create_workspace("launch")
    endpoint_id = (await create(api, t.admin_key))["endpoint"]["id"]
    ids = [
        (await api.gql(TEST, {"id": endpoint_id}, key=t.admin_key))["sendTestEvent"]["id"]
        for _ in range(4)
    ]
    await age(ids[0], "FAILED", 40, 2)
    await age(ids[1], "PENDING", 35, 1)  # never pruned while it may still be sent
    await age(ids[2], "SUCCEEDED", 31, 1)
    await age(ids[3], "SUCCEEDED", 29, 1)
    assert "webhook-retention" in JOBS
    assert await due("webhook-retention", NOW) >= 2
    result = await run_job("webhook-retention", NOW)
    assert result.workspaces >= 2
    assert await kept(t.id) == (["PENDING", "SUCCEEDED"], 2, 4)
    monkeypatch.setenv("TALLY_WEBHOOK_RETENTION_DAYS", "7")
    await run_job("webhook-retention", NOW, batch_size=1)
    assert await kept(t.id) == (["PENDING"], 1, 4)
