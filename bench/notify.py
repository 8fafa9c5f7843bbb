"""What a charge's NOTIFY costs, by the number of API processes listening (issue 20).

    .venv/bin/python bench/notify.py [--transactions 8000] [--listeners 2,8]

On a fresh PostgreSQL database, one connection runs `--transactions` transactions of one
UPDATE of a row (100 rows in turn), as the charge's write updates its workspace, with the
three RETURNING clauses Tally has had: `pg_notify` always (before the lease), `pg_notify` only
while the row's `live_until` lies ahead (app.events.bus.notify_returning; no row is live here,
as no workspace is watched in bench/charge.py), and none. Meanwhile `--listeners` connections
LISTEN, one per API process, each handing every payload to `app.events.bus.parse` and a hub as
the listener does. It prints PostgreSQL's CPU and this process's (the sender and every
listener) a transaction, from /proc and time.process_time, and the notifications heard.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from app.events.bus import CHANNEL, Change, Hub, parse, payload
from bench.charge import cpu_seconds, postgres_pids

SERVER = "postgresql://postgres@127.0.0.1:5432"
CLAUSES = {
    "always": "RETURNING pg_notify($2, $3)",
    "while live": "RETURNING CASE WHEN live_until > now() THEN pg_notify($2, $3) END",
    "none": "",
}


async def measure(dsn: str, clause: str, listeners: int, n: int) -> tuple[float, float, int]:
    hub, heard = Hub(), [0]

    def notified(conn: object, pid: int, channel: str, text: str) -> None:
        heard[0] += 1
        parsed = parse(text)
        if parsed is not None:
            hub.publish(*parsed)

    ears = [await asyncpg.connect(dsn) for _ in range(listeners)]
    for ear in ears:
        await ear.add_listener(CHANNEL, notified)
    conn = await asyncpg.connect(dsn)
    ids = [uuid.uuid4() for _ in range(100)]
    await conn.execute("TRUNCATE ws")
    await conn.executemany("INSERT INTO ws VALUES ($1, 0, NULL)", [(i,) for i in ids])
    query = f"UPDATE ws SET v = v + 1 WHERE id = $1 {clause}"
    args = [(i, CHANNEL, payload(i, Change.STATE)) if clause else (i,) for i in ids]
    await asyncio.sleep(0.2)
    pg, me = cpu_seconds(postgres_pids()), time.process_time()
    for k in range(n):
        async with conn.transaction():
            await conn.fetch(query, *args[k % len(args)])
    await asyncio.sleep(0.5)  # the last notifications heard
    pg, me = cpu_seconds(postgres_pids()) - pg, time.process_time() - me
    for c in [conn, *ears]:
        await c.close()
    return pg / n * 1e6, me / n * 1e6, heard[0]


async def main(args: argparse.Namespace) -> None:
    name = f"tally_bench_notify_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(f"{SERVER}/postgres")
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        dsn = f"{SERVER}/{name}"
        setup = await asyncpg.connect(dsn)
        await setup.execute("CREATE TABLE ws (id uuid PRIMARY KEY, v int, live_until timestamptz)")
        await setup.close()
        print(f"{'listeners':>9}  {'NOTIFY':<11}{'PostgreSQL µs':>15}{'sender+listeners µs':>21}"
              f"{'heard':>8}")  # fmt: skip
        for listeners in (int(x) for x in args.listeners.split(",")):
            for label, clause in CLAUSES.items():
                pg, me, heard = await measure(dsn, clause, listeners, args.transactions)
                print(f"{listeners:>9}  {label:<11}{pg:>15.1f}{me:>21.1f}{heard:>8,}")
        print("CPU a transaction, user + system; PostgreSQL's from /proc, ours from process_time")
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--transactions", type=int, default=8000)
    parser.add_argument("--listeners", default="2,8")
    asyncio.run(main(parser.parse_args()))
