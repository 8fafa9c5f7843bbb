"""Charges per second through the whole stack, against the same SQL issued with asyncpg.

    .venv/bin/python bench/charge.py [--workers N] [--charges 2000] [--client wire|httpx]
                                     [--modes many:1,many:10,hot:10,hot:50] [--slices 4]
                                     [--json FILE]

Serves Tally (`tally serve`) on a fresh PostgreSQL database, then for each mode (`many`: 50
workspaces in turn, `hot`: one workspace; `:N` concurrent clients) drives `recordUsage` over
HTTP and prints charges/s and p50/p99 latency, and the server processes' largest resident
memory. The baseline, in the same run against the same database, issues the SQL of one charge
request directly with asyncpg: no HTTP, no GraphQL, no ORM. `txn` is the charge transaction
alone; `request` adds the two reads a request makes first (the API key; the workbook with the
catalog version in force). `empty request` sends `{ __typename }` with the same key, clients
and connections: the server's HTTP and GraphQL cost alone, a ceiling no charge over HTTP can
pass. Each mode runs in `--slices` turns, the three baselines and Tally one after another in
each, so a change in the machine's speed (which moves within seconds here) falls on all four;
a figure is its turns' charges over their summed time. The load generator shares the
machine's cores with the server; it is bench/wire.py's lean HTTP/1.1 client unless `--client
httpx` (about a millisecond of CPU a request that the server would otherwise have).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.wire import Wire

OPERATOR = "tly_op_bench"
RECORD = """mutation($i: RecordUsageInput!) { recordUsage(input: $i) {
  __typename ... on Charge { id } ... on Refusal { code } } }"""
EMPTY = "{ __typename }"


@dataclass
class Result:
    name: str
    charges: int
    seconds: float
    latencies: list[float]
    server_cpu: float = 0.0  # CPU seconds of the server's processes during the mode
    pg_cpu: float = 0.0  # and of PostgreSQL's

    @property
    def rate(self) -> float:
        return self.charges / self.seconds

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def drive(
    total: int, clients: int, one: Callable[[int], Awaitable[None]], first: int = 0
) -> tuple[float, list[float]]:
    """`one(n)` for n from `first`, `total` times, by `clients` at once."""
    counter = itertools.count(first)
    latencies: list[float] = []

    async def worker() -> None:
        while (n := next(counter)) < first + total:
            start = time.perf_counter()
            await one(n)
            latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    return time.perf_counter() - start, latencies


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(url: str, workers: int | None) -> tuple[subprocess.Popen, str]:
    """`tally serve` on `url`; `workers` None: its own default (one per CPU on PostgreSQL)."""
    port = free_port()
    env = {
        **os.environ,
        "TALLY_DATABASE_URL": url,
        "TALLY_OPERATOR_KEY": OPERATOR,
    }
    # The server's log: TALLY_BENCH_SERVER_LOG, else nowhere. The child keeps its own copy.
    with open(os.environ.get("TALLY_BENCH_SERVER_LOG", os.devnull), "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "tally", "serve", "--port", str(port)]
            + ([] if workers is None else ["--workers", str(workers)]),
            env=env,
            cwd=tempfile.mkdtemp(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    for _ in range(150):
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return process, base
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("server did not start")


def tree(root: int) -> list[int]:
    """The server's processes: `root` and its children (Linux /proc)."""
    pids = [root]
    for stat in os.listdir("/proc"):
        if stat.isdigit():
            try:
                with open(f"/proc/{stat}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == root:
                        pids.append(int(stat))
            except (OSError, IndexError, ValueError):
                continue
    return pids


def postgres_pids() -> list[int]:
    pids = []
    for pid in os.listdir("/proc"):
        try:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().strip() == "postgres":
                    pids.append(int(pid))
        except (OSError, ValueError):
            continue
    return pids


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU the processes have used so far, with that of their children that
    have exited (PostgreSQL's postmaster reaps the backends of closed connections)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += sum(int(v) for v in fields[11:15])
        except (OSError, IndexError, ValueError):
            continue
    return total / os.sysconf("SC_CLK_TCK")


async def with_cpu(root: int, measured: Awaitable[Result]) -> Result:
    """`measured`'s result with the CPU the server and PostgreSQL spent meanwhile."""
    before = cpu_seconds(tree(root)), cpu_seconds(postgres_pids())
    result = await measured
    result.server_cpu = cpu_seconds(tree(root)) - before[0]
    result.pg_cpu = cpu_seconds(postgres_pids()) - before[1]
    return result


def rss_mb(root: int) -> float:
    """Resident memory of the server: its processes' largest, in MB (Linux /proc)."""
    largest = 0.0
    for pid in tree(root):
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        largest = max(largest, int(line.split()[1]) / 1024)
        except OSError:
            continue
    return largest


class Tenant:
    def __init__(self, workspace_id: str, key: str, workbook_id: str) -> None:
        self.workspace_id, self.key, self.workbook_id = workspace_id, key, workbook_id


async def gql(client: httpx.AsyncClient, query: str, variables: dict, key: str) -> dict:
    response = await client.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {key}"},
    )
    body = response.json()
    if body.get("errors"):
        raise RuntimeError(body["errors"])
    return body["data"]


async def make_tenant(client: httpx.AsyncClient, plan: str) -> Tenant:
    created = await gql(
        client,
        """mutation($p: String!) { createWorkspace(input:
        {name: "bench", plan: $p}) { adminKey workspace { id } } }""",
        {"p": plan},
        OPERATOR,
    )
    key = created["createWorkspace"]["adminKey"]
    wb = await gql(client, 'mutation { createWorkbook(name: "b") { id } }', {}, key)
    return Tenant(created["createWorkspace"]["workspace"]["id"], key, wb["createWorkbook"]["id"])


Send = Callable[[str, dict, str], Awaitable[dict]]  # (query, variables, key) -> data


def sender(client: httpx.AsyncClient, wire: Wire | None) -> Send:
    """How the measured requests go: over bench/wire.py's lean client, or httpx."""
    if wire is not None:
        return wire.graphql
    return lambda query, variables, key: gql(client, query, variables, key)


async def http_mode(
    send: Send, name: str, tenants: list[Tenant], total: int, clients: int, first: int = 0
) -> Result:
    async def one(n: int) -> None:
        t = tenants[n % len(tenants)]
        payload = {
            "workbookId": t.workbook_id,
            "kind": "ENRICHMENT",
            "provider": "linkedin",
            "dataType": "profile",
            "results": 1,
            "idempotencyKey": f"{name}-{n}",
        }
        data = await send(RECORD, {"i": payload}, t.key)
        assert data["recordUsage"]["__typename"] == "Charge", data

    seconds, latencies = await drive(total, clients, one, first)
    return Result(name, total, seconds, latencies)


async def empty_mode(
    send: Send, name: str, tenants: list[Tenant], total: int, clients: int, first: int = 0
) -> Result:
    """The same requests' cost without the charge: `{ __typename }` with the same key, through
    the same server, client and connections. No charge over HTTP can go faster than this."""

    async def one(n: int) -> None:
        data = await send(EMPTY, {}, tenants[n % len(tenants)].key)
        assert data == {"__typename": "Query"}, data

    seconds, latencies = await drive(total, clients, one, first)
    return Result(name, total, seconds, latencies)


# The SQL Tally issues for one charge request (app/usage/charging.py and the ORM's statements).
AUTH = (
    'SELECT "id","workspace_id","role" FROM "api_key" WHERE "key_hash"=$1'
    ' AND "revoked_at" IS NULL LIMIT 2'
)
# The workbook with the catalog version in force (app.catalog.store.in_force_columns): the body
# only when it is not the one this process parsed last, which after the first charge it is.
_VERSION = (
    "FROM catalog_version WHERE effective_at <= $1 ORDER BY effective_at DESC, id DESC LIMIT 1"
)
WORKBOOK = (
    f"SELECT id, id AS workbook_id, (SELECT id {_VERSION}) AS catalog_id,"
    f" (SELECT CASE WHEN id = $2 THEN NULL ELSE body END {_VERSION}) AS catalog_body"
    " FROM workbook WHERE workspace_id = $3 AND id IN ($4)"
)
CLAIM = (
    'INSERT INTO "idempotency_record" ("key","operation","request_hash","result_id",'
    '"created_at","workspace_id") VALUES ($1,$2,$3,$4,$5,$6) RETURNING "id"'
)
DEBIT = (
    "UPDATE workspace SET actions_used = actions_used + $2, credit_balance = credit_balance"
    " - $3 WHERE id = $1 AND actions_used + $2 <= actions_capacity AND credit_balance >= $3"
    " RETURNING actions_capacity - actions_used AS actions_remaining, credit_balance"
)
SPEND = (
    "UPDATE workbook SET spent = CASE WHEN spend_limit IS NULL THEN spent ELSE spent + $2 END"
    " WHERE id = $1 AND (spend_limit IS NULL"
    " OR (spent < spend_limit AND spent + $2 <= spend_limit))"
    " RETURNING spend_limit, spend_epoch"
)
CHARGE = (
    'INSERT INTO "charge" ("id","table_id","kind","provider","data_type","model",'
    '"input_tokens","output_tokens","own_api_key","results","actions","credits",'
    '"refunded_results","refunded_credits","spend_epoch","idempotency_key","created_at",'
    '"workspace_id","workbook_id") VALUES ($1,NULL,$2,$3,$4,NULL,0,0,FALSE,1,1,$5,0,0,NULL,'
    "$6,$7,$8,$9)"
)
LEDGER = (
    'INSERT INTO "ledger_entry" ("entry_type","meter","amount","balance_after",'
    '"workbook_id","charge_id","refund_id","created_at","workspace_id") VALUES '
    '($1,$2,$3,$4,$5,$6,NULL,$7,$8) RETURNING "id"'
)


async def sql_charge(conn: asyncpg.Connection, t: Tenant, key: str, with_reads: bool) -> None:
    ws, wb = uuid.UUID(t.workspace_id), uuid.UUID(t.workbook_id)
    now, charge_id = datetime.now(UTC), uuid.uuid4()
    if with_reads:
        await conn.fetch(AUTH, hashlib.sha256(t.key.encode()).hexdigest())
        await conn.fetch(WORKBOOK, now, 1, str(ws), str(wb))
    async with conn.transaction():
        await conn.fetch(CLAIM, key, "recordUsage", "0" * 64, str(charge_id), now, ws)
        row = await conn.fetchrow(DEBIT, ws, 1, 5000)
        await conn.fetchrow(SPEND, wb, 5000)
        await conn.execute(
            CHARGE, charge_id, "ENRICHMENT", "linkedin", "profile", 5000, key, now, ws, wb
        )
        await conn.executemany(
            LEDGER,
            [
                ("CHARGE", "ACTIONS", -1, row["actions_remaining"], wb, charge_id, now, ws),
                ("CHARGE", "DATA_CREDITS", -5000, row["credit_balance"], wb, charge_id, now, ws),
            ],
        )


async def sql_mode(
    pool: asyncpg.Pool,
    name: str,
    tenants: list[Tenant],
    total: int,
    clients: int,
    with_reads: bool,
    first: int = 0,
) -> Result:
    async def one(n: int) -> None:
        async with pool.acquire() as conn:
            await sql_charge(conn, tenants[n % len(tenants)], f"{name}-{n}", with_reads)

    seconds, latencies = await drive(total, clients, one, first)
    return Result(name, total, seconds, latencies)


def slices(total: int, count: int) -> list[tuple[int, int]]:
    """`total` in `count` consecutive runs: (first, size) each, the last taking the rest."""
    if count < 1:
        raise SystemExit("--slices: at least 1")
    size = max(1, total // count)
    starts = list(range(0, total, size))[:count]
    return [(first, (starts[i + 1] if i + 1 < len(starts) else total) - first)
            for i, first in enumerate(starts)]  # fmt: skip


def merged(name: str, parts: list[Result]) -> Result:
    """One mode's slices as one run: charges and seconds summed, every latency kept."""
    return Result(
        name,
        sum(p.charges for p in parts),
        sum(p.seconds for p in parts),
        [latency for p in parts for latency in p.latencies],
        sum(p.server_cpu for p in parts),
        sum(p.pg_cpu for p in parts),
    )


def show(results: list[Result], baseline: dict[str, Result]) -> None:
    print(
        f"\n{'mode':<34}{'charges/s':>11}{'p50 ms':>9}{'p99 ms':>9}{'vs txn':>9}"
        f"{'server CPU':>12}{'pg CPU':>9}"
    )
    for r in results:
        base = baseline.get(r.name.split(":")[-1])
        ratio = f"{r.rate / base.rate:8.2f}x" if base and not r.name.startswith("sql") else ""
        server = f"{r.server_cpu / r.charges * 1000:9.2f} ms" if r.server_cpu else ""
        print(
            f"{r.name:<34}{r.rate:>11.0f}{r.pct(0.5):>9.2f}{r.pct(0.99):>9.2f}{ratio:>9}"
            f"{server:>12}{r.pg_cpu / r.charges * 1000:>6.2f} ms"
        )
    print("CPU: per charge (or request), user + system, sampled from /proc around each mode")


async def main(args: argparse.Namespace) -> dict[str, object]:
    """Runs and prints every mode; returns the figures (for --json)."""
    name = f"tally_bench_{uuid.uuid4().hex[:8]}"
    url = f"{args.pg}/{name}"
    process, base = start_server(url, args.workers)
    dsn = url.replace("postgres://", "postgresql://")
    try:
        modes = [(m.split(":")[0], int(m.split(":")[1])) for m in args.modes.split(",")]
        most = max(c for _, c in modes)
        limits = httpx.Limits(max_connections=max(most, args.clients) * 2)
        async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:
            many = [await make_tenant(client, "launch") for _ in range(args.workspaces)]
            hot = [await make_tenant(client, "enterprise")]
            sql_many = [await make_tenant(client, "launch") for _ in range(args.workspaces)]
            sql_hot = [await make_tenant(client, "enterprise")]
            wire = Wire(base) if args.client == "wire" else None
            send = sender(client, wire)
            await http_mode(send, "warmup", many, 200, args.clients)
            pool = await asyncpg.create_pool(dsn, min_size=most, max_size=most)
            await sql_mode(pool, "sql warmup", sql_many, 200, args.clients, True)
            results: list[Result] = []
            baseline: dict[str, Result] = {}
            rss = rss_mb(process.pid)
            tenants = {"many": (many, sql_many), "hot": (hot, sql_hot)}
            for label, clients in modes:
                http_tenants, sql_tenants = tenants[label]
                mode = f"{label}/{clients}c"
                n = args.charges * (2 if clients > 1 else 1)
                parts: dict[str, list[Result]] = {}
                # The mode's charges in slices, the baselines and Tally taking turns, so that
                # the machine's speed, which drifts within seconds here, is shared by all four.
                for first, size in slices(n, args.slices):
                    for reads in (False, True):
                        name = f"sql {'request' if reads else 'txn'}:{mode}"
                        run = sql_mode(pool, name, sql_tenants, size, clients, reads, first)
                        parts.setdefault(name, []).append(await with_cpu(process.pid, run))
                    name = f"empty request:{mode}"
                    run = empty_mode(send, name, http_tenants, size, clients, first)
                    parts.setdefault(name, []).append(await with_cpu(process.pid, run))
                    name = f"tally http:{mode}"
                    run = http_mode(send, name, http_tenants, size, clients, first)
                    parts.setdefault(name, []).append(await with_cpu(process.pid, run))
                done = {name: merged(name, turns) for name, turns in parts.items()}
                results += done.values()
                baseline[mode] = done[f"sql txn:{mode}"]
                rss = max(rss, rss_mb(process.pid))
            await pool.close()
            if wire is not None:
                await wire.close()
        print(
            f"PostgreSQL, {args.workers or 'default'} server process(es), {os.cpu_count()} cores, "
            f"{args.workspaces} workspaces for 'many', client {args.client}; "
            "ratio = over the txn baseline"
        )
        show(results, baseline)
        print(f"server resident memory, largest process, sampled after each mode: {rss:.0f} MB")
        empty = {r.name.split(":")[-1]: r.rate for r in results if r.name.startswith("empty")}
        summary = {
            r.name.split(":")[-1]: {
                "tally": r.rate,
                "raw": baseline[r.name.split(":")[-1]].rate,
                "p50_ms": r.pct(0.5),
                "p99_ms": r.pct(0.99),
                "server_cpu_ms": r.server_cpu / r.charges * 1000,
                "pg_cpu_ms": r.pg_cpu / r.charges * 1000,
                "empty": empty[r.name.split(":")[-1]],
            }
            for r in results
            if r.name.startswith("tally")
        }
        return {"modes": summary, "rss_mb": rss}
    finally:
        process.terminate()
        process.wait(timeout=20)
        conn = await asyncpg.connect(args.pg.replace("postgres://", "postgresql://") + "/postgres")
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument(
        "--workers", type=int, help="server processes (default: tally serve's, one per CPU)"
    )
    parser.add_argument(
        "--slices", type=int, default=4,
        help="each mode in this many turns, the baselines and Tally alternating",
    )  # fmt: skip
    parser.add_argument(
        "--charges", type=int, default=2000, help="per sequential mode (x2 concurrent)"
    )
    parser.add_argument("--clients", type=int, default=10, help="clients of the warm-up")
    parser.add_argument(
        "--modes",
        default="many:1,many:10,hot:10,hot:50",
        help="workspaces:clients, comma-separated (many = --workspaces of them, hot = one)",
    )
    parser.add_argument(
        "--client",
        choices=("wire", "httpx"),
        default="wire",
        help="the measured requests' client: bench/wire.py's lean one (default) or httpx",
    )
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--workspaces", type=int, default=50, help="workspaces for 'many'")
    arguments = parser.parse_args()
    figures = asyncio.run(main(arguments))
    if arguments.json:
        Path(arguments.json).write_text(json.dumps(figures))
