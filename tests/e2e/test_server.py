"""The real server process (`tally serve`), spoken to over HTTP.

On SQLite: the whole ledger flow and GraphiQL's offline assets. On PostgreSQL: two server
processes behind one port, charged concurrently, never overspend (R12 across processes).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from graphql_schema.ide import ASSETS, node_modules
from tally.metrics_dirs import remove_abandoned
from tests import templates
from tests.conftest import BACKENDS, PG_SERVER, drop_postgres_database

pytestmark = pytest.mark.e2e
OPERATOR = "tly_op_e2e"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(
        self,
        url: str,
        workdir: Path,
        workers: int = 1,
        migrated: bool = True,
        env: dict[str, str] | None = None,
    ) -> None:
        """`migrated`: the database starts as a copy of the session's migrated template
        (tests/templates.py) unless it exists; False: the server migrates it itself. `env`:
        more of the server's environment."""
        if migrated:
            templates.migrated(url, workdir)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        environment = {
            **os.environ,
            "TALLY_DATABASE_URL": url,
            "TALLY_OPERATOR_KEY": OPERATOR,
            **(env or {}),
        }
        if url == "":
            environment.pop("TALLY_DATABASE_URL")  # the embedded default: a SQLite file in workdir
        self.log = open(workdir / "server.log", "w")  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tally",
                "serve",
                "--port",
                str(self.port),
                "--workers",
                str(workers),
            ],
            cwd=workdir,
            env=environment,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self._wait_until_healthy(workdir)

    def _wait_until_healthy(self, workdir: Path) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError((workdir / "server.log").read_text())
            try:
                if httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise AssertionError("server did not become healthy in 30 s")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=20)
        self.log.close()


def gql(client: httpx.Client, query: str, variables: dict | None = None, key: str = OPERATOR):
    response = client.post(
        "/graphql",
        json={"query": query, "variables": variables or {}},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def sqlite_server(tmp_path) -> Iterator[Server]:
    if "sqlite" not in BACKENDS:
        pytest.skip("SQLite leg not selected")
    server = Server("", tmp_path)
    yield server
    server.stop()


@pytest.fixture
def first_start_server(tmp_path) -> Iterator[Server]:
    """On nothing: the server creates, migrates and seeds its default file itself."""
    if "sqlite" not in BACKENDS:
        pytest.skip("SQLite leg not selected")
    server = Server("", tmp_path, migrated=False)
    yield server
    server.stop()


@pytest.fixture
def postgres_servers(tmp_path) -> Iterator[Server]:
    if "postgres" not in BACKENDS:
        pytest.skip("PostgreSQL leg not selected")
    name = f"tally_e2e_{uuid.uuid4().hex[:10]}"
    server = Server(f"{PG_SERVER}/{name}", tmp_path, workers=2)
    yield server
    server.stop()
    asyncio.run(drop_postgres_database(name))


def test_e2e_default_sqlite_server_runs_the_ledger_flow(first_start_server, tmp_path):
    with httpx.Client(base_url=first_start_server.base, timeout=10) as client:
        created = gql(
            client,
            """mutation { createWorkspace(input: {name: "E2E", plan: "launch"})
                                   { adminKey workspace { id } } }""",
        )["data"]["createWorkspace"]
        key = created["adminKey"]
        wb = gql(client, 'mutation { createWorkbook(name: "Leads") { id } }', key=key)
        wb_id = wb["data"]["createWorkbook"]["id"]
        record = """mutation($i: RecordUsageInput!) { recordUsage(input: $i) {
                      ... on Charge { id dataCredits } ... on Refusal { code } } }"""
        steps = [
            ("SOURCING", None, None, 100),
            ("ENRICHMENT", "linkedin", "profile", 100),
            ("ENRICHMENT", "hunter", "email", 90),
            ("ENRICHMENT", "zerobounce", "email_validation", 90),
        ]
        charges = []
        for n, (kind, provider, data_type, results) in enumerate(steps):
            payload = {
                "workbookId": wb_id,
                "kind": kind,
                "provider": provider,
                "dataType": data_type,
                "results": results,
                "idempotencyKey": f"s{n}",
            }
            charges.append(gql(client, record, {"i": payload}, key)["data"]["recordUsage"])
        assert [c["dataCredits"] for c in charges] == ["0", "50", "45", "0"]  # R8: 95
        ws = gql(client, "{ workspace { actions { used } dataCredits { balance } } }", key=key)
        assert ws["data"]["workspace"] == {
            "actions": {"used": 280},
            "dataCredits": {"balance": "2405"},
        }
        refund = gql(
            client,
            """mutation($c: ID!) { refundCharge(input: {chargeId: $c,
                       idempotencyKey: "r1"}) { ... on Refund { dataCredits } } }""",
            {"c": charges[2]["id"]},
            key,
        )
        assert refund["data"]["refundCharge"] == {"dataCredits": "45"}
        ledger = gql(
            client,
            "{ ledger(first: 3) { edges { node { entryType amount balanceAfter } } } }",
            key=key,
        )["data"]["ledger"]["edges"]
        assert ledger[0]["node"] == {"entryType": "REFUND", "amount": "45", "balanceAfter": "2450"}
        unauthenticated = client.post("/graphql", json={"query": "{ workspace { id } }"}).json()
        assert unauthenticated["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert (tmp_path / "tally.sqlite3").exists()  # the embedded default database


def test_a_stopped_server_leaves_no_metrics_directory(tmp_path):
    """Each start makes its own directory for the processes' metric samples (prometheus-
    client's multiprocess mode); stopping removes it, so restarts do not pile them up."""
    if "sqlite" not in BACKENDS:
        pytest.skip("SQLite leg not selected")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    server = Server("", tmp_path, env={"TMPDIR": str(scratch)})
    made = list(scratch.glob("tally-metrics-*"))
    assert len(made) == 1 and list(made[0].glob("*.db"))  # the samples, while it serves
    server.stop()  # SIGTERM: uvicorn shuts down, then exits by the signal, as it would alone
    assert server.process.returncode == -signal.SIGTERM
    assert list(scratch.glob("tally-metrics-*")) == []


def test_a_killed_servers_metrics_directory_is_removed_by_the_next_start(tmp_path):
    """SIGKILL (or the OOM killer) gives a server no chance to remove its directory: the next
    server to start removes it, no process holding it any more."""
    if "sqlite" not in BACKENDS:
        pytest.skip("SQLite leg not selected")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    killed = Server("", tmp_path, env={"TMPDIR": str(scratch)})
    (left,) = scratch.glob("tally-metrics-*")
    killed.process.kill()
    killed.process.wait(timeout=20)
    killed.log.close()
    assert left.exists()
    following = Server("", tmp_path, env={"TMPDIR": str(scratch)})
    try:  # stopped even when an assertion fails, so no server outlives the test
        (now,) = scratch.glob("tally-metrics-*")
        assert now != left and not left.exists()
    finally:
        following.stop()


def test_workers_of_a_killed_supervisor_keep_their_metrics_directory(tmp_path):
    """With --workers, each worker holds the server's directory too: the supervisor killed
    outright, the workers it leaves serving keep it; once they are gone, it is swept."""
    if "postgres" not in BACKENDS:
        pytest.skip("PostgreSQL leg not selected")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    name = f"tally_e2e_{uuid.uuid4().hex[:10]}"
    server = Server(f"{PG_SERVER}/{name}", tmp_path, workers=2, env={"TMPDIR": str(scratch)})
    listed = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(server.process.pid)], capture_output=True, text=True
    )
    workers = [int(pid) for pid in listed.stdout.split()]  # and multiprocessing's tracker
    try:
        (made,) = scratch.glob("tally-metrics-*")
        assert len(workers) >= 2
        server.process.kill()
        server.process.wait(timeout=20)
        assert remove_abandoned(scratch) == [] and made.exists()
    finally:
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        server.log.close()
    for _ in range(100):  # until the kernel has let go of the killed workers' locks
        if remove_abandoned(scratch) == [made]:
            break
        time.sleep(0.1)
    assert not made.exists()
    asyncio.run(drop_postgres_database(name))


def test_e2e_graphiql_is_served_without_a_cdn(sqlite_server):
    with httpx.Client(base_url=sqlite_server.base, timeout=10) as client:
        page = client.get("/graphql", headers={"Accept": "text/html"})
        assert page.status_code == 200
        assert "graphiql" in page.text.lower()
        urls = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert urls and all(u.startswith("/graphiql/assets/") for u in urls), urls
        for asset, path in ASSETS.items():
            assert f"/graphiql/assets/{asset}" in page.text
            response = client.get(f"/graphiql/assets/{asset}")
            assert response.status_code == 200, asset
            assert response.content == (node_modules() / path).read_bytes()
        assert client.get("/graphiql/assets/../../pyproject.toml").status_code == 404


def test_e2e_r12_two_server_processes_never_overspend(postgres_servers):
    async def run() -> Counter:
        async with httpx.AsyncClient(
            base_url=postgres_servers.base, timeout=30, limits=httpx.Limits(max_connections=50)
        ) as client:

            async def call(query, variables=None, key=OPERATOR):
                response = await client.post(
                    "/graphql",
                    json={"query": query, "variables": variables or {}},
                    headers={"Authorization": f"Bearer {key}"},
                )
                return response.json()["data"]

            created = await call(
                'mutation { createWorkspace(input: {name: "Race", plan: "free"}) { adminKey } }'
            )
            key = created["createWorkspace"]["adminKey"]
            wb = await call('mutation { createWorkbook(name: "W") { id } }', key=key)
            wb_id = wb["createWorkbook"]["id"]
            record = """mutation($i: RecordUsageInput!) { recordUsage(input: $i) {
                          __typename ... on Refusal { code } } }"""
            payloads = [
                {
                    "i": {
                        "workbookId": wb_id,
                        "kind": "ENRICHMENT",
                        "provider": "apollo",
                        "dataType": "phone",
                        "results": 1,
                        "idempotencyKey": f"p{i}",
                    }
                }
                for i in range(60)
            ]  # 100 credits buy exactly 20
            answers = await asyncio.gather(*(call(record, p, key) for p in payloads))
            ws = await call("{ workspace { actions { used } dataCredits { balance } } }", key=key)
            assert ws["workspace"] == {"actions": {"used": 20}, "dataCredits": {"balance": "0"}}
            return Counter(a["recordUsage"].get("code", "Charge") for a in answers)

    assert asyncio.run(run()) == {"Charge": 20, "INSUFFICIENT_DATA_CREDITS": 40}


def test_r33_jobs_run_beside_a_sqlite_server_never_fails_a_request(sqlite_server, tmp_path):
    """`tally jobs run` in a second process wrote the same SQLite file: 1-8 of 7,000 requests
    failed with "database is locked" and the job exited 1. Both now wait for the lock."""
    with httpx.Client(base_url=sqlite_server.base, timeout=30) as client:
        keys, books = [], []
        for n in range(20):
            created = gql(
                client,
                """mutation($n: String!) { createWorkspace(input: {name: $n, plan: "enterprise"})
                                                { adminKey } }""",
                {"n": f"W{n}"},
            )
            key = created["data"]["createWorkspace"]["adminKey"]
            book = gql(client, 'mutation { createWorkbook(name: "b") { id } }', key=key)
            keys.append(key)
            books.append(book["data"]["createWorkbook"]["id"])
        env = {**os.environ, "TALLY_OPERATOR_KEY": OPERATOR}
        env.pop("TALLY_DATABASE_URL", None)  # the server's default file in tmp_path
        months = [f"20{27 + n // 12}-{n % 12 + 1:02d}-28T00:00:00Z" for n in range(6)]
        jobs = subprocess.Popen(
            f"for m in {' '.join(months)}; do {sys.executable} -m tally jobs run all --now $m"
            " || exit 1; done",
            shell=True,
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        answers = Counter()
        while jobs.poll() is None or sum(answers.values()) < 200:
            n = sum(answers.values())
            key, book = keys[n % 20], books[n % 20]
            body = gql(
                client,
                """mutation($b: ID!, $l: Decimal) { setWorkbookSpendLimit(workbookId: $b,
                     limit: $l) { __typename } }""",
                {"b": book, "l": str(1000 + n)},
                key=key,
            )
            answers["errors" if body.get("errors") else "ok"] += 1
        output = jobs.stdout.read().decode()
    assert jobs.returncode == 0, output
    assert output.count("renewals:") == 6, output
    assert answers["errors"] == 0 and answers["ok"] >= 200, answers
