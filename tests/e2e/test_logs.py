"""Logs of a real `tally serve` with TALLY_LOG_FORMAT=json: one JSON object a line, one line a
request with its id, operation, workspace, duration and outcome; never a key's secret."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import pytest

from tests.conftest import BACKENDS
from tests.e2e.test_server import OPERATOR, Server, gql

pytestmark = pytest.mark.e2e


@pytest.fixture
def json_server(tmp_path, monkeypatch) -> Server:
    if "sqlite" not in BACKENDS:
        pytest.skip("SQLite leg not selected")
    monkeypatch.setenv("TALLY_LOG_FORMAT", "json")
    server = Server("", tmp_path)
    yield server
    server.stop()


def test_json_logs_carry_the_request_id_and_never_a_secret(json_server):
    with httpx.Client(base_url=json_server.base, timeout=10) as client:
        created = gql(
            client,
            'mutation { createWorkspace(input: {name: "L", plan: "launch"}) { adminKey } }',
        )
        admin = created["data"]["createWorkspace"]["adminKey"]
        mine = client.post(
            "/graphql",
            json={"query": "query Meters { workspace { id actions { used } } }"},
            headers={"Authorization": f"Bearer {admin}", "X-Request-Id": "req-42.a"},
        )
        assert mine.headers["x-request-id"] == "req-42.a"
        workspace_id = mine.json()["data"]["workspace"]["id"]
        workbook = gql(client, 'mutation { createWorkbook(name: "w") { id } }', key=admin)
        charge = {"workbookId": workbook["data"]["createWorkbook"]["id"], "kind": "CRM_EXPORT"}
        charged = client.post(
            "/graphql",
            json={
                "query": "mutation Charge($i: RecordUsageInput!) { recordUsage(input: $i)"
                " { __typename } }",
                "variables": {"i": {**charge, "results": 1, "idempotencyKey": "k1"}},
            },
            headers={"Authorization": f"Bearer {admin}", "X-Request-Id": "req-43"},
        )
        assert charged.json()["data"]["recordUsage"]["__typename"] == "Charge"
        bad = client.post("/graphql", json={"query": "{ workspace { id } }"})
        generated = bad.headers["x-request-id"]
        assert len(generated) == 32 and generated != "req-42.a"
        odd = client.get("/healthz", headers={"X-Request-Id": "not ok;" * 30})
        assert odd.headers["x-request-id"] != "not ok"
    json_server.stop()
    lines = Path(json_server.log.name).read_text().splitlines()
    records = [json.loads(line) for line in lines if line.startswith("{")]
    assert len(records) >= 5 and all(isinstance(r, dict) for r in records)
    requests = {r["request_id"]: r for r in records if r.get("event") == "request"}
    meters = requests["req-42.a"]
    # One line a request: uvicorn's access line does not repeat it.
    assert [r["event"] for r in records if r.get("request_id") == "req-42.a"] == ["request"]
    assert not [r for r in records if r.get("logger") == "uvicorn.access"]
    assert (meters["operation"], meters["workspace_id"], meters["outcome"]) == (
        "Meters",
        workspace_id,
        "ok",
    )
    # A charge's key is checked by its first read (app.workspaces.auth.Bearer): still logged.
    charge_line = requests["req-43"]
    assert (charge_line["operation"], charge_line["workspace_id"]) == ("Charge", workspace_id)
    assert (meters["method"], meters["path"], meters["status"]) == ("POST", "/graphql", 200)
    assert meters["duration_ms"] > 0
    assert requests[generated]["outcome"] == "errors: UNAUTHENTICATED"
    text = "\n".join(lines)
    for secret in (admin, OPERATOR, admin[4:]):
        assert secret not in text
    assert os.environ.get("TALLY_LOG_FORMAT") == "json"
