"""R6, R12, R13, R23 under real concurrency: runs, holds and batches on one PostgreSQL.

Requests fire together (asyncio.gather over the GraphQL endpoint), each on its own pooled
connection, so the row locks and the idempotency index race for real.
"""

import asyncio
from collections import Counter
from decimal import Decimal

import pytest

from tests.helpers import (
    CHARGE_FIELDS,
    adjust_credits,
    assert_ledger_matches,
    new_key,
)

pytestmark = pytest.mark.usefixtures("postgres_only")

RECORD = f"mutation($i: RecordUsageInput!) {{ recordUsage(input: $i) {{ {CHARGE_FIELDS} }} }}"
BATCH = f"""mutation($i: RecordUsageBatchInput!) {{ recordUsageBatch(input: $i) {{
  charged refused results {{ {CHARGE_FIELDS} }} }} }}"""


def profile(wb: str, run_id: str | None = None, key: str | None = None) -> dict:
    """One LinkedIn profile: 0.5 Data Credits, 1 Action."""
    item = {
        "workbookId": wb,
        "kind": "ENRICHMENT",
        "provider": "linkedin",
        "dataType": "profile",
        "results": 1,
        "idempotencyKey": key or new_key("race"),
    }
    return item if run_id is None else {**item, "runId": run_id}


def halves(count: int) -> str:
    """`count` charges of 0.5 credits, as the API spells the amount."""
    return format((Decimal(count) / 2).normalize(), "f")


async def charge_all(api, key: str, items: list[dict]) -> Counter:
    answers = await asyncio.gather(*(api.gql(RECORD, {"i": i}, key=key) for i in items))
    return Counter(a["recordUsage"].get("code", "Charge") for a in answers)


async def test_r06_100_concurrent_charges_never_pass_the_run_budget(api):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    run = await api.start_run(t.admin_key, wb, budget="25")
    outcomes = await charge_all(api, t.admin_key, [profile(wb, run["id"]) for _ in range(100)])
    assert outcomes == {"Charge": 50, "RUN_BUDGET_EXCEEDED": 50}
    after = await api.run(t.admin_key, run["id"])
    assert (after["spent"], after["charges"], after["actions"]) == ("25", 50, 50)
    assert await api.meters(t.admin_key) == (50, Decimal("2475"))
    await assert_ledger_matches(t.id)


async def test_r06_a_hold_is_never_spent_by_other_work_under_concurrency(api):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    await adjust_credits(t.id, -2_470 * 10_000)  # leaves 30 credits
    run = await api.start_run(t.admin_key, wb, hold="20", budget="25")
    inside = [profile(wb, run["id"]) for _ in range(100)]
    outside = [profile(wb) for _ in range(100)]
    mixed = [item for pair in zip(inside, outside, strict=True) for item in pair]
    answers = await asyncio.gather(*(api.gql(RECORD, {"i": i}, key=t.admin_key) for i in mixed))
    codes = [a["recordUsage"].get("code", "Charge") for a in answers]
    run_ok = codes[0::2].count("Charge")
    other_ok = codes[1::2].count("Charge")
    # The run's 20 held credits are its own: at least 40 of its charges fit, whatever the
    # order; other work can only ever have had the 10 credits that were available.
    assert 40 <= run_ok <= 50 and other_ok <= 20
    assert run_ok + other_ok == 60  # all 30 credits spent, never more
    assert set(codes) <= {"Charge", "RUN_BUDGET_EXCEEDED", "INSUFFICIENT_DATA_CREDITS"}
    after = await api.run(t.admin_key, run["id"])
    assert after["spent"] == halves(run_ok)
    assert await api.credits(t.admin_key) == {"balance": "0", "held": "0", "available": "0"}
    await assert_ledger_matches(t.id)


async def test_r06_ten_concurrent_batches_into_one_run_stop_at_its_budget(api):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    run = await api.start_run(t.admin_key, wb, budget="25", hold="25")
    batches = [[profile(wb, run["id"]) for _ in range(20)] for _ in range(10)]
    answers = await asyncio.gather(
        *(api.gql(BATCH, {"i": {"items": b}}, key=t.admin_key) for b in batches)
    )
    charged = sum(a["recordUsageBatch"]["charged"] for a in answers)
    refused = Counter(
        r["code"]
        for a in answers
        for r in a["recordUsageBatch"]["results"]
        if r["__typename"] == "Refusal"
    )
    assert (charged, refused) == (50, {"RUN_BUDGET_EXCEEDED": 150})
    after = await api.run(t.admin_key, run["id"])
    assert (after["spent"], after["held"], after["charges"]) == ("25", "0", 50)
    assert await api.credits(t.admin_key) == {"balance": "2475", "held": "0", "available": "2475"}
    await assert_ledger_matches(t.id)


async def test_r13_five_concurrent_copies_of_one_batch_charge_once(api):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    items = [profile(wb, key=f"copy-{i}") for i in range(100)]
    answers = await asyncio.gather(
        *(api.gql(BATCH, {"i": {"items": items}}, key=t.admin_key) for _ in range(5))
    )
    ids = [[r["id"] for r in a["recordUsageBatch"]["results"]] for a in answers]
    assert all(copy == ids[0] for copy in ids) and len(set(ids[0])) == 100
    assert await api.meters(t.admin_key) == (100, Decimal("2450"))
    await assert_ledger_matches(t.id)


async def test_r13_overlapping_batches_in_opposite_orders_do_not_deadlock(api):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    items = [profile(wb, key=f"overlap-{i}") for i in range(200)]
    forward, backward = items[:150], list(reversed(items[50:]))
    answers = await asyncio.gather(
        *(api.gql(BATCH, {"i": {"items": b}}, key=t.admin_key) for b in (forward, backward) * 3)
    )
    assert all(a["recordUsageBatch"]["refused"] == 0 for a in answers)
    assert await api.meters(t.admin_key) == (200, Decimal("2400"))
    await assert_ledger_matches(t.id)


async def test_r23_charges_racing_a_stop_are_each_charged_or_refused_whole(api):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    run = await api.start_run(t.admin_key, wb, hold="100")
    stop = "mutation($id: ID!) { stopRun(runId: $id) { status held } }"
    work = [api.gql(RECORD, {"i": profile(wb, run["id"])}, key=t.admin_key) for _ in range(60)]
    answers = await asyncio.gather(
        *work[:30], api.gql(stop, {"id": run["id"]}, key=t.admin_key), *work[30:]
    )
    codes = Counter(a["recordUsage"].get("code", "Charge") for a in answers if "recordUsage" in a)
    assert set(codes) <= {"Charge", "RUN_STOPPED"} and sum(codes.values()) == 60
    after = await api.run(t.admin_key, run["id"])
    assert (after["status"], after["held"], after["charges"]) == ("STOPPED", "0", codes["Charge"])
    assert after["spent"] == halves(codes["Charge"])
    left = halves(5000 - codes["Charge"])
    assert await api.credits(t.admin_key) == {"balance": left, "held": "0", "available": left}
    await assert_ledger_matches(t.id)
