"""A single charge's cost with and without app.held (its statements on one pooled connection).

    .venv/bin/python bench/held.py [--charges 1000] [--rounds 8]
    .venv/bin/python bench/held.py --callgrind [--charges 1000]

On a fresh PostgreSQL database, sequential `recordUsage` requests go through the ASGI app in
this process (no socket), one ENRICHMENT result each on five launch workspaces. By default
the two ways alternate in `--rounds` rounds of `--charges` each and the median CPU per charge
(user + system) of each is printed with their ratio; this machine's speed moves within
seconds, so read the ratio. `--callgrind` instead runs this script under valgrind's callgrind
four times, each way with 50 charges and with 50 + `--charges`, and prints the instructions
a charge costs each way: the difference of the two runs over `--charges`, so the set-up
cancels out. Instructions do not depend on the machine's speed (bench/README.md).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.batch import asgi_post
from bench.charge import OPERATOR, RECORD, Tenant, make_tenant
from bench.charge_layers import payload

WORKSPACES = 5


async def served(pg: str) -> tuple[Any, list[Tenant], str]:
    """The ASGI app on a fresh database, with its workspaces; the database's name."""
    from app.catalog import load_catalog
    from app.catalog.store import seed_catalog
    from app.config import Settings
    from app.db import open_database
    from app.logs import configure_logging
    from graphql_schema.asgi import create_app

    configure_logging("json")
    name = f"tally_bench_held_{uuid.uuid4().hex[:8]}"
    url = f"{pg.replace('postgresql://', 'postgres://')}/{name}"
    await open_database(url)
    await seed_catalog(load_catalog())
    app = create_app(Settings(database_url=url, operator_key=OPERATOR), manage_database=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://tally.bench") as client:
        tenants = [await make_tenant(client, "launch") for _ in range(WORKSPACES)]
    return app, tenants, name


async def charges(app: Any, tenants: list[Tenant], first: int, count: int) -> None:
    for k in range(first, first + count):
        tenant = tenants[k % len(tenants)]
        body = json.dumps({"query": RECORD, "variables": {"i": payload(tenant, f"h{k}")}})
        answer = await asgi_post(app, body.encode(), tenant.key)
        assert b'"Charge"' in answer, answer


async def main(args: argparse.Namespace) -> None:
    from app import held
    from app.db import close_database

    app, tenants, name = await served(args.pg)
    try:
        if args.only:
            held.enabled = args.only == "on"
            await charges(app, tenants, 0, args.charges)
            return
        await charges(app, tenants, 0, 200)  # warm
        spent: dict[bool, list[float]] = {True: [], False: []}
        done = 200
        for _ in range(args.rounds):
            for on in (True, False):
                held.enabled = on
                started = time.process_time()
                await charges(app, tenants, done, args.charges)
                spent[on].append((time.process_time() - started) / args.charges)
                done += args.charges
        on, off = statistics.median(spent[True]), statistics.median(spent[False])
        print(
            f"CPU per charge, median of {args.rounds} rounds of {args.charges:,}:", file=sys.stderr
        )
        print(f"  held connection  {on * 1e6:7.0f} µs", file=sys.stderr)
        print(f"  one a statement  {off * 1e6:7.0f} µs", file=sys.stderr)
        print(f"  ratio {on / off:.3f}", file=sys.stderr)
    finally:
        await close_database()
        conn = await asyncpg.connect(f"{args.pg}/postgres")
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


def collected(way: str, count: int, pg: str) -> int:
    """Instructions callgrind counted for this script charging `count` times `way`."""
    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
    command += [sys.executable, __file__, "--only", way, "--charges", str(count), "--pg", pg]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stderr
    found = re.search(r"Collected : (\d+)", output)
    assert found, output[-2000:]
    return int(found.group(1))


def callgrind(args: argparse.Namespace) -> None:
    per_charge = {}
    for way in ("on", "off"):
        small = collected(way, 50, args.pg)
        large = collected(way, 50 + args.charges, args.pg)
        per_charge[way] = (large - small) / args.charges
    print(f"instructions per charge (callgrind, {args.charges:,} charges each way):")
    print(f"  held connection  {per_charge['on']:,.0f}")
    print(f"  one a statement  {per_charge['off']:,.0f}")
    print(f"  ratio {per_charge['on'] / per_charge['off']:.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--charges", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--callgrind", action="store_true")
    parser.add_argument("--only", choices=("on", "off"), help=argparse.SUPPRESS)
    parsed = parser.parse_args()
    if parsed.callgrind:
        callgrind(parsed)
    else:
        with open(os.devnull, "w") as sys.stdout:  # the request lines
            uvloop.run(main(parsed))
