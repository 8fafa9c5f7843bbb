"""R12, R13 under real concurrency: many transactions at once against one PostgreSQL.

Each test fires its requests together (asyncio.gather over the GraphQL endpoint); the pool
gives each its own connection, so the conditional updates race for real.
"""

import asyncio
from collections import Counter
from decimal import Decimal

import pytest

from app.db import connection, fetch
from tests.helpers import CHARGE_FIELDS, REFUND_FIELDS, assert_ledger_matches, new_key

pytestmark = pytest.mark.usefixtures("postgres_only")

RECORD = f"mutation($i: RecordUsageInput!) {{ recordUsage(input: $i) {{ {CHARGE_FIELDS} }} }}"
REFUND = f"mutation($i: RefundInput!) {{ refundCharge(input: $i) {{ {REFUND_FIELDS} }} }}"


def phone(wb: str, key: str | None = None) -> dict:
    """One apollo phone number: 5 Data Credits, 1 Action."""
    return {
        "i": {
            "workbookId": wb,
            "kind": "ENRICHMENT",
            "provider": "apollo",
            "dataType": "phone",
            "results": 1,
            "idempotencyKey": key or new_key("race"),
        }
    }


async def fire(api, key: str, requests: list[dict], query: str = RECORD) -> list[dict]:
    answers = await asyncio.gather(*(api.gql(query, v, key=key) for v in requests))
    return [next(iter(a.values())) for a in answers]


async def charge_count(workspace_id: str) -> int:
    rows = await fetch(
        connection(), "SELECT COUNT(*) AS n FROM charge WHERE workspace_id = $1", workspace_id
    )
    return int(rows[0]["n"])


async def test_r12_200_concurrent_charges_against_a_balance_of_500(api):
    t = await api.create_workspace("launch")  # 2,500 credits
    wb = await api.create_workbook(t.admin_key)
    await api.record_usage(
        t.admin_key, wb, kind="ENRICHMENT", provider="apollo", dataType="phone", results=400
    )  # 2,000: leaves exactly 500
    assert await api.meters(t.admin_key) == (400, Decimal("500"))
    results = await fire(api, t.admin_key, [phone(wb) for _ in range(200)])
    outcomes = Counter(r.get("code", r["__typename"]) for r in results)
    assert outcomes == {"Charge": 100, "INSUFFICIENT_DATA_CREDITS": 100}
    assert await api.meters(t.admin_key) == (500, Decimal("0"))  # ledger checked inside
    assert await charge_count(t.id) == 101


async def test_r12_200_concurrent_charges_against_a_workbook_limit_of_500(api):
    t = await api.create_workspace("enterprise")
    wb = await api.create_workbook(t.admin_key)
    await api.set_limit(t.admin_key, wb, "500")
    results = await fire(api, t.admin_key, [phone(wb) for _ in range(200)])
    outcomes = Counter(r.get("code", r["__typename"]) for r in results)
    assert outcomes == {"Charge": 100, "WORKBOOK_SPEND_LIMIT_REACHED": 100}
    spent = await api.gql(
        "query($id: ID!) { workbook(id: $id) { spendLimit spent } }", {"id": wb}, key=t.admin_key
    )
    assert spent["workbook"] == {"spendLimit": "500", "spent": "500"}
    assert await api.meters(t.admin_key) == (100, Decimal("599500"))


async def test_r13_50_concurrent_retries_of_one_key_charge_once(api):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    results = await fire(api, t.admin_key, [phone(wb, "the-one-key") for _ in range(50)])
    assert {r["__typename"] for r in results} == {"Charge"}
    assert len({r["id"] for r in results}) == 1
    assert await api.meters(t.admin_key) == (1, Decimal("2495"))
    assert await charge_count(t.id) == 1


async def test_r13_concurrent_retries_while_the_balance_runs_out_still_replay(api):
    t = await api.create_workspace("free")  # 100 credits: 20 phone numbers
    wb = await api.create_workbook(t.admin_key)
    requests = [phone(wb, f"key-{i % 20}") for i in range(100)]  # 20 keys, 5 tries each
    results = await fire(api, t.admin_key, requests)
    assert {r["__typename"] for r in results} == {"Charge"}
    assert len({r["id"] for r in results}) == 20
    assert await api.meters(t.admin_key) == (20, Decimal("0"))


async def test_r22_concurrent_refunds_never_refund_a_result_twice(api):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    charge = await api.record_usage(
        t.admin_key, wb, kind="ENRICHMENT", provider="apollo", dataType="phone", results=100
    )  # 500 credits
    requests = [
        {"i": {"chargeId": charge["id"], "results": 10, "idempotencyKey": new_key()}}
        for _ in range(30)
    ]
    results = await fire(api, t.admin_key, requests, REFUND)
    outcomes = Counter(r.get("code", r["__typename"]) for r in results)
    assert outcomes == {"Refund": 10, "ALREADY_REFUNDED": 20}
    assert await api.meters(t.admin_key) == (100, Decimal("2500"))


async def test_r12_concurrent_charges_and_refunds_keep_the_ledger_exact(api):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    charges = [
        await api.record_usage(
            t.admin_key, wb, kind="ENRICHMENT", provider="apollo", dataType="phone", results=10
        )
        for _ in range(10)
    ]
    refunds = [
        api.gql(REFUND, {"i": {"chargeId": c["id"], "idempotencyKey": new_key()}}, key=t.admin_key)
        for c in charges
    ]
    more = [api.gql(RECORD, phone(wb), key=t.admin_key) for _ in range(100)]
    await asyncio.gather(*refunds, *more)
    # 10 x 50 refunded, 100 x 5 charged: back to 2,500 - 500 (first charges) + 500 - 500.
    assert await api.meters(t.admin_key) == (200, Decimal("2000"))
    await assert_ledger_matches(t.id)
