"""Where a single charge's server CPU goes, layer by layer, in one process.

    .venv/bin/python bench/charge_layers.py [--charges 3000] [--pg postgresql://...]

On a fresh PostgreSQL database with 50 launch workspaces, sequential charges (one ENRICHMENT
result each, the body bench/charge.py sends) are timed with this process's CPU time (user +
system, `time.process_time`) at each layer: the ASGI app (no socket, no uvicorn), strawberry's
`schema.execute`, and `charge_one` with the key checked in its first read, as the resolver calls
it; `{ __typename }` through the ASGI app is the floor of any request. Then one more pass with
timers around the steps of `charge_one`, once the one-statement way (its first read, the one
statement, the rest) and once the locked way (its first read, the claim-and-lock statement, the
write statement, the transaction and its pool connection, the rest), and a comparison of
tortoise's query and transaction with asyncpg's own on `SELECT 1`.

Timers, not profilers: cProfile multiplies the cost of code made of many small Python calls
several times here, and a sampling profiler counts a send to PostgreSQL as busy while the
backend runs on the same core (bench/README.md). Figures are CPU per charge, so they hold for
one client; with more, both cores are shared with PostgreSQL.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import functools
import inspect
import json
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.batch import asgi_post, fake_request
from bench.charge import OPERATOR, RECORD, Tenant, make_tenant

TENANTS = 50


def payload(tenant: Tenant, key: str) -> dict[str, Any]:
    return {"workbookId": tenant.workbook_id, "kind": "ENRICHMENT", "provider": "linkedin",
            "dataType": "profile", "results": 1, "idempotencyKey": key}  # fmt: skip


async def cpu_each(n: int, one: Callable[[int], Awaitable[Any]]) -> float:
    """This process's CPU seconds per call of `one`, after 100 calls to warm it."""
    for k in range(100):
        await one(-1 - k)
    started = time.process_time()
    for k in range(n):
        await one(k)
    return (time.process_time() - started) / n


@contextlib.contextmanager
def timed(spent: dict[str, float], module: Any, name: str, label: str) -> Iterator[None]:
    """`module.name` replaced by itself, timed into `spent[label]` (CPU seconds), while in
    the block."""
    original = getattr(module, name)
    assert inspect.iscoroutinefunction(original), name

    @functools.wraps(original)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.process_time()
        try:
            return await original(*args, **kwargs)
        finally:
            spent[label] += time.process_time() - started

    setattr(module, name, wrapper)
    try:
        yield
    finally:
        setattr(module, name, original)


async def layers(
    url: str, n: int
) -> tuple[list[tuple[str, float]], Callable[[int, str], Awaitable[None]]]:
    """Each layer's CPU a charge, and the charge as the domain makes it, for `steps`."""
    from app.catalog import load_catalog
    from app.catalog.store import seed_catalog
    from app.config import Settings
    from app.db import open_database
    from app.kinds import UsageKind
    from app.logs import configure_logging
    from app.usage.charging import charge_one
    from app.usage.costs import Usage
    from app.usage.items import UsageReport
    from app.workspaces.auth import Bearer, hash_secret
    from graphql_schema.asgi import create_app
    from graphql_schema.context import Context
    from graphql_schema.schema import schema

    configure_logging("text")  # `tally serve`'s default: the request line is part of the cost
    await open_database(url)
    await seed_catalog(load_catalog())
    settings = Settings(database_url=url, operator_key=OPERATOR, scheduler=False)
    app = create_app(settings, manage_database=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://tally.bench") as client:
        tenants = [await make_tenant(client, "launch") for _ in range(TENANTS)]
    usage = Usage(UsageKind.ENRICHMENT, 1, "linkedin", "profile")

    def tenant(k: int) -> Tenant:
        return tenants[k % TENANTS]

    async def asgi(k: int) -> None:
        body = json.dumps({"query": RECORD, "variables": {"i": payload(tenant(k), f"a{k}")}})
        answer = json.loads(await asgi_post(app, body.encode(), tenant(k).key))
        assert answer["data"]["recordUsage"]["__typename"] == "Charge", answer

    async def execute(k: int) -> None:
        context = Context(request=fake_request(tenant(k).key), settings=settings)
        variables = {"i": payload(tenant(k), f"e{k}")}
        result = await schema.execute(RECORD, variables, context_value=context)
        assert result.data and result.data["recordUsage"]["__typename"] == "Charge", result

    async def domain(k: int, prefix: str = "d") -> None:
        caller = Bearer(hash_secret(tenant(k).key), lambda principal: None)
        report = UsageReport(tenant(k).workbook_id, usage, f"{prefix}{k}")
        await charge_one(caller, report, datetime.now(UTC))

    async def empty(k: int) -> None:
        answer = await asgi_post(app, b'{"query": "{ __typename }"}', tenant(k).key)
        assert answer == b'{"data":{"__typename":"Query"}}', answer

    return [
        ("ASGI app: recordUsage", await cpu_each(n, asgi)),
        ("schema.execute: recordUsage", await cpu_each(n, execute)),
        ("charge_one, key checked in its first read", await cpu_each(n, domain)),
        ("ASGI app: { __typename }", await cpu_each(n, empty)),
    ], domain


async def steps(
    n: int, domain: Callable[[int, str], Awaitable[None]], at_once: bool
) -> list[tuple[str, float]]:
    """`charge_one`'s steps on the same workspaces, timed where the charge calls them:
    `at_once`, the one-statement way (app.usage.optimistic); else the locked transaction."""
    from app.usage import charging, optimistic

    optimistic.enabled = at_once
    way = "one statement" if at_once else "locked"
    spent: dict[str, float] = collections.defaultdict(float)
    with contextlib.ExitStack() as stack:
        for module, name, label in (
            (charging, "workbooks_of", "first read"),
            (optimistic, "written", "the one statement"),
            (charging, "claim_and_lock", "claim and lock statement"),
            (charging, "write", "write statement"),
            (charging, "transact", "transact"),
            (charging, "_charge", "decide and write"),
        ):
            stack.enter_context(timed(spent, module, name, label))
        # keys of their own: another pass's would be replays
        total = await cpu_each(n, functools.partial(domain, prefix=way)) * n
    optimistic.enabled = True
    scale = 1 / (n + 100)  # the timers counted cpu_each's warm-up too
    found = {label: seconds * scale for label, seconds in spent.items()}
    if at_once:
        rest = found.pop("transact") - found["the one statement"]
        found["deciding and recording"] = rest
    else:
        found["BEGIN, COMMIT, pool"] = (
            found.pop("transact") - found["decide and write"] - found["claim and lock statement"]
        )
        found["deciding and recording"] = found.pop("decide and write") - found["write statement"]
    return [(f"{way}: charge_one in all", total / n)] + [
        (f"{way}: {label}", seconds) for label, seconds in found.items()
    ]


async def plumbing(n: int) -> list[tuple[str, float]]:
    """tortoise's query and transaction against asyncpg's own, `SELECT 1`."""
    from tortoise.transactions import in_transaction

    from app.db import connection, fetch

    await fetch(connection(), "SELECT 1")
    pool: Any = connection()._pool  # tortoise's asyncpg pool (private)

    async def tortoise_txn(_: int) -> None:
        async with in_transaction() as conn:
            await fetch(conn, "SELECT 1")
            await fetch(conn, "SELECT 1")

    async def asyncpg_txn(_: int) -> None:
        async with pool.acquire() as conn, conn.transaction():
            await conn.fetch("SELECT 1")
            await conn.fetch("SELECT 1")

    async def tortoise_query(_: int) -> None:
        await fetch(connection(), "SELECT 1")

    async def asyncpg_query(_: int) -> None:
        await pool.fetch("SELECT 1")

    return [
        ("app.db.fetch (tortoise), SELECT 1", await cpu_each(n, tortoise_query)),
        ("asyncpg pool.fetch, SELECT 1", await cpu_each(n, asyncpg_query)),
        ("tortoise transaction of 2 x SELECT 1", await cpu_each(n, tortoise_txn)),
        ("asyncpg transaction of 2 x SELECT 1", await cpu_each(n, asyncpg_txn)),
    ]


async def main(args: argparse.Namespace) -> None:
    from app.db import close_database

    name = f"tally_bench_layers_{uuid.uuid4().hex[:8]}"
    url = f"{args.pg.replace('postgresql://', 'postgres://')}/{name}"
    try:
        measured, domain = await layers(url, args.charges)
        measured += await steps(args.charges, domain, at_once=True)
        measured += await steps(args.charges, domain, at_once=False)
        measured += await plumbing(args.charges)
        await close_database()
    finally:
        conn = await asyncpg.connect(f"{args.pg}/postgres")
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()
    print(f"\nCPU of this process per call, {args.charges:,} sequential calls each (µs):")
    for label, seconds in measured:
        print(f"  {seconds * 1e6:8.0f}  {label}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--charges", type=int, default=3000)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    uvloop.run(main(parser.parse_args()))
