"""Runs and batches, a second suite written from the rules: budgets and holds (R6), stopped
runs (R23), the refusal order (R25), per-item idempotency (R13), AI rounding (R1, R32).

Prices: linkedin/profile 0.5, hunter/email 0.5, zerobounce/email_validation 0, apollo/phone 5,
clearbit/company 1 Data Credits per result. Ledger amounts are in units (1 credit = 10,000).
"""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from app.runs.service import expire_holds
from tests.helpers import (
    adjust_credits,
    assert_ledger_matches,
    last_ledger_id,
    ledger_rows,
    new_key,
)

PROFILE = {"kind": "ENRICHMENT", "provider": "linkedin", "dataType": "profile"}  # 0.5
EMAIL = {"kind": "ENRICHMENT", "provider": "hunter", "dataType": "email"}  # 0.5
VALIDATION = {"kind": "ENRICHMENT", "provider": "zerobounce", "dataType": "email_validation"}
PHONE = {"kind": "ENRICHMENT", "provider": "apollo", "dataType": "phone"}  # 5
COMPANY = {"kind": "ENRICHMENT", "provider": "clearbit", "dataType": "company"}  # 1
CRM = {"kind": "CRM_EXPORT"}  # 1 Action, no credits
SMALL_1_TOKEN = {"kind": "AI", "model": "small", "inputTokens": 1}  # 0.00005 -> 0.0001

BATCH = "mutation($i: RecordUsageBatchInput!) { recordUsageBatch(input: $i) { charged } }"
START = "mutation($i: StartRunInput!) { startRun(input: $i) { id } }"
T0 = datetime(2025, 1, 31, 10, 0, tzinfo=UTC)  # where the `clock` fixture starts


def item(
    wb: str, spec: dict, results: int = 1, run: str | None = None, key: str | None = None, **extra
) -> dict[str, Any]:
    body = {"workbookId": wb, "idempotencyKey": key or new_key("item"), "results": results}
    if run is not None:
        body["runId"] = run
    return {**body, **spec, **extra}


def outcomes(batch: dict) -> list:
    """Per item: (actions, dataCredits) of a Charge, or the Refusal's code."""
    return [
        (r["actions"], r["dataCredits"]) if r["__typename"] == "Charge" else r["code"]
        for r in batch["results"]
    ]


def totals(batch: dict) -> tuple[int, int, int, str]:
    return batch["charged"], batch["refused"], batch["actions"], batch["dataCredits"]


async def batch_error(api, key: str, items: list[dict]) -> str:
    return await api.error_code(BATCH, {"i": {"items": items}}, key=key)


async def counters(api, key: str, run_id: str) -> tuple:
    run = await api.run(key, run_id)
    return (
        run["status"],
        run["spent"],
        run["budgetRemaining"],
        run["held"],
        run["actions"],
        run["results"],
        run["charges"],
    )


async def spend_limit(api, key: str, wb: str) -> dict:
    query = "query($id: ID!) { workbook(id: $id) { spendLimit spent } }"
    return (await api.gql(query, {"id": wb}, key=key))["workbook"]


# --- Batches in a run: order, sequencing, totals ------------------------------------------------


async def test_r06_batch_with_mixed_outcomes_in_item_order_and_exact_totals(api):
    t = await api.create_workspace("launch")  # 15,000 Actions, 2,500 credits
    wb = await api.create_workbook(t.admin_key)
    run = (await api.start_run(t.admin_key, wb, budget="10", hold="8"))["id"]
    since = await last_ledger_id(t.id)
    batch = await api.record_batch(
        t.admin_key,
        [
            item(wb, PROFILE, 4, run),  # 2: spent 2
            item(wb, PHONE, 1, run),  # 5: spent 7
            item(wb, CRM, 3, run),  # 0 credits
            item(wb, PHONE, 1, run),  # 12 > 10
            item(wb, PROFILE, 6, run),  # 3: spent 10, the budget exactly
            item(wb, COMPANY, 2),  # outside the run: no budget
            item(wb, PROFILE, 1, run),  # 10.5 > 10
        ],
    )
    assert outcomes(batch) == [
        (4, "2"),
        (1, "5"),
        (3, "0"),
        "RUN_BUDGET_EXCEEDED",
        (6, "3"),
        (2, "2"),
        "RUN_BUDGET_EXCEEDED",
    ]
    assert totals(batch) == (5, 2, 16, "12")
    assert await counters(api, t.admin_key, run) == ("RUNNING", "10", "0", "0", 14, 14, 4)
    assert await api.credits(t.admin_key) == {"balance": "2488", "held": "0", "available": "2488"}
    assert await ledger_rows(t.id, since) == [
        ("CHARGE", "ACTIONS", -4, 14_996),
        ("CHARGE", "DATA_CREDITS", -20_000, 24_980_000),
        ("SETTLE", "HELD_CREDITS", -20_000, 60_000),
        ("CHARGE", "ACTIONS", -1, 14_995),
        ("CHARGE", "DATA_CREDITS", -50_000, 24_930_000),
        ("SETTLE", "HELD_CREDITS", -50_000, 10_000),
        ("CHARGE", "ACTIONS", -3, 14_992),
        ("CHARGE", "ACTIONS", -6, 14_986),
        ("CHARGE", "DATA_CREDITS", -30_000, 24_900_000),
        ("SETTLE", "HELD_CREDITS", -10_000, 0),
        ("CHARGE", "ACTIONS", -2, 14_984),
        ("CHARGE", "DATA_CREDITS", -20_000, 24_880_000),
    ]
    assert await api.meters(t.admin_key) == (16, Decimal("2488"))


async def test_r10_later_items_see_the_credits_earlier_items_used(api):
    t = await api.create_workspace("free")  # 500 Actions, 100 credits
    wb = await api.create_workbook(t.admin_key)
    since = await last_ledger_id(t.id)
    batch = await api.record_batch(
        t.admin_key,
        [
            item(wb, PHONE, 15),  # 75
            item(wb, PHONE, 5),  # 25: the balance is now 0
            item(wb, PROFILE, 1),  # 0.5 > 0
            item(wb, CRM, 2),  # Actions only
            item(wb, VALIDATION, 3),  # 0 credits per result
            item(wb, EMAIL, 4, ownApiKey=True),  # R5: Actions only
            item(wb, PHONE, 1),
        ],
    )
    assert outcomes(batch) == [
        (15, "75"),
        (5, "25"),
        "INSUFFICIENT_DATA_CREDITS",
        (2, "0"),
        (3, "0"),
        (4, "0"),
        "INSUFFICIENT_DATA_CREDITS",
    ]
    assert totals(batch) == (5, 2, 29, "100")
    rows = await ledger_rows(t.id, since)
    assert [r for r in rows if r[1] == "DATA_CREDITS"] == [
        ("CHARGE", "DATA_CREDITS", -750_000, 250_000),
        ("CHARGE", "DATA_CREDITS", -250_000, 0),
    ]
    assert [r[2] for r in rows if r[1] == "ACTIONS"] == [-15, -5, -2, -3, -4]
    assert await api.meters(t.admin_key) == (29, Decimal("0"))


async def test_r09_r25_actions_exhausted_inside_a_batch(api):
    t = await api.create_workspace("free")
    wb = await api.create_workbook(t.admin_key)
    run = (await api.start_run(t.admin_key, wb, budget="50"))["id"]
    batch = await api.record_batch(
        t.admin_key,
        [
            item(wb, CRM, 499),  # 1 Action left
            item(wb, PHONE, 100, run),  # short of Actions, credits and budget: Actions first
            item(wb, PROFILE, 2, run),  # 2 Actions > 1
            item(wb, PROFILE, 1, run),  # the last Action
            item(wb, {"kind": "HTTP_API_CALL"}, 1),
            item(wb, EMAIL, 1, ownApiKey=True),  # own key still costs an Action (R5)
            item(wb, {"kind": "AI", "model": "small", "inputTokens": 10}, 1, ownApiKey=True),
            item(wb, {"kind": "SOURCING"}, 50),  # free work goes on (R3)
        ],
    )
    assert outcomes(batch) == [
        (499, "0"),
        "ACTIONS_EXHAUSTED",
        "ACTIONS_EXHAUSTED",
        (1, "0.5"),
        "ACTIONS_EXHAUSTED",
        "ACTIONS_EXHAUSTED",
        "ACTIONS_EXHAUSTED",
        (0, "0"),
    ]
    assert totals(batch) == (3, 5, 500, "0.5")
    assert (await api.run(t.admin_key, run))["spent"] == "0.5"
    assert await api.meters(t.admin_key) == (500, Decimal("99.5"))


async def test_r06_r32_ai_rounds_up_per_charge_and_a_batch_reaches_the_budget_exactly(api):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    run = (await api.start_run(t.admin_key, wb, budget="0.0015"))["id"]
    since = await last_ledger_id(t.id)
    large_own = {"kind": "AI", "model": "large", "inputTokens": 10**6, "outputTokens": 10**6}
    batch = await api.record_batch(
        t.admin_key,
        [item(wb, SMALL_1_TOKEN, 1, run) for _ in range(10)]  # 10 x 0.00005 -> 10 x 0.0001
        + [
            item(wb, {"kind": "AI", "model": "small", "inputTokens": 10}, 1, run),  # 0.0005 exact
            item(wb, SMALL_1_TOKEN, 1, run),  # 0.0016 > 0.0015
            item(wb, large_own, 1, run, ownApiKey=True),  # 1 Action, 0 credits (R6)
        ],
    )
    assert outcomes(batch) == [(1, "0.0001")] * 10 + [
        (1, "0.0005"),
        "RUN_BUDGET_EXCEEDED",
        (1, "0"),
    ]
    assert totals(batch) == (12, 1, 12, "0.0015")
    assert await counters(api, t.admin_key, run) == ("RUNNING", "0.0015", "0", "0", 12, 12, 12)
    rows = await ledger_rows(t.id, since)
    assert [r[2] for r in rows if r[1] == "DATA_CREDITS"] == [-1] * 10 + [-5]
    assert rows[-1] == ("CHARGE", "ACTIONS", -1, 14_988)  # the own-key use: Actions only
    assert await api.meters(t.admin_key) == (12, Decimal("2499.9985"))


async def test_r05_r06_own_key_in_a_run_costs_one_action_and_never_hits_budget_or_balance(api):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    await adjust_credits(t.id, -24_990_000)  # 1 credit left
    run = (await api.start_run(t.admin_key, wb, budget="1"))["id"]
    spent = await api.record_usage(t.admin_key, wb, runId=run, results=1, **COMPANY)
    assert spent["dataCredits"] == "1"  # budget and balance both used up
    since = await last_ledger_id(t.id)
    ai = {"kind": "AI", "model": "large", "inputTokens": 10_000, "outputTokens": 10_000}
    batch = await api.record_batch(
        t.admin_key,
        [
            item(wb, ai, 3, run, ownApiKey=True),
            item(wb, PHONE, 7, run, ownApiKey=True),
            item(wb, COMPANY, 1, run),  # credits are checked before the budget (R25)
            item(wb, ai, 1, run),  # 25 credits without the own key
        ],
    )
    assert outcomes(batch) == [
        (3, "0"),
        (7, "0"),
        "INSUFFICIENT_DATA_CREDITS",
        "INSUFFICIENT_DATA_CREDITS",
    ]
    assert await ledger_rows(t.id, since) == [
        ("CHARGE", "ACTIONS", -3, 14_996),
        ("CHARGE", "ACTIONS", -7, 14_989),
    ]
    assert await counters(api, t.admin_key, run) == ("RUNNING", "1", "0", "0", 11, 11, 3)
    assert await api.meters(t.admin_key) == (11, Decimal("0"))


async def test_r06_a_batch_of_1000_items_spends_a_budget_to_the_last_credit(api):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    run = (await api.start_run(t.admin_key, wb, budget="500", hold="500"))["id"]
    since = await last_ledger_id(t.id)
    batch = await api.record_batch(t.admin_key, [item(wb, PROFILE, 1, run) for _ in range(1000)])
    assert totals(batch) == (1000, 0, 1000, "500")
    assert await counters(api, t.admin_key, run) == ("RUNNING", "500", "0", "0", 1000, 1000, 1000)
    rows = await ledger_rows(t.id, since)
    assert len(rows) == 3000
    assert rows[-3:] == [
        ("CHARGE", "ACTIONS", -1, 14_000),
        ("CHARGE", "DATA_CREDITS", -5_000, 20_000_000),
        ("SETTLE", "HELD_CREDITS", -5_000, 0),
    ]
    refused = await api.record_batch(t.admin_key, [item(wb, PROFILE, 1, run)])
    assert (outcomes(refused), totals(refused)) == (["RUN_BUDGET_EXCEEDED"], (0, 1, 0, "0"))
    assert await api.credits(t.admin_key) == {"balance": "2000", "held": "0", "available": "2000"}
    await assert_ledger_matches(t.id)


async def test_r06_a_hold_is_spent_only_by_its_run_inside_a_batch(api):
    t = await api.create_workspace("free")  # 100 credits
    wb = await api.create_workbook(t.admin_key)
    run = (await api.start_run(t.admin_key, wb, hold="90"))["id"]
    assert await api.credits(t.admin_key) == {"balance": "100", "held": "90", "available": "10"}
    since = await last_ledger_id(t.id)
    batch = await api.record_batch(
        t.admin_key,
        [
            item(wb, PHONE, 3),  # 15 > 10 available
            item(wb, PHONE, 21, run),  # 105 > 90 held + 10 available
            item(wb, PHONE, 16, run),  # 80 from the hold: 10 left held
            item(wb, PHONE, 2),  # 10 from the available credits
            item(wb, PROFILE, 1),  # 0 available, though 10 are on the balance
            item(wb, PHONE, 2, run),  # the last 10 held
            item(wb, PROFILE, 1, run),
        ],
    )
    assert outcomes(batch) == [
        "INSUFFICIENT_DATA_CREDITS",
        "INSUFFICIENT_DATA_CREDITS",
        (16, "80"),
        (2, "10"),
        "INSUFFICIENT_DATA_CREDITS",
        (2, "10"),
        "INSUFFICIENT_DATA_CREDITS",
    ]
    assert totals(batch) == (3, 4, 20, "100")
    assert await ledger_rows(t.id, since) == [
        ("CHARGE", "ACTIONS", -16, 484),
        ("CHARGE", "DATA_CREDITS", -800_000, 200_000),
        ("SETTLE", "HELD_CREDITS", -800_000, 100_000),
        ("CHARGE", "ACTIONS", -2, 482),
        ("CHARGE", "DATA_CREDITS", -100_000, 100_000),
        ("CHARGE", "ACTIONS", -2, 480),
        ("CHARGE", "DATA_CREDITS", -100_000, 0),
        ("SETTLE", "HELD_CREDITS", -100_000, 0),
    ]
    assert await api.credits(t.admin_key) == {"balance": "0", "held": "0", "available": "0"}
    assert await counters(api, t.admin_key, run) == ("RUNNING", "90", None, "0", 18, 18, 2)
    await assert_ledger_matches(t.id)


async def test_r06_two_runs_in_one_batch_each_settle_their_own_hold(api):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    a = (await api.start_run(t.admin_key, wb, hold="10", budget="10"))["id"]
    b = (await api.start_run(t.admin_key, wb, hold="20"))["id"]
    assert await api.credits(t.admin_key) == {"balance": "2500", "held": "30", "available": "2470"}
    since = await last_ledger_id(t.id)
    batch = await api.record_batch(
        t.admin_key,
        [
            item(wb, PHONE, 2, a),  # 10: all of a's hold
            item(wb, PROFILE, 10, b),  # 5 of b's 20
            item(wb, PROFILE, 1, a),  # a's budget is spent
            item(wb, PHONE, 4, b),  # 20: b's last 15 held, 5 available
            item(wb, PROFILE, 2),  # 1, no run
        ],
    )
    assert outcomes(batch) == [(2, "10"), (10, "5"), "RUN_BUDGET_EXCEEDED", (4, "20"), (2, "1")]
    assert await ledger_rows(t.id, since) == [
        ("CHARGE", "ACTIONS", -2, 14_998),
        ("CHARGE", "DATA_CREDITS", -100_000, 24_900_000),
        ("SETTLE", "HELD_CREDITS", -100_000, 200_000),
        ("CHARGE", "ACTIONS", -10, 14_988),
        ("CHARGE", "DATA_CREDITS", -50_000, 24_850_000),
        ("SETTLE", "HELD_CREDITS", -50_000, 150_000),
        ("CHARGE", "ACTIONS", -4, 14_984),
        ("CHARGE", "DATA_CREDITS", -200_000, 24_650_000),
        ("SETTLE", "HELD_CREDITS", -150_000, 0),
        ("CHARGE", "ACTIONS", -2, 14_982),
        ("CHARGE", "DATA_CREDITS", -10_000, 24_640_000),
    ]
    assert await counters(api, t.admin_key, a) == ("RUNNING", "10", "0", "0", 2, 2, 1)
    assert await counters(api, t.admin_key, b) == ("RUNNING", "25", None, "0", 14, 14, 2)
    assert await api.credits(t.admin_key) == {"balance": "2464", "held": "0", "available": "2464"}
    await assert_ledger_matches(t.id)


async def test_r06_boundaries_of_a_hold_equal_to_the_available_credits_and_the_budget(api):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    over_budget = {"workbookId": wb, "idempotencyKey": new_key(), "hold": "10.0001", "budget": "10"}
    assert await api.error_code(START, {"i": over_budget}, key=t.admin_key) == "INVALID_INPUT"
    run = await api.start_run(t.admin_key, wb, hold="2500", budget="2500")
    assert (run["held"], run["holdPlaced"], run["budgetRemaining"]) == ("2500", "2500", "2500")
    assert await api.credits(t.admin_key) == {"balance": "2500", "held": "2500", "available": "0"}
    tiny = {"workbookId": wb, "idempotencyKey": new_key(), "hold": "0.0001"}
    assert await api.error_code(START, {"i": tiny}, key=t.admin_key) == "INSUFFICIENT_DATA_CREDITS"
    batch = await api.record_batch(
        t.admin_key,
        [
            item(wb, VALIDATION, 5),  # costs no credits: needs none available
            item(wb, PROFILE, 1),  # everything is held
            item(wb, PHONE, 500, run["id"]),  # 2,500: the whole hold and budget
            item(wb, PROFILE, 1, run["id"]),  # no credits: that comes before the budget (R25)
        ],
    )
    assert outcomes(batch) == [
        (5, "0"),
        "INSUFFICIENT_DATA_CREDITS",
        (500, "2500"),
        "INSUFFICIENT_DATA_CREDITS",
    ]
    assert await api.credits(t.admin_key) == {"balance": "0", "held": "0", "available": "0"}
    assert await api.meters(t.admin_key) == (505, Decimal("0"))


# --- Idempotency per item (R13) -----------------------------------------------------------------


async def test_r13_duplicate_keys_inside_one_batch(api):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    since = await last_ledger_id(t.id)
    batch = await api.record_batch(
        t.admin_key,
        [
            item(wb, PROFILE, 2, key="dup-a"),
            item(wb, PROFILE, 2, key="dup-a"),  # the same request: a replay
            item(wb, PROFILE, 3, key="dup-a"),  # another request
            item(wb, PROFILE, 1),
            item(wb, PROFILE, 2, key="dup-a"),  # still the first charge
        ],
    )
    results = batch["results"]
    assert outcomes(batch) == [(2, "1"), (2, "1"), "IDEMPOTENCY_KEY_REUSED", (1, "0.5"), (2, "1")]
    assert results[0]["id"] == results[1]["id"] == results[4]["id"] != results[3]["id"]
    # The totals describe the items' results, replays included, as a retried batch must.
    assert totals(batch) == (4, 1, 7, "3.5")
    assert await ledger_rows(t.id, since) == [
        ("CHARGE", "ACTIONS", -2, 14_998),
        ("CHARGE", "DATA_CREDITS", -10_000, 24_990_000),
        ("CHARGE", "ACTIONS", -1, 14_997),
        ("CHARGE", "DATA_CREDITS", -5_000, 24_985_000),
    ]
    assert await api.meters(t.admin_key) == (3, Decimal("2498.5"))


async def test_r13_a_key_refused_earlier_in_a_batch_is_free_for_a_later_item(api, clock):
    # R13: a refused request leaves no trace. Across requests this holds (recordUsage, or two
    # batches); inside one batch a later item with the refused item's key must be free too.
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    run = (await api.start_run(t.admin_key, wb))["id"]
    clock.move_to(T0 + timedelta(minutes=5))
    await api.end_run(t.admin_key, run)
    since = await last_ledger_id(t.id)
    batch = await api.record_batch(
        t.admin_key,
        [
            item(wb, PHONE, 1000, key="dup-b"),  # 5,000 > 2,500: refused
            item(wb, PROFILE, 1, key="dup-b"),  # another request: the key is unused
            item(wb, PROFILE, 1, key="dup-b"),  # which this one replays
            item(wb, PROFILE, 2, run, key="dup-c"),  # sent now, after the stop: refused
            item(wb, PROFILE, 2, key="dup-c"),  # the same work outside the run
        ],
    )
    assert outcomes(batch) == [
        "INSUFFICIENT_DATA_CREDITS",
        (1, "0.5"),
        (1, "0.5"),
        "RUN_STOPPED",
        (2, "1"),
    ]
    assert batch["results"][1]["id"] == batch["results"][2]["id"]
    assert await ledger_rows(t.id, since) == [
        ("CHARGE", "ACTIONS", -1, 14_999),
        ("CHARGE", "DATA_CREDITS", -5_000, 24_995_000),
        ("CHARGE", "ACTIONS", -2, 14_997),
        ("CHARGE", "DATA_CREDITS", -10_000, 24_985_000),
    ]
    assert await api.meters(t.admin_key) == (3, Decimal("2498.5"))


async def test_r13_retry_of_a_partly_refused_batch_after_a_top_up(api):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    run = (await api.start_run(t.admin_key, wb, budget="3000"))["id"]
    items = [
        item(wb, PHONE, 400, run),  # 2,000
        item(wb, PHONE, 100, run),  # 500: the balance is 0
        item(wb, PHONE, 1, run),
        item(wb, PROFILE, 2, run),
    ]
    first = await api.record_batch(t.admin_key, items)
    assert outcomes(first) == [
        (400, "2000"),
        (100, "500"),
        "INSUFFICIENT_DATA_CREDITS",
        "INSUFFICIENT_DATA_CREDITS",
    ]
    assert totals(first) == (2, 2, 500, "2500")
    assert (await api.top_up(t.admin_key, "10"))["__typename"] == "TopUp"
    since = await last_ledger_id(t.id)
    second = await api.record_batch(t.admin_key, items)
    assert outcomes(second) == [(400, "2000"), (100, "500"), (1, "5"), (2, "1")]
    assert [r["id"] for r in second["results"][:2]] == [r["id"] for r in first["results"][:2]]
    assert totals(second) == (4, 0, 503, "2506")
    assert await ledger_rows(t.id, since) == [
        ("CHARGE", "ACTIONS", -1, 14_499),
        ("CHARGE", "DATA_CREDITS", -50_000, 50_000),
        ("CHARGE", "ACTIONS", -2, 14_497),
        ("CHARGE", "DATA_CREDITS", -10_000, 40_000),
    ]
    since = await last_ledger_id(t.id)
    assert await api.record_batch(t.admin_key, items) == second  # a third time: all replays
    assert await ledger_rows(t.id, since) == []
    assert await counters(api, t.admin_key, run) == ("RUNNING", "2506", "494", "0", 503, 503, 4)
    assert await api.meters(t.admin_key) == (503, Decimal("4"))


async def test_r13_r22_retry_of_a_refused_item_after_a_refund(api):
    t = await api.create_workspace("free")  # 100 credits
    wb = await api.create_workbook(t.admin_key)
    items = [item(wb, PHONE, 20), item(wb, PROFILE, 4)]
    first = await api.record_batch(t.admin_key, items)
    assert outcomes(first) == [(20, "100"), "INSUFFICIENT_DATA_CREDITS"]
    refund = await api.refund(t.admin_key, first["results"][0]["id"], results=1)
    assert (refund["__typename"], refund["dataCredits"]) == ("Refund", "5")
    second = await api.record_batch(t.admin_key, items)
    assert outcomes(second) == [(20, "100"), (4, "2")]
    assert second["results"][0]["id"] == first["results"][0]["id"]
    assert second["results"][0]["refundedResults"] == 1
    assert await api.meters(t.admin_key) == (24, Decimal("3"))


async def test_r13_a_single_record_and_a_batch_item_share_keys(api):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    run = (await api.start_run(t.admin_key, wb, budget="5", hold="5"))["id"]
    solo = await api.record_usage(
        t.admin_key, wb, idempotencyKey="solo", runId=run, results=4, **PROFILE
    )
    assert solo["dataCredits"] == "2"
    batch = await api.record_batch(
        t.admin_key,
        [
            item(wb, PROFILE, 4, run, key="solo"),  # the recordUsage, retried in a batch
            item(wb, PROFILE, 2, run, key="batched"),
            item(wb, PROFILE, 4, key="solo"),  # the same key without the run: another request
        ],
    )
    assert outcomes(batch) == [(4, "2"), (2, "1"), "IDEMPOTENCY_KEY_REUSED"]
    assert batch["results"][0]["id"] == solo["id"]
    # And the other way: a batch item retried as a single recordUsage.
    again = await api.record_usage(
        t.admin_key, wb, idempotencyKey="batched", runId=run, results=2, **PROFILE
    )
    assert again["id"] == batch["results"][1]["id"]
    other = await api.record_usage(
        t.admin_key, wb, idempotencyKey="batched", runId=run, results=3, **PROFILE
    )
    assert other["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert await counters(api, t.admin_key, run) == ("RUNNING", "3", "2", "2", 6, 6, 2)
    assert await api.credits(t.admin_key) == {"balance": "2497", "held": "2", "available": "2495"}
    # Keys are unique per workspace: another workspace's "solo" is a new charge.
    stranger = await api.create_workspace("launch")
    stranger_wb = await api.create_workbook(stranger.admin_key)
    theirs = await api.record_batch(stranger.admin_key, [item(stranger_wb, PROFILE, 4, key="solo")])
    assert outcomes(theirs) == [(4, "2")]
    assert theirs["results"][0]["id"] != solo["id"]
    await assert_ledger_matches(t.id)


async def test_r13_a_replayed_batch_changes_no_run_counter(api):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    run = (await api.start_run(t.admin_key, wb, budget="30", hold="20"))["id"]
    items = [
        item(wb, PROFILE, 10, run),  # 5
        item(wb, EMAIL, 8, run),  # 4
        item(wb, VALIDATION, 8, run),  # 0
        item(wb, CRM, 5, run),  # 0
    ]
    first = await api.record_batch(t.admin_key, items)
    assert totals(first) == (4, 0, 31, "9")
    before = await api.run(t.admin_key, run)
    assert (before["spent"], before["held"], before["actions"], before["charges"]) == (
        "9",
        "11",
        31,
        4,
    )
    since = await last_ledger_id(t.id)
    await asyncio.sleep(0.01)  # a retry later on must not move lastChargeAt or the expiry
    assert await api.record_batch(t.admin_key, items) == first
    assert await api.run(t.admin_key, run) == before
    assert await ledger_rows(t.id, since) == []
    stopped = await api.end_run(t.admin_key, run)
    assert (stopped["status"], stopped["held"], stopped["spent"]) == ("STOPPED", "0", "9")
    assert await ledger_rows(t.id, since) == [("RELEASE", "HELD_CREDITS", -110_000, 0)]
    # A retry after the stop still replays (the first result), it is not RUN_STOPPED.
    assert await api.record_batch(t.admin_key, items) == first
    assert await api.meters(t.admin_key) == (31, Decimal("2491"))


async def test_r13_an_invalid_item_fails_the_whole_batch_and_leaves_no_trace(api):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    run = (await api.start_run(t.admin_key, wb, hold="10"))["id"]
    stranger = await api.create_workspace("launch")
    stranger_wb = await api.create_workbook(stranger.admin_key)
    stranger_run = (await api.start_run(stranger.admin_key, stranger_wb))["id"]
    since = await last_ledger_id(t.id)
    good = item(wb, PROFILE, 2, run, key="good-item")
    bad = {"kind": "ENRICHMENT", "provider": "nope", "dataType": "email"}
    assert await batch_error(api, t.admin_key, [good, item(wb, bad, 1)]) == "INVALID_INPUT"
    unknown_model = {"kind": "AI", "model": "nope", "inputTokens": 1}
    assert await batch_error(api, t.admin_key, [good, item(wb, unknown_model, 1)]) == (
        "INVALID_INPUT"
    )
    for wrong in (
        item(str(uuid.uuid4()), PROFILE, 1),
        item(stranger_wb, PROFILE, 1),
        item(wb, PROFILE, 1, stranger_run),
    ):
        assert await batch_error(api, t.admin_key, [good, wrong]) == "NOT_FOUND", wrong
    assert await batch_error(api, t.admin_key, []) == "INVALID_INPUT"
    too_many = [item(wb, CRM, 1) for _ in range(1001)]
    assert await batch_error(api, t.admin_key, too_many) == "INVALID_INPUT"
    assert await ledger_rows(t.id, since) == []
    assert await counters(api, t.admin_key, run) == ("RUNNING", "0", None, "10", 0, 0, 0)
    # Nothing of the failed batches stuck: the good item's key is still unused.
    retried = await api.record_batch(t.admin_key, [good])
    assert outcomes(retried) == [(2, "1")]
    assert await api.credits(t.admin_key) == {"balance": "2499", "held": "9", "available": "2490"}
    await assert_ledger_matches(t.id)
    await assert_ledger_matches(stranger.id)


# --- Stopped runs (R23) and the refusal order (R25) ---------------------------------------------


async def test_r23_sent_at_boundaries_and_offsets_in_a_batch(api, clock):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    run = (await api.start_run(t.admin_key, wb, hold="50", budget="100"))["id"]
    since = await last_ledger_id(t.id)
    clock.move_to(T0 + timedelta(minutes=5))
    stopped = await api.end_run(t.admin_key, run)
    assert stopped["endedAt"] == "2025-01-31T10:05:00+00:00"
    clock.move_to(T0 + timedelta(minutes=6))
    sent = [
        "2025-01-31T10:04:59.999999+00:00",  # 1 µs before the stop
        "2025-01-31T10:05:00+00:00",  # at the stop: not before it
        "2025-01-31T12:04:59.999999+02:00",  # 10:04:59.999999 UTC
        "2025-01-31T11:05:00+01:00",  # 10:05 UTC
        "2025-01-31T05:04:59-05:00",  # 10:04:59 UTC
        "2025-01-31T10:05:00.000001+00:00",
        "2025-01-31T10:04:59.999999Z",
        None,  # no sentAt: sent now, after the stop
    ]
    batch = await api.record_batch(
        t.admin_key,
        [
            item(wb, PROFILE, 1, run, **({} if s is None else {"sentAt": s}))  # 0.5 each
            for s in sent
        ],
    )
    ok = (1, "0.5")
    stop = "RUN_STOPPED"
    assert outcomes(batch) == [ok, stop, ok, stop, ok, stop, ok, stop]
    assert totals(batch) == (4, 4, 4, "2")
    assert await counters(api, t.admin_key, run) == ("STOPPED", "2", "98", "0", 4, 4, 4)
    # The hold went back at the stop: the late results are paid from the available credits.
    assert await ledger_rows(t.id, since) == [
        ("RELEASE", "HELD_CREDITS", -500_000, 0),
        ("CHARGE", "ACTIONS", -1, 14_999),
        ("CHARGE", "DATA_CREDITS", -5_000, 24_995_000),
        ("CHARGE", "ACTIONS", -1, 14_998),
        ("CHARGE", "DATA_CREDITS", -5_000, 24_990_000),
        ("CHARGE", "ACTIONS", -1, 14_997),
        ("CHARGE", "DATA_CREDITS", -5_000, 24_985_000),
        ("CHARGE", "ACTIONS", -1, 14_996),
        ("CHARGE", "DATA_CREDITS", -5_000, 24_980_000),
    ]
    assert await api.credits(t.admin_key) == {"balance": "2498", "held": "0", "available": "2498"}
    await assert_ledger_matches(t.id)


async def test_r23_r25_a_late_result_still_meets_the_budget_and_the_stop_comes_first(api, clock):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    run = (await api.start_run(t.admin_key, wb, budget="5"))["id"]
    await api.record_usage(t.admin_key, wb, runId=run, results=9, **PROFILE)  # 4.5
    clock.move_to(T0 + timedelta(minutes=5))
    await api.end_run(t.admin_key, run)
    clock.move_to(T0 + timedelta(minutes=30))
    before, at, after = "2025-01-31T10:04:00+00:00", "2025-01-31T10:05:00+00:00", None
    batch = await api.record_batch(
        t.admin_key,
        [
            item(wb, PROFILE, 2, run, sentAt=before),  # 5.5 > 5
            item(wb, PROFILE, 2, run, sentAt=at),  # over budget too, but stopped first
            item(wb, PROFILE, 1, run, sentAt=before),  # 5: the budget exactly
            item(wb, CRM, 1, run, sentAt=at),
            item(wb, VALIDATION, 1, run, sentAt=before),  # no credits: fits a spent budget
            item(wb, PROFILE, 2, run),  # sent now, after the stop
            item(wb, PROFILE, 2),  # the same work outside the run
            item(wb, {"kind": "SOURCING"}, 3, run, sentAt=after),  # even free work, in the run
        ],
    )
    assert outcomes(batch) == [
        "RUN_BUDGET_EXCEEDED",
        "RUN_STOPPED",
        (1, "0.5"),
        "RUN_STOPPED",
        (1, "0"),
        "RUN_STOPPED",
        (2, "1"),
        "RUN_STOPPED",
    ]
    assert await counters(api, t.admin_key, run) == ("STOPPED", "5", "0", "0", 11, 11, 3)
    assert await api.meters(t.admin_key) == (13, Decimal("2494"))


async def test_r23_a_finished_run_takes_results_sent_before_it_finished(api, clock):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    run = (await api.start_run(t.admin_key, wb, hold="10"))["id"]
    clock.move_to(T0 + timedelta(hours=1))
    finished = await api.end_run(t.admin_key, run, "finishRun")
    assert (finished["status"], finished["endedAt"]) == ("FINISHED", "2025-01-31T11:00:00+00:00")
    clock.move_to(T0 + timedelta(hours=2))
    batch = await api.record_batch(
        t.admin_key,
        [
            item(wb, PHONE, 1, run, sentAt="2025-01-31T10:59:59+00:00"),
            item(wb, PHONE, 1, run, sentAt="2025-01-31T11:00:00+00:00"),
        ],
    )
    assert outcomes(batch) == [(1, "5"), "RUN_STOPPED"]
    # Stopping a finished run changes nothing: still FINISHED at 11:00.
    assert (await api.end_run(t.admin_key, run))["status"] == "FINISHED"
    assert await counters(api, t.admin_key, run) == ("FINISHED", "5", None, "0", 1, 1, 1)
    assert await api.credits(t.admin_key) == {"balance": "2495", "held": "0", "available": "2495"}
    await assert_ledger_matches(t.id)


async def test_r25_run_stopped_comes_before_actions_exhausted(api, clock):
    t = await api.create_workspace("free")
    wb = await api.create_workbook(t.admin_key)
    run = (await api.start_run(t.admin_key, wb))["id"]
    await api.record_usage(t.admin_key, wb, runId=run, results=500, **CRM)  # every Action
    clock.move_to(T0 + timedelta(minutes=5))
    await api.end_run(t.admin_key, run)
    batch = await api.record_batch(
        t.admin_key,
        [
            item(wb, PHONE, 100, run, sentAt="2025-01-31T10:05:00+00:00"),
            item(wb, PHONE, 100, run, sentAt="2025-01-31T10:04:00+00:00"),
            item(wb, PHONE, 100),
        ],
    )
    assert outcomes(batch) == ["RUN_STOPPED", "ACTIONS_EXHAUSTED", "ACTIONS_EXHAUSTED"]
    assert await api.meters(t.admin_key) == (500, Decimal("100"))


async def test_r25_every_check_in_order_inside_one_enterprise_batch(api):
    t = await api.create_workspace("enterprise")  # 100,000 Actions, 600,000 credits
    wb = await api.create_workbook(t.admin_key)
    await adjust_credits(t.id, 30_000 - 6_000_000_000)  # 3 credits left
    assert (await api.set_limit(t.admin_key, wb, "2"))["spendLimit"] == "2"
    run = (await api.start_run(t.admin_key, wb, budget="1"))["id"]
    batch = await api.record_batch(
        t.admin_key,
        [
            item(wb, PROFILE, 4, run),  # 2: fits credits and limit, not the budget
            item(wb, COMPANY, 3, run),  # 3: fits credits, not the limit
            item(wb, PHONE, 1, run),  # 5: more than the credits
            item(wb, CRM, 99_999),  # 1 Action left
            item(wb, PHONE, 2, run),  # 2 Actions: the first check fails
            item(wb, PROFILE, 1, run),  # 0.5, the last Action
            item(wb, CRM, 1, run),
        ],
    )
    assert outcomes(batch) == [
        "RUN_BUDGET_EXCEEDED",
        "WORKBOOK_SPEND_LIMIT_REACHED",
        "INSUFFICIENT_DATA_CREDITS",
        (99_999, "0"),
        "ACTIONS_EXHAUSTED",
        (1, "0.5"),
        "ACTIONS_EXHAUSTED",
    ]
    assert totals(batch) == (2, 5, 100_000, "0.5")
    assert await spend_limit(api, t.admin_key, wb) == {"spendLimit": "2", "spent": "0.5"}
    assert await api.meters(t.admin_key) == (100_000, Decimal("2.5"))


async def test_r11_r25_hold_budget_and_workbook_limit_together_on_enterprise(api):
    t = await api.create_workspace("enterprise")
    wb = await api.create_workbook(t.admin_key)
    await api.set_limit(t.admin_key, wb, "20")
    run = (await api.start_run(t.admin_key, wb, budget="15", hold="12"))["id"]
    since = await last_ledger_id(t.id)
    batch = await api.record_batch(
        t.admin_key,
        [
            item(wb, PHONE, 2, run),  # 10: run 10, workbook 10, 2 still held
            item(wb, PHONE, 2, run),  # workbook 20 fits the limit; run 20 > 15
            item(wb, PROFILE, 10, run),  # 5: run 15, workbook 15; 2 from the hold, 3 available
            item(wb, PHONE, 2),  # workbook 25 > 20
            item(wb, PHONE, 1),  # workbook 20: the limit exactly
            item(wb, CRM, 1),  # the limit is reached: refused though it costs no credits
            item(wb, VALIDATION, 1, run),  # the limit comes before the spent budget
            item(wb, {"kind": "CSV_EXPORT"}, 1),  # free work goes on (R3)
        ],
    )
    assert outcomes(batch) == [
        (2, "10"),
        "RUN_BUDGET_EXCEEDED",
        (10, "5"),
        "WORKBOOK_SPEND_LIMIT_REACHED",
        (1, "5"),
        "WORKBOOK_SPEND_LIMIT_REACHED",
        "WORKBOOK_SPEND_LIMIT_REACHED",
        (0, "0"),
    ]
    assert totals(batch) == (4, 4, 13, "20")
    assert await spend_limit(api, t.admin_key, wb) == {"spendLimit": "20", "spent": "20"}
    assert await counters(api, t.admin_key, run) == ("RUNNING", "15", "0", "0", 12, 12, 2)
    assert await ledger_rows(t.id, since) == [
        ("CHARGE", "ACTIONS", -2, 99_998),
        ("CHARGE", "DATA_CREDITS", -100_000, 5_999_900_000),
        ("SETTLE", "HELD_CREDITS", -100_000, 20_000),
        ("CHARGE", "ACTIONS", -10, 99_988),
        ("CHARGE", "DATA_CREDITS", -50_000, 5_999_850_000),
        ("SETTLE", "HELD_CREDITS", -20_000, 0),
        ("CHARGE", "ACTIONS", -1, 99_987),
        ("CHARGE", "DATA_CREDITS", -50_000, 5_999_800_000),
    ]
    since = await last_ledger_id(t.id)
    assert (await api.end_run(t.admin_key, run))["status"] == "STOPPED"
    assert await ledger_rows(t.id, since) == []  # nothing left to release
    assert await api.credits(t.admin_key) == {
        "balance": "599980",
        "held": "0",
        "available": "599980",
    }
    await assert_ledger_matches(t.id)


# --- Hold expiry (R6) ---------------------------------------------------------------------------


async def test_r06_batch_charges_push_the_hold_expiry_and_refusals_do_not(api, clock):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    run = await api.start_run(t.admin_key, wb, hold="100", budget="200", holdMinutes=30)
    assert run["holdExpiresAt"] == "2025-01-31T10:30:00+00:00"
    clock.move_to(T0 + timedelta(minutes=20))
    items = [item(wb, PHONE, 2, run["id"]), item(wb, PHONE, 2, run["id"])]  # 10 + 10
    first = await api.record_batch(t.admin_key, items)
    assert totals(first) == (2, 0, 4, "20")
    after = await api.run(t.admin_key, run["id"])
    assert (after["held"], after["lastChargeAt"], after["holdExpiresAt"]) == (
        "80",
        "2025-01-31T10:20:00+00:00",
        "2025-01-31T10:50:00+00:00",
    )
    clock.move_to(T0 + timedelta(minutes=40))
    refused = await api.record_batch(t.admin_key, [item(wb, PHONE, 100, run["id"])])  # 500
    assert outcomes(refused) == ["RUN_BUDGET_EXCEEDED"]
    assert await api.record_batch(t.admin_key, items) == first  # a replay is no new charge
    assert await api.run(t.admin_key, run["id"]) == after
    await expire_holds(T0 + timedelta(minutes=50) - timedelta(microseconds=1))
    assert (await api.run(t.admin_key, run["id"]))["held"] == "80"
    since = await last_ledger_id(t.id)
    await expire_holds(T0 + timedelta(minutes=50))
    assert await ledger_rows(t.id, since) == [("RELEASE", "HELD_CREDITS", -800_000, 0)]
    # The run goes on without a hold: its charges come from the available credits.
    clock.move_to(T0 + timedelta(minutes=55))
    late = await api.record_batch(t.admin_key, [item(wb, PHONE, 2, run["id"])])
    assert outcomes(late) == [(2, "10")]
    assert await ledger_rows(t.id, since) == [
        ("RELEASE", "HELD_CREDITS", -800_000, 0),
        ("CHARGE", "ACTIONS", -2, 14_994),
        ("CHARGE", "DATA_CREDITS", -100_000, 24_700_000),
    ]
    end = await api.run(t.admin_key, run["id"])
    assert (end["status"], end["held"], end["spent"], end["holdExpiresAt"]) == (
        "RUNNING",
        "0",
        "30",
        None,
    )
    assert await api.credits(t.admin_key) == {"balance": "2470", "held": "0", "available": "2470"}
    await assert_ledger_matches(t.id)


# --- Concurrency (R12) --------------------------------------------------------------------------


@pytest.mark.usefixtures("postgres_only")
async def test_r12_concurrent_batches_never_pass_a_run_budget_or_its_hold(api):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    run = (await api.start_run(t.admin_key, wb, budget="10", hold="4"))["id"]
    batches = [[item(wb, PROFILE, 1, run) for _ in range(10)] for _ in range(5)]  # 25 asked
    answers = await asyncio.gather(*(api.record_batch(t.admin_key, b) for b in batches))
    codes = [o for a in answers for o in outcomes(a)]
    assert codes.count((1, "0.5")) == 20
    assert codes.count("RUN_BUDGET_EXCEEDED") == 30
    assert sum(a["charged"] for a in answers) == 20
    assert await counters(api, t.admin_key, run) == ("RUNNING", "10", "0", "0", 20, 20, 20)
    assert await api.credits(t.admin_key) == {"balance": "2490", "held": "0", "available": "2490"}
    assert await api.meters(t.admin_key) == (20, Decimal("2490"))
