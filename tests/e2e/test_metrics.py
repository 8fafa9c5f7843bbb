"""GET /metrics of `tally serve --workers 2`: Prometheus text summed over both workers; the
usage report and HTTP counters move by exactly what was done."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import BACKENDS, PG_SERVER, drop_postgres_database
from tests.e2e.test_server import Server, gql

pytestmark = pytest.mark.e2e
RECORD = """mutation($w: ID!, $k: String!, $n: Int!) { recordUsage(input: {workbookId: $w,
  kind: ENRICHMENT, provider: "apollo", dataType: "phone", results: $n, idempotencyKey: $k})
  { __typename ... on Refusal { code } } }"""


@pytest.fixture
def two_workers(tmp_path, monkeypatch) -> Iterator[Server]:
    if "postgres" not in BACKENDS:
        pytest.skip("PostgreSQL leg not selected")
    (tmp_path / "metrics").mkdir()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "metrics"))
    name = f"tally_metrics_{uuid.uuid4().hex[:10]}"
    server = Server(f"{PG_SERVER}/{name}", tmp_path, workers=2)
    yield server
    server.stop()
    asyncio.run(drop_postgres_database(name))


def sample(text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    total = 0.0
    for line in text.splitlines():
        match = re.match(rf"^{name}\{{(.*)\}} (\S+)$", line)
        if match and ",".join(sorted(match.group(1).split(","))) == wanted:
            total += float(match.group(2))
    return total


def test_metrics_are_exact_over_two_workers(two_workers, tmp_path):
    base = two_workers.base
    with httpx.Client(base_url=base, timeout=10) as client:
        created = gql(
            client, 'mutation { createWorkspace(input: {name: "M", plan: "free"}) { adminKey } }'
        )
        key = created["data"]["createWorkspace"]["adminKey"]
        book = gql(client, 'mutation { createWorkbook(name: "b") { id } }', key=key)
        wb = book["data"]["createWorkbook"]["id"]
        before = client.get("/metrics").text
    for n in range(24):  # a new connection each: the workers share them out
        with httpx.Client(base_url=base, timeout=10) as fresh:
            results = 1 if n < 20 else 50  # 20 charges of 5 credits; then the free 100 are gone
            body = gql(fresh, RECORD, {"w": wb, "k": f"m{n}", "n": results}, key=key)
            kind = body["data"]["recordUsage"]["__typename"]
            assert kind == ("Charge" if n < 20 else "Refusal"), body
    with httpx.Client(base_url=base, timeout=10) as client:
        after = client.get("/metrics").text
    charged = {"outcome": "charged", "code": ""}
    refused = {"outcome": "refused", "code": "INSUFFICIENT_DATA_CREDITS"}
    assert (
        sample(after, "tally_usage_reports_total", **charged)
        - sample(before, "tally_usage_reports_total", **charged)
        == 20
    )
    assert (
        sample(after, "tally_usage_reports_total", **refused)
        - sample(before, "tally_usage_reports_total", **refused)
        == 4
    )
    ops = {"operation": "mutation recordUsage", "status": "200"}
    assert (
        sample(after, "tally_http_requests_total", **ops)
        - sample(before, "tally_http_requests_total", **ops)
        == 24
    )
    assert "tally_http_request_duration_seconds_bucket" in after
    assert "tally_event_loop_lag_seconds" in after
    # Sampled each second by each worker: the answering worker may not have sampled yet.
    for _ in range(30):
        if sample(after, "tally_db_pool_connections", state="idle") >= 1:
            break
        time.sleep(0.1)
        after = httpx.get(f"{base}/metrics", timeout=10).text
    assert sample(after, "tally_db_pool_connections", state="idle") >= 1
    # Each worker process writes its own samples; /metrics, from either, sums them.
    workers = {p.name.split("_")[-1] for p in (tmp_path / "metrics").glob("counter_*.db")}
    assert len(workers) == 2, workers
