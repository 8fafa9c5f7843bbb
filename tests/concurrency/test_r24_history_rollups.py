"""R24 under real concurrency: rollups kept in racing charge and refund transactions stay exact.

PostgreSQL only: SQLite serializes every transaction, so it proves nothing here.
"""

import asyncio
import random
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from tortoise.transactions import in_transaction

from app.history.rules import UsageDelta, UsageDimension
from app.history.service import add_usage, usage_history, usage_history_from_charges
from tests.concurrency.test_r12_concurrent_charges import REFUND, fire
from tests.helpers import CHARGE_FIELDS, new_key

pytestmark = pytest.mark.usefixtures("postgres_only")

RECORD = f"mutation($i: RecordUsageInput!) {{ recordUsage(input: $i) {{ {CHARGE_FIELDS} }} }}"
PRICES = [("linkedin", "profile"), ("hunter", "email"), ("clearbit", "company")]


def report(workbook: str, n: int) -> dict:
    provider, data_type = PRICES[n % 3]
    return {
        "i": {
            "workbookId": workbook,
            "tableId": f"t{n % 4}" if n % 5 else None,
            "kind": "ENRICHMENT",
            "provider": provider,
            "dataType": data_type,
            "results": 1 + n % 7,
            "ownApiKey": n % 6 == 0,
            "idempotencyKey": new_key("hist"),
        }
    }


async def test_r24_50_concurrent_charges_and_refunds_leave_exact_rollups(api):
    t = await api.create_workspace("growth")
    books = [await api.create_workbook(t.admin_key, name) for name in ("Alpha", "Beta")]
    first = await fire(api, t.admin_key, [report(books[n % 2], n) for n in range(50)])
    assert {c["__typename"] for c in first} == {"Charge"}
    # More charges racing refunds of the first ones: both write the same rollup rows.
    refunds = [{"i": {"chargeId": c["id"], "idempotencyKey": new_key("r")}} for c in first[:20]]
    more = [report(books[n % 2], n) for n in range(50, 80)]
    await asyncio.gather(
        fire(api, t.admin_key, refunds, REFUND), fire(api, t.admin_key, more, RECORD)
    )
    workspace_id = uuid.UUID(t.id)
    end = datetime.now(UTC) + timedelta(days=1)
    start = end - timedelta(days=300)
    for group_by in ([], list(UsageDimension), [UsageDimension.WORKBOOK, UsageDimension.TABLE]):
        fast = await usage_history(workspace_id, start, end, group_by)
        assert fast == await usage_history_from_charges(workspace_id, start, end, group_by)
    [total] = await usage_history(workspace_id, start, end, [])
    ws = await api.workspace(t.admin_key)
    assert total.actions == ws["actions"]["used"] == sum(1 + n % 7 for n in range(80))


async def test_r24_concurrent_batches_sharing_rows_neither_deadlock_nor_lose_counts(api):
    t = await api.create_workspace("launch")
    books = [uuid.UUID(await api.create_workbook(t.admin_key, f"W{i}")) for i in range(3)]
    cycle = datetime(2025, 1, 31, 10, tzinfo=UTC)
    keys = [
        (date(2025, 2, d), book, table)
        for d in (1, 2)
        for book in books
        for table in ("a", "b", None)
    ]

    async def batch(seed: int) -> None:
        deltas = [UsageDelta(day, cycle, book, table, "p", "SIGNAL", 1, 2, 3)
                  for day, book, table in keys]  # fmt: skip
        random.Random(seed).shuffle(deltas)  # each batch in its own order
        async with in_transaction() as conn:
            await add_usage(conn, uuid.UUID(t.id), deltas)
            await asyncio.sleep(0.01)  # hold the row locks while the others queue

    await asyncio.gather(*(batch(seed) for seed in range(20)))
    rows = await usage_history(
        uuid.UUID(t.id), cycle, cycle + timedelta(days=5), [UsageDimension.DAY]
    )
    assert [(r.day, r.actions, r.credits, r.results) for r in rows] == [
        (date(2025, 2, 1), 20 * 9, 40 * 9, 60 * 9),
        (date(2025, 2, 2), 20 * 9, 40 * 9, 60 * 9),
    ]
