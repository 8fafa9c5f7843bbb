"""Usage results per second through `recordUsageBatch`, against the same SQL issued with asyncpg.

    .venv/bin/python bench/batch.py [--sizes 100,1000] [--clients 4] [--batches N]
                                    [--workers CORES] [--repeat N] [--no-run]
                                    [--no-profile] [--keep] [--json FILE]

Serves Tally (`tally serve`, TALLY_SCHEDULER=off) on a fresh PostgreSQL database and drives
`recordUsageBatch` over HTTP (httpx, keep-alive) for each batch size, first one client sending
batches one after another, then `--clients` concurrent clients, each on its own workspaces.
Every item is one ENRICHMENT result with its own idempotency key and a table id, in a fixed mix
of catalog prices (linkedin/profile, hunter/email, clearbit/company, apollo/phone), and by
default carries the id of a run started on its workbook. "items/s" are charged items per
second, and since each item is one result, results per second.

Workspaces are enterprise with the 250,000 tier (API.md): 3,000,000 Data Credits a year but
100,000 Actions a month, one Action per result, so one workspace takes at most 100,000 items;
each client moves to a fresh workspace of its own before that. Request bodies are encoded
before the clock starts, so the client spends its time sending and reading.

The baseline, in the same run against the same database and tables (its own workspaces), issues
the SQL of one batch directly with an asyncpg pool of as many connections as clients (Tally's
`PooledConnection`, which sends no reset query on release): the reads (API key, workbook, run,
the catalog version in force at the batch's instant, as app.catalog.store reads it, its prices
parsed once) and then one transaction with the idempotency claim (Tally's
statement: INSERT ... SELECT FROM unnest() ON CONFLICT DO NOTHING, giving back the keys already
taken), the workspace, run and workbook rows locked FOR NO KEY UPDATE, one UPDATE of the
workspace and of the run, the charges and ledger rows inserted with unnest(), and the day's
usage rollups upserted (Tally's statement). No HTTP, no GraphQL, no ORM, no rule code.

Each configuration runs `--batches` batches (default: 30,000 items' worth), split evenly over
its clients. The CPU each run used is read from /proc — the server's processes, this database's
PostgreSQL backends, this process — and printed as cores busy and CPU ms per 1,000 items, with
the rate the machine's cores could carry at that cost. The machine is shared: the load average
is printed before and after, and figures taken under load are not comparable.

Afterwards every workspace is checked: refused = 0, charges = items sent, balance = SUM of its
DATA_CREDITS ledger, remaining Actions = SUM of its ACTIONS ledger, the run's spend and count =
its charges. Then (unless --no-profile) one 1,000-item batch is timed in this process at each
layer — the asyncpg SQL, `charge_batch` itself, `schema.execute`, the ASGI app (no socket) —
and the ASGI path is profiled with cProfile (own time by package, and the top functions).
cProfile slows Python-heavy code more than I/O, so read its shares as where the CPU goes, not
as milliseconds saved.
The server is stopped and the database dropped at the end unless --keep.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import hashlib
import json
import math
import os
import pstats
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.db import PooledConnection  # noqa: E402  (after the path, for `python bench/batch.py`)
from app.history import service as history  # noqa: E402
from app.usage import claims, writes  # noqa: E402

OPERATOR = "tly_op_bench_batch"
ACTIONS_A_MONTH = 100_000  # enterprise: the most items (one Action each) a workspace takes
CREDIT_TIER = 250_000  # x 12 on the annual plan: 3,000,000 Data Credits
AUTO_ITEMS = 30_000  # items per configuration when --batches is not given
# Of every ten items: 5 linkedin/profile (0.5 credits), 2 hunter/email (0.5), 2 clearbit/company
# (1), 1 apollo/phone (5) — all ENRICHMENT, results=1.
MIX = [("linkedin", "profile")] * 5 + [("hunter", "email")] * 2 + [("clearbit", "company")] * 2
MIX += [("apollo", "phone")]
TABLES = 8

BATCH = """mutation($items: [RecordUsageInput!]!) { recordUsageBatch(input: {items: $items}) {
  charged refused actions dataCredits
  results { __typename ... on Charge { id } ... on Refusal { code } } } }"""


@dataclass
class Tenant:
    workspace_id: str
    key: str
    workbook_id: str
    run_id: str | None
    items: int = 0  # items this benchmark sent to it


@dataclass
class Lane:
    """One client's workspaces, used in turn as each one's Actions run out."""

    tenants: list[Tenant]

    def take(self, size: int) -> Tenant:
        for tenant in self.tenants:
            if tenant.items + size <= ACTIONS_A_MONTH:
                tenant.items += size
                return tenant
        raise RuntimeError("lane out of workspaces")  # sized up front: a bug if reached


@dataclass
class Result:
    items: int
    seconds: float
    latencies: list[float]
    cpu: dict[str, float] = field(default_factory=dict)  # cores busy on average

    @property
    def rate(self) -> float:
        return self.items / self.seconds

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


# --- the served instance ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(url: str, workers: int) -> tuple[subprocess.Popen[bytes], str, Path]:
    port = free_port()
    env = {
        **os.environ,
        "TALLY_DATABASE_URL": url,
        "TALLY_OPERATOR_KEY": OPERATOR,
        "TALLY_SCHEDULER": "off",
    }
    workdir = Path(tempfile.mkdtemp(prefix="tally-bench-"))
    log = workdir / "serve.log"
    command = [sys.executable, "-m", "tally", "serve", "--port", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*command, "--workers", str(workers)],
            env=env,
            cwd=workdir,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return process, base, log
        except httpx.HTTPError:
            time.sleep(0.2)
        if process.poll() is not None:
            break
    process.kill()
    raise SystemExit(f"server did not start:\n{log.read_text()[-3000:]}")


async def gql(client: httpx.AsyncClient, query: str, variables: dict[str, Any], key: str) -> Any:
    response = await client.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {key}"},
    )
    body = response.json()
    if body.get("errors"):
        raise RuntimeError(body["errors"])
    return body["data"]


async def make_tenant(client: httpx.AsyncClient, with_run: bool) -> Tenant:
    data = await gql(
        client,
        """mutation($t: Int!) { createWorkspace(input: {name: "bench", plan: "enterprise",
        creditTier: $t, billingInterval: ANNUAL}) { adminKey workspace { id } } }""",
        {"t": CREDIT_TIER},
        OPERATOR,
    )
    created = data["createWorkspace"]
    key = created["adminKey"]
    book = await gql(client, 'mutation { createWorkbook(name: "bench") { id } }', {}, key)
    workbook_id = book["createWorkbook"]["id"]
    run_id = None
    if with_run:
        run = await gql(
            client,
            "mutation($i: StartRunInput!) { startRun(input: $i) { id } }",
            {"i": {"workbookId": workbook_id, "idempotencyKey": "run", "name": "bench"}},
            key,
        )
        run_id = run["startRun"]["id"]
    return Tenant(created["workspace"]["id"], key, workbook_id, run_id)


def items_for(tenant: Tenant, prefix: str, size: int) -> list[dict[str, Any]]:
    items = []
    for i in range(size):
        provider, data_type = MIX[i % len(MIX)]
        item = {
            "workbookId": tenant.workbook_id,
            "tableId": f"table-{i % TABLES}",
            "kind": "ENRICHMENT",
            "provider": provider,
            "dataType": data_type,
            "results": 1,
            "idempotencyKey": f"{prefix}-{i}",
        }
        if tenant.run_id is not None:
            item["runId"] = tenant.run_id
        items.append(item)
    return items


# --- CPU accounting from /proc: the server's processes, our database's backends, this one -----

_TICK = os.sysconf("SC_CLK_TCK")


def _proc_stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def cpu_seconds(pid: int) -> float:
    fields = _proc_stat(pid)
    return 0.0 if fields is None else (int(fields[11]) + int(fields[12])) / _TICK


def process_tree(root: int) -> list[int]:
    parents: dict[int, list[int]] = defaultdict(list)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _proc_stat(int(entry.name))) is not None:
            parents[int(fields[1])].append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo += parents.get(pid, [])
    return tree


class CpuMeter:
    """CPU seconds of the server process tree, of the database's backends and of this process."""

    def __init__(self, server_pid: int, monitor: asyncpg.Connection, database: str) -> None:
        self.server_pid, self.monitor, self.database = server_pid, monitor, database

    async def snapshot(self) -> dict[str, dict[int, float]]:
        pids = await self.monitor.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            self.database,
        )
        return {
            "server": {p: cpu_seconds(p) for p in process_tree(self.server_pid)},
            "postgres": {r["pid"]: cpu_seconds(r["pid"]) for r in pids},
            "client": {0: time.process_time()},
        }

    @staticmethod
    def busy(
        before: dict[str, dict[int, float]], after: dict[str, dict[int, float]], seconds: float
    ) -> dict[str, float]:
        return {
            part: sum(max(0.0, t - before[part].get(pid, 0.0)) for pid, t in now.items()) / seconds
            for part, now in after.items()
        }


async def timed(
    meter: CpuMeter | None, workers: list[Callable[[], Awaitable[None]]]
) -> tuple[float, dict[str, float]]:
    before = await meter.snapshot() if meter else None
    start = time.perf_counter()
    await asyncio.gather(*(w() for w in workers))
    seconds = time.perf_counter() - start
    if meter is None or before is None:
        return seconds, {}
    return seconds, CpuMeter.busy(before, await meter.snapshot(), seconds)


# --- Tally over HTTP --------------------------------------------------------------------------


@dataclass
class Totals:
    charged: int = 0
    refused: int = 0


async def tally_mode(
    client: httpx.AsyncClient,
    lanes: list[Lane],
    per_client: int,
    size: int,
    tag: str,
    totals: Totals,
    meter: CpuMeter | None,
) -> Result:
    plans: list[list[tuple[Tenant, bytes]]] = []
    for c, lane in enumerate(lanes):
        plan = []
        for b in range(per_client):
            tenant = lane.take(size)
            items = items_for(tenant, f"{tag}-c{c}-b{b}", size)
            body = json.dumps({"query": BATCH, "variables": {"items": items}}).encode()
            plan.append((tenant, body))
        plans.append(plan)
    latencies: list[float] = []

    def worker(plan: list[tuple[Tenant, bytes]]) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            for tenant, body in plan:
                start = time.perf_counter()
                response = await client.post(
                    "/graphql",
                    content=body,
                    headers={
                        "Authorization": f"Bearer {tenant.key}",
                        "Content-Type": "application/json",
                    },
                )
                payload = response.json()
                latencies.append(time.perf_counter() - start)
                if payload.get("errors"):
                    raise RuntimeError(payload["errors"])
                out = payload["data"]["recordUsageBatch"]
                totals.charged += out["charged"]
                totals.refused += out["refused"]
                if len(out["results"]) != size or out["charged"] != size:
                    raise RuntimeError(f"batch not fully charged: {out['refused']} refused")

        return run

    seconds, cpu = await timed(meter, [worker(plan) for plan in plans])
    return Result(per_client * len(lanes) * size, seconds, latencies, cpu)


# --- the asyncpg baseline: the same SQL per batch ---------------------------------------------

AUTH = (
    'SELECT "id","workspace_id","role" FROM "api_key" WHERE "key_hash"=$1'
    ' AND "revoked_at" IS NULL LIMIT 2'
)
WORKBOOKS = "SELECT * FROM workbook WHERE workspace_id = $1 AND id = ANY($2::uuid[])"
RUNS = "SELECT * FROM run WHERE workspace_id = $1 AND id = ANY($2::uuid[])"
# The catalog in force at the batch's instant, as app.catalog.store reads it since catalog
# versions (migration 0010): the id, and the body only when it is not the version this process
# parsed last (after the first batch, never). The prices then come from that parsed version.
CATALOG_AT = (
    "SELECT id, CASE WHEN id = $2 THEN NULL ELSE body END AS body FROM catalog_version"
    " WHERE effective_at <= $1 ORDER BY effective_at DESC, id DESC LIMIT 1"
)
_catalog: dict[str, Any] = {"id": -1, "prices": {}}


def catalog_prices(row: asyncpg.Record) -> dict[tuple[str, str], int]:
    """Prices by (provider, data type) of the version `row` names, parsed once per version."""
    if row["body"] is not None:
        from app.catalog.files import parse_catalog_text

        prices = parse_catalog_text(row["body"]).prices
        _catalog["prices"] = {(p.provider, p.data_type): p.credits_units for p in prices}
        _catalog["id"] = row["id"]
    return _catalog["prices"]


LOCK_WORKSPACE = (
    "SELECT actions_capacity - actions_used AS remaining, credit_balance, credits_held,"
    " period_start FROM workspace WHERE id = $1 FOR NO KEY UPDATE"
)
LOCK_RUNS = (
    "SELECT id, status, ended_at, budget, spent, hold, hold_ttl_seconds FROM run"
    " WHERE id = ANY($1::uuid[]) ORDER BY id FOR NO KEY UPDATE"
)
LOCK_WORKBOOKS = (
    "SELECT id, name, spend_limit, spent, spend_epoch FROM workbook"
    " WHERE id = ANY($1::uuid[]) ORDER BY id FOR NO KEY UPDATE"
)
DEBIT = (
    "UPDATE workspace SET actions_used = actions_used + $2, credit_balance = credit_balance - $3,"
    " credits_held = credits_held - $4 WHERE id = $1"
)
RUN_UPDATE = (
    "UPDATE run SET spent = spent + $2, actions = actions + $3, results = results + $4,"
    " charge_count = charge_count + $5, hold = hold - $6, hold_expires_at = $7,"
    " last_charge_at = $8 WHERE id = $1"
)
# The same column lists as Tally's own inserts.
CHARGE_COLUMNS, LEDGER_COLUMNS = writes.CHARGE_COLUMNS, writes.LEDGER_COLUMNS


CHARGE_CONSTANTS = {
    "kind": "ENRICHMENT",
    "input_tokens": 0,
    "output_tokens": 0,
    "own_api_key": False,
    "results": 1,
    "actions": 1,
    "refunded_results": 0,
    "refunded_credits": 0,
}


def unnest_insert(table: str, columns: list[tuple[str, str]]) -> str:
    names = ", ".join(name for name, _ in columns)
    arrays = ", ".join(f"${i}::{kind}[]" for i, (_, kind) in enumerate(columns, 1))
    return f"INSERT INTO {table} ({names}) SELECT * FROM unnest({arrays})"


INSERT_CHARGES = unnest_insert("charge", CHARGE_COLUMNS)
INSERT_LEDGER = unnest_insert("ledger_entry", LEDGER_COLUMNS)


async def sql_batch(conn: asyncpg.Connection, tenant: Tenant, items: list[dict[str, Any]]) -> int:
    """One batch as Tally's SQL does it; returns the items charged."""
    ws, wb = uuid.UUID(tenant.workspace_id), uuid.UUID(tenant.workbook_id)
    run = uuid.UUID(tenant.run_id) if tenant.run_id else None
    await conn.fetch(AUTH, hashlib.sha256(tenant.key.encode()).hexdigest())
    await conn.fetch(WORKBOOKS, ws, [wb])
    if run is not None:
        await conn.fetch(RUNS, ws, [run])
    now = datetime.now(UTC)
    prices = catalog_prices(await conn.fetchrow(CATALOG_AT, now, _catalog["id"]))
    ids = {item["idempotencyKey"]: uuid.uuid4() for item in items}
    keys = sorted(ids)
    params = [ws, "recordUsage", now, keys, ["0" * 64] * len(keys), [str(ids[k]) for k in keys]]
    async with conn.transaction():
        taken = {r["key"] for r in await conn.fetch(claims.CLAIM_UNNEST, *params)}
        state = await conn.fetchrow(LOCK_WORKSPACE, ws)
        if run is not None:
            await conn.fetch(LOCK_RUNS, [run])
        await conn.fetch(LOCK_WORKBOOKS, [wb])
        remaining, balance = state["remaining"], state["credit_balance"]
        charges: list[tuple[Any, ...]] = []
        ledger: list[tuple[Any, ...]] = []
        spent = 0
        for item in items:
            key = item["idempotencyKey"]
            credits = prices[(item["provider"], item["dataType"])]
            if key in taken or remaining < 1 or balance - state["credits_held"] < credits:
                continue
            remaining, balance, spent = remaining - 1, balance - credits, spent + credits
            cid = ids[key]
            row = {
                **CHARGE_CONSTANTS,
                "id": cid,
                "workspace_id": ws,
                "workbook_id": wb,
                "table_id": item["tableId"],
                "provider": item["provider"],
                "data_type": item["dataType"],
                "credits": credits,
                "idempotency_key": key,
                "created_at": now,
                "run_id": run,
                "period_start": state["period_start"],
            }  # model, spend_epoch (no limit) and sent_at are NULL
            charges.append(tuple(row.get(name) for name, _ in CHARGE_COLUMNS))
            ledger.append((ws, "CHARGE", "ACTIONS", -1, remaining, wb, cid, now, run))
            ledger.append((ws, "CHARGE", "DATA_CREDITS", -credits, balance, wb, cid, now, run))
        await conn.execute(DEBIT, ws, len(charges), spent, 0)
        if run is not None:
            n = len(charges)  # no hold left, so no expiry: what Tally passes here
            await conn.execute(RUN_UPDATE, run, spent, n, n, n, 0, None, now)
        if charges:
            await conn.execute(INSERT_CHARGES, *(list(c) for c in zip(*charges, strict=True)))
            await conn.execute(INSERT_LEDGER, *(list(c) for c in zip(*ledger, strict=True)))
            await upsert_rollups(conn, ws, charges)
    return len(charges)


async def upsert_rollups(conn: asyncpg.Connection, ws: uuid.UUID, charges: list[tuple]) -> None:
    """The day's rollups, one row per (table, provider), in key order: Tally's upsert."""
    at = {name: n for n, (name, _) in enumerate(CHARGE_COLUMNS)}
    sums: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0, 0, 0])
    for c in charges:
        key = (
            c[at["created_at"]].date(),
            c[at["period_start"]],
            c[at["workbook_id"]],
            c[at["table_id"]],
            c[at["provider"]],
            c[at["kind"]],
        )
        total = sums[key]
        total[0] += c[at["actions"]]
        total[1] += c[at["credits"]]
        total[2] += c[at["results"]]
    rows = sorted(sums)
    values = ", ".join(
        "(" + ", ".join(f"${r * 10 + j}" for j in range(1, 11)) + ")" for r in range(len(rows))
    )
    args = [a for key in rows for a in (ws, *key, *sums[key])]
    await conn.execute(history.UPSERT.format(values=values), *args)


async def sql_mode(
    pool: asyncpg.Pool,
    lanes: list[Lane],
    per_client: int,
    size: int,
    tag: str,
    totals: Totals,
    meter: CpuMeter | None,
) -> Result:
    plans = [
        [
            (tenant := lane.take(size), items_for(tenant, f"{tag}-c{c}-b{b}", size))
            for b in range(per_client)
        ]
        for c, lane in enumerate(lanes)
    ]
    latencies: list[float] = []

    def worker(plan: list[tuple[Tenant, list[dict[str, Any]]]]) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            for tenant, items in plan:
                start = time.perf_counter()
                async with pool.acquire() as conn:
                    charged = await sql_batch(conn, tenant, items)
                latencies.append(time.perf_counter() - start)
                totals.charged += charged
                totals.refused += len(items) - charged

        return run

    seconds, cpu = await timed(meter, [worker(plan) for plan in plans])
    return Result(per_client * len(lanes) * size, seconds, latencies, cpu)


# --- checks -----------------------------------------------------------------------------------

CHECK = """
SELECT w.id, w.credit_balance, w.actions_capacity - w.actions_used AS remaining,
  (SELECT COALESCE(SUM(amount), 0) FROM ledger_entry l
    WHERE l.workspace_id = w.id AND l.meter = 'DATA_CREDITS') AS credit_ledger,
  (SELECT COALESCE(SUM(amount), 0) FROM ledger_entry l
    WHERE l.workspace_id = w.id AND l.meter = 'ACTIONS') AS action_ledger,
  (SELECT COUNT(*) FROM charge c WHERE c.workspace_id = w.id) AS charges,
  (SELECT COALESCE(SUM(credits), 0) FROM charge c WHERE c.workspace_id = w.id) AS credits,
  (SELECT COALESCE(SUM(spent), 0) FROM run r WHERE r.workspace_id = w.id) AS run_spent,
  (SELECT COALESCE(SUM(charge_count), 0) FROM run r WHERE r.workspace_id = w.id) AS run_charges
FROM workspace w WHERE w.id = ANY($1::uuid[])
"""


async def check(conn: asyncpg.Connection, tenants: list[Tenant], with_run: bool) -> list[str]:
    expected = {uuid.UUID(t.workspace_id): t.items for t in tenants}
    problems = []
    rows = await conn.fetch(CHECK, list(expected))
    if len(rows) != len(expected):
        problems.append(f"{len(expected) - len(rows)} workspaces missing")
    for r in rows:
        name = str(r["id"])[:8]
        if r["charges"] != expected[r["id"]]:
            problems.append(f"{name}: {r['charges']} charges, sent {expected[r['id']]}")
        if r["credit_balance"] != r["credit_ledger"]:
            problems.append(f"{name}: balance {r['credit_balance']} != ledger {r['credit_ledger']}")
        if r["remaining"] != r["action_ledger"]:
            problems.append(f"{name}: Actions {r['remaining']} != ledger {r['action_ledger']}")
        if with_run and (r["run_spent"], r["run_charges"]) != (r["credits"], r["charges"]):
            problems.append(f"{name}: run spent {r['run_spent']} != charges {r['credits']}")
    return problems


# --- in-process: where one 1,000-item batch spends its time -----------------------------------


def group_of(filename: str, function: str) -> str:
    if filename.startswith(str(ROOT / "app")):
        return "tally app/ (domain, services)"
    if filename.startswith(str(ROOT / "graphql_schema")):
        return "tally graphql_schema/ (resolvers, types)"
    for marker, group in (
        ("/strawberry/", "strawberry"),
        ("/graphql/", "graphql-core"),
        ("/tortoise/", "tortoise-orm"),
        ("/pypika", "pypika (query building)"),
        ("/asyncpg/", "asyncpg"),
        ("/starlette/", "starlette"),
        ("/json/", "json"),
        ("/asyncio/", "asyncio"),
        ("/uuid.py", "uuid"),
        ("/dataclasses.py", "dataclasses"),
        ("/enum.py", "enum"),
        ("/typing.py", "typing"),
    ):
        if marker in filename:
            return group
    return "other: " + (Path(filename).name if filename != "~" else function)


def profile_groups(stats: pstats.Stats) -> dict[str, float]:
    """Own time by package; a C function's own time goes to the package of its caller."""
    groups: dict[str, float] = defaultdict(float)
    for (filename, _, function), (_, _, own, _, callers) in stats.stats.items():  # type: ignore[attr-defined]
        if filename != "~":
            groups[group_of(filename, function)] += own
            continue
        if "epoll" in function:  # the event loop blocked: nothing to run until a reply arrives
            groups["(idle: the loop waiting on PostgreSQL)"] += own
            continue
        for (cfile, _, cfunc), (_, _, caller_own, _) in callers.items():
            groups[group_of(cfile, cfunc)] += caller_own
    return dict(groups)


def fake_request(key: str) -> Any:
    from starlette.requests import Request

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/graphql",
        "headers": [(b"authorization", f"Bearer {key}".encode())],
    }
    return Request(scope)


async def asgi_post(app: Any, body: bytes, key: str) -> bytes:
    """POST /graphql straight into the ASGI app: no socket, no uvicorn, no client."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "root_path": "",
        "query_string": b"",
        "server": ("127.0.0.1", 80),
        "client": ("127.0.0.1", 1),
        "headers": [
            (b"authorization", f"Bearer {key}".encode()),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
    }
    chunks: list[bytes] = []
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return b"".join(chunks)


async def in_process(
    url: str, client: httpx.AsyncClient, pool: asyncpg.Pool, with_run: bool, reps: int
) -> tuple[list[tuple[str, float]], pstats.Stats, list[Tenant]]:
    from app.config import Settings
    from app.db import close_database, open_database
    from app.kinds import UsageKind
    from app.usage.charging import UsageReport, charge_batch
    from app.usage.costs import Usage
    from graphql_schema.asgi import create_app
    from graphql_schema.context import Context
    from graphql_schema.schema import schema

    settings = Settings(database_url=url, operator_key=OPERATOR, scheduler=False)
    await open_database(url)
    tenants = [await make_tenant(client, with_run) for _ in range(4)]
    lanes = [Lane([t]) for t in tenants]
    app = create_app(settings, manage_database=False)
    size = 1000

    def reports_of(items: list[dict[str, Any]]) -> list[UsageReport]:
        return [
            UsageReport(
                workbook_id=i["workbookId"],
                usage=Usage(UsageKind.ENRICHMENT, 1, i["provider"], i["dataType"]),
                idempotency_key=i["idempotencyKey"],
                table_id=i["tableId"],
                run_id=i.get("runId"),
            )
            for i in items
        ]

    async def stage(
        lane: Lane, tag: str, one: Callable[[Tenant, list[dict[str, Any]]], Awaitable[None]]
    ) -> float:
        times = []
        for n in range(reps + 1):  # the first is a warm-up
            tenant = lane.take(size)
            items = items_for(tenant, f"{tag}-{n}", size)
            start = time.perf_counter()
            await one(tenant, items)
            if n:
                times.append(time.perf_counter() - start)
        return statistics.median(times)

    async def raw(tenant: Tenant, items: list[dict[str, Any]]) -> None:
        async with pool.acquire() as conn:
            assert await sql_batch(conn, tenant, items) == size

    async def domain(tenant: Tenant, items: list[dict[str, Any]]) -> None:
        reports = reports_of(items)  # what the resolver's report_of builds
        outcomes = await charge_batch(uuid.UUID(tenant.workspace_id), reports, datetime.now(UTC))
        assert all(not isinstance(o, Exception) for o in outcomes)

    async def graphql(tenant: Tenant, items: list[dict[str, Any]]) -> None:
        context = Context(request=fake_request(tenant.key), settings=settings)
        result = await schema.execute(BATCH, {"items": items}, context_value=context)
        assert not result.errors, result.errors

    async def asgi(tenant: Tenant, items: list[dict[str, Any]]) -> None:
        body = json.dumps({"query": BATCH, "variables": {"items": items}}).encode()
        answer = json.loads(await asgi_post(app, body, tenant.key))
        assert answer["data"]["recordUsageBatch"]["charged"] == size, answer

    timings = [
        ("asyncpg, the same SQL (one pooled connection)", await stage(lanes[0], "p-sql", raw)),
        ("charge_batch() directly (domain + ORM)", await stage(lanes[1], "p-dom", domain)),
        ("schema.execute() (+ GraphQL input/output)", await stage(lanes[2], "p-gql", graphql)),
        ("ASGI app in-process (+ JSON, Starlette)", await stage(lanes[3], "p-asgi", asgi)),
    ]
    profiler = cProfile.Profile()
    lane = Lane([await make_tenant(client, with_run)])
    tenants += lane.tenants
    for n in range(reps):
        tenant = lane.take(size)
        body = json.dumps(
            {"query": BATCH, "variables": {"items": items_for(tenant, f"p-prof-{n}", size)}}
        ).encode()
        profiler.enable()
        await asgi_post(app, body, tenant.key)
        profiler.disable()
    await close_database()
    return timings, pstats.Stats(profiler), tenants


def show_profile(stats: pstats.Stats, reps: int, top: int) -> None:
    total = sum(v[2] for v in stats.stats.values())  # type: ignore[attr-defined]
    print(
        f"\ncProfile of {reps} x 1,000-item batches through the ASGI app (own time, C calls"
        f" charged to their caller's package; {total / reps * 1000:.0f} ms a batch profiled):"
    )
    for group, own in sorted(profile_groups(stats).items(), key=lambda kv: -kv[1])[:14]:
        print(f"  {own / total:6.1%}  {own / reps * 1000:7.1f} ms  {group}")
    print(f"\nTop {top} functions by own time (ms per batch, calls per batch):")
    rows = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[:top]  # type: ignore[attr-defined]
    for (filename, line, function), (_, calls, own, cumulative, _) in rows:
        where = filename.replace(str(ROOT) + "/", "")
        if "site-packages/" in where:
            where = where.split("site-packages/", 1)[1]
        print(
            f"  {own / reps * 1000:7.1f} {cumulative / reps * 1000:8.1f} cum {calls // reps:>8,}"
            f"  {function}  {where}:{line}"
        )


# --- main -------------------------------------------------------------------------------------


PARTS = ("server", "postgres", "client")


def cpu_cost(result: Result) -> tuple[float, float, float]:
    """CPU milliseconds per 1,000 items: server processes, PostgreSQL backends, this client."""
    per = result.seconds / result.items * 1_000_000
    server, postgres, client = (result.cpu.get(part, 0.0) * per for part in PARTS)
    return server, postgres, client


def show(rows: list[tuple[int, int, Result, Result]], workers: int) -> None:
    print(
        f"\nrecordUsageBatch on PostgreSQL: {workers} server process(es), {os.cpu_count()} cores"
        " shared by the server, PostgreSQL and this client. items/s = charged items per second"
        " (one result each, so results/s); ratio = Tally / asyncpg; latency per batch."
    )
    print(
        f"{'size':>5}{'clients':>8}{'items':>8}{'Tally/s':>10}{'asyncpg/s':>11}{'ratio':>7}"
        f"{'p50 ms':>9}{'p95 ms':>9}{'asyncpg p50':>13}{'p95':>8}"
    )
    for size, clients, tally, raw in rows:
        print(
            f"{size:>5}{clients:>8}{tally.items:>8}{tally.rate:>10,.0f}{raw.rate:>11,.0f}"
            f"{tally.rate / raw.rate:>7.2f}{tally.pct(0.5):>9.1f}{tally.pct(0.95):>9.1f}"
            f"{raw.pct(0.5):>13.1f}{raw.pct(0.95):>8.1f}"
        )
    cores = os.cpu_count() or 1
    print(
        "\nCPU during each run, in cores busy and in CPU ms per 1,000 items (server processes /"
        f" PostgreSQL backends of this database / this client); ceiling = {cores} cores divided"
        " by that cost, what the machine could carry if nothing else ran:"
    )
    print(
        f"{'size':>5}{'clients':>8}  {'':<7}{'cores':>17}{'ms / 1,000 items':>22}{'ceiling/s':>11}"
    )
    for size, clients, tally, raw in rows:
        for label, result in (("Tally", tally), ("asyncpg", raw)):
            busy = "/".join(f"{result.cpu.get(p, 0.0):.2f}" for p in PARTS)
            cost = cpu_cost(result)
            ceiling = cores * 1_000_000 / sum(cost) if sum(cost) else 0.0
            costs = "/".join(f"{c:.0f}" for c in cost)
            print(f"{size:>5}{clients:>8}  {label:<7}{busy:>17}{costs:>22}{ceiling:>11,.0f}")


def show_target(rows: list[tuple[int, int, Result, Result]], target: int, clients: int) -> None:
    """The verdict on the best run, and how often the target held: the machine's speed drifts
    between runs, which is why the ratio to the baseline is printed beside it."""
    best = max((t.rate for s, _, t, _ in rows if s == 1000), default=None)
    if best is None:
        return
    verdict = "met" if best >= target else "NOT met"
    print(f"target {target:,} results/s at 1,000 a batch: {verdict} (best {best:,.0f}/s)")
    runs = [(t.rate, t.rate / r.rate) for s, c, t, r in rows if (s, c) == (1000, clients)]
    if len(runs) > 1:
        met = sum(rate >= target for rate, _ in runs)
        rates = ", ".join(f"{rate:,.0f}" for rate, _ in sorted(runs, reverse=True))
        ratio = statistics.median(ratio for _, ratio in runs)
        print(
            f"  at 1,000 x {clients} clients: met in {met} of {len(runs)} runs ({rates}/s);"
            f" median ratio to asyncpg {ratio:.2f}"
        )


def figures(rows: list[tuple[int, int, Result, Result]], args: argparse.Namespace) -> Any:
    """What --json writes: every run's rate against its baseline, and the target's verdict."""
    runs = [
        {
            "size": size,
            "clients": clients,
            "tally": tally.rate,
            "raw": raw.rate,
            "ratio": tally.rate / raw.rate,
            "p50_ms": tally.pct(0.5),
            "p95_ms": tally.pct(0.95),
        }
        for size, clients, tally, raw in rows
    ]
    at_1000 = [r["tally"] for r in runs if r["size"] == 1000]
    return {
        "workers": args.workers,
        "target": args.target,
        "runs": runs,
        "met_in_every_run": bool(at_1000) and min(at_1000) >= args.target,
    }


async def main(args: argparse.Namespace) -> Any:
    """Runs and prints everything; returns the figures (for --json)."""
    sizes = [int(s) for s in args.sizes.split(",")]
    if any(not 1 <= s <= 1000 for s in sizes):
        raise SystemExit("--sizes: 1 to 1,000 items a batch")
    counts = sorted({1, args.clients})
    with_run = not args.no_run
    name = f"tally_bench_batch_{uuid.uuid4().hex[:8]}"
    url = f"{args.pg}/{name}"
    dsn = url.replace("postgres://", "postgresql://")
    print(f"database {name}; load average before: {os.getloadavg()[0]:.2f}")
    process, base, log = start_server(url, args.workers)
    monitor: asyncpg.Connection | None = None
    pool: asyncpg.Pool | None = None
    result: Any = None
    try:
        limits = httpx.Limits(max_connections=args.clients + 2, max_keepalive_connections=8)
        async with httpx.AsyncClient(base_url=base, timeout=600, limits=limits) as client:
            plan: list[tuple[int, int, int]] = []  # size, clients, batches per client
            for _ in range(args.repeat):  # whole rounds, so a drift in speed spreads evenly
                for size in sizes:
                    total = args.batches or math.ceil(AUTO_ITEMS / size)
                    plan += [(size, c, math.ceil(total / c)) for c in counts]

            async def lanes_for(size: int, clients: int, per_client: int) -> list[Lane]:
                per_tenant = ACTIONS_A_MONTH // size
                need = math.ceil(per_client / per_tenant)
                return [
                    Lane([await make_tenant(client, with_run) for _ in range(need)])
                    for _ in range(clients)
                ]

            tally_lanes = [await lanes_for(*p) for p in plan]
            sql_lanes = [await lanes_for(*p) for p in plan]
            warm_tally = [Lane([await make_tenant(client, with_run)]) for _ in range(2)]
            warm_sql = [Lane([await make_tenant(client, with_run)]) for _ in range(2)]
            tenants = [t for ls in [*tally_lanes, warm_tally] for lane in ls for t in lane.tenants]
            sql_tenants = [t for ls in [*sql_lanes, warm_sql] for lane in ls for t in lane.tenants]
            print(
                f"{len(tenants)} + {len(sql_tenants)} enterprise workspaces (Tally + baseline);"
                f" items {'with' if with_run else 'without'} a runId"
            )
            pool = await asyncpg.create_pool(
                dsn,
                min_size=args.clients,
                max_size=args.clients,
                connection_class=PooledConnection,  # no reset query on release, as Tally's
            )
            monitor = await asyncpg.connect(dsn)
            meter = CpuMeter(process.pid, monitor, name)
            totals, sql_totals = Totals(), Totals()
            for size in sizes:  # warm-up: statement caches, strawberry's caches, connections
                for lanes in (warm_tally[:1], warm_tally):
                    tag = f"w{size}-{len(lanes)}"
                    await tally_mode(client, lanes, 2, size, tag, totals, None)
                for lanes in (warm_sql[:1], warm_sql):
                    tag = f"w{size}-{len(lanes)}"
                    await sql_mode(pool, lanes, 2, size, tag, sql_totals, None)
                warm_tally, warm_sql = warm_tally[::-1], warm_sql[::-1]
            rows = []
            for (size, clients, per), t_lanes, s_lanes in zip(
                plan, tally_lanes, sql_lanes, strict=True
            ):
                tag = f"s{size}c{clients}"
                raw = await sql_mode(pool, s_lanes, per, size, tag, sql_totals, meter)
                tally = await tally_mode(client, t_lanes, per, size, tag, totals, meter)
                rows.append((size, clients, tally, raw))
                print(
                    f"  {size:>5} x {clients} clients: Tally {tally.rate:>8,.0f} items/s"
                    f" ({tally.items:,} in {tally.seconds:.1f} s), asyncpg {raw.rate:>8,.0f}"
                    f" items/s ({raw.seconds:.1f} s)",
                    flush=True,
                )
            problems = await check(monitor, tenants, with_run)
            sql_problems = await check(monitor, sql_tenants, with_run)
            show(rows, args.workers)
            print(
                f"\nchecks: Tally charged {totals.charged:,}, refused {totals.refused};"
                f" asyncpg charged {sql_totals.charged:,}, refused {sql_totals.refused};"
                f" {len(tenants)} + {len(sql_tenants)} workspaces: balance = DATA_CREDITS"
                " ledger sum, Actions remaining = ACTIONS ledger sum, charges = items sent"
                + (", run spend = charges" if with_run else "")
                + (": all hold" if not problems + sql_problems else ": FAILED")
            )
            for problem in (problems + sql_problems)[:20]:
                print("  " + problem)
            show_target(rows, args.target, max(counts))
            result = figures(rows, args)
            if not args.no_profile:
                timings, stats, more = await in_process(url, client, pool, with_run, args.reps)
                served = next((t for s, c, t, _ in rows if (s, c) == (1000, 1)), None)
                print("\nOne 1,000-item batch in this process (median of", args.reps, "):")
                for label, seconds in timings:
                    print(f"  {seconds * 1000:8.1f} ms  {1000 / seconds:>8,.0f} items/s  {label}")
                if served is not None:
                    p50 = served.pct(0.5)
                    print(f"  {p50:8.1f} ms  {1000 / p50 * 1000:>8,.0f} items/s  served over HTTP")
                    print("            (p50, 1 client, from the table above)")
                more_problems = await check(monitor, more, with_run)
                if more_problems:
                    print("in-process checks FAILED:", *more_problems[:10], sep="\n  ")
                else:
                    print(f"  (checks of the {len(more)} workspaces used here: all hold)")
                show_profile(stats, args.reps, args.top)
        print(f"\nload average after: {os.getloadavg()[0]:.2f}")
    finally:
        if pool is not None:
            await pool.close()
        if monitor is not None:
            await monitor.close()
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        if args.keep:
            print(f"kept database {name} ({dsn}); server log {log}")
        else:
            admin = await asyncpg.connect(
                args.pg.replace("postgres://", "postgresql://") + "/postgres"
            )
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--sizes", default="100,1000", help="batch sizes, comma-separated")
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients")
    parser.add_argument(
        "--batches",
        type=int,
        default=0,
        help=f"batches per configuration, split over its clients (default {AUTO_ITEMS:,} items)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="server processes (default: one per core, as `tally serve --workers` is deployed)",
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="rounds of every configuration, one after another"
    )
    parser.add_argument("--no-run", action="store_true", help="items without a runId")
    parser.add_argument("--no-profile", action="store_true", help="skip the in-process part")
    parser.add_argument("--reps", type=int, default=5, help="in-process batches per layer")
    parser.add_argument("--top", type=int, default=25, help="functions listed in the profile")
    parser.add_argument("--target", type=int, default=20_000, help="results/s at 1,000")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    arguments = parser.parse_args()
    figures_of_run = asyncio.run(main(arguments))
    if arguments.json:
        Path(arguments.json).write_text(json.dumps(figures_of_run, indent=1))
