"""The 90-day usage dashboard over a workspace with ~10 million ledger rows, against raw SQL.

    .venv/bin/python bench/history.py [--rows 10000000] [--runs 200] [--keep | --reuse NAME]

Creates a fresh PostgreSQL database with the real migrations, then generates in SQL one
workspace with ~`--rows` ledger rows spread over 400 days: charges (two ledger rows each, across
`--workbooks` workbooks, `--tables` tables each, five providers or AI models, monthly cycles),
one in a hundred refunded a day later (one more ledger row each), and their daily rollups,
summed from those charges and refunds by migration 0005's backfill query. Balances
(`balance_after`) are not simulated. Then it times the dashboard's query for the last 90 days,
grouped by DAY and by WORKBOOK, `--runs` times each through `app.history.service.usage_history`
and through `POST /graphql` in-process, and prints p50/p95. The baseline, in the same run,
computes the same answers by aggregating the raw charge and refund rows of those 90 days with
one SQL statement via asyncpg, and the bench checks that both answers agree.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import statistics
import sys
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, time, timedelta
from time import perf_counter
from typing import Any

import asyncpg
import httpx

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from app.catalog import load_catalog
from app.catalog.store import seed_catalog
from app.config import Settings
from app.db import close_database, open_database
from app.history.rules import UsageDimension, UsageRow
from app.history.service import usage_history
from app.workspaces.auth import hash_secret
from graphql_schema.asgi import create_app

SERVER = os.environ.get("TALLY_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
START = datetime(2024, 1, 1, 10, tzinfo=UTC)  # the billing anchor: cycles start on the 1st
DAYS = 400
END = START + timedelta(days=DAYS)
WORKSPACE = uuid.UUID("00000000-0000-4000-8000-000000000001")
SECRET = "tly_bench-history-member-key"
REFUND_EVERY = 100  # one charge in a hundred is refunded in full, a day later

WORKSPACE_SQL = """
INSERT INTO workspace (id, name, plan_code, credit_tier, billing_interval, status, anchor_at,
    period_start, period_end, actions_period_end, actions_capacity, actions_used,
    credit_balance, monthly_credits, created_at)
VALUES ($1, 'bench', 'enterprise', 250000, 'ANNUAL', 'ACTIVE', $2, $2, $3, $3, 100000, 0,
        0, 2500000000, $2)
"""
WORKBOOKS_SQL = """
INSERT INTO workbook (id, workspace_id, name, spend_limit, spent, spend_epoch, created_at)
SELECT md5('wb' || i)::uuid, $1, 'Workbook ' || lpad(i::text, 3, '0'), NULL, 0, 0, $2
  FROM generate_series(0, $3 - 1) AS i
"""
API_KEY_SQL = """
INSERT INTO api_key (id, workspace_id, name, role, key_hash, prefix, created_at)
VALUES ($1, $2, 'bench', 'MEMBER', $3, 'tly_bench', $4)
"""
# Charge g: workbook g % W, table g / W % T, provider g / (W T) % 5 (so every mix appears),
# 1-10 results, at an even pace over the 400 days; the cycle is the month (anchored on the 1st
# at 10:00) it falls in.
CHARGES_SQL = """
INSERT INTO charge (id, workspace_id, workbook_id, table_id, kind, provider, data_type, model,
    input_tokens, output_tokens, own_api_key, results, actions, credits, refunded_results,
    refunded_credits, idempotency_key, created_at, period_start)
SELECT md5('c' || g)::uuid, $1, md5('wb' || (g % $3))::uuid, 'table-' || (g / $3 % $4),
       p.kind, p.provider, p.data_type, p.model, 0, 0, false, r, r, r * p.price,
       CASE WHEN g % $5 = 7 THEN r ELSE 0 END, CASE WHEN g % $5 = 7 THEN r * p.price ELSE 0 END,
       'bench-' || g, t, date_trunc('month', t - interval '10 hours') + interval '10 hours'
  FROM generate_series(0, $2 - 1) AS g,
       LATERAL (SELECT 1 + g % 10 AS r,
                       $6::timestamptz + (g::float8 / $2) * interval '400 days' AS t) AS x,
       LATERAL (SELECT * FROM (VALUES
         (0, 'ENRICHMENT', 'linkedin', 'profile', NULL, 5000),
         (1, 'ENRICHMENT', 'hunter', 'email', NULL, 5000),
         (2, 'ENRICHMENT', 'apollo', 'phone', NULL, 50000),
         (3, 'ENRICHMENT', 'clearbit', 'company', NULL, 10000),
         (4, 'AI', NULL, NULL, 'large', 3750))
         AS v(n, kind, provider, data_type, model, price)
         WHERE v.n = g / ($3::int * $4::int) % 5) AS p
"""
REFUNDS_SQL = """
INSERT INTO refund (id, workspace_id, charge_id, results, credits, reason, created_at,
    period_start)
SELECT md5('r' || c.id::text)::uuid, c.workspace_id, c.id, c.refunded_results,
       c.refunded_credits, 'invalid data', c.created_at + interval '1 day',
       date_trunc('month', c.created_at + interval '14 hours') + interval '10 hours'
  FROM charge c WHERE c.workspace_id = $1 AND c.refunded_results > 0
"""
LEDGER_SQL = """
INSERT INTO ledger_entry (workspace_id, entry_type, meter, amount, balance_after, workbook_id,
    charge_id, refund_id, created_at)
SELECT c.workspace_id, 'CHARGE', m.meter,
       CASE m.meter WHEN 'ACTIONS' THEN -c.actions ELSE -c.credits END, 0, c.workbook_id, c.id,
       NULL, c.created_at
  FROM charge c, (VALUES ('ACTIONS'), ('DATA_CREDITS')) AS m(meter) WHERE c.workspace_id = $1
UNION ALL
SELECT r.workspace_id, 'REFUND', 'DATA_CREDITS', r.credits, 0, c.workbook_id, c.id, r.id,
       r.created_at
  FROM refund r JOIN charge c ON c.id = r.charge_id WHERE r.workspace_id = $1
"""
ROLLUPS_SQL = """
INSERT INTO usage_daily (workspace_id, day, period_start, workbook_id, table_id, provider, kind,
    actions, credits, results)
SELECT * FROM ({backfill}) AS b WHERE workspace_id = $1
"""

# The baseline: the same answers from the raw rows, as one statement each.
RAW_SQL = """
SELECT {key}, SUM(actions) AS actions, SUM(credits) AS credits, SUM(results) AS results
  FROM (SELECT (created_at AT TIME ZONE 'UTC')::date AS day, workbook_id, actions,
               CASE WHEN own_api_key THEN 0 ELSE credits END AS credits, results
          FROM charge WHERE workspace_id = $1 AND created_at >= $2 AND created_at < $3
        UNION ALL
        SELECT (r.created_at AT TIME ZONE 'UTC')::date, c.workbook_id, 0, -r.credits, 0
          FROM refund r JOIN charge c ON c.id = r.charge_id
         WHERE r.workspace_id = $1 AND r.created_at >= $2 AND r.created_at < $3) AS d
 GROUP BY {key} ORDER BY {key}
"""


async def step(label: str, conn: asyncpg.Connection, sql: str, *args: Any) -> None:
    started = perf_counter()
    status = await conn.execute(sql, *args)
    print(f"  {label:<28} {status.split()[-1]:>12} rows  {perf_counter() - started:7.1f} s")


async def generate(conn: asyncpg.Connection, rows: int, workbooks: int, tables: int) -> None:
    charges = rows * REFUND_EVERY // (2 * REFUND_EVERY + 1)  # 2 per charge + 1 per refund
    backfill = importlib.import_module("app.migrations.0005_usage_daily").backfill_select
    started = perf_counter()
    print(f"generating ~{rows:,} ledger rows over {DAYS} days:")
    await conn.execute(WORKSPACE_SQL, WORKSPACE, START, START + timedelta(days=365))
    await conn.execute(WORKBOOKS_SQL, WORKSPACE, START, workbooks)
    await conn.execute(API_KEY_SQL, uuid.uuid4(), WORKSPACE, hash_secret(SECRET), START)
    args = (WORKSPACE, charges, workbooks, tables, REFUND_EVERY, START)
    await step("charges", conn, CHARGES_SQL, *args)
    await step("refunds", conn, REFUNDS_SQL, WORKSPACE)
    await step("ledger entries", conn, LEDGER_SQL, WORKSPACE)
    rollups = ROLLUPS_SQL.format(backfill=backfill("postgres"))
    await step("usage_daily (backfill SQL)", conn, rollups, WORKSPACE)
    await step("ANALYZE", conn, "ANALYZE")
    print(f"  generated in {perf_counter() - started:.0f} s")


async def timed(runs: int, call: Callable[[], Awaitable[Any]]) -> tuple[list[float], Any]:
    answer = await call()  # warm: plans, caches, the pool
    latencies = []
    for _ in range(runs):
        started = perf_counter()
        await call()
        latencies.append((perf_counter() - started) * 1000)
    return latencies, answer


def pct(latencies: list[float], q: float) -> float:
    ordered = sorted(latencies)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def as_tuples(rows: list[UsageRow], dim: UsageDimension) -> list[tuple[Any, ...]]:
    key = (lambda r: r.day) if dim is UsageDimension.DAY else (lambda r: r.workbook_id)
    return [(key(r), r.actions, r.credits, r.results) for r in rows]


async def measure(conn: asyncpg.Connection, runs: int, raw_runs: int) -> None:
    # Midnights, so the raw rows' instants and the rollups' UTC days cover the same span.
    end = datetime.combine(END.date(), time(0), tzinfo=UTC)
    start = end - timedelta(days=90)
    days = await conn.fetchval(
        "SELECT COUNT(*) FROM usage_daily WHERE workspace_id = $1 AND day >= $2 AND day < $3",
        WORKSPACE,
        start.date(),
        end.date(),
    )
    print(f"\n90 days [{start.date()}, {end.date()}): {days:,} rollup rows to sum")
    app = create_app(Settings(database_url=""), manage_database=False)
    transport = httpx.ASGITransport(app=app)
    client = httpx.AsyncClient(transport=transport, base_url="http://bench")
    header = {"Authorization": f"Bearer {SECRET}"}
    print(f"{'query':<34}{'p50 ms':>10}{'p95 ms':>10}{'rows':>7}")
    for dim in (UsageDimension.DAY, UsageDimension.WORKBOOK):

        async def domain(dim: UsageDimension = dim) -> list[UsageRow]:
            return await usage_history(WORKSPACE, start, end, [dim])

        async def graphql(dim: UsageDimension = dim) -> dict:
            query = f"""{{ usageHistory(from: "{start.isoformat()}", to: "{end.isoformat()}",
                groupBy: [{dim.value}]) {{ day workbookId workbookName actions dataCredits
                results }} }}"""
            response = await client.post("/graphql", json={"query": query}, headers=header)
            return response.json()

        key = "day" if dim is UsageDimension.DAY else "workbook_id"
        raw_sql = RAW_SQL.format(key=key)

        async def raw(sql: str = raw_sql) -> list[asyncpg.Record]:
            return await conn.fetch(sql, WORKSPACE, start, end)

        fast, rows = await timed(runs, domain)
        api, body = await timed(runs, graphql)
        base, raw_rows = await timed(raw_runs, raw)
        assert len(body["data"]["usageHistory"]) == len(rows), body
        expected = sorted(tuple(r) for r in raw_rows)
        assert sorted(as_tuples(rows, dim)) == expected, "rollups disagree with the raw rows"
        lines = [
            (f"usage_history by {dim.value}", fast),
            ("  via POST /graphql", api),
            ("  raw charges+refunds (asyncpg)", base),
        ]
        for label, lat in lines:
            p50, p95 = statistics.median(lat), pct(lat, 0.95)
            print(f"{label:<34}{p50:>10.1f}{p95:>10.1f}{len(rows):>7}")
        print(f"  raw / rollups (p50): {statistics.median(base) / statistics.median(fast):,.0f}x")
    await client.aclose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="ledger rows")
    parser.add_argument("--workbooks", type=int, default=20)
    parser.add_argument("--tables", type=int, default=5, help="per workbook")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--raw-runs", type=int, default=5, help="baseline runs (slow)")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--reuse", metavar="NAME", help="time an existing bench database")
    args = parser.parse_args()
    name = args.reuse or f"tally_bench_history_{uuid.uuid4().hex[:8]}"
    url = f"{SERVER.replace('postgresql://', 'postgres://')}/{name}"
    await open_database(url)  # creates and migrates the database
    await seed_catalog(load_catalog())
    conn = await asyncpg.connect(f"{SERVER}/{name}", server_settings={"timezone": "UTC"})
    try:
        if not args.reuse:
            await generate(conn, args.rows, args.workbooks, args.tables)
        ledger = await conn.fetchval("SELECT COUNT(*) FROM ledger_entry")
        charges = await conn.fetchval("SELECT COUNT(*) FROM charge")
        rollups = await conn.fetchval("SELECT COUNT(*) FROM usage_daily")
        print(f"database {name}: {ledger:,} ledger rows, {charges:,} charges, {rollups:,} rollups")
        await measure(conn, args.runs, args.raw_runs)
    finally:
        await conn.close()
        await close_database()
        if not (args.keep or args.reuse):
            admin = await asyncpg.connect(f"{SERVER}/postgres")
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
