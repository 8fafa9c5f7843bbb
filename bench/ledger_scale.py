"""What the ledger's size costs: history, balanceAt and charges at 10M and 100M ledger rows.

    .venv/bin/python bench/ledger_scale.py [--rows 10000000] [--rows-max 100000000]
        [--grow-budget 2400] [--index-s-per-m 20] [--max-db-gb 32] [--charges 500]
        [--rounds 3] [--json FILE]

Issue 20's partitioning lever: does a monthly partitioned ledger pay at 100 million rows? One
fresh PostgreSQL database with the real migrations is filled in SQL by the generators of
`bench/history.py` (one workspace with `--history-rows` ledger rows, its charges, refunds and
daily rollups) and `bench/balance_at.py` (20,000 workspaces and the rest of `--rows` entries,
one of them a tenth of all), then measured: the 90-day usage history grouped by day
(`app.history.service.usage_history`), `balance_at` for random workspaces and for the biggest,
and `--rounds` rounds of `--charges` sequential single charges through
`app.usage.charging.charge_one` (what `recordUsage` calls) on the biggest workspace, each round
alternated with the same charges on the same workspace in a second, fresh and small database
(the ratio is what the ledger's size costs a charge). Then the ledger grows towards
`--rows-max` with more of balance_at's entries (the later years busier), stopping early where
`--grow-budget` seconds (the loading and the index builds, estimated at `--index-s-per-m`
seconds a million rows) or `--max-db-gb` would be exceeded, and everything is measured again.
Prints a table with the ledger's table and index sizes and the generation times, and
`--json FILE` the same figures.

The generating session runs at the lowest CPU and I/O priority (renice 19, ionice idle) without
parallel workers: the machine is shared. Both databases are dropped at the end, also on failure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import statistics
import sys
import uuid
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from time import perf_counter
from typing import Any

import asyncpg
import structlog

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from app.catalog import load_catalog
from app.catalog.store import seed_catalog
from app.db import close_database, open_database
from app.history.balance import balance_at
from app.history.rules import UsageDimension
from app.history.service import usage_history
from app.kinds import UsageKind
from app.usage.charging import charge_one
from app.usage.costs import Usage
from app.usage.items import UsageReport
from bench import balance_at as population
from bench import history

SERVER = population.SERVER
BIG = population.workspace_id(0)  # the biggest workspace: --big-share of all entries
WORKBOOK = uuid.UUID("00000000-0000-4000-8000-00000000b00c")
# The charged workspace, in both databases: enterprise, a current annual period, room for
# every charge (the generated balances are not a ledger's sums; charges only need room).
CHARGEABLE_SQL = """
UPDATE workspace SET plan_code = 'enterprise', credit_tier = 250000, billing_interval = 'ANNUAL',
       anchor_at = now() - interval '1 day', period_start = now() - interval '1 day',
       period_end = now() + interval '364 days', actions_period_end = now() + interval '364 days',
       actions_capacity = 100000000, actions_used = 0, credit_balance = 1000000000000,
       monthly_credits = 2500000000
 WHERE id = $1;
"""
CHARGE_WORKBOOK_SQL = """
INSERT INTO workbook (id, workspace_id, name, spend_limit, spent, spend_epoch, created_at)
VALUES ($1, $2, 'charges', NULL, 0, 0, now())
"""
SIZES_SQL = """
SELECT pg_relation_size('ledger_entry'), pg_indexes_size('ledger_entry'),
       pg_database_size(current_database())
"""


def url_of(name: str) -> str:
    return f"{SERVER.replace('postgresql://', 'postgres://')}/{name}"


async def low_priority(conn: asyncpg.Connection) -> None:
    """The session's backend at the lowest CPU and I/O priority, with no parallel workers
    (they would be other processes, not reniced) and room to sort for the index builds."""
    pid = await conn.fetchval("SELECT pg_backend_pid()")
    for command in (["renice", "-n", "19", "-p", str(pid)], ["ionice", "-c3", "-p", str(pid)]):
        done = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.DEVNULL)
        if await done.wait():
            raise SystemExit(f"{command[0]} failed")
    await conn.execute(
        "SET max_parallel_maintenance_workers = 0; SET max_parallel_workers_per_gather = 0;"
        " SET maintenance_work_mem = '1GB'"
    )
    print(f"generating session: backend {pid} at nice 19, ionice idle")


async def make_chargeable(conn: asyncpg.Connection) -> None:
    await conn.execute(CHARGEABLE_SQL, BIG)
    await conn.execute(CHARGE_WORKBOOK_SQL, WORKBOOK, BIG)


async def small_database(name: str) -> None:
    """A fresh database with only the charged workspace (as workspace 0 is created)."""
    await open_database(url_of(name))
    await seed_catalog(load_catalog())
    await close_database()
    conn = await asyncpg.connect(f"{SERVER}/{name}", server_settings={"timezone": "UTC"})
    try:
        await conn.execute(population.WORKSPACES_SQL, 1, population.START)
        await conn.execute(population.PLAN_PERIODS_SQL)
        await make_chargeable(conn)
    finally:
        await conn.close()


async def sizes(conn: asyncpg.Connection) -> dict[str, float]:
    table, indexes, database = await conn.fetchrow(SIZES_SQL)
    mb = 1024 * 1024
    return {"table_mb": table / mb, "indexes_mb": indexes / mb, "database_mb": database / mb}


async def history_p95(runs: int) -> tuple[float, float]:
    end = datetime.combine(history.END.date(), time(0), tzinfo=UTC)
    start = end - timedelta(days=90)
    latencies, _ = await history.timed(
        runs, lambda: usage_history(history.WORKSPACE, start, end, [UsageDimension.DAY])
    )
    return statistics.median(latencies), history.pct(latencies, 0.95)


async def balance_p95(samples: int, workspaces: int, big: bool) -> tuple[float, float]:
    rng = random.Random(38)
    cases = population.samples(samples, 1 if big else workspaces, rng)

    async def call(k: int, at: datetime) -> Any:
        return await balance_at(population.workspace_id(k), at, population.END)

    latencies, _ = await population.timed(cases, call)
    return statistics.median(latencies), population.pct(latencies, 0.95)


async def charge_rate(name: str, charges: int) -> float:
    """Sequential single charges per second on the charged workspace of database `name`."""
    await open_database(url_of(name))
    try:
        usage = Usage(UsageKind.ENRICHMENT, 1, "linkedin", "profile")

        async def one() -> None:
            key = f"scale-{uuid.uuid4().hex}"
            await charge_one(BIG, UsageReport(str(WORKBOOK), usage, key), datetime.now(UTC))

        for _ in range(20):
            await one()  # warm: the pool, statement caches, the catalog
        started = perf_counter()
        for _ in range(charges):
            await one()
        return charges / (perf_counter() - started)
    finally:
        await close_database()


async def measure(
    big: str, small: str, args: argparse.Namespace, conn: asyncpg.Connection
) -> dict[str, Any]:
    figures: dict[str, Any] = await sizes(conn)
    figures["ledger_rows"] = await conn.fetchval(
        "SELECT reltuples::bigint FROM pg_class WHERE relname = 'ledger_entry'"
    )
    await open_database(url_of(big))
    try:
        figures["history_p50_ms"], figures["history_p95_ms"] = await history_p95(args.runs)
        figures["balance_p50_ms"], figures["balance_p95_ms"] = await balance_p95(
            args.samples, args.workspaces, big=False
        )
        figures["balance_big_p50_ms"], figures["balance_big_p95_ms"] = await balance_p95(
            args.samples // 4, args.workspaces, big=True
        )
    finally:
        await close_database()
    rounds = []
    for _ in range(args.rounds):  # alternated, so both see the same minutes of the machine
        rate_big = await charge_rate(big, args.charges)
        rate_small = await charge_rate(small, args.charges)
        rounds.append((rate_big, rate_small, rate_big / rate_small))
        ratio = rate_big / rate_small
        print(f"  charges/s: big {rate_big:,.0f}, small {rate_small:,.0f}, ratio {ratio:.2f}")
    figures["charge_rounds"] = rounds
    figures["charge_ratio_median"] = statistics.median(r[2] for r in rounds)
    print(json.dumps({k: v for k, v in figures.items() if k != "charge_rounds"}, default=str))
    return figures


async def generate(conn: asyncpg.Connection, args: argparse.Namespace) -> float:
    started = perf_counter()
    await history.generate(conn, args.history_rows, args.workbooks, args.tables)
    own = await conn.fetchval("SELECT COUNT(*) FROM ledger_entry")
    await population.generate(conn, args.rows - own, args.workspaces, 1, args.big_share)
    return perf_counter() - started


async def grow(conn: asyncpg.Connection, args: argparse.Namespace) -> tuple[float, int]:
    """The ledger towards --rows-max with balance_at's entries, within the budget and disk."""
    started = perf_counter()
    first = await conn.fetchval("SELECT COUNT(*) FROM ledger_entry") + 1

    chunks = 0

    async def more() -> bool:
        nonlocal chunks
        database = await conn.fetchval("SELECT pg_database_size(current_database())")
        # index builds need about a third of the table again (sorts, then the index itself)
        room = database / 1024**3 * 1.35 < args.max_db_gb
        # the next chunk, then the three index builds over everything, within the budget
        rows = first - 1 + (chunks + 1) * population.CHUNK
        load = (perf_counter() - started) / chunks if chunks else 0.0
        ends = perf_counter() - started + load + rows / 1e6 * args.index_s_per_m
        chunks += 1
        return room and ends < args.grow_budget

    last = await population.load_ledger(
        conn, first, args.rows_max, args.rows_max, args.workspaces, args.big_share, more
    )
    await population.step("ANALYZE", conn, "ANALYZE ledger_entry")
    return perf_counter() - started, last


def table(stages: list[dict[str, Any]]) -> None:
    rows = [
        ("ledger rows", "ledger_rows", "{:,.0f}"),
        ("generated in (s)", "generate_s", "{:,.0f}"),
        ("ledger table (MB)", "table_mb", "{:,.0f}"),
        ("ledger indexes (MB)", "indexes_mb", "{:,.0f}"),
        ("database (MB)", "database_mb", "{:,.0f}"),
        ("history 90 days by day p50 (ms)", "history_p50_ms", "{:.1f}"),
        ("history 90 days by day p95 (ms)", "history_p95_ms", "{:.1f}"),
        ("balanceAt random p50 (ms)", "balance_p50_ms", "{:.2f}"),
        ("balanceAt random p95 (ms)", "balance_p95_ms", "{:.2f}"),
        ("balanceAt biggest p95 (ms)", "balance_big_p95_ms", "{:.2f}"),
        ("charges/s big / small db, by round", "charge_rounds", None),
        ("charge rate big/small (median)", "charge_ratio_median", "{:.2f}"),
    ]
    heads = [f"{stage['ledger_rows'] / 1e6:.0f}M rows" for stage in stages]
    print(f"\n| figure | {' | '.join(heads)} |")
    print("|---|" + "---|" * len(stages))
    for label, key, form in rows:
        if form is None:
            cells = [", ".join(f"{b:.0f}/{s:.0f}" for b, s, _ in st[key]) for st in stages]
        else:
            cells = [form.format(st[key]) for st in stages]
        print(f"| {label} | {' | '.join(cells)} |")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="ledger rows, first stage")
    parser.add_argument("--rows-max", type=int, default=100_000_000, help="second stage")
    parser.add_argument("--history-rows", type=int, default=2_000_000, help="history workspace")
    parser.add_argument("--workbooks", type=int, default=20)
    parser.add_argument("--tables", type=int, default=5)
    parser.add_argument("--workspaces", type=int, default=20_000)
    parser.add_argument("--big-share", type=float, default=0.1)
    parser.add_argument("--runs", type=int, default=200, help="history calls")
    parser.add_argument("--samples", type=int, default=1000, help="balanceAt calls")
    parser.add_argument("--charges", type=int, default=500, help="a round, each database")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--grow-budget", type=float, default=2400, help="seconds to grow")
    parser.add_argument("--index-s-per-m", type=float, default=20, help="index builds, estimate")
    parser.add_argument("--max-db-gb", type=float, default=32)
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    tag = uuid.uuid4().hex[:8]
    big, small = f"tally_bench_scale_{tag}", f"tally_bench_scale_small_{tag}"
    conn = None
    try:
        await small_database(small)
        await open_database(url_of(big))  # creates and migrates the database
        await seed_catalog(load_catalog())
        await close_database()
        conn = await asyncpg.connect(f"{SERVER}/{big}", server_settings={"timezone": "UTC"})
        await low_priority(conn)
        took = await generate(conn, args)
        await make_chargeable(conn)
        first = await measure(big, small, args, conn)
        first["generate_s"] = took
        stages = [first]
        if args.rows_max > args.rows:
            took, last = await grow(conn, args)
            print(f"grew to entry {last:,} in {took:.0f} s")
            second = await measure(big, small, args, conn)
            second["generate_s"] = took
            stages.append(second)
        table(stages)
        if args.json:
            text = json.dumps(stages, indent=2, default=str)
            await asyncio.to_thread(Path(args.json).write_text, text)
    finally:
        if conn is not None:
            await conn.close()
        admin = await asyncpg.connect(f"{SERVER}/postgres")
        for name in (big, small):
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
