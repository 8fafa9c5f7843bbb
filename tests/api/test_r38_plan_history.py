"""R38: the plan history `balanceAt` reads, as written by each change and as migration 0008
rebuilds it for workspaces created before it."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.db import connection, fetch
from tests.helpers import Api, run_jobs

T0 = datetime(2025, 1, 31, 10, 0, tzinfo=UTC)
migration = importlib.import_module("app.migrations.0008_balance_at")


def _instant(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.astimezone(UTC)


async def written(workspace_id: str) -> list[tuple]:
    rows = await fetch(
        connection(),
        "SELECT started_at, plan_code, credit_tier, billing_interval, actions_capacity, source"
        " FROM plan_period WHERE workspace_id = $1 ORDER BY started_at, id",
        workspace_id,
    )
    return [(_instant(r["started_at"]), *list(r.values())[1:]) for r in rows]


async def rebuilt(workspace_id: str) -> list[tuple]:
    rows = await migration.history_rows(connection(), [workspace_id])
    return [row[1:] for row in rows]


async def at(clock, moment: datetime) -> datetime:
    clock.move_to(moment)
    return moment


async def test_r38_each_change_writes_the_plan_history_and_the_backfill_agrees(api: Api, clock):
    t = await api.create_workspace("launch", creditTier=2500)
    up = await at(clock, T0 + timedelta(days=3))
    await api.change_plan(t.admin_key, "growth", creditTier=6000)
    await run_jobs(datetime(2025, 2, 28, 11, tzinfo=UTC), t.id)  # same plan: no row
    await at(clock, datetime(2025, 3, 1, tzinfo=UTC))
    await api.cancel(t.admin_key)  # to free at the cycle end
    await run_jobs(datetime(2025, 3, 31, 12, tzinfo=UTC), t.id)
    assert await written(t.id) == [
        (T0, "launch", 2500, "MONTHLY", 15000, "CREATED"),
        (up, "growth", 6000, "MONTHLY", 40000, "UPGRADE"),
        (datetime(2025, 3, 31, 12, tzinfo=UTC), "free", 100, "MONTHLY", 500, "CYCLE"),
    ]
    assert await rebuilt(t.id) == await written(t.id)


async def test_r38_trials_leaving_free_and_annual_months_in_the_backfill(api: Api, clock):
    trial = await api.create_workspace("growth", trial=True)
    await api.change_plan(trial.admin_key, "launch", creditTier=5000)
    ends = datetime(2025, 2, 14, 10, 5, tzinfo=UTC)
    await run_jobs(ends, trial.id)
    assert await written(trial.id) == [
        (T0, "growth", None, "MONTHLY", 40000, "CREATED"),
        (ends, "launch", 5000, "MONTHLY", 15000, "TRIAL_END"),
    ]
    still = await api.create_workspace("growth", trial=True)
    free = await api.create_workspace("free")
    left = await at(clock, T0 + timedelta(hours=2))
    await api.change_plan(free.admin_key, "launch")
    annual = await api.create_workspace("enterprise", creditTier=50000)
    bigger = await at(clock, T0 + timedelta(days=40))
    await run_jobs(bigger - timedelta(hours=1), annual.id)  # a month of Actions: no row
    await api.change_plan(annual.admin_key, "enterprise", creditTier=100000)  # the same Actions
    assert await written(free.id) == [
        (T0, "free", 100, "MONTHLY", 500, "CREATED"),
        (left, "launch", 2500, "MONTHLY", 15000, "SUBSCRIBED"),
    ]
    assert await written(annual.id) == [
        (left, "enterprise", 50000, "ANNUAL", 100000, "CREATED"),
        (bigger, "enterprise", 100000, "ANNUAL", 100000, "UPGRADE"),
    ]
    for t in (trial, still, free, annual):
        assert await rebuilt(t.id) == await written(t.id), t.id


async def test_r38_an_upgrade_billed_nothing_is_found_by_its_grant(api: Api, clock):
    t = await api.create_workspace("launch", creditTier=2500)
    late = await at(clock, datetime(2025, 2, 28, 10, tzinfo=UTC) - timedelta(microseconds=1))
    await api.change_plan(t.admin_key, "launch", creditTier=5000)  # prorated to 0 cents
    assert [c["kind"] for c in await api.billing(t.admin_key)] == ["PLAN_FEE"]
    live = await written(t.id)
    assert live[-1] == (late, "launch", 5000, "MONTHLY", 15000, "UPGRADE")
    assert await rebuilt(t.id) == [*live[:-1], (*live[-1][:-1], "BACKFILL")]


async def test_r38_the_plan_history_is_append_only(api: Api, database):
    t = await api.create_workspace("launch")
    for statement in (
        "UPDATE plan_period SET plan_code = 'free' WHERE workspace_id = $1",
        "DELETE FROM plan_period WHERE workspace_id = $1",
    ):
        with pytest.raises(Exception, match="append-only"):
            await fetch(connection(), statement, t.id)
    assert len(await written(t.id)) == 1
