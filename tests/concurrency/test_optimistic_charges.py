"""A single charge in one statement against the rows its first read saw (app.usage.optimistic;
issue 20), PostgreSQL only: when its rows changed or its key was taken in between, nothing of
it stays and the charge is decided again under row locks (R12, R13, R25), exactly as if the
one-statement way did not exist.

The interleavings are made, not hoped for: a charge is prepared (its first read made), another
request changes its workspace, workbook or key, then the prepared charge goes on.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime

import pytest

from app.db import connection, fetch
from app.errors import ErrorCode, Refused
from app.kinds import UsageKind
from app.usage import charging, group_commit, optimistic
from app.usage.claims import outcome_of
from app.usage.costs import Usage
from app.usage.items import UsageReport
from tests.concurrency.test_group_commit import _grouped, _outcome, _rows
from tests.helpers import assert_ledger_matches, ledger_rows, new_key

pytestmark = pytest.mark.usefixtures("postgres_only")

PHONE = 50_000  # units: an apollo phone number costs 5 Data Credits (and 1 Action)
LAUNCH = (15_000, 25_000_000)  # launch's monthly Actions and Data Credit units


def _phones(workbook_id: str, results: int, key: str | None = None) -> UsageReport:
    usage = Usage(UsageKind.ENRICHMENT, results, "apollo", "phone")
    return UsageReport(workbook_id, usage, key or new_key("opt"))


async def _charge(workspace_id: str, report: UsageReport) -> object:
    return await _outcome(uuid.UUID(workspace_id), report)


async def _prepared(workspace_id: str, report: UsageReport):
    """The charge's first read made (its rows seen), nothing written yet."""
    now = datetime.now(UTC)
    ws, items = await charging._prepared(uuid.UUID(workspace_id), [report], now)
    assert items[0].seen is not None
    return ws, items, now


async def _finished(prepared) -> object:
    ws, items, now = prepared
    await charging.transact(ws, items, now)
    outcome = outcome_of(items[0])
    return outcome.code if isinstance(outcome, Refused) else outcome


def _since(before: dict[str, int]) -> dict[str, int]:
    return {k: optimistic.stats[k] - v for k, v in before.items()}


async def _column(table: str, column: str, row_id: str) -> object:
    rows = await fetch(connection(), f"SELECT {column} AS v FROM {table} WHERE id = $1", row_id)
    return rows[0]["v"]


async def _keys(workspace_id: str) -> list[str]:
    rows = await fetch(
        connection(),
        "SELECT key FROM idempotency_record WHERE workspace_id = $1 ORDER BY key",
        workspace_id,
    )
    return [r["key"] for r in rows]


async def test_r12_a_charge_of_unchanged_rows_is_one_statement_with_exact_rows(api):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    before = dict(optimistic.stats)
    report = _phones(wb, 3)
    charge = await _charge(t.id, report)
    assert _since(before) == {"written": 1, "moved": 0}
    assert (charge.actions, charge.credits) == (3, 3 * PHONE)  # type: ignore[attr-defined]
    assert await ledger_rows(t.id) == [
        ("GRANT", "ACTIONS", LAUNCH[0], LAUNCH[0]),
        ("GRANT", "DATA_CREDITS", LAUNCH[1], LAUNCH[1]),
        ("CHARGE", "ACTIONS", -3, LAUNCH[0] - 3),
        ("CHARGE", "DATA_CREDITS", -3 * PHONE, LAUNCH[1] - 3 * PHONE),
    ]
    assert await _keys(t.id) == [report.idempotency_key]
    await assert_ledger_matches(t.id)


async def test_r12_a_charge_whose_balance_moved_after_its_read_is_decided_again(api):
    t = await api.create_workspace("launch")  # 2,500 credits
    wb = await api.create_workbook(t.admin_key)
    await _charge(t.id, _phones(wb, 498))  # 10 credits left
    late = _phones(wb, 1)
    prepared = await _prepared(t.id, late)  # reads 10 credits: 5 would fit
    await _charge(t.id, _phones(wb, 2))  # takes all 10 meanwhile
    before = dict(optimistic.stats)
    assert await _finished(prepared) is ErrorCode.INSUFFICIENT_DATA_CREDITS
    assert _since(before) == {"written": 0, "moved": 1}
    assert await _column("workspace", "credit_balance", t.id) == 0
    assert (await ledger_rows(t.id))[-2:] == [
        ("CHARGE", "ACTIONS", -2, LAUNCH[0] - 500),
        ("CHARGE", "DATA_CREDITS", -2 * PHONE, 0),
    ]
    assert late.idempotency_key not in await _keys(t.id)  # refused: no trace (R13)
    await assert_ledger_matches(t.id)


async def test_r12_a_charge_whose_balance_moved_but_still_fits_has_exact_balances_after(api):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    prepared = await _prepared(t.id, _phones(wb, 1))
    await _charge(t.id, _phones(wb, 10))
    before = dict(optimistic.stats)
    charge = await _finished(prepared)
    assert charge.credits == PHONE  # type: ignore[attr-defined]
    assert _since(before) == {"written": 0, "moved": 1}
    assert (await ledger_rows(t.id))[-2:] == [
        ("CHARGE", "ACTIONS", -1, LAUNCH[0] - 11),
        ("CHARGE", "DATA_CREDITS", -PHONE, LAUNCH[1] - 11 * PHONE),
    ]
    await assert_ledger_matches(t.id)


async def test_r11_a_limit_set_after_the_read_refuses_the_charge(api):
    t = await api.create_workspace("enterprise")
    wb = await api.create_workbook(t.admin_key)
    prepared = await _prepared(t.id, _phones(wb, 1))
    await api.set_limit(t.admin_key, wb, "0")
    before = dict(optimistic.stats)
    assert await _finished(prepared) is ErrorCode.WORKBOOK_SPEND_LIMIT_REACHED
    assert _since(before) == {"written": 0, "moved": 1}
    assert await ledger_rows(t.id) == [
        ("GRANT", "ACTIONS", 100_000, 100_000),
        ("GRANT", "DATA_CREDITS", 6 * 10**9, 6 * 10**9),
    ]


async def test_r11_a_limited_workbooks_spend_moves_in_the_same_statement(api):
    t = await api.create_workspace("enterprise")
    wb = await api.create_workbook(t.admin_key)
    await api.set_limit(t.admin_key, wb, "12")
    before = dict(optimistic.stats)
    await _charge(t.id, _phones(wb, 2))
    assert await _charge(t.id, _phones(wb, 1)) is ErrorCode.WORKBOOK_SPEND_LIMIT_REACHED
    assert _since(before) == {"written": 1, "moved": 0}  # the refusal went the locked way
    assert await _column("workbook", "spent", wb) == 2 * PHONE


async def test_r13_a_retry_finds_its_key_taken_and_replays_changing_nothing(api):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    report = _phones(wb, 1, "the-key")
    first = await _charge(t.id, report)
    before = dict(optimistic.stats)
    again = await _charge(t.id, report)  # its rows are as read: only the claim stops it
    assert _since(before) == {"written": 0, "moved": 1}
    assert again.id == first.id  # type: ignore[attr-defined]
    assert await _column("workspace", "credit_balance", t.id) == LAUNCH[1] - PHONE
    assert len(await ledger_rows(t.id)) == 4  # two grants, one charge's two entries


async def test_r13_a_key_taken_after_the_read_by_the_same_request_replays(api):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    report = _phones(wb, 1, "the-key")
    prepared = await _prepared(t.id, report)
    first = await _charge(t.id, report)
    before = dict(optimistic.stats)
    again = await _finished(prepared)
    assert _since(before) == {"written": 0, "moved": 1}
    assert again.id == first.id  # type: ignore[attr-defined]
    assert await _keys(t.id) == ["the-key"]
    assert await _column("workspace", "credit_balance", t.id) == LAUNCH[1] - PHONE


async def test_r13_a_key_taken_after_the_read_by_another_request_is_reused(api):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    prepared = await _prepared(t.id, _phones(wb, 1, "the-key"))
    await _charge(t.id, _phones(wb, 2, "the-key"))
    assert await _finished(prepared) is ErrorCode.IDEMPOTENCY_KEY_REUSED
    assert await _column("workspace", "credit_balance", t.id) == LAUNCH[1] - 2 * PHONE


async def test_r12_200_racing_charges_without_group_commit_end_exactly(api, monkeypatch):
    monkeypatch.setattr(group_commit, "enabled", False)  # every charge its own statement
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    await _charge(t.id, _phones(wb, 400))  # 500 credits left
    before = dict(optimistic.stats)
    outcomes = await asyncio.gather(*(_charge(t.id, _phones(wb, 1)) for _ in range(200)))
    counted = Counter(o if isinstance(o, ErrorCode) else "Charge" for o in outcomes)
    assert counted == {"Charge": 100, ErrorCode.INSUFFICIENT_DATA_CREDITS: 100}
    moved = _since(before)
    assert moved["written"] >= 1 and moved["moved"] >= 1, moved  # both ways were taken
    assert await _column("workspace", "credit_balance", t.id) == 0
    credits = [row[3] for row in await ledger_rows(t.id) if row[1] == "DATA_CREDITS"]
    assert credits[2:] == [500 * 10_000 - n * PHONE for n in range(1, 101)]  # one at a time
    await assert_ledger_matches(t.id)


async def test_r13_50_racing_retries_of_one_key_without_group_commit_charge_once(api, monkeypatch):
    monkeypatch.setattr(group_commit, "enabled", False)
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    outcomes = await asyncio.gather(*(_charge(t.id, _phones(wb, 1, "one-key")) for _ in range(50)))
    assert len({o.id for o in outcomes}) == 1  # type: ignore[attr-defined]
    assert await _column("workspace", "credit_balance", t.id) == LAUNCH[1] - PHONE
    assert len(await ledger_rows(t.id)) == 4  # two grants, one charge's two entries
    await assert_ledger_matches(t.id)


# From 2,500 credits: charges of these many phones, one after another. The fourth leaves 5
# credits, the fifth is refused (credits.depleted fires, under locks), the sixth leaves exactly
# 0 (depleted has fired already: nothing more fires, so it is one statement).
SEQUENCE = [100, 200, 150, 49, 2, 1]


async def _sequence(api) -> tuple[str, list[object]]:
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    outcomes = [await _charge(t.id, _phones(wb, n)) for n in SEQUENCE]
    return t.id, [getattr(o, "credits", o) for o in outcomes]


async def test_one_statement_charges_leave_what_locked_charges_leave(api, monkeypatch):
    before = dict(optimistic.stats)
    fast_id, fast = await _sequence(api)
    assert _since(before) == {"written": 5, "moved": 0}  # the refusal: locked
    monkeypatch.setattr(optimistic, "enabled", False)
    locked_id, locked = await _sequence(api)
    assert fast == locked == [*(n * PHONE for n in SEQUENCE[:4]),
                              ErrorCode.INSUFFICIENT_DATA_CREDITS, PHONE]  # fmt: skip
    left = await _rows(fast_id)
    assert left == await _rows(locked_id)
    assert [e[0] for e in left["events"]] == ["credits.depleted"]
    assert await ledger_rows(fast_id) == await ledger_rows(locked_id)
    daily = (
        "SELECT provider, kind, actions, credits, results FROM usage_daily WHERE workspace_id = $1"
    )
    assert [dict(r) for r in await fetch(connection(), daily, fast_id)] == [
        dict(r) for r in await fetch(connection(), daily, locked_id)
    ]


async def test_r12_a_charge_that_waited_alone_reads_its_rows_again_and_goes_at_once(api, gate):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    before = dict(optimistic.stats)
    first, second = await _grouped(t.id, [_phones(wb, 1), _phones(wb, 2)], gate)
    assert (first.credits, second.credits) == (PHONE, 2 * PHONE)  # type: ignore[attr-defined]
    # the second read its rows before the first was written: read again, they hold
    assert _since(before) == {"written": 2, "moved": 0}
    assert (await ledger_rows(t.id))[2:] == [
        ("CHARGE", "ACTIONS", -1, LAUNCH[0] - 1),
        ("CHARGE", "DATA_CREDITS", -PHONE, LAUNCH[1] - PHONE),
        ("CHARGE", "ACTIONS", -2, LAUNCH[0] - 3),
        ("CHARGE", "DATA_CREDITS", -2 * PHONE, LAUNCH[1] - 3 * PHONE),
    ]
    await assert_ledger_matches(t.id)


async def test_r12_charges_that_waited_together_share_one_locked_transaction(api, gate):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    before, groups = dict(optimistic.stats), group_commit.stats["groups"]
    outcomes = await _grouped(t.id, [_phones(wb, n) for n in (1, 2, 3)], gate)
    assert [o.credits for o in outcomes] == [PHONE, 2 * PHONE, 3 * PHONE]  # type: ignore[attr-defined]
    assert _since(before) == {"written": 1, "moved": 0}  # the first alone; the group locked
    assert group_commit.stats["groups"] == groups + 1
    assert await _column("workspace", "credit_balance", t.id) == LAUNCH[1] - 6 * PHONE
    await assert_ledger_matches(t.id)
