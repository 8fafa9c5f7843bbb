"""The set-based sweep (app.plans.renewal_batch) writes exactly what the per-workspace path
writes: twin populations, built alike at the same frozen instant, are swept a year later, one
with each path, and every row either path touched is compared (PostgreSQL: SQLite has only the
per-workspace path)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from app.db import connection, fetch
from app.plans import renewal_batch, renewals
from app.plans.renewals import Scope, sweep
from tests.helpers import Tenant, assert_ledger_matches

pytestmark = pytest.mark.usefixtures("postgres_only")

NOW = datetime(2026, 2, 1, 12, tzinfo=UTC)  # a year of boundaries due since 2025-01-31
ENDPOINT = """mutation($i: WebhookEndpointInput!) { createWebhookEndpoint(input: $i) {
                endpoint { id } } }"""
ALERT = """mutation($m: Meter!, $t: Decimal!) { setAlert(input: {meter: $m, threshold: $t}) {
             id } }"""


async def spend(api, t: Tenant, results: int) -> None:
    wb = await api.create_workbook(t.admin_key)
    charge = await api.record_usage(
        t.admin_key, wb, kind="ENRICHMENT", provider="linkedin", dataType="profile",
        results=results,
    )  # fmt: skip
    assert charge["__typename"] in ("Charge", "Refusal"), charge


async def population(api) -> tuple[list[str], int]:
    """One workspace of each kind of step, in creation order, and how many of them the set
    path leaves to `advance` (alerts to evaluate, a hold to release)."""
    made: list[Tenant] = []

    async def new(plan: str, **fields: Any) -> Tenant:
        made.append(await api.create_workspace(plan, **fields))
        return made[-1]

    await spend(api, await new("launch"), 1200)  # rollover, Actions expired, then the cap
    await spend(api, await new("launch"), 5000)  # depleted (R34), re-armed by the grant
    await new("launch", billingInterval="ANNUAL")  # Actions months, a yearly fee
    await spend(api, await new("enterprise"), 100)  # annual only
    downgraded = await new("enterprise", creditTier=100000)
    assert await api.change_plan(downgraded.admin_key, "enterprise", creditTier=50000)
    await new("growth", trial=True)  # to free at the trial's end (R18)
    chosen = await new("growth", trial=True)
    await api.change_plan(chosen.admin_key, "launch", creditTier=5000)
    hooked = await new("growth")
    for url, kinds in (("https://example.com/all", None),
                       ("https://example.com/renewed", ["subscription.renewed"]),
                       ("https://example.com/other", ["topup.purchased"])):  # fmt: skip
        await api.gql(ENDPOINT, {"i": {"url": url, "eventTypes": kinds}}, key=hooked.admin_key)
    await new("free")
    alerted = await new("launch")  # alerts: left to `advance`
    await api.gql(ALERT, {"m": "DATA_CREDITS", "t": "3000"}, key=alerted.admin_key)
    held = await new("growth", trial=True)  # a hold above what the trial's end keeps
    run = await api.start_run(held.admin_key, await api.create_workbook(held.admin_key),
                              hold="500", holdMinutes=10_000)  # fmt: skip
    assert run["held"] == "500", run
    await spend(api, await new("growth"), 200)
    return [t.id for t in made], 2


# Per table: the query of one workspace's rows in the order they were written, and the
# columns that hold generated ids (compared by whether they are set) or the workspace's id.
TABLES = {
    "workspace": "SELECT * FROM workspace WHERE id = $1",
    "renewal": "SELECT * FROM renewal WHERE workspace_id = $1 ORDER BY id",
    "ledger_entry": "SELECT * FROM ledger_entry WHERE workspace_id = $1 ORDER BY id",
    "billing_charge": "SELECT * FROM billing_charge WHERE workspace_id = $1"
    " ORDER BY created_at, kind, period_start, amount_cents",
    "plan_period": "SELECT * FROM plan_period WHERE workspace_id = $1 ORDER BY id",
    "event": "SELECT * FROM event WHERE workspace_id = $1 ORDER BY seq",
    "webhook_delivery": "SELECT d.*, ep.url, e.seq AS event_seq FROM webhook_delivery d"
    " JOIN webhook_endpoint ep ON ep.id = d.endpoint_id JOIN event e ON e.id = d.event_id"
    " WHERE d.workspace_id = $1 ORDER BY e.seq, ep.url",
    "alert": "SELECT * FROM alert WHERE workspace_id = $1 ORDER BY threshold",
    "run": "SELECT * FROM run WHERE workspace_id = $1 ORDER BY created_at",
}
GENERATED = {"id", "seq", "event_seq", "workspace_id", "charge_id", "refund_id", "run_id",
             "workbook_id", "event_id", "endpoint_id", "idempotency_key", "name",
             "idempotency_record_id"}  # fmt: skip


async def rows_of(workspace_id: str) -> dict[str, list[dict[str, Any]]]:
    found = {}
    for table, query in TABLES.items():
        rows = await fetch(connection(), query, workspace_id)
        found[table] = [
            {k: (v is not None if k in GENERATED or k.endswith("_id") else v) for k, v in r.items()}
            for r in rows
        ]
        for r in found[table]:
            if "data" in r:  # an event's payload names its workspace
                r["data"] = r["data"].replace(workspace_id, "<workspace>")
    return found


async def test_r14_the_set_based_sweep_writes_what_the_per_workspace_path_writes(
    api, clock, monkeypatch
):
    batched, slow = await population(api)
    alone, _ = await population(api)
    advanced: list[uuid.UUID] = []
    advance = renewals.advance

    async def counted(conn, workspace_id, now, catalogs):
        advanced.append(workspace_id)
        return await advance(conn, workspace_id, now, catalogs)

    monkeypatch.setattr(renewals, "advance", counted)
    set_result = await sweep(NOW, Scope(workspace_ids=[uuid.UUID(i) for i in batched]),
                             batch_size=4, set_based=True)  # fmt: skip
    assert len(advanced) == slow  # the others went through the batch statement
    advanced.clear()
    one_result = await sweep(NOW, Scope(workspace_ids=[uuid.UUID(i) for i in alone]),
                             batch_size=4, set_based=False)  # fmt: skip
    assert len(advanced) == len(alone)
    assert not set_result.failed and not one_result.failed
    assert (set_result.workspaces, set_result.steps) == (one_result.workspaces, one_result.steps)
    assert set_result.workspaces == len(batched)
    assert set_result.steps["CYCLE"] > 0 and set_result.steps["ACTIONS"] > 0
    assert set_result.steps["TRIAL_END"] == 3
    for a, b in zip(batched, alone, strict=True):
        assert await rows_of(a) == await rows_of(b)
        await assert_ledger_matches(a)
    events = await fetch(
        connection(),
        "SELECT type, COUNT(*) AS n FROM event WHERE workspace_id = ANY($1::uuid[])"
        " AND created_at = $2 GROUP BY type ORDER BY type",
        batched,
        NOW,
    )
    kinds = {r["type"]: r["n"] for r in events}
    assert kinds.keys() >= {"subscription.renewed", "subscription.trial_ended"}
    deliveries = await fetch(
        connection(),
        "SELECT COUNT(*) AS n FROM webhook_delivery WHERE workspace_id = ANY($1::uuid[])",
        batched,
    )
    assert deliveries[0]["n"] > 0


async def test_r14_a_failing_batch_is_retried_one_workspace_at_a_time(api, clock, monkeypatch):
    ids = [(await api.create_workspace("launch")).id for _ in range(5)]
    write = renewal_batch.write
    failures: list[int] = []

    async def fails_once(conn, batch):
        if not failures:
            failures.append(len(batch.updates))
            raise RuntimeError("a bad batch")
        await write(conn, batch)

    monkeypatch.setattr(renewal_batch, "write", fails_once)
    result = await sweep(datetime(2025, 3, 1, tzinfo=UTC),
                         Scope(workspace_ids=[uuid.UUID(i) for i in ids]),
                         batch_size=3, set_based=True)  # fmt: skip
    assert failures == [3]
    assert (result.workspaces, dict(result.steps), result.failed) == (5, {"CYCLE": 5}, [])
    for i in ids:
        await assert_ledger_matches(i)
