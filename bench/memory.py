"""Resident memory of every API process through a long mixed load (issue 20, target 5).

    .venv/bin/python bench/memory.py [--minutes 10] [--clients 8] [--workers N] [--json FILE]

Serves Tally (`tally serve`, its default workers: one per CPU on PostgreSQL) on a fresh
PostgreSQL database and, for `--minutes`, keeps `--clients` clients busy with a mix of what
the API is asked: single charges (60%), batches of 100 charges (5%), usageHistory by day and
provider over the last 90 days (10%), a ledger page of 50 (10%), balanceAt a random past instant
(10%), the workspace (5%), on `--workspaces` enterprise workspaces in turn, each with its own
keys, workbooks and tables; plus two live subscriptions (workspaceUpdated over
graphql-transport-ws) that read every update. Every 10 s it reads each server process's
resident memory (/proc/PID/status VmRSS) and prints the largest per process and PASS or FAIL
against `--limit` (200 MB). A refusal is counted by its code, not an error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from websockets.asyncio.client import connect

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.charge import Tenant, gql, make_tenant, start_server

RECORD = """mutation($i: RecordUsageInput!) { recordUsage(input: $i) {
  __typename ... on Charge { id dataCredits } ... on Refusal { code } } }"""
BATCH = """mutation($i: RecordUsageBatchInput!) { recordUsageBatch(input: $i) {
  charged refused results { __typename ... on Charge { id } ... on Refusal { code } } } }"""
HISTORY = """query($f: DateTime!, $t: DateTime!) {
  usageHistory(from: $f, to: $t, groupBy: [DAY, PROVIDER]) {
    day provider actions dataCredits results } }"""
LEDGER = """query { ledger(first: 50) { edges { cursor node { id entryType meter amount
  balanceAfter createdAt } } pageInfo { hasNextPage endCursor } } }"""
BALANCE_AT = """query($at: DateTime!) { balanceAt(at: $at) { at actionsUsed actionsCapacity
  dataCredits held available plan { code } } }"""
WORKSPACE = """query { workspace { id name plan { code } actions { used capacity }
  dataCredits { balance available } } }"""
LIVE = "subscription { workspaceUpdated { id actions { used } dataCredits { balance } } }"
PROVIDERS = [("linkedin", "profile"), ("hunter", "email"), ("clearbit", "company")]
SAMPLE_SECONDS = 10


def server_processes(root: int) -> dict[int, str]:
    """The server's processes (the root and every descendant) and what each runs."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = {root}, [root]
    while frontier:
        pid = frontier.pop()
        children = [child for child, parent in parents.items() if parent == pid]
        found.update(children)
        frontier += children
    names = {}
    for pid in sorted(found):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        names[pid] = " ".join(a.decode(errors="replace") for a in argv if a)[-70:]
    return names


def rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class Load:
    """The clients' mix; counts what was sent and how it was answered."""

    def __init__(
        self, client: httpx.AsyncClient, tenants: list[Tenant], seed: int, since: datetime
    ) -> None:
        self.client, self.tenants, self.since = client, tenants, since
        self.random, self.seed = random.Random(seed), seed
        self.sent: Counter[str] = Counter()
        self.refused = 0
        self.codes: Counter[str] = Counter()
        self.serial = 0

    def _key(self) -> str:
        self.serial += 1
        return f"mem-{self.seed}-{self.serial}"

    def _usage(self, tenant: Tenant) -> dict[str, Any]:
        provider, data_type = self.random.choice(PROVIDERS)
        return {
            "workbookId": tenant.workbook_id,
            "kind": "ENRICHMENT",
            "provider": provider,
            "dataType": data_type,
            "results": 1,
            "tableId": f"t{self.random.randrange(5)}",
            "idempotencyKey": self._key(),
        }

    async def one(self) -> None:
        tenant = self.random.choice(self.tenants)
        roll = self.random.random()
        now = datetime.now(UTC)
        if roll < 0.60:
            kind = "recordUsage"
            data = await gql(self.client, RECORD, {"i": self._usage(tenant)}, tenant.key)
            if data["recordUsage"]["__typename"] == "Refusal":
                self.refused += 1
                self.codes[data["recordUsage"]["code"]] += 1
        elif roll < 0.65:
            kind = "recordUsageBatch"
            items = [self._usage(tenant) for _ in range(100)]
            data = await gql(self.client, BATCH, {"i": {"items": items}}, tenant.key)
            self.refused += data["recordUsageBatch"]["refused"]
            for result in data["recordUsageBatch"]["results"]:
                if result["__typename"] == "Refusal":
                    self.codes[result["code"]] += 1
        elif roll < 0.75:
            kind = "usageHistory"
            since = (now - timedelta(days=90)).isoformat()
            await gql(self.client, HISTORY, {"f": since, "t": now.isoformat()}, tenant.key)
        elif roll < 0.85:
            kind = "ledger"
            await gql(self.client, LEDGER, {}, tenant.key)
        elif roll < 0.95:
            kind = "balanceAt"
            at = self.since + (now - self.since) * self.random.random()
            await gql(self.client, BALANCE_AT, {"at": at.isoformat()}, tenant.key)
        else:
            kind = "workspace"
            await gql(self.client, WORKSPACE, {}, tenant.key)
        self.sent[kind] += 1


async def subscriber(base: str, key: str, counts: Counter[str], stop: asyncio.Event) -> None:
    """One live subscription, reading every update until `stop`."""
    url = base.replace("http://", "ws://") + "/graphql"
    async with connect(url, subprotocols=["graphql-transport-ws"], proxy=None) as socket:  # type: ignore[list-item]
        await socket.send(
            json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {key}"}})
        )
        await socket.recv()  # connection_ack
        await socket.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": LIVE}}))
        while not stop.is_set():
            try:
                message = json.loads(await asyncio.wait_for(socket.recv(), 1))
            except TimeoutError:
                continue
            if message["type"] == "ping":
                await socket.send(json.dumps({"type": "pong"}))
            elif message["type"] == "next":
                counts["updates"] += 1


async def sampler(
    root: int, peaks: dict[int, float], names: dict[int, str], stop: asyncio.Event, start: float
) -> None:
    while True:
        for pid, name in server_processes(root).items():
            rss = rss_mb(pid)
            if rss is not None:
                names[pid] = name
                peaks[pid] = max(peaks.get(pid, 0.0), rss)
        current = ", ".join(f"{pid}: {rss_mb(pid) or 0:.0f}" for pid in sorted(names))
        print(f"  {time.monotonic() - start:6.0f} s  RSS MB by process {current}", flush=True)
        try:
            await asyncio.wait_for(stop.wait(), SAMPLE_SECONDS)
            return
        except TimeoutError:
            continue


async def main(args: argparse.Namespace) -> dict[str, Any]:
    name = f"tally_bench_memory_{uuid.uuid4().hex[:8]}"
    url = f"{args.pg}/{name}"
    process, base = start_server(url, args.workers)
    try:
        limits = httpx.Limits(max_connections=args.clients * 2)
        async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:
            tenants = [await make_tenant(client, "enterprise") for _ in range(args.workspaces)]
            for tenant in tenants[:10]:  # a spend limit, so limited workbooks are in the mix
                await gql(
                    client,
                    'mutation($w: ID!) { setWorkbookSpendLimit(workbookId: $w, limit: "1000000")'
                    " { __typename } }",
                    {"w": tenant.workbook_id},
                    tenant.key,
                )
            stop, live = asyncio.Event(), Counter[str]()
            peaks: dict[int, float] = {}
            names: dict[int, str] = {}
            start = time.monotonic()
            deadline = start + args.minutes * 60
            since = datetime.now(UTC)  # every workspace exists by then (balanceAt's instants)
            loads = [Load(client, tenants, seed, since) for seed in range(args.clients)]

            async def drive(load: Load) -> None:
                while time.monotonic() < deadline:
                    await load.one()

            watchers = [
                asyncio.create_task(subscriber(base, t.key, live, stop)) for t in tenants[:2]
            ]
            watch = asyncio.create_task(sampler(process.pid, peaks, names, stop, start))
            await asyncio.gather(*(drive(load) for load in loads))
            seconds = time.monotonic() - start
            stop.set()
            await asyncio.gather(watch, *watchers)
        sent = sum((load.sent for load in loads), Counter[str]())
        refused = sum(load.refused for load in loads)
        codes = sum((load.codes for load in loads), Counter[str]())
        largest = max(peaks.values())
        verdict = "PASS" if largest < args.limit else "FAIL"
        print(
            f"\n{sum(sent.values()):,} requests in {seconds:.0f} s ({dict(sent)}), {refused:,}"
            f" charges refused ({dict(codes)}), {live['updates']:,} live updates read"
        )
        print(f"largest resident memory per server process (sampled every {SAMPLE_SECONDS} s):")
        for pid in sorted(peaks):
            print(f"  {pid:>8}  {peaks[pid]:7.1f} MB  {names[pid]}")
        print(f"target: each process under {args.limit} MB: {verdict} (largest {largest:.1f} MB)")
        return {
            "minutes": args.minutes,
            "requests": dict(sent),
            "refused": dict(codes),
            "live_updates": live["updates"],
            "rss_mb": {str(pid): peaks[pid] for pid in peaks},
            "largest_mb": largest,
            "limit_mb": args.limit,
            "pass": largest < args.limit,
        }
    finally:
        process.terminate()
        process.wait(timeout=20)
        conn = await asyncpg.connect(args.pg.replace("postgres://", "postgresql://") + "/postgres")
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--clients", type=int, default=8, help="concurrent HTTP clients")
    parser.add_argument("--workspaces", type=int, default=60)
    parser.add_argument(
        "--workers", type=int, help="server processes (default: tally serve's, one per CPU)"
    )
    parser.add_argument("--limit", type=float, default=200, help="MB per process")
    parser.add_argument("--json", help="also write the figures to this file")
    arguments = parser.parse_args()
    figures = asyncio.run(main(arguments))
    if arguments.json:
        Path(arguments.json).write_text(json.dumps(figures, indent=1))
