"""Single charges of different workspaces written by one statement (app.usage.coalesced;
issue 20), PostgreSQL only: each charge answered with its own outcome and its rows exactly as
if written alone (R12, R13, R24, R25); when any one's rows moved, nothing of the statement stays
and each is written alone again.

The interleavings are made, not hoped for: the process's writer is held busy while the charges
queue behind it, then let go; or another transaction holds a workspace's row.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest

from app.db import connection, fetch
from app.kinds import UsageKind
from app.usage import charging, coalesced, group_commit, optimistic
from app.usage.costs import Usage
from app.usage.items import UsageReport
from tests.helpers import adjust_credits, assert_ledger_matches, ledger_rows, new_key

pytestmark = pytest.mark.usefixtures("postgres_only")

PHONE = 50_000  # units: an apollo phone number costs 5 Data Credits (and 1 Action)
LAUNCH = (15_000, 25_000_000)  # launch's monthly Actions and Data Credit units


def _phones(workbook_id: str, results: int = 1, key: str | None = None) -> UsageReport:
    return UsageReport(
        workbook_id, Usage(UsageKind.ENRICHMENT, results, "apollo", "phone"), key or new_key("c")
    )


async def _charge(workspace_id: str, report: UsageReport) -> object:
    return await charging.charge_one(uuid.UUID(workspace_id), report, datetime.now(UTC))


async def _tenants(api, n: int, plan: str = "launch") -> list[tuple[str, str]]:
    tenants = []
    for _ in range(n):
        t = await api.create_workspace(plan)
        tenants.append((t.id, await api.create_workbook(t.admin_key)))
    return tenants


@pytest.fixture
async def busy(monkeypatch) -> AsyncIterator[coalesced._Writer]:
    """The writer held busy, as while a charge's statement is in flight: charges queue, and
    wait for `_let_go` (not for MAX_WAIT)."""
    monkeypatch.setattr(coalesced, "MAX_WAIT", 60.0)
    writer = coalesced._current(connection())
    assert not writer.alone and not writer.waiting and writer.drainer is None
    writer.alone = 1
    yield writer
    if writer.alone:
        _let_go(writer)


def _let_go(writer: coalesced._Writer) -> None:
    """The statement in flight is over: the waiting charges go."""
    writer.alone = 0
    coalesced._start_drainer(writer)


async def _queued(writer: coalesced._Writer, count: int) -> None:
    for _ in range(2_000):
        if len(writer.waiting) == count:
            return
        await asyncio.sleep(0.002)
    raise AssertionError(f"{count} charges never queued ({len(writer.waiting)})")


async def _together(writer, charges: list[tuple[str, UsageReport]]) -> list[object]:
    """The charges queued behind the busy writer, in this order, then let go."""
    tasks = []
    for n, (workspace_id, report) in enumerate(charges, 1):
        tasks.append(asyncio.create_task(_charge(workspace_id, report)))
        await _queued(writer, n)
    _let_go(writer)
    return list(await asyncio.gather(*tasks))


def _since(before: dict[str, int], stats: dict[str, int]) -> dict[str, int]:
    return {k: stats[k] - v for k, v in before.items()}


async def _rows(sql: str, *args: object) -> list[tuple]:
    return [tuple(r.values()) for r in await fetch(connection(), sql, *args)]


async def test_r12_charges_of_five_workspaces_go_in_one_statement_with_exact_rows(api, busy):
    tenants = await _tenants(api, 5)
    reports = [_phones(wb, n) for n, (_, wb) in enumerate(tenants, 1)]
    before, written = dict(coalesced.stats), dict(optimistic.stats)
    charges = await _together(busy, [(ws, r) for (ws, _), r in zip(tenants, reports, strict=True)])
    assert _since(before, coalesced.stats) == {"alone": 0, "groups": 1, "grouped": 5, "retried": 0}
    assert _since(written, optimistic.stats) == {"written": 5, "moved": 0}
    for n, ((ws, wb), report, charge) in enumerate(zip(tenants, reports, charges, strict=True), 1):
        assert (charge.actions, charge.credits) == (n, n * PHONE)  # type: ignore[attr-defined]
        assert await ledger_rows(ws) == [
            ("GRANT", "ACTIONS", LAUNCH[0], LAUNCH[0]),
            ("GRANT", "DATA_CREDITS", LAUNCH[1], LAUNCH[1]),
            ("CHARGE", "ACTIONS", -n, LAUNCH[0] - n),
            ("CHARGE", "DATA_CREDITS", -n * PHONE, LAUNCH[1] - n * PHONE),
        ]
        assert await _rows(
            "SELECT id::text, workbook_id::text, results, actions, credits, idempotency_key"
            " FROM charge WHERE workspace_id = $1", ws,
        ) == [(str(charge.id), wb, n, n, n * PHONE, report.idempotency_key)]  # type: ignore[attr-defined]  # fmt: skip
        assert await _rows(
            "SELECT key, operation, result_id FROM idempotency_record WHERE workspace_id = $1", ws
        ) == [(report.idempotency_key, "recordUsage", str(charge.id))]  # type: ignore[attr-defined]
        assert await _rows(
            "SELECT workbook_id::text, provider, kind, actions, credits, results FROM usage_daily"
            " WHERE workspace_id = $1", ws,
        ) == [(wb, "apollo", "ENRICHMENT", n, n * PHONE, n)]  # fmt: skip
        assert await _rows(
            "SELECT actions_used, credit_balance, credits_held FROM workspace WHERE id = $1", ws
        ) == [(n, LAUNCH[1] - n * PHONE, 0)]
        await assert_ledger_matches(ws)


async def test_r13_a_retry_of_a_grouped_charge_replays_it(api, busy):
    tenants = await _tenants(api, 3)
    reports = [_phones(wb) for _, wb in tenants]
    charges = await _together(busy, [(ws, r) for (ws, _), r in zip(tenants, reports, strict=True)])
    for (ws, _), report, charge in zip(tenants, reports, charges, strict=True):
        again = await _charge(ws, report)
        assert again.id == charge.id  # type: ignore[attr-defined]
        assert len(await ledger_rows(ws)) == 4  # the grants and one charge's two entries
        assert await _rows("SELECT count(*) FROM charge WHERE workspace_id = $1", ws) == [(1,)]


async def test_r12_when_one_workspace_moved_each_charge_is_written_alone(api, busy):
    tenants = await _tenants(api, 3)
    reports = [_phones(wb) for _, wb in tenants]
    tasks = []
    for n, ((ws, _), report) in enumerate(zip(tenants, reports, strict=True), 1):
        tasks.append(asyncio.create_task(_charge(ws, report)))
        await _queued(busy, n)
    moved = tenants[1][0]
    await adjust_credits(moved, -10 * PHONE)  # a new version of its row: the group fails
    before, written = dict(coalesced.stats), dict(optimistic.stats)
    _let_go(busy)
    charges = await asyncio.gather(*tasks)
    assert _since(before, coalesced.stats) == {"alone": 0, "groups": 0, "grouped": 0, "retried": 3}
    # Alone, the two others hold; the moved one is decided again under locks.
    assert _since(written, optimistic.stats) == {"written": 2, "moved": 1}
    for (ws, _), charge in zip(tenants, charges, strict=True):
        assert charge.credits == PHONE  # type: ignore[attr-defined]
        assert await _rows("SELECT count(*) FROM charge WHERE workspace_id = $1", ws) == [(1,)]
        await assert_ledger_matches(ws)
    assert (await ledger_rows(moved))[-2:] == [
        ("CHARGE", "ACTIONS", -1, LAUNCH[0] - 1),
        ("CHARGE", "DATA_CREDITS", -PHONE, LAUNCH[1] - 11 * PHONE),
    ]


async def test_r12_a_workspace_goes_once_a_group_its_second_charge_in_the_next(
    api, busy, monkeypatch
):
    monkeypatch.setattr(group_commit, "enabled", False)  # else its lane holds the second back
    (a, wa), (b, wb) = await _tenants(api, 2)
    before, written = dict(coalesced.stats), dict(optimistic.stats)
    charges = await _together(busy, [(a, _phones(wa, 1)), (a, _phones(wa, 2)), (b, _phones(wb))])
    assert [c.credits for c in charges] == [PHONE, 2 * PHONE, PHONE]  # type: ignore[attr-defined]
    # The second of `a` read its rows before the first was written: alone, it finds them
    # moved and is decided again under locks.
    assert _since(before, coalesced.stats) == {"alone": 0, "groups": 1, "grouped": 2, "retried": 1}
    assert _since(written, optimistic.stats) == {"written": 2, "moved": 1}
    assert (await ledger_rows(a))[2:] == [
        ("CHARGE", "ACTIONS", -1, LAUNCH[0] - 1),
        ("CHARGE", "DATA_CREDITS", -PHONE, LAUNCH[1] - PHONE),
        ("CHARGE", "ACTIONS", -2, LAUNCH[0] - 3),
        ("CHARGE", "DATA_CREDITS", -2 * PHONE, LAUNCH[1] - 3 * PHONE),
    ]
    await assert_ledger_matches(a)
    await assert_ledger_matches(b)


async def test_r13_a_charge_given_up_while_queued_is_not_written(api, busy):
    (a, wa), (b, wb) = await _tenants(api, 2)
    gone = asyncio.create_task(_charge(a, _phones(wa)))
    await _queued(busy, 1)
    kept = asyncio.create_task(_charge(b, _phones(wb)))
    await _queued(busy, 2)
    gone.cancel()
    with pytest.raises(asyncio.CancelledError):
        await gone
    _let_go(busy)
    assert (await kept).credits == PHONE  # type: ignore[attr-defined]
    assert await _rows("SELECT count(*) FROM charge WHERE workspace_id = $1", a) == [(0,)]
    assert await _rows("SELECT count(*) FROM idempotency_record WHERE workspace_id = $1", a) == [
        (0,)
    ]
    assert len(await ledger_rows(a)) == 2  # the grants alone


async def test_a_charge_under_a_spend_limit_goes_alone_at_once(api, busy):
    t = await api.create_workspace("enterprise")
    ws, wb = t.id, await api.create_workbook(t.admin_key)
    await api.set_limit(t.admin_key, wb, "1000")
    before = dict(coalesced.stats)
    charge = await asyncio.wait_for(_charge(ws, _phones(wb)), timeout=10)  # not queued
    assert charge.credits == PHONE  # type: ignore[attr-defined]
    assert _since(before, coalesced.stats) == {"alone": 0, "groups": 0, "grouped": 0, "retried": 0}
    assert not busy.waiting


async def test_switched_off_no_charge_waits_for_another(api, busy, monkeypatch):
    monkeypatch.setattr(coalesced, "enabled", False)
    tenants = await _tenants(api, 3)
    before = dict(coalesced.stats)
    charges = await asyncio.wait_for(
        asyncio.gather(*(_charge(ws, _phones(wb)) for ws, wb in tenants)), timeout=10
    )
    assert [c.credits for c in charges] == [PHONE] * 3  # type: ignore[attr-defined]
    assert _since(before, coalesced.stats) == {"alone": 0, "groups": 0, "grouped": 0, "retried": 0}


async def test_r12_many_concurrent_charges_over_few_workspaces_are_exact(api):
    tenants = await _tenants(api, 6)
    rng = random.Random(20)
    picks = [rng.randrange(len(tenants)) for _ in range(300)]
    before = dict(coalesced.stats)
    charges = await asyncio.gather(*(_charge(tenants[p][0], _phones(tenants[p][1])) for p in picks))
    assert all(c.credits == PHONE for c in charges)  # type: ignore[attr-defined]
    assert coalesced.stats["grouped"] > before["grouped"]  # some did go together
    for n, (ws, _) in enumerate(tenants):
        count = picks.count(n)
        assert await _rows(
            "SELECT actions_used, credit_balance FROM workspace WHERE id = $1", ws
        ) == [(count, LAUNCH[1] - count * PHONE)]
        assert await _rows("SELECT count(*) FROM charge WHERE workspace_id = $1", ws) == [(count,)]
        await assert_ledger_matches(ws)


async def _decided(monkeypatch, tenants: list[tuple[str, str]]) -> list[coalesced.Member]:
    """A charge of each tenant decided against its rows and left unwritten."""
    members: list[coalesced.Member] = []

    async def kept(member: coalesced.Member, alone: object) -> bool:
        members.append(member)
        return True  # as if written: nothing is

    monkeypatch.setattr(coalesced, "write", kept)
    for ws, wb in tenants:
        await _charge(ws, _phones(wb))
    monkeypatch.undo()
    return members


async def _locked(database, workspace_id: str) -> asyncpg.Connection:
    """Another transaction holding the workspace's row (a long batch, an admin's change)."""
    conn = await asyncpg.connect(database.url.replace("postgres://", "postgresql://"))
    await conn.execute("BEGIN")
    await conn.execute("SELECT 1 FROM workspace WHERE id = $1 FOR NO KEY UPDATE", workspace_id)
    return conn


async def test_r12_a_group_never_waits_for_another_statements_rows(api, database, monkeypatch):
    """Two processes' groups over the same workspaces (other keys), the second listed in the
    opposite order: it does not wait for the rows the first holds (nor hold its own while it
    would), it fails at once and its charges are written alone."""
    tenants = await _tenants(api, 2)
    first_members = await _decided(monkeypatch, tenants)
    second_members = await _decided(monkeypatch, tenants)
    url = database.url.replace("postgres://", "postgresql://")
    first, second = await asyncpg.connect(url), await asyncpg.connect(url)
    try:
        tx = first.transaction()
        await tx.start()
        await first.fetch(*_flat(coalesced.together(first_members)))
        with pytest.raises(asyncpg.SerializationError):
            await asyncio.wait_for(
                second.fetch(*_flat(coalesced.together(second_members[::-1]))), timeout=1
            )
        await tx.commit()
    finally:
        await first.close()
        await second.close()
    for ws, _ in tenants:
        assert await _rows("SELECT count(*) FROM charge WHERE workspace_id = $1", ws) == [(1,)]
        await assert_ledger_matches(ws)


async def test_r12_a_locked_workspace_holds_up_no_other_workspaces_charge(api, database):
    (a, wa), (b, wb) = await _tenants(api, 2)
    lock = await _locked(database, a)
    try:
        held_up = asyncio.create_task(_charge(a, _phones(wa)))  # alone, waiting for the row
        await asyncio.sleep(0.1)
        assert not held_up.done()
        charge = await asyncio.wait_for(_charge(b, _phones(wb)), timeout=2)
        assert charge.credits == PHONE  # type: ignore[attr-defined]
        assert not held_up.done()
    finally:
        await lock.execute("COMMIT")
        await lock.close()
    assert (await held_up).credits == PHONE  # type: ignore[attr-defined]
    for ws in (a, b):
        assert (await ledger_rows(ws))[2:] == [
            ("CHARGE", "ACTIONS", -1, LAUNCH[0] - 1),
            ("CHARGE", "DATA_CREDITS", -PHONE, LAUNCH[1] - PHONE),
        ]
        await assert_ledger_matches(ws)


async def test_r12_a_group_with_a_locked_workspace_fails_at_once(api, database, busy):
    (a, wa), (b, wb) = await _tenants(api, 2)
    lock = await _locked(database, a)
    try:
        tasks = [asyncio.create_task(_charge(a, _phones(wa)))]
        await _queued(busy, 1)
        tasks.append(asyncio.create_task(_charge(b, _phones(wb))))
        await _queued(busy, 2)
        before = dict(coalesced.stats)
        _let_go(busy)
        charge = await asyncio.wait_for(tasks[1], timeout=2)  # alone, after the group failed
        assert charge.credits == PHONE  # type: ignore[attr-defined]
        assert _since(before, coalesced.stats)["retried"] == 2
        assert not tasks[0].done()  # alone too, waiting for the row
    finally:
        await lock.execute("COMMIT")
        await lock.close()
    assert (await tasks[0]).credits == PHONE  # type: ignore[attr-defined]
    for ws in (a, b):
        assert await _rows("SELECT count(*) FROM charge WHERE workspace_id = $1", ws) == [(1,)]
        await assert_ledger_matches(ws)


def _flat(statement: tuple[str, list[object]]) -> list[object]:
    query, args = statement
    return [query, *args]


async def test_a_group_statement_has_one_text_for_any_number_of_charges(api, monkeypatch):
    """Prepared and planned once per connection, not once per group size."""
    members = await _decided(monkeypatch, await _tenants(api, 3))
    texts = {coalesced.together(members[:n])[0] for n in (1, 2, 3)}
    assert len(texts) == 1
    query, args = coalesced.together(members)
    assert query.count("$") == len(args)
