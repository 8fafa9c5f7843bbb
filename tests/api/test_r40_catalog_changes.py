"""R40: the catalog changes from an instant on; charges before it, and their refunds, keep
their prices; plan fees and grants follow it at each next renewal; its history is kept.

The test database is shared by the whole session and the catalog's history is append-only, so
each test here works in a year of its own, far past any other test's clock (`window`), and
puts the seeded catalog back in force at its end.
"""

import asyncio
import contextlib
import json
import os
import sqlite3
import subprocess
import sys
from contextvars import Context
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import time_machine
from tortoise.transactions import in_transaction

from app import audit, locks
from app.catalog import load_catalog
from app.catalog.changes import apply_catalog
from app.catalog.files import dump_catalog
from app.catalog.store import catalog_at
from app.clock import utcnow
from app.db import connection, fetch
from tests.helpers import assert_ledger_matches, run_jobs

DEFAULT = dump_catalog(load_catalog())
APPLY = """mutation($c: String!, $at: DateTime) { applyCatalog(catalog: $c, at: $at) {
  id effectiveAt appliedAt appliedBy catalog } }"""
VERSIONS = "{ catalogVersions { id effectiveAt appliedBy catalog } }"
SHOW = "query($at: DateTime) { catalogAt(at: $at) }"
PRICES = "{ priceCatalog { provider dataType credits } }"


def changed(text: str, *edits: tuple[str, str]) -> str:
    for old, new in edits:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text


LINKEDIN = 'provider = "linkedin"\ndata_type = "profile"\nkind = "ENRICHMENT"\ncredits = '
LINKEDIN_075 = (LINKEDIN + '"0.5"', LINKEDIN + '"0.75"')


def year(y: int):
    """The clock stopped at 10:00 UTC on 1 January of a year no other test uses."""
    return time_machine.travel(datetime(y, 1, 1, 10, tzinfo=UTC), tick=False)


async def restore() -> None:
    """The seeded catalog, in force again from the last day of the clock's year on: after
    every version the test applied, before any other test's year."""
    await apply_catalog(DEFAULT, datetime(utcnow().year, 12, 31, tzinfo=UTC), utcnow)


class Operator:
    """The operator's GraphQL calls."""

    def __init__(self, api) -> None:
        self.api = api

    async def gql(self, query, variables=None):
        return await self.api.gql(query, variables, key=self.api.operator_key)

    async def raw(self, query, variables=None):
        return await self.api.raw(query, variables, key=self.api.operator_key)


async def price(api, key) -> dict[str, str]:
    rows = (await api.gql(PRICES, key=key))["priceCatalog"]
    return {f"{r['provider']}/{r['dataType']}": r["credits"] for r in rows}


async def enrich(api, key, wb, results):
    charge = await api.record_usage(
        key, wb, kind="ENRICHMENT", provider="linkedin", dataType="profile", results=results
    )
    assert charge["__typename"] == "Charge", charge
    return charge


async def test_r40_charges_from_the_instant_on_use_the_new_price_refunds_keep_theirs(api):
    with year(2101) as window:
        await _prices_change_at_the_instant(api, window)


async def _prices_change_at_the_instant(api, window):
    op = Operator(api)
    t0 = datetime(2101, 1, 1, 10, tzinfo=UTC)
    switch = t0 + timedelta(seconds=1)
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    try:
        body = changed(DEFAULT, LINKEDIN_075)
        version = (await op.gql(APPLY, {"c": body, "at": switch.isoformat()}))["applyCatalog"]
        assert version["effectiveAt"] == switch.isoformat()
        assert version["appliedAt"] == t0.isoformat() and version["appliedBy"] == "operator"
        assert version["catalog"] == body
        # Until the clock reaches the instant, nothing changes.
        assert (await price(api, t.admin_key))["linkedin/profile"] == "0.5"
        window.move_to(switch - timedelta(microseconds=1))
        before = await enrich(api, t.admin_key, wb, 10)
        assert before["dataCredits"] == "5"
        window.move_to(switch)
        after = await enrich(api, t.admin_key, wb, 10)
        assert after["dataCredits"] == "7.5"
        assert (await price(api, t.admin_key))["linkedin/profile"] == "0.75"
        # Refunds are of what each charge cost, whatever the catalog says now.
        assert (await api.refund(t.admin_key, before["id"], results=4))["dataCredits"] == "2"
        assert (await api.refund(t.admin_key, after["id"], results=4))["dataCredits"] == "3"
        assert (await api.refund(t.admin_key, before["id"]))["dataCredits"] == "3"
        # 2,500 - 5 - 7.5 + 2 + 3 + 3; Actions: 20 used, refunds do not return them (R22).
        assert await api.meters(t.admin_key) == (20, Decimal("2495.5"))
        # A batch at the instant is priced by it too, item by item.
        batch = await api.record_batch(
            t.admin_key,
            [
                {
                    "workbookId": wb,
                    "kind": "ENRICHMENT",
                    "provider": "linkedin",
                    "dataType": "profile",
                    "results": 2,
                    "idempotencyKey": f"b{i}",
                }
                for i in range(2)
            ],
        )
        assert [i["dataCredits"] for i in batch["results"]] == ["1.5", "1.5"]
    finally:
        await restore()
    window.move_to(datetime(2101, 12, 31, tzinfo=UTC))  # the seeded catalog again
    assert (await price(api, t.admin_key))["linkedin/profile"] == "0.5"


async def test_r40_renewals_take_fees_and_grants_from_the_catalog_at_their_boundary(api):
    with year(2102) as window:
        await _renewals_at_their_boundary(api, window)


async def _renewals_at_their_boundary(api, window):
    t = await api.create_workspace("launch")  # monthly, 2,500 credits: 85 + 100 = 185.00
    try:
        body = changed(
            DEFAULT,
            ('base_fee_usd = "85"', 'base_fee_usd = "95"'),
            ("monthly_actions = 15000", "monthly_actions = 16000"),
        )
        await apply_catalog(body, datetime(2102, 2, 15, tzinfo=UTC), utcnow)
        # Both renewals run late, in one sweep: February's boundary is before the change,
        # March's after it.
        window.move_to(datetime(2102, 3, 5, tzinfo=UTC))
        await run_jobs(datetime(2102, 3, 5, tzinfo=UTC), t.id)
        charges = await api.billing(
            t.admin_key, start="2102-01-01T00:00:00Z", end="2103-01-01T00:00:00Z"
        )
        fees = sorted((c["periodStart"], c["amount"]) for c in charges if c["kind"] == "PLAN_FEE")
        assert fees == [
            ("2102-01-01T10:00:00+00:00", "185.00"),
            ("2102-02-01T10:00:00+00:00", "185.00"),
            ("2102-03-01T10:00:00+00:00", "195.00"),
        ]
        grants = await fetch(
            connection(),
            "SELECT created_at, amount FROM ledger_entry WHERE workspace_id = $1"
            " AND meter = 'ACTIONS' AND entry_type = 'GRANT' ORDER BY id",
            t.id,
        )
        assert [int(g["amount"]) for g in grants] == [15000, 15000, 16000]
        ws = await api.workspace(t.admin_key)
        assert ws["actions"]["capacity"] == 16000
        await assert_ledger_matches(t.id)
    finally:
        await restore()


async def test_r40_show_and_history(api):
    with year(2103) as window:
        await _show_and_history(api, window)


async def _show_and_history(api, window):
    op = Operator(api)
    t0 = datetime(2103, 1, 1, 10, tzinfo=UTC)
    first, second = t0 + timedelta(hours=1), t0 + timedelta(hours=2)
    try:
        a = changed(DEFAULT, LINKEDIN_075)
        b = changed(DEFAULT, ('credits = "5"', 'credits = "6"'))  # apollo/phone
        for body, at in ((b, second), (a, first)):  # applied out of order: by instant
            await op.gql(APPLY, {"c": body, "at": at.isoformat()})
        shown = {
            at: (await op.gql(SHOW, {"at": at.isoformat()}))["catalogAt"]
            for at in (
                t0,
                first - timedelta(microseconds=1),
                first,
                second,
                second + timedelta(days=9),
            )
        }
        assert list(shown.values()) == [DEFAULT, DEFAULT, a, b, b]
        assert (await op.gql(SHOW))["catalogAt"] == DEFAULT  # now: t0
        versions = (await op.gql(VERSIONS))["catalogVersions"]
        assert versions[0]["effectiveAt"] == "1970-01-01T00:00:00+00:00"
        versions = [v for v in versions if v["effectiveAt"].startswith("2103")]  # this test's
        assert [v["effectiveAt"] for v in versions] == [first.isoformat(), second.isoformat()]
        assert [v["catalog"] for v in versions] == [a, b]
        # What show prints can be applied again, to the same catalog.
        again = await op.gql(APPLY, {"c": shown[first], "at": second.isoformat()})
        assert again["applyCatalog"]["catalog"] == a
    finally:
        await restore()


async def test_r40_a_past_instant_and_wrong_catalogs_change_nothing(api):
    with year(2104) as window:
        await _wrong_catalogs(api, window)


async def _wrong_catalogs(api, window):
    op = Operator(api)
    before = (await op.gql(VERSIONS))["catalogVersions"]
    cases = [
        ("[billing\n", "not TOML"),
        (DEFAULT + "\n[extra]\n", "the file: unknown key 'extra'"),
        (changed(DEFAULT, (LINKEDIN_075[0], LINKEDIN_075[0].replace('"0.5"', "0.5"))),
         'prices[0].credits must be a decimal string such as "0.5"; got 0.5'),
        (changed(DEFAULT, LINKEDIN_075, ('credits = "0.75"', 'credits = "0.12345"')),
         "prices[0].credits has more than 4 decimal places"),
        (changed(DEFAULT, ('free_plan = "free"', 'free_plan = "gratis"')),
         "billing.free_plan is 'gratis', which no [[plans]] entry has"),
        (changed(DEFAULT, ("credit_tiers = [100]", "credit_tiers = []")),
         "plans[0].credit_tiers must list"),
        (changed(DEFAULT, ('code = "launch"', 'code = "growth"')),
         "two [[plans]] entries have the code 'growth'"),
        (changed(DEFAULT, ('"ENRICHMENT"\ncredits = "5"', '"SOURCING"\ncredits = "5"')),
         "prices[3].kind must be a billable kind other than AI; got 'SOURCING'"),
    ]  # fmt: skip
    try:
        for body, message in cases:
            raw = await op.raw(APPLY, {"c": body})
            assert "errors" in raw, body
            [error] = raw["errors"]
            assert error["extensions"] == {"code": "INVALID_INPUT"}, body
            assert message in error["message"], error["message"]
        past = (datetime(2104, 1, 1, 10, tzinfo=UTC) - timedelta(microseconds=1)).isoformat()
        raw = await op.raw(APPLY, {"c": DEFAULT, "at": past})
        assert raw["errors"][0]["extensions"] == {"code": "INVALID_INPUT"}
        assert "is in the past" in raw["errors"][0]["message"]
        assert (await op.gql(VERSIONS))["catalogVersions"] == before
    finally:
        if (await op.gql(VERSIONS))["catalogVersions"] != before:
            await restore()  # a wrong catalog was taken: put the seeded one back


async def test_r40_only_the_operator_changes_or_reads_the_catalog_and_it_is_audited(api):
    with year(2105) as window:
        await _operator_only_and_audited(api, window)


async def _operator_only_and_audited(api, window):
    op = Operator(api)
    t = await api.create_workspace("launch")
    for query, variables in ((APPLY, {"c": DEFAULT}), (VERSIONS, None), (SHOW, None)):
        assert await api.error_code(query, variables, key=t.admin_key) == "FORBIDDEN"
    versions = len((await op.gql(VERSIONS))["catalogVersions"])
    try:
        at = datetime(2105, 6, 1, tzinfo=UTC)
        applied = await op.raw(APPLY, {"c": changed(DEFAULT, LINKEDIN_075), "at": at.isoformat()})
        version = applied["data"]["applyCatalog"]["id"]
        rows = await fetch(
            connection(),
            'SELECT workspace_id, actor, api_key_id, action, target, before, "after", at'
            " FROM audit_entry WHERE action = 'catalog.apply' AND target = $1",
            f"catalog version {version}",
        )
        [row] = rows
        assert (row["workspace_id"], row["actor"], row["api_key_id"]) == (None, "operator", None)
        assert json.loads(row["before"]) == {"prices.linkedin/profile": "0.5 ENRICHMENT"}
        assert json.loads(row["after"]) == {
            "prices.linkedin/profile": "0.75 ENRICHMENT",
            "effectiveAt": at.isoformat(),
            "version": int(version),
        }
        assert len((await op.gql(VERSIONS))["catalogVersions"]) == versions + 1
        # The workspace's own audit log holds none of the operator's catalog changes.
        log = await api.gql(
            "{ auditLog(first: 50) { edges { node { action } } } }", key=t.admin_key
        )
        assert "catalog.apply" not in {e["node"]["action"] for e in log["auditLog"]["edges"]}
    finally:
        await restore()


async def test_r40_a_read_for_the_new_instant_waits_for_the_version_to_commit(api, monkeypatch):
    real_record = audit.record

    async def slow_record(*args, **kwargs):
        await asyncio.sleep(0.3)  # the version is written, not committed: the read runs now
        await real_record(*args, **kwargs)

    monkeypatch.setattr(audit, "record", slow_record)
    with year(2106) as window:
        await _read_waits_for_commit(api, window)


async def _read_waits_for_commit(api, window):
    """The apply reads the clock with the catalog's readers held back: a read for that
    instant made meanwhile (another connection; another process alike) sees the new version."""
    body = changed(DEFAULT, LINKEDIN_075)
    reads: list[asyncio.Task] = []

    def clock() -> datetime:
        now = utcnow()
        # In a context of its own, as a request's: not in the apply's transaction.
        task = asyncio.get_running_loop().create_task(catalog_at(now), context=Context())
        reads.append(task)
        return now

    try:
        await apply_catalog(body, None, clock)
        [read] = reads
        seen = await read
        assert {(p.provider, p.data_type): p.credits_units for p in seen.prices}[
            ("linkedin", "profile")
        ] == 7_500
    finally:
        await restore()


def test_r40_the_shell_applies_and_shows_catalogs_as_the_operator(tmp_path):
    """`tally catalog apply` and `show` on a database of their own (the real clock)."""
    env = {**os.environ, "TALLY_DATABASE_URL": f"sqlite://{tmp_path}/t.sqlite3",
           "TALLY_OPERATOR_KEY": "tly_op_cli"}  # fmt: skip

    def tally(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "tally", "catalog", *args],
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    def versions() -> list[tuple]:
        with contextlib.closing(sqlite3.connect(tmp_path / "t.sqlite3")) as db:
            return db.execute("SELECT id, effective_at, actor FROM catalog_version").fetchall()

    bad = tmp_path / "bad.toml"
    bad.write_text(changed(DEFAULT, ("monthly_actions = 500", 'monthly_actions = "500"')))
    refused = tally("apply", str(bad))
    assert refused.returncode == 2, refused
    assert refused.stderr == "INVALID_INPUT: plans[0].monthly_actions must be a whole number;" \
        " got '500'\n"  # fmt: skip
    assert [v[2] for v in versions()] == ["seed"]  # nothing but the seeded catalog
    good = tmp_path / "good.toml"
    good.write_text(changed(DEFAULT, LINKEDIN_075))
    applied = tally("apply", str(good), "--at", "2101-01-01")
    assert applied.returncode == 0, applied
    assert applied.stdout.startswith("catalog version 2 in force from 2101-01-01T00:00:00+00:00")
    past = tally("apply", str(good), "--at", "2020-01-01T00:00:00Z")
    assert past.returncode == 2 and "is in the past" in past.stderr
    assert tally("show", "--at", "2100-12-31T23:59:59.999999Z").stdout == DEFAULT
    assert tally("show", "--at", "2101-01-01").stdout == good.read_text()
    assert tally("show").stdout == DEFAULT  # now
    with contextlib.closing(sqlite3.connect(tmp_path / "t.sqlite3")) as db:
        rows = db.execute("SELECT workspace_id, actor, api_key_id, action, target"
                          " FROM audit_entry").fetchall()  # fmt: skip
    assert rows == [(None, "operator", None, "catalog.apply", "catalog version 2")]


async def test_r40_a_removed_plan_cannot_be_chosen_and_its_workspaces_renew_on_it(api):
    with year(2107) as window:
        await _removed_plan(api, window)


async def _removed_plan(api, window):
    op = Operator(api)
    t = await api.create_workspace("launch")
    other = await api.create_workspace("growth")
    start = DEFAULT.index('[[plans]]\ncode = "launch"')
    end = DEFAULT.index('[[plans]]\ncode = "growth"')
    try:
        await op.gql(APPLY, {"c": DEFAULT[:start] + DEFAULT[end:], "at": "2107-01-10T00:00:00Z"})
        window.move_to(datetime(2107, 1, 15, tzinfo=UTC))
        plans = await api.gql("{ plans { code } }", key=t.admin_key)
        assert [p["code"] for p in plans["plans"]] == ["free", "growth", "enterprise"]
        assert (await api.workspace(t.admin_key))["plan"]["code"] == "launch"
        create = """mutation { createWorkspace(input: {name: "x", plan: "launch"}) {
                      adminKey } }"""
        assert await api.error_code(create, key=api.operator_key) == "INVALID_INPUT"
        moved = await api.raw(
            """mutation { changePlan(input: {plan: "launch", idempotencyKey: "to-launch"}) {
                 __typename } }""",
            key=other.admin_key,
        )
        assert moved["errors"][0]["message"] == "unknown plan 'launch'"
        window.move_to(datetime(2107, 2, 2, tzinfo=UTC))
        await run_jobs(datetime(2107, 2, 2, tzinfo=UTC), t.id)
        ws = await api.workspace(t.admin_key)
        assert (ws["plan"]["code"], ws["actions"]["capacity"]) == ("launch", 15000)
        charges = await api.billing(
            t.admin_key, start="2107-01-01T00:00:00Z", end="2108-01-01T00:00:00Z"
        )
        assert sorted((c["periodStart"], c["amount"]) for c in charges) == [
            ("2107-01-01T10:00:00+00:00", "185.00"),
            ("2107-02-01T10:00:00+00:00", "185.00"),
        ]
    finally:
        await restore()


async def test_r40_an_apply_held_off_by_a_long_reader_gives_up_and_changes_nothing(
    api, postgres_only, monkeypatch
):
    """The lock waits at most CATALOG_LOCK_TIMEOUT for a transaction that read the catalog:
    charges queue behind a waiting apply, so it must not wait long."""
    monkeypatch.setattr(locks, "CATALOG_LOCK_TIMEOUT", "200ms")
    op = Operator(api)
    with year(2109):
        versions = len((await op.gql(VERSIONS))["catalogVersions"])
        reading, release = asyncio.Event(), asyncio.Event()

        async def long_reader() -> None:
            async with in_transaction() as conn:
                await catalog_at(utcnow(), conn)
                reading.set()
                await release.wait()

        reader = asyncio.get_running_loop().create_task(long_reader(), context=Context())
        await reading.wait()
        try:
            response = await api.client.post(
                "/graphql",
                json={"query": APPLY, "variables": {"c": changed(DEFAULT, LINKEDIN_075)}},
                headers={"Authorization": f"Bearer {api.operator_key}"},
            )
        finally:
            release.set()
            await reader
        assert response.status_code == 503  # as for a lost database: retry
        [error] = response.json()["errors"]
        assert error["extensions"] == {"code": "SERVICE_UNAVAILABLE"}
        assert "over 200ms; nothing changed: try again" in error["message"]
        assert len((await op.gql(VERSIONS))["catalogVersions"]) == versions
