"""What the webhook outbox costs the charge path (R36): charges per second with one webhook
endpoint and two alerts set on every workspace, next to workspaces with neither, in one run.

    .venv/bin/python -m bench.webhooks [--charges 2000] [--clients 10] [--rounds 3]

Serves Tally (`tally serve`, one process, the delivery worker on, TALLY_SCHEDULER=off) on a
fresh PostgreSQL database, with a receiver on 127.0.0.1 answering 200. `hooked` workspaces
(launch, 2,500 Data Credits) each have an endpoint subscribed to every event and two alerts:
Data Credits below 2,490 (crossed at the 21st charge of 0.5 credits, in the first round after
the warm-up's 4 a workspace, so each workspace fires one event and one delivery goes out) and
Actions at 50% (never reached here). `plain`
workspaces have neither. Rounds alternate plain and hooked with the same charges and clients
(bench/charge.py's `recordUsage` over HTTP), so drift hits both alike; the totals give each
mode's charges per second and the ratio. The outbox must cost under 15% of throughput.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid

import asyncpg
import httpx

from bench.charge import Tenant, gql, http_mode, make_tenant, start_server
from tests.webhook_receiver import Receiver

ALERT = "mutation($i: AlertInput!) { setAlert(input: $i) { id } }"
ENDPOINT = "mutation($u: String!) { createWebhookEndpoint(input: {url: $u}) { secret } }"


async def hook(client: httpx.AsyncClient, tenant: Tenant, url: str) -> None:
    await gql(client, ENDPOINT, {"u": url}, tenant.key)
    await gql(client, ALERT, {"i": {"meter": "DATA_CREDITS", "threshold": "2490"}}, tenant.key)
    await gql(client, ALERT, {"i": {"meter": "ACTIONS", "threshold": "50"}}, tenant.key)


async def run(args: argparse.Namespace, base: str, receiver: Receiver) -> None:
    limits = httpx.Limits(max_connections=args.clients * 2)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:
        plain = [await make_tenant(client, "launch") for _ in range(args.workspaces)]
        hooked = [await make_tenant(client, "launch") for _ in range(args.workspaces)]
        for tenant in hooked:
            await hook(client, tenant, receiver.url)
        await http_mode(client, "warmup-plain", plain, 200, args.clients)
        await http_mode(client, "warmup-hooked", hooked, 200, args.clients)
        totals = {"plain": [0, 0.0], "hooked": [0, 0.0]}
        for n in range(args.rounds):
            for name, tenants in (("plain", plain), ("hooked", hooked)):
                result = await http_mode(client, f"{name}{n}", tenants, args.charges, args.clients)
                totals[name][0] += result.charges
                totals[name][1] += result.seconds
                print(f"round {n + 1} {name:<7}{result.rate:>10.0f} charges/s")
        await asyncio.sleep(1.5)  # the last deliveries go out
        rates = {name: charges / seconds for name, (charges, seconds) in totals.items()}
    cost = 1 - rates["hooked"] / rates["plain"]
    print(
        f"\n{args.clients} clients, {args.workspaces} workspaces a mode, {os.cpu_count()} cores;"
        f" {len(receiver.got())} webhooks delivered"
    )
    print(f"plain   (no endpoint, no alert)   {rates['plain']:>8.0f} charges/s")
    print(f"hooked  (1 endpoint, 2 alerts)    {rates['hooked']:>8.0f} charges/s")
    verdict = "under" if cost < 0.15 else "OVER"
    print(f"ratio hooked/plain {rates['hooked'] / rates['plain']:.3f}: the outbox costs"
          f" {cost:.1%} of throughput, {verdict} the 15% bound")  # fmt: skip


async def drop(pg: str, name: str) -> None:
    conn = await asyncpg.connect(pg.replace("postgres://", "postgresql://") + "/postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def main(args: argparse.Namespace) -> None:
    name = f"tally_bench_{uuid.uuid4().hex[:8]}"
    os.environ.update(TALLY_WEBHOOK_ALLOW_PRIVATE="on", TALLY_SCHEDULER="off")
    process, base = start_server(f"{args.pg}/{name}", 1)
    try:
        with Receiver() as receiver:
            started = time.monotonic()
            asyncio.run(run(args, base, receiver))
            print(f"({time.monotonic() - started:.0f} s)")
    finally:
        process.terminate()
        process.wait(timeout=20)
        asyncio.run(drop(args.pg, name))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--charges", type=int, default=2000, help="per mode and round")
    parser.add_argument("--clients", type=int, default=10, help="concurrent clients")
    parser.add_argument("--workspaces", type=int, default=50, help="per mode")
    parser.add_argument("--rounds", type=int, default=3, help="plain and hooked, alternated")
    main(parser.parse_args())
