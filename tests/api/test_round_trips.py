"""Database round trips per charge on PostgreSQL (issue 20), counted exactly.

Every statement Tally's pooled asyncpg connections send is one round trip (asyncpg's
statement cache prepares a statement once per connection; each case warms it first). A charge
used to cost 12 of them over GraphQL: the key, the workbook, the price, BEGIN, the claim, a lock
per table, an UPDATE, two INSERTs, the rollup and COMMIT. Now the claim and every lock are one
statement and every write is another (app.locks.charge_rows, app.usage.writes.write), and the
catalog version in force and the API key's check come with the workbook's read
(app.catalog.store.in_force_columns, app.workspaces.auth.Bearer). A single charge whose rows
nothing else changes takes two: that read, which brings its rows too, and one statement that
claims, checks and writes (app.usage.optimistic); any other goes the locked way.
A change that adds a round trip to the hot path fails here.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from app.db import PooledConnection
from app.kinds import UsageKind
from app.usage import optimistic
from app.usage.charging import charge_batch, charge_one
from app.usage.costs import Usage
from app.usage.items import UsageReport
from tests.helpers import new_key


@pytest.fixture(autouse=True)
def postgres(database) -> None:
    if not database.is_postgres:
        pytest.skip("SQLite keeps the statement-per-step path: no server, no round trips")


ENRICHMENT = {"kind": "ENRICHMENT", "provider": "linkedin", "dataType": "profile", "results": 1}


@pytest.fixture
def statements(monkeypatch) -> Iterator[list[str]]:
    """Every statement sent, in order: "SELECT" for a read, else its first two words."""
    sent: list[str] = []
    for name in ("execute", "executemany", "fetch", "fetchrow", "fetchval"):
        original = getattr(PooledConnection, name)

        async def counted(self, *args, _original=original, **kwargs):
            words = str(args[0]).split() if args else [""]
            sent.append("SELECT" if words[0] == "SELECT" else " ".join(words[:2]))
            return await _original(self, *args, **kwargs)

        monkeypatch.setattr(PooledConnection, name, counted)
    yield sent


def _report(workbook_id: str, **fields) -> UsageReport:
    usage = Usage(UsageKind.ENRICHMENT, 1, "linkedin", "profile")
    return UsageReport(workbook_id, usage, new_key(), **fields)


async def _charged(api, statements, key, workbook_id, **fields) -> list[str]:
    await api.record_usage(key, workbook_id, **ENRICHMENT, **fields)  # warms the caches
    statements.clear()
    charge = await api.record_usage(key, workbook_id, **ENRICHMENT, **fields)
    assert charge["__typename"] == "Charge", charge
    return list(statements)


READ = ["SELECT"]  # the key, the workbook and the catalog version in force (its prices)
TXN = ["BEGIN;", "WITH claim_ins", "WITH w0", "COMMIT;"]  # claim + locks, every write
AT_ONCE = ["WITH w0"]  # claim, checks and writes: one statement, its own transaction


async def test_record_usage_over_graphql_takes_two_round_trips(api, statements):
    t = await api.create_workspace("launch")
    workbook = await api.create_workbook(t.admin_key)
    assert await _charged(api, statements, t.admin_key, workbook) == READ + AT_ONCE


async def test_without_the_one_statement_way_it_takes_five(api, statements, monkeypatch):
    monkeypatch.setattr(optimistic, "enabled", False)
    t = await api.create_workspace("launch")
    workbook = await api.create_workbook(t.admin_key)
    assert await _charged(api, statements, t.admin_key, workbook) == READ + TXN


async def test_a_refused_charge_is_decided_under_locks(api, statements):
    t = await api.create_workspace("launch")
    workbook = await api.create_workbook(t.admin_key)
    await api.record_usage(t.admin_key, workbook, **ENRICHMENT)  # warms the caches
    statements.clear()
    refused = await api.record_usage(
        t.admin_key, workbook, kind="ENRICHMENT", provider="apollo", dataType="phone", results=501
    )
    assert refused["code"] == "INSUFFICIENT_DATA_CREDITS"
    # the read, then the locked way (with the credits.depleted event it fires, R34)
    assert statements[:3] == READ + TXN[:2] and statements[-1] == "COMMIT;", statements
    assert AT_ONCE[0] not in statements


async def test_a_charge_in_a_run_with_a_hold_takes_six(api, statements):
    t = await api.create_workspace("launch")
    workbook = await api.create_workbook(t.admin_key)
    run = await api.start_run(t.admin_key, workbook, budget="100", holdMinutes=30, hold="50")
    sent = await _charged(api, statements, t.admin_key, workbook, runId=run["id"])
    # the run's ownership is one more read; its lock and its UPDATE ride in the same two
    assert sent == READ * 2 + TXN


async def test_the_service_call_takes_two_and_a_batch_of_100_five(api, statements):
    t = await api.create_workspace("enterprise")
    workbook = await api.create_workbook(t.admin_key)
    workspace_id = uuid.UUID(t.id)
    await charge_one(workspace_id, _report(workbook), datetime.now(UTC))
    statements.clear()
    await charge_one(workspace_id, _report(workbook), datetime.now(UTC))
    assert statements == READ + AT_ONCE
    statements.clear()
    outcomes = await charge_batch(
        workspace_id, [_report(workbook) for _ in range(100)], datetime.now(UTC)
    )
    assert len({o.id for o in outcomes}) == 100  # type: ignore[union-attr]
    assert statements == READ + TXN
