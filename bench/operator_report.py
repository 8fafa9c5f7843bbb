"""The operator report over a fleet: how long its three statements take.

    .venv/bin/python bench/operator_report.py [--workspaces 20000] [--months 24] [--keep]

Creates a fresh PostgreSQL database with the real migrations, then generates in SQL
`--workspaces` workspaces created during the first month, each renewed every month for
`--months` months (a `renewal` row a month, processed a few minutes after its boundary, a sixth
of them in a catch-up sweep two months at once), its plan history (a third upgraded once), and
per month an Actions grant, four charges (the last one using up the month's Actions for about
one workspace in eight), a Data Credit grant and charge, a plan fee and, for one in five, a
top-up. It then times `app.reports.service.operator_report` over the last twelve months
(statements counted), and prints PostgreSQL's plan of the per-workspace statement.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import uuid
from datetime import UTC, datetime, timedelta
from time import perf_counter

import asyncpg

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from app.catalog import load_catalog
from app.catalog.store import seed_catalog
from app.db import close_database, open_database
from app.query_budget import query_budget
from app.reports.service import (
    _CYCLES,
    PREDECESSOR_WITHIN,
    _expiry_sql,
    _money_sql,
    operator_report,
)

SERVER = os.environ.get("TALLY_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
START = datetime(2023, 1, 1, tzinfo=UTC)

WORKSPACES_SQL = """
INSERT INTO workspace (id, name, plan_code, credit_tier, billing_interval, status, anchor_at,
    period_start, period_end, actions_period_end, actions_capacity, actions_used,
    credit_balance, monthly_credits, created_at)
SELECT md5('ws' || k)::uuid, 'bench ' || k, p.code, p.tier, 'MONTHLY', 'ACTIVE', c, c,
       c + interval '1 month', c + interval '1 month', p.actions, 0, p.tier * 10000,
       p.tier * 10000, c
  FROM generate_series(0, $1 - 1) AS k,
       LATERAL (SELECT $2::timestamptz + (k::float8 / $1) * interval '28 days' AS c) AS x,
       LATERAL (SELECT * FROM (VALUES (0, 'free', 100, 500), (1, 'launch', 2500, 15000),
                                      (2, 'growth', 6000, 40000))
                  AS v(n, code, tier, actions) WHERE v.n = k % 3) AS p
"""
PLAN_PERIODS_SQL = """
INSERT INTO plan_period (workspace_id, started_at, plan_code, credit_tier, billing_interval,
    actions_capacity, source)
SELECT id, created_at, plan_code, credit_tier, 'MONTHLY', actions_capacity, 'CREATED'
  FROM workspace
UNION ALL
SELECT id, created_at + interval '200 days', 'growth', 12000, 'MONTHLY', 40000, 'UPGRADE'
  FROM workspace WHERE plan_code = 'launch' AND hashtext(id::text) % 3 = 0
"""
# Month n of workspace w: its boundary is created_at + n months; the renewal that opens it is
# processed 5 minutes later, or, for one in six, with the next one (a catch-up sweep).
MONTHS = """
  FROM workspace w, generate_series(1, $1) AS n,
       LATERAL (SELECT w.created_at + n * interval '1 month' AS boundary,
                       w.created_at + (n + CASE WHEN n % 2 = 1 AND hashtext(w.id::text) % 6 = 0
                                               THEN 1 ELSE 0 END) * interval '1 month'
                                    + interval '5 minutes' AS processed) AS m
"""
RENEWALS_SQL = f"""
INSERT INTO renewal (workspace_id, period_start, kind, plan_code, credit_tier, billing_interval,
    credits_before, credits_expired, credits_granted, credits_capped, credits_after,
    actions_capacity, processed_at)
SELECT w.id, m.boundary, 'CYCLE', w.plan_code, w.credit_tier, 'MONTHLY', 0,
       CASE WHEN w.plan_code = 'free' THEN 1000000 ELSE 0 END, w.monthly_credits,
       CASE WHEN n % 4 = 0 THEN 5000000 ELSE 0 END, w.monthly_credits, w.actions_capacity,
       m.processed
{MONTHS}"""
# Per month: the grant at the renewal, then four charges over the month; the last leaves 0
# Actions for about one workspace-month in eight.
LEDGER_SQL = f"""
INSERT INTO ledger_entry (workspace_id, entry_type, meter, amount, balance_after, created_at)
SELECT w.id, e.entry_type, e.meter, e.amount, e.balance_after, m.processed + e.after
{MONTHS},
       LATERAL (VALUES
         ('GRANT', 'ACTIONS', w.actions_capacity, w.actions_capacity, interval '0'),
         ('GRANT', 'DATA_CREDITS', w.monthly_credits, w.monthly_credits, interval '0'),
         ('CHARGE', 'ACTIONS', -10, w.actions_capacity - 10, interval '3 days'),
         ('CHARGE', 'DATA_CREDITS', -50000, w.monthly_credits - 50000, interval '3 days'),
         ('CHARGE', 'ACTIONS', -10, w.actions_capacity - 20, interval '10 days'),
         ('CHARGE', 'ACTIONS',
          CASE WHEN hashtext(w.id::text || n) % 8 = 0 THEN 20 - w.actions_capacity ELSE -10 END,
          CASE WHEN hashtext(w.id::text || n) % 8 = 0 THEN 0 ELSE w.actions_capacity - 30 END,
          interval '20 days'))
         AS e(entry_type, meter, amount, balance_after, after)
"""
BILLING_SQL = f"""
INSERT INTO billing_charge (id, workspace_id, kind, period_start, plan_code, credit_tier,
    billing_interval, credits, amount_cents, description, created_at)
SELECT md5(w.id::text || n || c.kind)::uuid, w.id, c.kind, m.boundary, w.plan_code,
       w.credit_tier, 'MONTHLY', 0, c.cents, 'bench', m.processed + c.after
{MONTHS},
       LATERAL (VALUES ('PLAN_FEE', 18500, interval '0'), ('TOP_UP', 5200, interval '12 days'))
         AS c(kind, cents, after)
 WHERE w.plan_code <> 'free' AND (c.kind = 'PLAN_FEE' OR hashtext(w.id::text || n) % 5 = 0)
"""


async def step(label: str, conn: asyncpg.Connection, sql: str, *args: object) -> None:
    started = perf_counter()
    status = await conn.execute(sql, *args)
    print(f"  {label:<16} {status.split()[-1]:>12}  {perf_counter() - started:6.1f} s")


async def generate(conn: asyncpg.Connection, workspaces: int, months: int) -> None:
    print(f"generating {workspaces:,} workspaces, {months} months each:")
    await step("workspaces", conn, WORKSPACES_SQL, workspaces, START)
    await step("plan_period", conn, PLAN_PERIODS_SQL)
    await step("renewal", conn, RENEWALS_SQL, months)
    await step("ledger_entry", conn, LEDGER_SQL, months)
    await step("billing_charge", conn, BILLING_SQL, months)
    await step("VACUUM ANALYZE", conn, "VACUUM ANALYZE")


async def measure(conn: asyncpg.Connection, months: int, verbose: bool) -> None:
    end = START + timedelta(days=months * 30.4)
    start = end - timedelta(days=365)
    for _ in range(3):
        started = perf_counter()
        with query_budget(1000) as budget:
            report = await operator_report(start, end)
        took = perf_counter() - started
        print(f"operator_report, 12 months: {took * 1000:8.0f} ms, {budget.used} statements")
    for row in report.plans:
        print(f"  {row.plan_code:<8} {row.workspaces:>7,} workspaces, {row.used_up:>6,} used up"
              f" ({row.used_up_share}), plan ${row.plan_cents / 100:,.2f}")  # fmt: skip
    statements = [
        ("last cycles", _CYCLES, (start, end, start - PREDECESSOR_WITHIN)),
        ("expiries", _expiry_sql("postgres"), (start, end)),
        ("money", _money_sql("postgres"), (start, end)),
    ]
    for label, sql, args in statements:
        plan = await conn.fetch("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, *args)
        took = json.loads(plan[0][0])[0]["Execution Time"]
        print(f"  {label:<12} {took:8.0f} ms")
    if verbose:
        plan = await conn.fetch("EXPLAIN (ANALYZE, BUFFERS) " + _CYCLES, *statements[0][2])
        print("\n".join(r[0] for r in plan))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspaces", type=int, default=20_000)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--plan", action="store_true", help="print the first statement's plan")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()
    name = f"tally_bench_report_{uuid.uuid4().hex[:8]}"
    await open_database(f"{SERVER.replace('postgresql://', 'postgres://')}/{name}")
    await seed_catalog(load_catalog())
    conn = await asyncpg.connect(f"{SERVER}/{name}", server_settings={"timezone": "UTC"})
    try:
        await generate(conn, args.workspaces, args.months)
        await measure(conn, args.months, args.plan)
    finally:
        await conn.close()
        await close_database()
        if not args.keep:
            admin = await asyncpg.connect(f"{SERVER}/postgres")
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
