"""Group commit of one hot workspace's single charges (issue 20, app.usage.group_commit).

Charges of one workspace that arrive while one of its charges is in flight share the next
transaction, each answered with its own outcome, exactly as if charged alone in arrival order
(R12, R13, R25). PostgreSQL only: SQLite serializes transactions and never groups.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from app.catalog.changes import apply_catalog
from app.clock import utcnow
from app.db import PooledConnection, connection, fetch
from app.errors import BadRequest, ErrorCode, Refused
from app.kinds import UsageKind
from app.query_budget import query_budget
from app.usage import charging, group_commit
from app.usage.costs import Usage
from app.usage.items import UsageReport
from tests.api.test_r40_catalog_changes import DEFAULT, year
from tests.concurrency.test_r06_concurrent_runs import charge_all, profile
from tests.helpers import adjust_credits, ledger_rows, new_key

pytestmark = pytest.mark.usefixtures("postgres_only")

PROFILE = Usage(UsageKind.ENRICHMENT, 1, "linkedin", "profile")  # 0.5 credits, 1 Action
HALF = 5_000  # 0.5 Data Credits in units


@pytest.fixture
def commits(monkeypatch) -> Iterator[list[str]]:
    """Every COMMIT the pooled connections send (as tests/api/test_round_trips.py counts)."""
    sent: list[str] = []
    original = PooledConnection.execute

    async def counted(self, *args, **kwargs):
        if args and str(args[0]).split()[:1] == ["COMMIT;"]:
            sent.append("COMMIT")
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(PooledConnection, "execute", counted)
    yield sent


async def _left_with(api, credits: int):
    """A launch workspace (2,500 credits) left with `credits`, and a workbook."""
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    await adjust_credits(t.id, (credits - 2_500) * 10_000)
    return t, wb


async def _queued(workspace_id: uuid.UUID, count: int) -> None:
    for _ in range(1_000):
        lane = group_commit._lanes.get(workspace_id)
        if lane is not None and len(lane.waiting) == count:
            return
        await asyncio.sleep(0.002)
    raise AssertionError(f"{count} charges never queued")


async def _outcome(workspace_id: uuid.UUID, report: UsageReport) -> object:
    try:
        return await charging.charge_one(workspace_id, report, datetime.now(UTC))
    except Refused as refusal:
        return refusal.code


async def _grouped(workspace_id: str, reports: list[UsageReport], gate: asyncio.Event) -> list:
    """The first report in flight alone (held by `gate`), the others queued behind it in
    order, then all answered."""
    ws = uuid.UUID(workspace_id)
    tasks = [asyncio.create_task(_outcome(ws, reports[0]))]
    await _queued(ws, 0)
    for n, report in enumerate(reports[1:], 1):
        tasks.append(asyncio.create_task(_outcome(ws, report)))
        await _queued(ws, n)
    gate.set()
    return list(await asyncio.gather(*tasks, return_exceptions=True))


def _report(workbook_id: str, key: str | None = None, results: int = 1) -> UsageReport:
    usage = Usage(UsageKind.ENRICHMENT, results, "linkedin", "profile")
    return UsageReport(workbook_id, usage, key or new_key("g"))


async def _keys(workspace_id: str) -> dict[str, int]:
    rows = await fetch(
        connection(),
        "SELECT idempotency_key, count(*) AS n FROM charge WHERE workspace_id = $1"
        " GROUP BY idempotency_key",
        workspace_id,
    )
    return {r["idempotency_key"]: int(r["n"]) for r in rows}


async def _claims(workspace_id: str) -> set[str]:
    rows = await fetch(
        connection(),
        "SELECT key FROM idempotency_record WHERE workspace_id = $1 AND operation = $2",
        workspace_id,
        "recordUsage",
    )
    return {r["key"] for r in rows}


async def test_50_concurrent_charges_run_out_exactly_in_fewer_transactions(api, commits):
    t, wb = await _left_with(api, 10)  # 20 charges of 0.5 fit
    before = dict(group_commit.stats)
    commits.clear()
    outcomes = await charge_all(api, t.admin_key, [profile(wb) for _ in range(50)])
    assert outcomes == {"Charge": 20, "INSUFFICIENT_DATA_CREDITS": 30}
    assert group_commit.stats["groups"] > before["groups"]
    assert len(commits) < 50  # coalesced: fewer transactions than charges
    rows = await ledger_rows(t.id)
    credits = [r for r in rows if r[:2] == ("CHARGE", "DATA_CREDITS")]
    assert credits == [("CHARGE", "DATA_CREDITS", -HALF, 100_000 - HALF * n) for n in range(1, 21)]
    assert len([r for r in rows if r[:2] == ("CHARGE", "ACTIONS")]) == 20
    assert await api.meters(t.admin_key) == (20, 0)  # checks the ledger's sums too
    keys = await _keys(t.id)
    assert len(keys) == 20 and set(keys.values()) == {1}
    assert await _claims(t.id) == set(keys)  # refused keys left no trace (R13)


async def test_sustained_charges_count_against_their_own_requests_budget(api):
    """Each request's statements count against its own budget (app.query_budget). The
    drainer that charges the groups is started by one request and goes on as long as charges
    keep coming: its statements must not be that request's (they were, and past the first
    request's 300 every group failed with BAD_REQUEST, then INTERNAL_SERVER_ERROR)."""
    t, wb = await _left_with(api, 2_500)
    workspace = uuid.UUID(t.id)
    before = dict(group_commit.stats)

    async def client(n: int) -> list[str]:
        outcomes = []
        for i in range(12):  # one request after another, as a client does
            report = UsageReport(wb, PROFILE, f"c{n}-{i}")
            with query_budget(12):  # a charge needs 4 to 6 statements
                charge = await charging.charge_one(workspace, report, datetime.now(UTC))
            outcomes.append((charge.actions, charge.credits))
        return outcomes

    answers = await asyncio.gather(*(client(n) for n in range(20)))
    assert [a for answer in answers for a in answer] == [(1, HALF)] * 240
    assert group_commit.stats["groups"] - before["groups"] >= 5  # groups after groups
    assert group_commit.stats["retried"] == before["retried"]  # no group failed
    assert await api.meters(t.admin_key) == (240, 2_380)


async def test_r40_a_group_across_a_catalog_change_prices_each_charge_at_its_instant(api, gate):
    """R40 in a group: a group is recorded at its latest arrival's instant. A charge priced
    before a new catalog version's instant, queued in a group whose instant is after it, was
    recorded after the instant at the old price (the e2e R40 test caught one). It is charged
    alone, at the instant it was priced for; the rest of the group goes together."""
    with year(2111):  # a year no other test uses: the version applied here stays
        t, wb = await _left_with(api, 100)
        ws = uuid.UUID(t.id)
        instant = datetime(2111, 1, 1, 11, tzinfo=UTC)
        old = 'data_type = "profile"\nkind = "ENRICHMENT"\ncredits = "0.5"'
        dearer = DEFAULT.replace(old, old.replace('"0.5"', '"0.75"'))
        assert dearer != DEFAULT
        try:
            await apply_catalog(dearer, instant, utcnow)
            at = [instant - timedelta(minutes=2), instant - timedelta(seconds=1)]
            at += [instant, instant + timedelta(seconds=1)]
            reports = [_report(wb) for _ in at]
            tasks = [asyncio.create_task(_charge_at(ws, reports[0], at[0]))]
            await _queued(ws, 0)
            for n in range(1, len(at)):
                tasks.append(asyncio.create_task(_charge_at(ws, reports[n], at[n])))
                await _queued(ws, n)
            gate.set()
            charges = await asyncio.gather(*tasks)
        finally:
            await apply_catalog(DEFAULT, datetime(2111, 12, 31, tzinfo=UTC), utcnow)
    got = [(c.created_at, c.credits) for c in charges]
    assert got == [(at[0], HALF), (at[1], HALF), (at[3], 7_500), (at[3], 7_500)]
    assert await api.meters(t.admin_key) == (4, Decimal("97.5"))


async def _charge_at(workspace_id: uuid.UUID, report: UsageReport, now: datetime) -> object:
    return await charging.charge_one(workspace_id, report, now)


async def test_a_budget_that_ends_at_begin_releases_the_connection(api):
    """A request whose statement budget runs out where a transaction begins is refused
    (BAD_REQUEST) and gives its pooled connection back: 60 of them (more than the pool holds)
    left every later request waiting for a connection before."""
    t, wb = await _left_with(api, 100)
    ws = uuid.UUID(t.id)

    async def refused(n: int) -> None:
        with pytest.raises(BadRequest), query_budget(1):  # the workbook read, then BEGIN
            await charging.charge_one(ws, UsageReport(wb, PROFILE, f"r{n}"), datetime.now(UTC))

    for n in range(60):
        await asyncio.wait_for(asyncio.create_task(refused(n)), 5)  # a task each, as requests

    async def charged(n: int) -> object:
        return await charging.charge_one(ws, UsageReport(wb, PROFILE, f"c{n}"), datetime.now(UTC))

    charges = await asyncio.wait_for(asyncio.gather(*(charged(n) for n in range(30))), 20)
    assert [c.credits for c in charges] == [HALF] * 30
    assert await api.meters(t.admin_key) == (30, Decimal("85"))


async def test_one_group_answers_each_caller_in_arrival_order(api, gate):
    t, wb = await _left_with(api, 2)  # 4 charges of 0.5
    repeated = new_key("again")
    reports = [
        _report(wb),  # alone, held open
        _report(wb, repeated),
        _report(wb, repeated),  # the same request again: the same charge (R13)
        _report(wb, repeated, results=2),  # the key with another request
        _report(wb),
        _report(wb, results=3),  # 1.5 credits: more than the 1 left
        _report(wb),  # the last 0.5
        _report(wb),  # nothing left
    ]
    before = dict(group_commit.stats)
    out = await _grouped(t.id, reports, gate)
    assert group_commit.stats["groups"] == before["groups"] + 1
    assert group_commit.stats["grouped"] == before["grouped"] + 7
    assert [getattr(o, "idempotency_key", o) for o in out] == [
        reports[0].idempotency_key,
        repeated,
        repeated,
        ErrorCode.IDEMPOTENCY_KEY_REUSED,
        reports[4].idempotency_key,
        ErrorCode.INSUFFICIENT_DATA_CREDITS,
        reports[6].idempotency_key,
        ErrorCode.INSUFFICIENT_DATA_CREDITS,
    ]
    assert out[1].id == out[2].id
    rows = await ledger_rows(t.id)
    credits = [r[3] for r in rows if r[:2] == ("CHARGE", "DATA_CREDITS")]
    assert credits == [15_000, 10_000, 5_000, 0]
    assert await api.meters(t.admin_key) == (4, 0)
    charged = {reports[n].idempotency_key for n in (0, 1, 4, 6)}
    assert await _keys(t.id) == dict.fromkeys(charged, 1)
    assert await _claims(t.id) == charged


async def test_a_failing_item_fails_only_its_own_caller(api, gate, monkeypatch):
    t, wb = await _left_with(api, 100)
    bad = new_key("bad")
    gated = charging.transact

    async def failing(workspace_id, items, now, one_by_one=False):
        if any(i.report.idempotency_key == bad for i in items):
            raise RuntimeError("this item breaks its transaction")
        await gated(workspace_id, items, now, one_by_one)

    monkeypatch.setattr(charging, "transact", failing)
    reports = [_report(wb), _report(wb), _report(wb, bad), _report(wb)]
    before = dict(group_commit.stats)
    out = await _grouped(t.id, reports, gate)
    assert isinstance(out[2], RuntimeError)
    assert [o.idempotency_key for n, o in enumerate(out) if n != 2] == [
        reports[n].idempotency_key for n in (0, 1, 3)
    ]
    assert group_commit.stats["retried"] == before["retried"] + 3
    assert await api.meters(t.admin_key) == (3, 100 - 1.5)
    assert set(await _keys(t.id)) == {reports[n].idempotency_key for n in (0, 1, 3)}


PHONE = Usage(UsageKind.ENRICHMENT, 1, "apollo", "phone")  # 5 credits a result
# Results of each charge, from 2,500 credits with an alert at 1,200 and an auto top-up of
# 1,000 below 500, once a cycle: 1,500 left; the alert fires at 1,000; 400 buys the top-up
# (1,400: the alert re-arms); it fires again at 1,100; 100 left; 200 is refused for credits
# (depleted fires); the last 100 leaves 0.
SEQUENCE = [200, 100, 120, 60, 200, 40, 20]


async def _scenario(api) -> tuple[str, str]:
    from tests.api.test_r35_alerts import set_alert
    from tests.api.test_r37_auto_top_up import turn_on

    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    await set_alert(api, t.admin_key, "DATA_CREDITS", "1200")
    await turn_on(api, t.admin_key, "500", "1000", per_cycle=1)
    return t.id, wb


def _phone(workbook_id: str, results: int) -> UsageReport:
    usage = Usage(UsageKind.ENRICHMENT, results, "apollo", "phone")
    return UsageReport(workbook_id, usage, new_key("eq"))


async def _rows(workspace_id: str) -> dict[str, object]:
    """Everything the charges left, without ids and instants."""
    q = connection()
    events = await fetch(q, "SELECT type, data FROM event WHERE workspace_id = $1 ORDER BY seq",
                         workspace_id)  # fmt: skip
    ws = await fetch(
        q,
        "SELECT credit_balance, actions_used, depleted_headroom, exhausted_headroom,"
        " auto_topup_used FROM workspace WHERE id = $1",
        workspace_id,
    )
    alerts = await fetch(q, "SELECT armed FROM alert WHERE workspace_id = $1", workspace_id)
    billed = await fetch(
        q, "SELECT kind, amount_cents FROM billing_charge WHERE workspace_id = $1"
        " ORDER BY created_at", workspace_id,
    )  # fmt: skip
    charges = await fetch(
        q, "SELECT results, actions, credits FROM charge WHERE workspace_id = $1"
        " ORDER BY credits DESC, results", workspace_id,
    )  # fmt: skip
    return {
        "events": [
            (e["type"], {k: v for k, v in json.loads(e["data"]).items() if not k.endswith("Id")})
            for e in events
        ],
        "ledger": await ledger_rows(workspace_id),
        "workspace": [dict(r) for r in ws],
        "alerts": [r["armed"] for r in alerts],
        "billed": [tuple(r.values()) for r in billed],
        "charges": [tuple(r.values()) for r in charges],
    }


async def test_grouped_charges_leave_what_one_by_one_charges_leave(api, gate, monkeypatch):
    grouped_id, wb = await _scenario(api)
    grouped = await _grouped(grouped_id, [_phone(wb, n) for n in SEQUENCE], gate)
    monkeypatch.setattr(group_commit, "enabled", False)
    alone_id, wb = await _scenario(api)
    alone = [await _outcome(uuid.UUID(alone_id), _phone(wb, n)) for n in SEQUENCE]
    answers = [getattr(o, "credits", o) for o in grouped]
    assert answers == [getattr(o, "credits", o) for o in alone]
    assert answers[5] is ErrorCode.INSUFFICIENT_DATA_CREDITS
    left = await _rows(grouped_id)
    assert left == await _rows(alone_id)
    assert [e[0] for e in left["events"]] == [
        "credits.threshold_crossed",
        "topup.purchased",
        "credits.threshold_crossed",
        "credits.depleted",
    ]
    assert [e[1].get("available") for e in left["events"]] == ["1000", None, "1100", "100"]
