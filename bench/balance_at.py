"""`balanceAt` over 10 million ledger rows across many workspaces, against the same query
without its index.

    .venv/bin/python bench/balance_at.py [--rows 10000000] [--workspaces 20000] [--samples 2000]
                                         [--keep | --reuse NAME]

Creates a fresh PostgreSQL database with the real migrations, then generates in SQL
`--workspaces` workspaces, created one after another over the first half of four years (each
with its plan history: created, a third of them upgraded later), and `--rows` ledger entries
over the four years in time order, each of a workspace created by then (older workspaces are
busier): Actions and Data Credit charges, holds, settles and releases, refunds, top-ups, grants
and expiries, in about the shares a real ledger has. Balances (`balance_after`) are not
simulated; the meters, the instants and the index are. The ledger's secondary indexes are built
after the load, and the build of migration 0008's index is timed (what the migration costs on
such a ledger).

It then times `balanceAt` for random workspaces at random instants since each one's creation:
`--samples` calls of `app.history.balance.balance_at`, and as many `POST /graphql` requests
in-process with the keys of `--keys` workspaces; then the same for the biggest workspace, which
gets `--big-share` of all entries (a million of the ten); prints p50/p95/p99 and the plans
PostgreSQL chose. The baseline runs the same statement with the index dropped inside a
transaction that is rolled back (so the planner falls back on the ledger's (workspace_id, id)
index), and the answers of both are checked equal.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import statistics
import sys
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from time import perf_counter
from typing import Any

import asyncpg
import httpx
import structlog

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from app.catalog import load_catalog
from app.catalog.store import seed_catalog
from app.config import Settings
from app.db import close_database, open_database
from app.history.balance import READ_AT, balance_at
from app.workspaces.auth import hash_secret
from graphql_schema.asgi import create_app

SERVER = os.environ.get("TALLY_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
START = datetime(2022, 1, 1, tzinfo=UTC)
DAYS = 4 * 365
END = START + timedelta(days=DAYS)
CHUNK = 1_000_000  # ledger rows a statement
INDEX = ("workspace_id", "meter", "created_at", "id")  # migration 0008's
QUERY = """query($at: DateTime!) { balanceAt(at: $at) {
  at plan { code } actionsUsed actionsCapacity dataCredits held available } }"""

# Workspace k is created at START + k/N of the first two years, on one of four plans.
WORKSPACES_SQL = """
INSERT INTO workspace (id, name, plan_code, credit_tier, billing_interval, status, anchor_at,
    period_start, period_end, actions_period_end, actions_capacity, actions_used,
    credit_balance, monthly_credits, created_at)
SELECT md5('ws' || k)::uuid, 'bench ' || k, p.code, p.tier, 'MONTHLY', 'ACTIVE', c, c,
       c + interval '1 month', c + interval '1 month', p.actions, 0, p.tier * 10000,
       p.tier * 10000, c
  FROM generate_series(0, $1 - 1) AS k,
       LATERAL (SELECT $2::timestamptz + (k::float8 / $1) * interval '730 days' AS c) AS x,
       LATERAL (SELECT * FROM (VALUES (0, 'free', 100, 500), (1, 'launch', 2500, 15000),
                                      (2, 'growth', 6000, 40000),
                                      (3, 'enterprise', 50000, 100000))
                  AS v(n, code, tier, actions) WHERE v.n = k % 4) AS p
"""
PLAN_PERIODS_SQL = """
INSERT INTO plan_period (workspace_id, started_at, plan_code, credit_tier, billing_interval,
    actions_capacity, source)
SELECT id, created_at, plan_code, credit_tier, 'MONTHLY', actions_capacity, 'CREATED'
  FROM workspace
UNION ALL
SELECT id, created_at + interval '100 days', 'growth', 12000, 'MONTHLY', 40000, 'UPGRADE'
  FROM workspace WHERE plan_code IN ('free', 'launch') AND hashtext(id::text) % 3 = 0
"""
# Entry g is at START + g/R of the four years; u1, u2 are uniform in [0, 1) and u3 a number,
# from hashes of g (the same rows on every run). Its workspace is the big one (workspace 0)
# for a share $6 of the entries, else one created by then, older ones likelier.
LEDGER_SQL = """
INSERT INTO ledger_entry (workspace_id, entry_type, meter, amount, balance_after, workbook_id,
    charge_id, created_at)
SELECT md5('ws' || w.k)::uuid, e.entry_type, e.meter, e.amount, e.balance_after,
       CASE WHEN e.entry_type IN ('CHARGE', 'REFUND')
            THEN md5('wb' || w.k || '-' || g % 5)::uuid END,
       CASE WHEN e.entry_type IN ('CHARGE', 'REFUND') THEN md5('c' || g)::uuid END, u.t
  FROM generate_series($1::bigint, $2::bigint) AS g,
       LATERAL (SELECT $5::timestamptz + (g::float8 / $3) * interval '1460 days' AS t,
                       (hashint8extended(g, 1) & 2147483647)::float8 / 2147483648 AS u1,
                       (hashint8extended(g, 2) & 2147483647)::float8 / 2147483648 AS u2,
                       (hashint8extended(g, 3) & 2147483647) AS u3) AS u,
       LATERAL (SELECT CASE WHEN u.u2 < $6 THEN 0
                            ELSE least($4 - 1, floor(((u.u2 - $6) / (1 - $6)) ^ 1.5
                                 * least($4::float8, 1 + $4 * (g::float8 / $3) * 2)))::int
                       END AS k) AS w,
       LATERAL (SELECT * FROM (VALUES
         (0.45, 'CHARGE', 'ACTIONS', -(1 + u.u3 % 50)),
         (0.90, 'CHARGE', 'DATA_CREDITS', -5000 * (1 + u.u3 % 40)),
         (0.93, 'HOLD', 'HELD_CREDITS', 100000 * (1 + u.u3 % 20)),
         (0.95, 'SETTLE', 'HELD_CREDITS', -5000 * (1 + u.u3 % 40)),
         (0.96, 'RELEASE', 'HELD_CREDITS', -100000 * (1 + u.u3 % 10)),
         (0.97, 'REFUND', 'DATA_CREDITS', 5000 * (1 + u.u3 % 40)),
         (0.98, 'TOP_UP', 'DATA_CREDITS', 10000 * (100 + u.u3 % 900)),
         (0.987, 'EXPIRY', 'ACTIONS', -(u.u3 % 15000)),
         (0.994, 'GRANT', 'ACTIONS', 15000),
         (1.0, 'GRANT', 'DATA_CREDITS', 25000000))
         AS v(upto, entry_type, meter, amount)
         WHERE v.upto > u.u1 ORDER BY v.upto LIMIT 1) AS v,
       LATERAL (SELECT v.entry_type, v.meter, v.amount,
                       CASE v.meter WHEN 'ACTIONS' THEN u.u3 % 15000
                                    WHEN 'HELD_CREDITS' THEN 10000 * (u.u3 % 500)
                                    ELSE 10000 * (u.u3 % 50000) END AS balance_after) AS e
"""
API_KEY_SQL = """
INSERT INTO api_key (id, workspace_id, name, role, key_hash, prefix, created_at)
VALUES ($1, md5('ws' || $2::int)::uuid, 'bench', 'MEMBER', $3, 'tly_bench', $4)
"""


def secret(k: int) -> str:
    return f"tly_bench-balance-{k}"


async def step(label: str, conn: asyncpg.Connection, sql: str, *args: Any) -> float:
    started = perf_counter()
    status = await conn.execute(sql, *args)
    took = perf_counter() - started
    print(f"  {label:<38} {status.split()[-1]:>12}  {took:7.1f} s")
    return took


async def generate(
    conn: asyncpg.Connection, rows: int, workspaces: int, keys: int, big_share: float
) -> None:
    started = perf_counter()
    print(f"generating {workspaces:,} workspaces and {rows:,} ledger rows over {DAYS} days:")
    await step("workspaces", conn, WORKSPACES_SQL, workspaces, START)
    await step("plan_period", conn, PLAN_PERIODS_SQL)
    await conn.executemany(
        API_KEY_SQL, [(uuid.uuid4(), k, hash_secret(secret(k)), START) for k in range(keys)]
    )
    await load_ledger(conn, 1, rows, rows, workspaces, big_share)
    await step("VACUUM ANALYZE", conn, "VACUUM ANALYZE")
    print(f"  generated in {perf_counter() - started:.0f} s")


async def load_ledger(
    conn: asyncpg.Connection,
    first: int,
    last: int,
    total: int,
    workspaces: int,
    big_share: float,
    more: Callable[[], Awaitable[bool]] | None = None,
) -> int:
    """Entries `first`..`last` of `total` (LEDGER_SQL), the secondary indexes dropped and built
    again after the load, as a bulk load would; `more` may stop it between chunks. Returns
    the last entry loaded."""
    indexes = await conn.fetch(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'ledger_entry'"
        " AND indexname <> 'ledger_entry_pkey'"
    )
    for index in indexes:
        await conn.execute(f'DROP INDEX "{index["indexname"]}"')
    loaded = first - 1
    for start in range(first, last + 1, CHUNK):
        if more is not None and not await more():
            break
        loaded = min(last, start + CHUNK - 1)
        await step(f"ledger {start:,}-{loaded:,}", conn, LEDGER_SQL, start, loaded, total,
                   workspaces, START, big_share)  # fmt: skip
    for index in indexes:
        ours = all(column in index["indexdef"] for column in INDEX)
        label = "CREATE INDEX (migration 0008's)" if ours else "CREATE INDEX"
        await step(label, conn, index["indexdef"])
    return loaded


def samples(n: int, workspaces: int, rng: random.Random) -> list[tuple[int, datetime]]:
    """Random workspaces, each at a random instant between its creation and END."""
    chosen = []
    for _ in range(n):
        k = rng.randrange(workspaces)
        created = START + timedelta(days=730) * (k / workspaces)
        chosen.append((k, created + (END - created) * rng.random()))
    return chosen


def workspace_id(k: int) -> uuid.UUID:
    import hashlib

    return uuid.UUID(hashlib.md5(f"ws{k}".encode()).hexdigest())


async def timed(
    cases: list[tuple[int, datetime]], call: Callable[[int, datetime], Awaitable[Any]]
) -> tuple[list[float], list[Any]]:
    for k, at in cases[:20]:
        await call(k, at)  # warm: plans, the pool
    latencies, answers = [], []
    for k, at in cases:
        started = perf_counter()
        answers.append(await call(k, at))
        latencies.append((perf_counter() - started) * 1000)
    return latencies, answers


def pct(latencies: list[float], q: float) -> float:
    ordered = sorted(latencies)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report(label: str, latencies: list[float]) -> None:
    p50, p95, p99 = statistics.median(latencies), pct(latencies, 0.95), pct(latencies, 0.99)
    print(f"{label:<44}{p50:>9.2f}{p95:>9.2f}{p99:>9.2f}{len(latencies):>8}")


async def explain(conn: asyncpg.Connection, k: int, at: datetime) -> None:
    plan = await conn.fetch("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + READ_AT, workspace_id(k), at)
    for (line,) in plan:  # the nodes, what they looked up, and the time: not the buffers
        if "Scan" in line or "Index Cond" in line or "Sort Key" in line or "Time:" in line:
            print("    " + line.strip())


async def baseline(
    conn: asyncpg.Connection, cases: list[tuple[int, datetime]]
) -> tuple[list[float], list[Any]]:
    """The same statement, the index dropped in a transaction rolled back afterwards."""
    name = await conn.fetchval(
        "SELECT indexname FROM pg_indexes WHERE tablename = 'ledger_entry'"
        " AND indexdef LIKE '%(workspace_id, meter, created_at, id)%'"
    )
    transaction = conn.transaction()
    await transaction.start()
    try:
        await conn.execute(f'DROP INDEX "{name}"')
        print(f"\nwithout {name}, the plan of one call:")
        await explain(conn, *cases[0])
        return await timed(cases, lambda k, at: conn.fetchrow(READ_AT, workspace_id(k), at))
    finally:
        await transaction.rollback()


async def measure(conn: asyncpg.Connection, args: argparse.Namespace) -> None:
    rng = random.Random(38)
    cases = samples(args.samples, args.workspaces, rng)
    keyed = [(1 + rng.randrange(args.keys - 1), at) for _, at in cases]  # not the big one
    keyed = [(k, max(at, START + timedelta(days=730) * (k / args.workspaces))) for k, at in keyed]
    app = create_app(Settings(database_url=""), manage_database=False)
    # No line a request (the figures are what is printed); warnings still show.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench")

    async def domain(k: int, at: datetime) -> Any:
        return await balance_at(workspace_id(k), at, END)

    async def graphql(k: int, at: datetime) -> Any:
        headers = {"Authorization": f"Bearer {secret(k)}"}
        body = {"query": QUERY, "variables": {"at": at.isoformat()}}
        answer = (await client.post("/graphql", json=body, headers=headers)).json()
        assert "errors" not in answer, answer
        return answer

    async def raw(k: int, at: datetime) -> Any:
        return await conn.fetchrow(READ_AT, workspace_id(k), at)

    print("\nwith the index, the plan of one call:")
    await explain(conn, *cases[0])
    big = [(0, at) for _, at in samples(args.samples, 1, rng)]  # workspace 0, any instant
    entries = await conn.fetchval(
        "SELECT COUNT(*) FROM ledger_entry WHERE workspace_id = $1", workspace_id(0)
    )
    fast, _ = await timed(cases, domain)
    api, _ = await timed(keyed, graphql)
    fast_big, _ = await timed(big, domain)
    api_big, _ = await timed(big, graphql)
    few = cases[: args.baseline_samples] + big[: args.baseline_big_samples]
    indexed, answers = await timed(few, raw)
    slow, expected = await baseline(conn, few)
    assert [tuple(a) for a in answers] == [tuple(e) for e in expected], "answers differ"
    half = args.baseline_samples
    print(f"\n{'balanceAt, ms':<44}{'p50':>9}{'p95':>9}{'p99':>9}{'calls':>8}")
    print("random workspaces, random instants since each one's creation:")
    report("  app.history.balance.balance_at", fast)
    report("  POST /graphql (in-process, member key)", api)
    report("  the statement alone (asyncpg)", indexed[:half])
    report("  ... without the index", slow[:half])
    print(f"the biggest workspace ({entries:,} entries), random instants:")
    report("  app.history.balance.balance_at", fast_big)
    report("  POST /graphql (in-process, member key)", api_big)
    report("  the statement alone (asyncpg)", indexed[half:])
    report("  ... without the index", slow[half:])
    for label, part in (("random", slice(None, half)), ("biggest", slice(half, None))):
        ratio = statistics.median(slow[part]) / statistics.median(indexed[part])
        print(f"without / with the index, p50, {label}: {ratio:,.0f}x")
    await client.aclose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="ledger rows")
    parser.add_argument("--workspaces", type=int, default=20_000)
    parser.add_argument("--keys", type=int, default=500, help="workspaces timed via GraphQL")
    parser.add_argument("--big-share", type=float, default=0.1, help="workspace 0's entries")
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--baseline-samples", type=int, default=200)
    parser.add_argument("--baseline-big-samples", type=int, default=10, help="seconds each")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--reuse", metavar="NAME", help="time an existing bench database")
    args = parser.parse_args()
    name = args.reuse or f"tally_bench_balance_{uuid.uuid4().hex[:8]}"
    url = f"{SERVER.replace('postgresql://', 'postgres://')}/{name}"
    await open_database(url)  # creates and migrates the database
    await seed_catalog(load_catalog())
    conn = await asyncpg.connect(f"{SERVER}/{name}", server_settings={"timezone": "UTC"})
    try:
        if not args.reuse:
            await generate(conn, args.rows, args.workspaces, args.keys, args.big_share)
        ledger = await conn.fetchval("SELECT COUNT(*) FROM ledger_entry")
        size = await conn.fetchval("SELECT pg_size_pretty(pg_total_relation_size('ledger_entry'))")
        print(f"database {name}: {ledger:,} ledger rows ({size} with indexes)")
        await measure(conn, args)
    finally:
        await conn.close()
        await close_database()
        if not (args.keep or args.reuse):
            admin = await asyncpg.connect(f"{SERVER}/postgres")
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
