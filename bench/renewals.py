"""Workspaces renewed per second by one sweep, against the same SQL issued with asyncpg.

    .venv/bin/python bench/renewals.py [--workspaces 100000] [--batch 100]

Seeds `--workspaces` launch workspaces on a fresh PostgreSQL database with SQL (each one cycle
due: a monthly renewal with a grant and a rollover cap), then times one sweep exactly as
`tally jobs run renewals` runs it (`app.plans.renewals.sweep`). The baseline, in the same run
against a second population of the same size, issues the SQL of one renewal per workspace
directly with asyncpg in batches of the same size (claim with SKIP LOCKED, conditional update,
renewal record, four ledger rows, the plan fee): no ORM, no catalog reads, no rule code.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from datetime import UTC, datetime

import asyncpg

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from app.catalog import load_catalog
from app.catalog.store import seed_catalog
from app.db import close_database, open_database
from app.plans.renewals import Scope, sweep

SERVER = os.environ.get("TALLY_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
ANCHOR = datetime(2025, 1, 15, 10, tzinfo=UTC)
DUE = datetime(2025, 2, 15, 10, tzinfo=UTC)
NOW = datetime(2025, 2, 15, 11, tzinfo=UTC)
GRANT, CAP, SPENT = 2500 * 10_000, 5000 * 10_000, 100 * 10_000

SEED = """
WITH ws AS (
  INSERT INTO workspace (id, name, plan_code, credit_tier, billing_interval, status, anchor_at,
      period_start, period_end, actions_period_end, actions_capacity, actions_used,
      credit_balance, monthly_credits, created_at)
  SELECT gen_random_uuid(), $1::text || g, 'launch', 2500, 'MONTHLY', 'ACTIVE', $2, $2, $3, $3,
         15000, 200, $4::bigint - $5::bigint, $4::bigint, $2
    FROM generate_series(1, $6) AS g
  RETURNING id
)
INSERT INTO ledger_entry (workspace_id, entry_type, meter, amount, balance_after, created_at)
SELECT id, t.entry_type, t.meter, t.amount, t.balance_after, $2
  FROM ws, (VALUES ('GRANT', 'ACTIONS', 15000::bigint, 15000::bigint),
                   ('GRANT', 'DATA_CREDITS', $4::bigint, $4::bigint),
                   ('CHARGE', 'ACTIONS', -200, 14800),
                   ('CHARGE', 'DATA_CREDITS', -$5::bigint, $4::bigint - $5::bigint))
         AS t(entry_type, meter, amount, balance_after)
"""


async def seed(conn: asyncpg.Connection, prefix: str, n: int) -> None:
    await conn.execute(SEED, prefix, ANCHOR, DUE, GRANT, SPENT, n)


CLAIM = """SELECT id, credit_balance, actions_used, actions_capacity FROM workspace
 WHERE actions_period_end <= $1 AND name LIKE $2
 ORDER BY actions_period_end LIMIT $3 FOR NO KEY UPDATE SKIP LOCKED"""
UPDATE = """UPDATE workspace SET period_start = $2, period_end = $3, actions_period_end = $3,
   actions_used = 0, credit_balance = $4
 WHERE id = $1 AND actions_period_end = $2 AND credit_balance = $5"""
RENEWAL = """INSERT INTO renewal (workspace_id, period_start, kind, plan_code, credit_tier,
   billing_interval, credits_before, credits_expired, credits_granted, credits_capped,
   credits_after, actions_capacity, processed_at)
 VALUES ($1, $2, 'CYCLE', 'launch', 2500, 'MONTHLY', $3, 0, $4, $5, $6, 15000, $7)"""
LEDGER = """INSERT INTO ledger_entry (workspace_id, entry_type, meter, amount, balance_after,
   created_at) VALUES ($1, $2, $3, $4, $5, $6)"""
FEE = """INSERT INTO billing_charge (id, workspace_id, kind, period_start, plan_code, credit_tier,
   billing_interval, credits, amount_cents, description, created_at)
 VALUES ($1, $2, 'PLAN_FEE', $3, 'launch', 2500, 'MONTHLY', $4, 18500, 'Launch plan', $5)"""


async def baseline(conn: asyncpg.Connection, prefix: str, batch: int) -> int:
    nxt = datetime(2025, 3, 15, 10, tzinfo=UTC)
    done = 0
    while True:
        async with conn.transaction():
            rows = await conn.fetch(CLAIM, NOW, prefix + "%", batch)
            for r in rows:
                before, left = r["credit_balance"], r["actions_capacity"] - r["actions_used"]
                capped = max(before + GRANT - CAP, 0)
                after = before + GRANT - capped
                await conn.execute(UPDATE, r["id"], DUE, nxt, after, before)
                await conn.execute(RENEWAL, r["id"], DUE, before, GRANT, capped, after, NOW)
                await conn.executemany(
                    LEDGER,
                    [
                        (r["id"], "EXPIRY", "ACTIONS", -left, 0, NOW),
                        (r["id"], "GRANT", "ACTIONS", 15000, 15000, NOW),
                        (r["id"], "GRANT", "DATA_CREDITS", GRANT, before + GRANT, NOW),
                        (r["id"], "ROLLOVER_CAP", "DATA_CREDITS", -capped, after, NOW),
                    ],
                )
                await conn.execute(FEE, uuid.uuid4(), r["id"], DUE, GRANT, NOW)
        if not rows:
            return done
        done += len(rows)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspaces", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()
    name = f"tally_bench_renewals_{uuid.uuid4().hex[:8]}"
    url = f"{SERVER.replace('postgresql://', 'postgres://')}/{name}"
    await open_database(url)  # creates and migrates the database
    await seed_catalog(load_catalog())
    conn = await asyncpg.connect(f"{SERVER}/{name}")
    try:
        started = time.perf_counter()
        await seed(conn, "tally ", args.workspaces)
        await conn.execute("ANALYZE")
        print(f"seeded {args.workspaces:,} due workspaces in {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        result = await sweep(NOW, Scope(), batch_size=args.batch)  # `tally jobs run renewals`
        tally_s, tally_n = time.perf_counter() - started, result.workspaces
        # The baseline's population is seeded only now, so the sweep above saw none of it.
        await seed(conn, "raw ", args.workspaces)
        await conn.execute("ANALYZE")
        started = time.perf_counter()
        raw_n = await baseline(conn, "raw ", args.batch)
        raw_s = time.perf_counter() - started
        print(
            f"Tally sweep (jobs run renewals): {tally_n:,} workspaces in {tally_s:.1f} s"
            f" = {tally_n / tally_s:,.0f} workspaces/s"
        )
        print(
            f"asyncpg, same SQL per renewal:   {raw_n:,} workspaces in {raw_s:.1f} s"
            f" = {raw_n / raw_s:,.0f} workspaces/s"
        )
        print(f"ratio Tally / asyncpg: {(tally_n / tally_s) / (raw_n / raw_s):.2f}")
        expected = min(GRANT - SPENT + GRANT, CAP)
        bad = await conn.fetchval(
            "SELECT COUNT(*) FROM workspace WHERE credit_balance <> $1 OR period_start <> $2",
            expected,
            DUE,
        )
        print(f"workspaces not renewed to {expected // 10_000:,} credits afterwards: {bad}")
    finally:
        await conn.close()
        await close_database()
        admin = await asyncpg.connect(f"{SERVER}/postgres")
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
