"""Workspaces renewed per second by the sweep, against a set-based raw SQL sweep with asyncpg.

    .venv/bin/python bench/renewals.py [--workspaces 100000] [--batch 100] [--schedulers 1|2]
                                       [--lanes 4] [--json FILE]

Seeds `--workspaces` launch workspaces on a fresh PostgreSQL database with SQL (each one cycle
due: a monthly renewal with an Actions expiry, a grant and a rollover cap), then times the
sweep exactly as `tally jobs run renewals` runs it (`app.plans.renewals.sweep`, set-based on
PostgreSQL: app.plans.renewal_batch, `--lanes` batches in flight, 4 by default as in the
sweep; the garbage collector tuned as that command tunes it, app.collector). With
`--schedulers 2` two processes sweep the same population at once; the time is from the start
signal (sent once every process has imported and connected) until all have finished.

The baseline, in the same run against a second population of the same size (seeded after the
sweep, so the sweep never sees it), is the same sweep written directly with asyncpg, with as
many processes and as many connections in each as the sweep has lanes: on each connection, per
batch of `--batch` workspaces, one transaction of two statements: (1) the claim, a `SELECT` of
the five columns it needs `... ORDER BY actions_period_end LIMIT n FOR NO KEY UPDATE SKIP
LOCKED`, then the cycle's arithmetic in Python (Actions expiry, grant, cap; the population's
plan, fee and dates written in as constants), and (2) one statement of data-modifying CTEs:
the workspaces' conditional UPDATE from unnest() returning their live notifications
(pg_notify, events and state, while the workspace is watched: a subscriber's lease, as Tally's
sweep and charges do; nobody watches the benchmark's workspaces), the renewal rows, the ledger
rows (expiry, two grants, the cap), the plan fees, the subscription.renewed events (their JSON
built in Python) and their webhook outbox rows (the same join on enabled endpoints; the
population has none). No ORM, no catalog reads, no rule code: the floor for these effects.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from app.catalog import load_catalog
from app.catalog.store import seed_catalog
from app.collector import tune_gc
from app.db import close_database, open_database
from app.plans.renewals import LANES, Scope, sweep

SERVER = os.environ.get("TALLY_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
ANCHOR = datetime(2025, 1, 15, 10, tzinfo=UTC)
DUE = datetime(2025, 2, 15, 10, tzinfo=UTC)
NEXT = datetime(2025, 3, 15, 10, tzinfo=UTC)
NOW = datetime(2025, 2, 15, 11, tzinfo=UTC)
GRANT, CAP, SPENT, ACTIONS = 2500 * 10_000, 5000 * 10_000, 100 * 10_000, 15000
FEE_CENTS = 18500

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


CLAIM = """SELECT id, credit_balance, credits_held, actions_used, actions_capacity FROM workspace
 WHERE actions_period_end <= $1 AND name LIKE $2
 ORDER BY actions_period_end LIMIT $3 FOR NO KEY UPDATE SKIP LOCKED"""
WRITE = """
WITH u AS (
  UPDATE workspace AS w SET period_start = $4, period_end = $5, actions_period_end = $5,
         actions_capacity = 15000, actions_used = 0, credit_balance = u.after,
         monthly_credits = $6, pending_plan_code = NULL, pending_credit_tier = NULL,
         pending_interval = NULL, auto_topup_used = 0, depleted_headroom = NULL,
         exhausted_headroom = NULL
    FROM unnest($1::uuid[], $2::bigint[], $3::bigint[]) AS u(id, before, after)
   WHERE w.id = u.id AND w.actions_period_end = $4 AND w.credit_balance = u.before
  RETURNING w.id,
         CASE WHEN w.live_until > now() THEN pg_notify('tally', w.id::text || ':2') END,
         CASE WHEN w.live_until > now() THEN pg_notify('tally', w.id::text || ':1') END
), r AS (
  INSERT INTO renewal (workspace_id, period_start, kind, plan_code, credit_tier,
      billing_interval, credits_before, credits_expired, credits_granted, credits_capped,
      credits_after, actions_capacity, processed_at)
  SELECT u.id, $4, 'CYCLE', 'launch', 2500, 'MONTHLY', u.before, 0, $6, u.capped, u.after,
         15000, $7
    FROM unnest($1::uuid[], $2::bigint[], $3::bigint[], $8::bigint[]) AS u(id, before, after,
         capped)
), l AS (
  INSERT INTO ledger_entry (workspace_id, entry_type, meter, amount, balance_after, created_at)
  SELECT u.id, u.entry_type, u.meter, u.amount, u.balance_after, $7
    FROM unnest($9::uuid[], $10::text[], $11::text[], $12::bigint[], $13::bigint[])
         AS u(id, entry_type, meter, amount, balance_after)
), f AS (
  INSERT INTO billing_charge (id, workspace_id, kind, period_start, plan_code, credit_tier,
      billing_interval, credits, amount_cents, description, created_at)
  SELECT u.charge_id, u.id, 'PLAN_FEE', $4, 'launch', 2500, 'MONTHLY', $6, $14, $15, $7
    FROM unnest($1::uuid[], $16::uuid[]) AS u(id, charge_id)
), e AS (
  INSERT INTO event (id, workspace_id, type, data, created_at)
  SELECT u.event_id, u.id, 'subscription.renewed', u.data, $7
    FROM unnest($1::uuid[], $17::uuid[], $18::text[]) AS u(id, event_id, data)
), d AS (
  INSERT INTO webhook_delivery (id, workspace_id, event_id, endpoint_id, status, attempts,
      next_attempt_at, created_at)
  SELECT gen_random_uuid(), e.id, e.event_id, ep.id, 'PENDING', 0, $7, $7
    FROM unnest($1::uuid[], $17::uuid[]) WITH ORDINALITY AS e(id, event_id, n)
    JOIN webhook_endpoint AS ep
      ON ep.workspace_id = e.id AND ep.enabled AND ep.deleted_at IS NULL
     AND (ep.event_types = '' OR strpos(ep.event_types, ',subscription.renewed,') > 0)
   ORDER BY e.n, ep.id
)
SELECT count(*) FROM u
"""
DESCRIPTION = "Launch plan, 2,500 Data Credits a month, one month from 2025-02-15"


def _credits(units: int) -> str:
    return str(units // 10_000) if units % 10_000 == 0 else f"{units / 10_000:g}"


def _batch_args(rows: list[asyncpg.Record]) -> list[Any]:
    ids, before, after, capped, ledger = [], [], [], [], []
    for r in rows:
        b, left = r["credit_balance"], r["actions_capacity"] - r["actions_used"]
        c = max(b + GRANT - CAP, 0)
        ids.append(r["id"]), before.append(b), after.append(b + GRANT - c), capped.append(c)
        ledger += [(r["id"], "EXPIRY", "ACTIONS", -left, 0)] if left else []
        ledger += [(r["id"], "GRANT", "ACTIONS", ACTIONS, ACTIONS),
                   (r["id"], "GRANT", "DATA_CREDITS", GRANT, b + GRANT)]  # fmt: skip
        ledger += [(r["id"], "ROLLOVER_CAP", "DATA_CREDITS", -c, b + GRANT - c)] if c else []
    data = [
        json.dumps({"workspaceId": str(i), "periodStart": DUE.isoformat(),
                    "periodEnd": NEXT.isoformat(), "granted": _credits(GRANT),
                    "rolledOver": _credits(a - GRANT), "expired": _credits(c)},
                   separators=(",", ":"))
        for i, a, c in zip(ids, after, capped, strict=True)
    ]  # fmt: skip
    columns = [list(c) for c in zip(*ledger, strict=True)]
    charges, events = [uuid.uuid4() for _ in ids], [uuid.uuid4() for _ in ids]
    return [ids, before, after, DUE, NEXT, GRANT, NOW, capped, *columns, FEE_CENTS,
            DESCRIPTION, charges, events, data]  # fmt: skip


async def baseline(conn: asyncpg.Connection, prefix: str, batch: int) -> int:
    done = 0
    while True:
        async with conn.transaction():
            rows = await conn.fetch(CLAIM, NOW, prefix + "%", batch)
            if rows:
                updated = await conn.fetchval(WRITE, *_batch_args(rows))
                assert updated == len(rows), (updated, len(rows))
        if not rows:
            return done
        done += len(rows)


async def worker(kind: str, url: str, batch: int, lanes: int) -> None:
    """One scheduler process: set up, wait for the start line on stdin, sweep, print the count."""
    if kind == "tally":
        await open_database(url)
        tune_gc()  # as `tally jobs run` and the scheduler process do once started
    conn_url = url.replace("postgres://", "postgresql://")
    conn = await asyncpg.connect(conn_url)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    cpu = time.process_time()
    if kind == "tally":
        done = (await sweep(NOW, Scope(), batch_size=batch, lanes=lanes)).workspaces
        await close_database()
    else:
        more = [await asyncpg.connect(conn_url) for _ in range(lanes - 1)]
        counts = await asyncio.gather(*(baseline(c, "raw ", batch) for c in [conn, *more]))
        done = sum(counts)
        for c in more:
            await c.close()
    await conn.close()
    print(done, time.process_time() - cpu, flush=True)


async def timed(
    kind: str, url: str, batch: int, schedulers: int, lanes: int
) -> tuple[int, float, float]:
    """`schedulers` processes sweeping at once: the workspaces they renewed, the seconds, and
    the CPU seconds the processes spent sweeping (their own, not PostgreSQL's)."""
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--worker", kind, "--url", url, "--batch", str(batch),
            "--lanes", str(lanes),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )
        for _ in range(schedulers)
    ]  # fmt: skip
    await asyncio.sleep(3)  # imports and connections, outside the timing
    started = time.perf_counter()
    for p in procs:
        assert p.stdin is not None
        p.stdin.write(b"go\n")
        await p.stdin.drain()
    outs = await asyncio.gather(*(p.communicate() for p in procs))
    seconds = time.perf_counter() - started
    assert all(p.returncode == 0 for p in procs), "a scheduler process failed"
    lasts = [out.decode().split()[-2:] for out, _ in outs]
    counts = [int(count) for count, _ in lasts]
    if schedulers > 1:
        print(f"  {kind}: per process {counts}")
    return sum(counts), seconds, sum(float(cpu) for _, cpu in lasts)


async def main() -> dict[str, Any] | None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspaces", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--schedulers", type=int, default=1)
    parser.add_argument("--lanes", type=int, default=LANES)
    parser.add_argument("--json", metavar="FILE")
    parser.add_argument("--worker", choices=("tally", "raw"), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        await worker(args.worker, args.url, args.batch, args.lanes)
        return None
    name = f"tally_bench_renewals_{uuid.uuid4().hex[:8]}"
    url = f"{SERVER.replace('postgresql://', 'postgres://')}/{name}"
    await open_database(url)  # creates and migrates the database
    await seed_catalog(load_catalog())
    await close_database()
    conn = await asyncpg.connect(f"{SERVER}/{name}")
    try:
        started = time.perf_counter()
        await seed(conn, "tally ", args.workspaces)
        await conn.execute("ANALYZE")
        print(f"seeded {args.workspaces:,} due workspaces in {time.perf_counter() - started:.1f} s")
        tally_n, tally_s, tally_cpu = await timed(
            "tally", url, args.batch, args.schedulers, args.lanes
        )
        # The baseline's population is seeded only now, so the sweep above saw none of it.
        await seed(conn, "raw ", args.workspaces)
        await conn.execute("ANALYZE")
        raw_n, raw_s, raw_cpu = await timed("raw", url, args.batch, args.schedulers, args.lanes)
        ratio = (tally_n / tally_s) / (raw_n / raw_s)
        procs = f"{args.schedulers} process{'es' if args.schedulers > 1 else ''}"
        print(
            f"Tally sweep (jobs run renewals), {procs}: {tally_n:,} workspaces in"
            f" {tally_s:.1f} s = {tally_n / tally_s:,.0f} workspaces/s"
        )
        print(
            f"asyncpg set-based sweep, {procs}:      {raw_n:,} workspaces in {raw_s:.1f} s"
            f" = {raw_n / raw_s:,.0f} workspaces/s"
        )
        print(f"ratio Tally / asyncpg: {ratio:.2f}")
        print(
            "the sweeping processes' own CPU a workspace:"
            f" Tally {tally_cpu / tally_n * 1e6:.0f} µs, asyncpg {raw_cpu / raw_n * 1e6:.0f} µs"
        )
        expected = min(GRANT - SPENT + GRANT, CAP)
        bad = await conn.fetchval(
            "SELECT COUNT(*) FROM workspace WHERE credit_balance <> $1 OR period_start <> $2",
            expected,
            DUE,
        )
        twice = await conn.fetchval(
            "SELECT COUNT(*) FROM (SELECT workspace_id FROM renewal GROUP BY workspace_id"
            " HAVING COUNT(*) <> 1) AS t"
        )
        print(f"workspaces not renewed to {expected // 10_000:,} credits: {bad}; not once: {twice}")
        return {
            "workspaces": args.workspaces, "schedulers": args.schedulers,
            "batch": args.batch, "lanes": args.lanes,
            "seconds": round(tally_s, 3), "per_second": round(tally_n / tally_s, 1),
            "raw_seconds": round(raw_s, 3), "raw_per_second": round(raw_n / raw_s, 1),
            "ratio": round(ratio, 3), "cpu_us": round(tally_cpu / tally_n * 1e6, 1),
            "raw_cpu_us": round(raw_cpu / raw_n * 1e6, 1),
            "not_renewed": bad, "not_once": twice, "json": args.json,
        }  # fmt: skip
    finally:
        await conn.close()
        admin = await asyncpg.connect(f"{SERVER}/postgres")
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    figures = asyncio.run(main())
    path = figures.pop("json") if figures is not None else None
    if path:
        with open(path, "w") as out:
            json.dump(figures, out, indent=2)
