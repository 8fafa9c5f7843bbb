"""R24: every balance change is an append-only ledger entry with the balance after it."""

from decimal import Decimal

import asyncpg
import pytest
from tortoise.exceptions import BaseORMException

from app.db import connection, fetch

# Tortoise translates some driver errors; a trigger's RAISE reaches us as asyncpg's own.
DB_ERRORS = (BaseORMException, asyncpg.PostgresError)


async def test_r24_charge_entries_carry_the_balance_after(api):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    charge = await api.record_usage(
        t.admin_key,
        wb,
        kind="ENRICHMENT",
        provider="apollo",
        dataType="phone",
        results=3,
        tableId="contacts",
    )
    entries = await api.ledger(t.admin_key)
    rows = sorted(
        (e["entryType"], e["meter"], e["amount"], e["balanceAfter"], e["chargeId"], e["workbookId"])
        for e in entries
    )
    assert rows == [
        ("CHARGE", "ACTIONS", "-3", "14997", charge["id"], wb),
        ("CHARGE", "DATA_CREDITS", "-15", "2485", charge["id"], wb),
        ("GRANT", "ACTIONS", "15000", "15000", None, None),
        ("GRANT", "DATA_CREDITS", "2500", "2500", None, None),
    ]


async def test_r24_pages_newest_first_with_cursors(api):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    for n in range(1, 6):
        await api.record_usage(
            t.admin_key, wb, kind="ENRICHMENT", provider="clearbit", dataType="company", results=n
        )
    everything = await api.ledger(t.admin_key)
    assert len(everything) == 12  # 2 grants + 5 charges x 2 meters
    ids = [int(e["id"]) for e in everything]
    assert ids == sorted(ids, reverse=True)
    seen, after = [], None
    while True:
        data = await api.gql(
            "query($a: String) { ledger(first: 5, after: $a) { edges { node { id } }"
            " pageInfo { hasNextPage endCursor } } }",
            {"a": after},
            key=t.admin_key,
        )
        page = data["ledger"]
        seen += [e["node"]["id"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == [e["id"] for e in everything]
    credits = [Decimal(e["balanceAfter"]) for e in everything if e["meter"] == "DATA_CREDITS"]
    assert credits == [Decimal(x) for x in ("2485", "2490", "2494", "2497", "2499", "2500")]


async def test_r24_ledger_filtered_by_workbook(api):
    t = await api.create_workspace("launch")
    a, b = await api.create_workbook(t.admin_key, "A"), await api.create_workbook(t.admin_key, "B")
    await api.record_usage(
        t.admin_key, a, kind="ENRICHMENT", provider="linkedin", dataType="profile", results=2
    )
    await api.record_usage(t.admin_key, b, kind="CRM_EXPORT", results=7)
    only_b = await api.ledger(t.admin_key, workbook_id=b)
    assert [(e["meter"], e["amount"]) for e in only_b] == [("ACTIONS", "-7")]


async def test_r24_bad_cursor_and_page_size_are_invalid_input(api):
    t = await api.create_workspace("launch")
    for args in ({"a": "not-a-cursor", "f": 5}, {"a": None, "f": 501}, {"a": None, "f": -1}):
        code = await api.error_code(
            "query($a: String, $f: Int) { ledger(first: $f, after: $a) { edges { cursor } } }",
            args,
            key=t.admin_key,
        )
        assert code == "INVALID_INPUT"


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE ledger_entry SET amount = 0",
        "DELETE FROM ledger_entry",
    ],
)
async def test_r24_the_database_refuses_to_change_or_delete_ledger_entries(api, statement):
    t = await api.create_workspace("launch")
    with pytest.raises(DB_ERRORS, match="append-only"):
        await fetch(connection(), statement + " WHERE workspace_id = $1", t.id)
    assert len(await api.ledger(t.admin_key)) == 2


async def test_r12_the_database_refuses_a_negative_balance(api):
    t = await api.create_workspace("launch")
    # SQLite's triggers fire in turn: the held-credits guard may be the one that aborts.
    with pytest.raises(DB_ERRORS, match=r"workspace_balance_nonneg|workspace_held_within_balance"):
        await fetch(connection(), "UPDATE workspace SET credit_balance = -1 WHERE id = $1", t.id)
    with pytest.raises(DB_ERRORS, match="workspace_held_within_balance"):
        await fetch(
            connection(),
            "UPDATE workspace SET credits_held = credit_balance + 1 WHERE id = $1",
            t.id,
        )
    with pytest.raises(DB_ERRORS, match="workspace_actions_within_capacity"):
        await fetch(
            connection(),
            "UPDATE workspace SET actions_used = actions_capacity + 1 WHERE id = $1",
            t.id,
        )
    assert await api.meters(t.admin_key) == (0, Decimal("2500"))
