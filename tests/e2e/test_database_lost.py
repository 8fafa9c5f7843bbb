"""A lost database answers 503 SERVICE_UNAVAILABLE with Retry-After, and the server recovers
by itself when it is back (issue 15, finding 7). It used to answer INTERNAL_SERVER_ERROR.

The server reaches PostgreSQL through a TCP proxy the test cuts: every open connection is
closed and new ones are refused, as when the database restarts or the network drops.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import BACKENDS, drop_postgres_database
from tests.e2e.tcp_proxy import TcpProxy
from tests.e2e.test_server import OPERATOR, Server, gql

pytestmark = pytest.mark.e2e


@pytest.fixture
def proxied(tmp_path) -> Iterator[tuple[Server, TcpProxy]]:
    if "postgres" not in BACKENDS:
        pytest.skip("PostgreSQL leg not selected")
    proxy = TcpProxy(("127.0.0.1", 5432))
    proxy.restore()
    name = f"tally_lost_{uuid.uuid4().hex[:10]}"
    server = Server(f"postgres://postgres@127.0.0.1:{proxy.port}/{name}", tmp_path)
    yield server, proxy
    server.stop()
    proxy.cut()
    asyncio.run(drop_postgres_database(name))


def _post(client: httpx.Client, query: str, key: str, variables: dict | None = None):
    return client.post(
        "/graphql",
        json={"query": query, "variables": variables or {}},
        headers={"Authorization": f"Bearer {key}"},
    )


RECORD = """mutation($w: ID!, $k: String!) { recordUsage(input: {workbookId: $w,
  kind: CRM_EXPORT, results: 1, idempotencyKey: $k}) { __typename ... on Charge { actions } } }"""


def test_a_lost_database_is_503_with_retry_after_then_served_again(proxied):
    server, proxy = proxied
    with httpx.Client(base_url=server.base, timeout=30) as client:
        created = gql(
            client,
            'mutation { createWorkspace(input: {name: "L", plan: "launch"}) { adminKey } }',
        )
        key = created["data"]["createWorkspace"]["adminKey"]
        book = gql(client, 'mutation { createWorkbook(name: "b") { id } }', key=key)
        wb = book["data"]["createWorkbook"]["id"]

        proxy.cut()
        answers = [
            _post(client, "{ workspace { actions { used } } }", key),
            _post(client, RECORD, key, {"w": wb, "k": "during"}),
            _post(client, "{ plans { code } }", OPERATOR),
        ]
        for response in answers:
            assert response.status_code == 503, response.text
            assert response.headers["retry-after"] == "5"
            body = response.json()
            assert body["data"] is None
            assert {e["extensions"]["code"] for e in body["errors"]} == {"SERVICE_UNAVAILABLE"}
        csv = client.get(
            "/usage.csv",
            params={"from": "2025-01-01T00:00Z", "to": "2025-01-02T00:00Z"},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert (csv.status_code, csv.headers["retry-after"]) == (503, "5")
        assert client.get("/healthz").status_code == 200  # the process itself is alive
        assert client.get("/healthz/live").json() == {"status": "ok"}
        unready = client.get("/healthz/ready")
        assert (unready.status_code, unready.json()["status"]) == (503, "unavailable")

        proxy.restore()
        ready = client.get("/healthz/ready")
        assert (ready.status_code, ready.json()) == (200, {"status": "ready", "reason": "ok"})
        # Retried with the same key once the database is back: charged exactly once.
        for _ in range(2):
            charged = _post(client, RECORD, key, {"w": wb, "k": "during"}).json()
            assert charged["data"]["recordUsage"] == {"__typename": "Charge", "actions": 1}
        used = gql(client, "{ workspace { actions { used } } }", key=key)
        assert used["data"]["workspace"]["actions"]["used"] == 1
    log = Path(server.log.name).read_text()
    assert "unexpected error" not in log  # a lost database is a warning, not a bug's traceback
    assert "database unavailable at ['workspace']" in log
