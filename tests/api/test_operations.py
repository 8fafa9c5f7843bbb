"""Health, readiness and metrics in process (API.md "HTTP, health and operations"); the
served, multi-worker versions are in tests/e2e (test_metrics.py, test_database_lost.py)."""

import asyncio
import logging

from graphql import parse
from prometheus_client import REGISTRY

import app.health
from app.metrics import DATABASE_UP, start_sampling
from graphql_schema.documents import root_label
from graphql_schema.request_context import route_label

PHONE = {"kind": "ENRICHMENT", "provider": "apollo", "dataType": "phone"}


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_ready_needs_every_migration_applied(api, monkeypatch):
    ready = await api.client.get("/healthz/ready")
    assert (ready.status_code, ready.json()) == (200, {"status": "ready", "reason": "ok"})
    expected = app.health.expected_migrations()
    assert {"0001_initial", "0007_events"} <= expected
    monkeypatch.setattr(app.health, "expected_migrations", lambda: expected | {"0099_future"})
    unready = await api.client.get("/healthz/ready")
    assert unready.status_code == 503
    assert unready.json() == {
        "status": "unavailable",
        "reason": "migrations not applied: 0099_future",
    }


async def test_a_process_has_checked_the_database_when_its_sampler_has_started(
    api, monkeypatch, caplog
):
    """A worker answers only after its lifespan: tally_database_up is then measured, not the 0
    every process starts with (the lowest over processes would show the database down)."""
    DATABASE_UP.set(0)
    sampler = await start_sampling(interval=60)
    try:
        assert value("tally_database_up") == 1.0
    finally:
        sampler.cancel()
        await asyncio.gather(sampler, return_exceptions=True)
    expected = app.health.expected_migrations()
    monkeypatch.setattr(app.health, "expected_migrations", lambda: expected | {"0099_future"})
    with caplog.at_level(logging.WARNING, logger="tally.metrics"):
        sampler = await start_sampling(interval=60)
        sampler.cancel()
    assert value("tally_database_up") == 0.0
    assert [r.getMessage() for r in caplog.records if r.name == "tally.metrics"] == [
        "database check: not ready (migrations not applied: 0099_future)"
    ]
    await asyncio.gather(sampler, return_exceptions=True)


async def test_usage_report_counters_move_by_exactly_what_was_answered(api):
    t = await api.create_workspace("free")
    wb = await api.create_workbook(t.admin_key)
    charged = {"outcome": "charged", "code": ""}
    refused = {"outcome": "refused", "code": "INSUFFICIENT_DATA_CREDITS"}
    before = (value("tally_usage_reports_total", **charged),
              value("tally_usage_reports_total", **refused))  # fmt: skip
    for _ in range(3):
        await api.record_usage(t.admin_key, wb, results=2, **PHONE)
    items = [
        {"workbookId": wb, "results": n, "idempotencyKey": f"b{n}", **PHONE} for n in (1, 30, 1)
    ]
    batch = await api.record_batch(t.admin_key, items)
    assert (batch["charged"], batch["refused"]) == (2, 1)
    after = (value("tally_usage_reports_total", **charged),
             value("tally_usage_reports_total", **refused))  # fmt: skip
    assert (after[0] - before[0], after[1] - before[1]) == (5, 1)
    text = (await api.client.get("/metrics")).text
    assert 'tally_usage_reports_total{code="",outcome="charged"}' in text


def test_metric_labels_come_from_bounded_sets():
    assert root_label(parse("query Anything { workspace { id } }")) == "query workspace"
    assert root_label(parse("mutation { recordUsage(input: {}) { __typename } }")) == (
        "mutation recordUsage"
    )
    paths = ("/healthz/ready", "/dashboard/assets/app.js", "/graphiql/assets/x", "/x/../y")
    assert [route_label(p) for p in paths] == ["healthz", "dashboard", "graphiql", "other"]
