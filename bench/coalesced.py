"""Single charges of different workspaces with and without app.usage.coalesced.

    .venv/bin/python bench/coalesced.py [--clients 10] [--charges 100] [--rounds 5]
                                        [--workspaces 50]

On a fresh PostgreSQL database, `--clients` concurrent clients send `recordUsage` requests
through the ASGI app in this process (no socket: one API process's work), one ENRICHMENT
result each, over `--workspaces` launch workspaces in turn. The two ways alternate in
`--rounds` rounds of `--charges` a client each, so a change in the machine's speed falls on
both; the median of each is printed: this process's CPU per charge (user + system), the CPU of
this database's PostgreSQL backends per charge, and charges per second, with the ratios, and
how the charges went (alone, in groups, written alone again after a group was rolled back).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bench.held as held_bench
from bench.batch import asgi_post, cpu_seconds
from bench.charge import RECORD
from bench.charge_layers import payload


async def main(args: argparse.Namespace) -> None:
    from app import held
    from app.db import close_database
    from app.usage import coalesced

    held_bench.WORKSPACES = args.workspaces
    held.enabled = True  # as app.startup sets it for the served app
    app, tenants, name = await held_bench.served(args.pg)
    admin = await asyncpg.connect(f"{args.pg}/postgres")
    keys = itertools.count()

    async def pg_cpu() -> float:
        pids = await admin.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1", name)
        return sum(cpu_seconds(r["pid"]) for r in pids)

    async def client(count: int) -> None:
        for _ in range(count):
            k = next(keys)
            tenant = tenants[k % len(tenants)]
            body = json.dumps({"query": RECORD, "variables": {"i": payload(tenant, f"c{k}")}})
            answer = await asgi_post(app, body.encode(), tenant.key)
            assert b'"Charge"' in answer, answer

    async def one_round(on: bool) -> tuple[float, float, float, dict[str, int]]:
        coalesced.enabled = on
        before = dict(coalesced.stats)
        pg, cpu, wall = await pg_cpu(), time.process_time(), time.perf_counter()
        await asyncio.gather(*(client(args.charges) for _ in range(args.clients)))
        n = args.charges * args.clients
        seconds = time.perf_counter() - wall
        spent = ((time.process_time() - cpu) / n, (await pg_cpu() - pg) / n, n / seconds)
        return (*spent, {k: v - before[k] for k, v in coalesced.stats.items()})

    try:
        await asyncio.gather(*(client(20) for _ in range(args.clients)))  # warm
        rounds: dict[bool, list[Any]] = {True: [], False: []}
        for _ in range(args.rounds):
            for on in (True, False):
                rounds[on].append(await one_round(on))
    finally:
        await close_database()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    report(args, rounds)


def report(args: argparse.Namespace, rounds: dict[bool, list[Any]]) -> None:
    def median(on: bool, n: int) -> float:
        return statistics.median(r[n] for r in rounds[on])

    out = sys.stderr  # stdout carries the request lines
    print(f"{args.clients} clients, {args.workspaces} workspaces, median of {args.rounds} rounds"
          f" of {args.charges * args.clients:,} charges:", file=out)  # fmt: skip
    print(f"  {'':22}{'server µs':>10}{'PostgreSQL µs':>15}{'charges/s':>11}", file=out)
    for on, label in ((True, "together (coalesced)"), (False, "each alone")):
        print(f"  {label:22}{median(on, 0) * 1e6:10.0f}{median(on, 1) * 1e6:15.0f}"
              f"{median(on, 2):11,.0f}", file=out)  # fmt: skip
    ratios = [median(True, n) / median(False, n) for n in range(3)]
    print(f"  {'ratio':22}{ratios[0]:10.2f}{ratios[1]:15.2f}{ratios[2]:11.2f}", file=out)
    totals = {k: sum(r[3][k] for r in rounds[True]) for k in rounds[True][0][3]}
    print(f"  coalesced rounds: {totals}", file=out)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--charges", type=int, default=100, help="per client and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workspaces", type=int, default=50)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    with open(os.devnull, "w") as sys.stdout:  # the request lines
        uvloop.run(main(parser.parse_args()))
