"""A single charge's statements on one pooled connection (app.held; issue 20), PostgreSQL only:
the same answers and errors as tortoise's own, one connection taken a charge instead of one a
statement, never a connection held while the request waits for another, and never shared
with a task the request started."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from tortoise.exceptions import IntegrityError, OperationalError

from app import held
from app.db import connection, fetch
from app.errors import ErrorCode, InvalidInput, Refused
from app.kinds import UsageKind
from app.usage import charging, group_commit
from app.usage.costs import Usage
from app.usage.items import UsageReport
from tests.concurrency.test_group_commit import _queued
from tests.helpers import assert_ledger_matches, new_key

pytestmark = pytest.mark.usefixtures("postgres_only")

PID = "SELECT pg_backend_pid() AS pid"
QUERIES: list[tuple[str, tuple[Any, ...]]] = [
    ("SELECT 1 AS one, 'x'::text AS text, NULL::uuid AS nothing, true AS yes", ()),
    ("SELECT '2025-01-31T10:00:00+00'::timestamptz AS at, 12345678901::bigint AS big", ()),
    ("SELECT code, rank FROM plan ORDER BY rank", ()),
    ("SELECT $1::uuid AS id, $2::int + 1 AS next", (uuid.UUID(int=7), 41)),
    ("SELECT code FROM plan WHERE false", ()),
    ("SELEC 1", ()),  # syntax: OperationalError
    ("SELECT 'not a uuid'::uuid", ()),  # data: OperationalError
    ("SELECT 1 / 0", ()),  # data: OperationalError
    ("INSERT INTO held_probe (id) VALUES (1)", ()),  # the second time: IntegrityError
    ("SELECT tally_moved()", ()),  # SQLSTATE 40001, asyncpg's own SerializationError
]


@pytest.fixture
def enabled(monkeypatch) -> Iterator[None]:
    monkeypatch.setattr(held, "enabled", True)
    yield


async def _answer(query: str, args: tuple[Any, ...]) -> object:
    try:
        return await fetch(connection(), query, *args)
    except Exception as error:  # the error is the answer
        return (type(error), str(error))


async def test_a_held_connection_answers_and_fails_as_tortoise_does(enabled):
    await fetch(connection(), "CREATE TABLE IF NOT EXISTS held_probe (id int PRIMARY KEY)")
    answers = {}
    try:
        for query, args in QUERIES:
            # given: each query sent twice as tortoise sends it, then twice on a held connection
            await fetch(connection(), "DELETE FROM held_probe")
            plain = [await _answer(query, args), await _answer(query, args)]
            async with held.holding(connection()):
                await fetch(connection(), "DELETE FROM held_probe")
                on_hold = [await _answer(query, args), await _answer(query, args)]
            # then: the same rows, or the same error
            assert on_hold == plain, query
            answers[query] = plain
    finally:
        await fetch(connection(), "DROP TABLE held_probe")
    # the table holds both ways: rows, none, and an error of each kind
    assert answers[QUERIES[3][0]] == [[{"id": uuid.UUID(int=7), "next": 42}]] * 2
    assert answers[QUERIES[4][0]] == [[], []]
    inserted = answers["INSERT INTO held_probe (id) VALUES (1)"]
    assert inserted[0] == [] and inserted[1][0] is IntegrityError
    assert {answers[q][0][0] for q, _ in QUERIES[5:8]} == {OperationalError}
    assert answers["SELECT tally_moved()"][0][0] is asyncpg.SerializationError


async def test_each_kind_of_error_is_translated(enabled):
    await fetch(connection(), "CREATE TABLE IF NOT EXISTS held_probe (id int PRIMARY KEY)")
    try:
        async with held.holding(connection()):
            await fetch(connection(), "INSERT INTO held_probe (id) VALUES (1)")
            with pytest.raises(IntegrityError):
                await fetch(connection(), "INSERT INTO held_probe (id) VALUES (1)")
            with pytest.raises(OperationalError):
                await fetch(connection(), "SELEC 1")
            with pytest.raises(OperationalError):
                await fetch(connection(), "SELECT 'x'::uuid")
            with pytest.raises(asyncpg.SerializationError):
                await fetch(connection(), "SELECT tally_moved()")
            # and the connection is still good after each
            assert await fetch(connection(), "SELECT 2 AS two") == [{"two": 2}]
    finally:
        await fetch(connection(), "DROP TABLE held_probe")


async def test_statements_inside_share_one_backend_until_let_go(enabled):
    pool = connection()._pool  # tortoise's asyncpg pool (private): read for the assertion
    async with held.holding(connection()):
        first = await fetch(connection(), PID)
        assert await fetch(connection(), PID) == first
        assert pool.get_idle_size() < pool.get_size()  # one is out, held
        await held.let_go()
        idle = pool.get_idle_size()
        await fetch(connection(), PID)  # taken from the pool and given back
        assert pool.get_idle_size() == idle
    assert pool.get_idle_size() == pool.get_size()


async def test_a_task_started_inside_takes_its_own_connection(enabled):
    async with held.holding(connection()):
        mine = (await fetch(connection(), PID))[0]["pid"]
        # a task copies the context, the hold with it: it must not send on this connection
        theirs = await asyncio.create_task(fetch(connection(), PID))
        assert theirs[0]["pid"] != mine
        assert (await fetch(connection(), PID))[0]["pid"] == mine


async def test_off_it_holds_nothing(monkeypatch):
    monkeypatch.setattr(held, "enabled", False)
    pool = connection()._pool
    async with held.holding(connection()):
        await fetch(connection(), PID)
        assert pool.get_idle_size() == pool.get_size()


def test_the_switch_and_the_version_check(monkeypatch, caplog):
    assert held.wanted("on") and held.wanted("verify")
    assert not held.wanted("off")
    monkeypatch.setattr(held, "version", lambda name: "1.2.0")
    with caplog.at_level(logging.WARNING, logger="tally"):
        assert not held.wanted("on")
    assert "written for tortoise-orm 1.1.x, found 1.2.0" in caplog.text


def _report(
    workbook_id: str, provider: str = "linkedin", data_type: str = "profile", results: int = 1
) -> UsageReport:
    usage = Usage(UsageKind.ENRICHMENT, results, provider, data_type)
    return UsageReport(workbook_id, usage, new_key("held"))


async def _acquisitions(monkeypatch, workspace_id: str, workbook_id: str) -> int:
    """Connections taken from the pool (through tortoise's client) by one single charge."""
    client = connection()
    original, taken = client.acquire_connection, []

    def counted() -> Any:
        taken.append(1)
        return original()

    monkeypatch.setattr(client, "acquire_connection", counted)
    try:
        ws = uuid.UUID(workspace_id)
        await charging.charge_one(ws, _report(workbook_id), datetime.now(UTC))
    finally:
        monkeypatch.setattr(client, "acquire_connection", original)
    return len(taken)


async def test_a_single_charge_takes_one_connection_not_one_a_statement(api, monkeypatch):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    monkeypatch.setattr(held, "enabled", False)
    assert await _acquisitions(monkeypatch, t.id, wb) == 2  # first read, statement
    monkeypatch.setattr(held, "enabled", True)
    assert await _acquisitions(monkeypatch, t.id, wb) == 1
    await assert_ledger_matches(t.id)


async def _outcome(workspace_id: str, report: UsageReport) -> object:
    try:
        return await charging.charge_one(uuid.UUID(workspace_id), report, datetime.now(UTC))
    except Refused as refusal:
        return refusal.code


async def test_no_charge_holds_a_connection_while_it_waits_for_another(api, enabled):
    # given: more charges at once than the pool has connections: a hot workspace's (they wait
    # in its group-commit lane), one refused charge on each of more workspaces than there are
    # connections (a refusal is decided again the locked way, in a transaction), and plain
    # ones (the one statement)
    size = connection()._pool.get_max_size()
    hot = await api.create_workspace("launch")
    hot_wb = await api.create_workbook(hot.admin_key)
    poor = [await api.create_workspace("free") for _ in range(size + 5)]
    poor_wbs = [await api.create_workbook(t.admin_key) for t in poor]
    plain = [await api.create_workspace("launch") for _ in range(4)]
    plain_wbs = [await api.create_workbook(t.admin_key) for t in plain]
    charges = [_outcome(hot.id, _report(hot_wb)) for _ in range(size)]
    for t, w in zip(poor, poor_wbs, strict=True):  # 21 phones of 5 credits: 105 > 100
        charges.append(_outcome(t.id, _report(w, "apollo", "phone", results=21)))
    for t, w in zip(plain * 5, plain_wbs * 5, strict=True):
        charges.append(_outcome(t.id, _report(w)))
    # when: all at once; a request holding one connection while waiting for another would
    # leave the pool dry and every request waiting
    outcomes = await asyncio.wait_for(asyncio.gather(*charges), timeout=60)
    # then: every charge answered, and exact
    refused = [o for o in outcomes if isinstance(o, ErrorCode)]
    assert refused == [ErrorCode.INSUFFICIENT_DATA_CREDITS] * len(poor)
    assert outcomes[size : size + len(poor)] == refused
    for t in [hot, *poor, *plain]:
        await assert_ledger_matches(t.id)
    pool = connection()._pool
    assert pool.get_idle_size() == pool.get_size()


async def _connections_out(expected: int) -> int:
    """Connections out of the pool, once they settle at `expected` (or after a second)."""
    pool = connection()._pool
    for _ in range(100):
        out = pool.get_size() - pool.get_idle_size()
        if out == expected:
            break
        await asyncio.sleep(0.01)
    return out


async def test_a_charge_waiting_in_its_workspace_lane_holds_no_connection(api, enabled, gate):
    # given: a charge in flight, held by the gate in its transaction, and five queued behind
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    ws = uuid.UUID(t.id)
    tasks = [asyncio.create_task(_outcome(t.id, _report(wb)))]
    await _queued(ws, 0)
    for n in range(1, 6):
        tasks.append(asyncio.create_task(_outcome(t.id, _report(wb))))
        await _queued(ws, n)
    # then: only the first one's connection is out; the waiting ones gave theirs back
    out = await _connections_out(1)
    gate.set()
    outcomes = await asyncio.gather(*tasks)
    assert out == 1
    assert not any(isinstance(o, ErrorCode) for o in outcomes)
    await assert_ledger_matches(t.id)


async def test_a_charge_joins_its_lane_before_giving_its_connection_back(
    api, enabled, gate, monkeypatch
):
    # given: a charge in flight (held by the gate) and a second of its workspace arriving
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    ws = uuid.UUID(t.id)
    first = asyncio.create_task(_outcome(t.id, _report(wb)))
    await _queued(ws, 0)
    original = held.let_go

    async def slow_let_go() -> None:
        # the first charge ends while the second gives its connection back: a second that
        # had not joined the lane yet would join it after it closed, and wait for ever
        gate.set()
        for _ in range(500):
            if group_commit._lanes.get(ws) is None:
                break
            await asyncio.sleep(0.01)
        await original()

    monkeypatch.setattr(held, "let_go", slow_let_go)
    second = asyncio.create_task(_outcome(t.id, _report(wb)))
    # then: both charged
    outcomes = await asyncio.wait_for(asyncio.gather(first, second), timeout=30)
    assert not any(isinstance(o, ErrorCode) for o in outcomes)
    await assert_ledger_matches(t.id)


async def test_invalid_reports_at_once_hold_no_connection_for_their_replay_lookup(api, enabled):
    # given: more reports at once than the pool has connections, each priced invalid (an
    # unknown provider), so each looks for a charge to replay (R13) before it is refused
    size = connection()._pool.get_max_size()
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    reports = [_report(wb, "no-such-provider", "email") for _ in range(size + 5)]
    # when: all at once
    outcomes = await asyncio.wait_for(
        asyncio.gather(*(_outcome(t.id, r) for r in reports), return_exceptions=True), timeout=60
    )
    # then: each refused as invalid input, none hanging, every connection back
    assert all(isinstance(o, InvalidInput) for o in outcomes), outcomes
    pool = connection()._pool
    assert pool.get_idle_size() == pool.get_size()
