"""R14, R12, R19, R20 under real concurrency on PostgreSQL: schedulers racing each other and the
API. Each sweep, request or change runs on its own pooled connection, so the claims race."""

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from app.db import connection, fetch
from app.plans.renewals import Scope, sweep
from tests.helpers import assert_ledger_matches, new_key, run_jobs

pytestmark = pytest.mark.usefixtures("postgres_only")


def at(y, m, d, hh=10):
    return datetime(y, m, d, hh, tzinfo=UTC)


async def renewal_counts(ids: list[str]) -> Counter:
    rows = await fetch(
        connection(),
        "SELECT workspace_id, COUNT(*) AS n FROM renewal WHERE workspace_id = ANY($1::uuid[])"
        " GROUP BY workspace_id",
        ids,
    )
    return Counter({str(r["workspace_id"]): int(r["n"]) for r in rows})


async def test_r14_two_schedulers_sweeping_at_once_renew_each_period_once(api, clock):
    tenants = [await api.create_workspace("launch") for _ in range(60)]
    ids = [t.id for t in tenants]
    scope = Scope(workspace_ids=[uuid.UUID(i) for i in ids])
    now = at(2025, 5, 1)  # three boundaries due: Feb 28, Mar 31, Apr 30
    first, second, third = await asyncio.gather(
        sweep(now, scope, batch_size=5),
        sweep(now, scope, batch_size=7),
        sweep(now, scope, batch_size=3),
    )
    assert first.renewals + second.renewals + third.renewals == 180
    assert first.workspaces + second.workspaces + third.workspaces == 60
    assert not (first.failed or second.failed or third.failed)
    assert await renewal_counts(ids) == Counter({i: 3 for i in ids})
    for t in tenants:
        ws = await api.workspace(t.admin_key)
        assert ws["dataCredits"]["balance"] == "5000"  # 2,500 -> 5,000 -> capped, capped
        assert ws["currentPeriod"]["start"] == at(2025, 4, 30).isoformat()
        await assert_ledger_matches(t.id)


async def test_r12_renewal_racing_charges_loses_nothing(api, clock):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    query = "mutation($i: RecordUsageInput!) { recordUsage(input: $i) { __typename } }"
    charge = {
        "workbookId": wb,
        "kind": "ENRICHMENT",
        "provider": "clearbit",
        "dataType": "company",
        "results": 1,
    }
    requests = [
        api.gql(query, {"i": {**charge, "idempotencyKey": new_key()}}, key=t.admin_key)
        for _ in range(40)
    ]
    answers = await asyncio.gather(run_jobs(at(2025, 2, 28), t.id), *requests)
    assert all(a["recordUsage"]["__typename"] == "Charge" for a in answers[1:])
    ws = await api.workspace(t.admin_key)
    # 40 credits spent, before or after the renewal: 2,460 + 2,500 either way
    assert ws["dataCredits"]["balance"] == "4960"
    await assert_ledger_matches(t.id)


async def test_r19_concurrent_top_ups_never_pass_the_cap(api, clock):
    t = await api.create_workspace("launch")  # 2,500 of a 5,000 cap
    query = """mutation($i: TopUpInput!) { purchaseTopUp(input: $i) {
                 __typename ... on Refusal { code } } }"""
    answers = await asyncio.gather(
        *(
            api.gql(query, {"i": {"credits": "100", "idempotencyKey": new_key()}}, t.admin_key)
            for _ in range(40)
        )
    )
    outcomes = Counter(
        a["purchaseTopUp"].get("code", a["purchaseTopUp"]["__typename"]) for a in answers
    )
    assert outcomes == {"TopUp": 25, "TOP_UP_EXCEEDS_ROLLOVER_LIMIT": 15}
    assert Decimal((await api.workspace(t.admin_key))["dataCredits"]["balance"]) == 5000
    await assert_ledger_matches(t.id)


async def test_r13_r20_concurrent_retries_of_an_upgrade_grant_once(api, clock):
    t = await api.create_workspace("launch")
    query = """mutation($i: ChangePlanInput!) { changePlan(input: $i) {
                 __typename ... on Workspace { dataCredits { balance } } } }"""
    body = {"i": {"plan": "growth", "idempotencyKey": "same-upgrade"}}
    answers = await asyncio.gather(*(api.gql(query, body, t.admin_key) for _ in range(20)))
    assert {a["changePlan"]["dataCredits"]["balance"] for a in answers} == {"6000"}
    charges = await api.billing(t.admin_key)
    # The clock stands at the cycle's start: the whole difference, billed once.
    assert [(c["kind"], c["amount"]) for c in charges] == [
        ("PLAN_FEE", "185.00"),
        ("PRORATION", "310.00"),
    ]
    await assert_ledger_matches(t.id)
