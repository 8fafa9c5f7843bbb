"""A served Tally (`tally serve --workers 2`) behind a real pgbouncer in transaction mode, with
deploy/pgbouncer/pgbouncer.ini's settings: charges, concurrent charges exact, a subscription's
update; migrations and LISTEN through TALLY_DIRECT_DATABASE_URL."""

from __future__ import annotations

import asyncio
import configparser
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests import templates
from tests.conftest import BACKENDS, PG_SERVER, drop_postgres_database
from tests.e2e.test_server import OPERATOR, Server, free_port
from tests.live_client import WORKSPACE_UPDATED, LiveSocket

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).parents[2]
DEPLOYED = ROOT / "deploy" / "pgbouncer" / "pgbouncer.ini"
SERVER_CONNECTIONS = 4  # fewer than the 2 workers' pools hold: clients share server connections
RECORD = """mutation($i: RecordUsageInput!) { recordUsage(input: $i) {
  __typename ... on Refusal { code } } }"""


def deployed_settings() -> configparser.ConfigParser:
    config = configparser.ConfigParser(inline_comment_prefixes=(";",), interpolation=None)
    config.read_string(DEPLOYED.read_text())
    return config


@dataclass
class Bouncer:
    port: int
    admin: list[str]  # psql on its admin console

    def show(self, what: str) -> list[dict[str, str]]:
        out = subprocess.run(
            [*self.admin, "-c", f"SHOW {what}"], capture_output=True, text=True, timeout=10
        )
        assert out.returncode == 0, out.stderr
        header, *rows = [line.split("|") for line in out.stdout.splitlines() if line]
        return [dict(zip(header, row, strict=True)) for row in rows]


def start_pgbouncer(database: str, workdir: Path) -> tuple[subprocess.Popen, Bouncer]:
    config = deployed_settings()
    host = PG_SERVER.split("@")[-1]
    pg_host, pg_port = host.rsplit(":", 1)
    config["databases"] = {database: f"host={pg_host} port={pg_port} dbname={database}"}
    ours = config["pgbouncer"]
    port = free_port()
    ours.update(
        listen_addr="127.0.0.1",
        listen_port=str(port),
        auth_type="trust",  # the test PostgreSQL trusts local connections
        auth_file=str(workdir / "userlist.txt"),
        unix_socket_dir="",
        default_pool_size=str(SERVER_CONNECTIONS),
        reserve_pool_size="0",
        admin_users="postgres",
    )
    if os.geteuid() == 0:
        ours["user"] = "postgres"  # pgbouncer refuses to run as root; it drops to this user
    (workdir / "userlist.txt").write_text('"postgres" ""\n')
    with open(workdir / "pgbouncer.ini", "w") as handle:
        config.write(handle)
    log = open(workdir / "pgbouncer.log", "w")  # noqa: SIM115
    process = subprocess.Popen(
        ["pgbouncer", str(workdir / "pgbouncer.ini")], stdout=log, stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 10
    while True:
        assert process.poll() is None, (workdir / "pgbouncer.log").read_text()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert time.monotonic() < deadline, (workdir / "pgbouncer.log").read_text()
            time.sleep(0.1)
    admin = ["psql", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-A", "-P", "footer=off"]
    return process, Bouncer(port, [*admin, "pgbouncer"])


@dataclass
class Stack:
    server: Server
    bouncer: Bouncer
    database: str


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    if "postgres" not in BACKENDS:
        pytest.skip("PostgreSQL leg not selected")
    if shutil.which("pgbouncer") is None:
        pytest.skip("pgbouncer is not installed (apt-get install pgbouncer)")
    # Readable by the user pgbouncer drops to (pytest's own temporary folders are not).
    workdir = Path(tempfile.mkdtemp(prefix="tally-pgbouncer-"))
    workdir.chmod(0o755)
    name = f"tally_bouncer_{uuid.uuid4().hex[:10]}"
    templates.migrated(f"{PG_SERVER}/{name}", workdir)
    process, bouncer = start_pgbouncer(name, workdir)
    pooled = f"postgres://postgres@127.0.0.1:{bouncer.port}/{name}?statement_cache_size=0"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TALLY_DIRECT_DATABASE_URL", f"{PG_SERVER}/{name}")
        patch.setenv("TALLY_SCHEDULER", "off")
        server = Server(pooled, workdir, workers=2)
    try:
        yield Stack(server, bouncer, name)
    finally:
        server.stop()
        process.terminate()
        process.wait(timeout=10)
        asyncio.run(drop_postgres_database(name))
        shutil.rmtree(workdir, ignore_errors=True)


def test_the_deployed_pgbouncer_pools_per_transaction():
    settings = deployed_settings()["pgbouncer"]
    assert settings["pool_mode"] == "transaction"
    assert settings["listen_port"] == "6432"


class Client:
    def __init__(self, base: str) -> None:
        self.http = httpx.AsyncClient(
            base_url=base, timeout=30, limits=httpx.Limits(max_connections=60)
        )

    async def gql(self, query: str, variables: dict | None = None, key: str = OPERATOR) -> dict:
        response = await self.http.post(
            "/graphql",
            json={"query": query, "variables": variables or {}},
            headers={"Authorization": f"Bearer {key}"},
        )
        body = response.json()
        assert response.status_code == 200 and not body.get("errors"), body
        return body["data"]

    async def tenant(self, plan: str) -> tuple[str, str]:
        created = await self.gql(
            """mutation($p: String!) { createWorkspace(input: {name: "B", plan: $p}) {
                 adminKey } }""",
            {"p": plan},
        )
        key = created["createWorkspace"]["adminKey"]
        book = await self.gql('mutation { createWorkbook(name: "W") { id } }', key=key)
        return key, book["createWorkbook"]["id"]

    async def charge(self, key: str, workbook: str, idempotency_key: str) -> str:
        item = {"workbookId": workbook, "kind": "ENRICHMENT", "provider": "apollo",
                "dataType": "phone", "results": 1, "idempotencyKey": idempotency_key}  # fmt: skip
        answer = (await self.gql(RECORD, {"i": item}, key))["recordUsage"]
        return answer.get("code", answer["__typename"])


def test_pgbouncer_charges_are_exact_under_concurrency(stack):
    async def main() -> Counter:
        client = Client(stack.server.base)
        try:
            key, book = await client.tenant("free")
            assert await client.charge(key, book, "first") == "Charge"
            assert await client.charge(key, book, "first") == "Charge"  # a replay, no new charge
            # 100 free Data Credits at 5 a phone: 19 more charges, whoever asks first
            answers = await asyncio.gather(*(client.charge(key, book, f"p{n}") for n in range(60)))
            state = await client.gql(
                "{ workspace { actions { used } dataCredits { balance } } }", key=key
            )
            assert state["workspace"] == {"actions": {"used": 20}, "dataCredits": {"balance": "0"}}
            return Counter(answers)
        finally:
            await client.http.aclose()

    assert asyncio.run(main()) == {"Charge": 19, "INSUFFICIENT_DATA_CREDITS": 41}
    # It all went through pgbouncer, on no more server connections than its pool holds.
    pools = [p for p in stack.bouncer.show("POOLS") if p["database"] == stack.database]
    assert len(pools) == 1
    assert int(pools[0]["sv_active"]) + int(pools[0]["sv_idle"]) <= SERVER_CONNECTIONS
    stats = [s for s in stack.bouncer.show("STATS") if s["database"] == stack.database]
    assert int(stats[0]["total_xact_count"]) > 60


def test_pgbouncer_a_subscription_hears_a_charge(stack):
    async def main() -> None:
        client = Client(stack.server.base)
        try:
            key, book = await client.tenant("launch")
            socket = await LiveSocket.with_key(stack.server.base, key)
            await socket.subscribe("ws", WORKSPACE_UPDATED)
            first = await socket.data("ws")
            assert first["workspaceUpdated"]["actions"]["used"] == 0
            for n in range(1, 4):
                assert await client.charge(key, book, f"live{n}") == "Charge"
                update = (await socket.data("ws", within=2.0))["workspaceUpdated"]
                assert update["actions"]["used"] == n
            await socket.close()
        finally:
            await client.http.aclose()

    asyncio.run(main())
