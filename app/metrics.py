"""Prometheus metrics (API.md "HTTP, health and operations"), summed over every process.

With PROMETHEUS_MULTIPROC_DIR set (tally serve sets it for its workers), each process writes
its samples to files there and `/metrics` adds them up; without it, one process's registry.
Label values come from bounded sets only (root fields of the schema, refusal codes, job names,
delivery statuses), never from what a client writes, so no request can grow the series.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any

from prometheus_client import REGISTRY as DEFAULT_REGISTRY
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)

from app.db import pool_stats
from app.events.bus import hub
from app.health import readiness

log = logging.getLogger("tally.metrics")

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

USAGE_REPORTS = Counter(
    "tally_usage_reports_total",
    "Usage reports answered: charged (replays included) or refused, with the refusal's code.",
    ["outcome", "code"],
)
HTTP_REQUESTS = Counter(
    "tally_http_requests_total", "HTTP requests answered.", ["operation", "status"]
)
HTTP_DURATION = Histogram(
    "tally_http_request_duration_seconds",
    "How long requests took, by operation.",
    ["operation"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
WEBHOOK_DELIVERIES = Counter(
    "tally_webhook_deliveries_total",
    "Webhook delivery attempts by their outcome (succeeded, retrying, failed).",
    ["status"],
)
JOB_RUNS = Counter("tally_job_runs_total", "Job runs by outcome.", ["job", "outcome"])
JOB_LAST_SUCCESS = Gauge(
    "tally_job_last_success_timestamp_seconds",
    "When each job last ran without a failure (Unix time).",
    ["job"],
    multiprocess_mode="max",
)
VERIFY_DIFFERENCES = Gauge(
    "tally_verify_differences",
    "Differences the last verify run found between stored balances and the ledger.",
    multiprocess_mode="mostrecent",
)
LOOP_LAG = Gauge(
    "tally_event_loop_lag_seconds",
    "How late the event loop ran a timer, the last time it was measured.",
    multiprocess_mode="max",
)
POOL_CONNECTIONS = Gauge(
    "tally_db_pool_connections",
    "Database pool connections (PostgreSQL), in use or idle.",
    ["state"],
    multiprocess_mode="livesum",
)

# The lowest over live processes: one process that cannot reach the database shows as down.
DATABASE_UP = Gauge(
    "tally_database_up",
    "1 when this process's last check found the database answering with every migration"
    " applied (what /healthz/ready says), else 0.",
    multiprocess_mode="livemin",
)
DATABASE_CHECK_EVERY = 5.0  # seconds between the sampler's readiness checks

LIVE_SUBSCRIPTIONS = Gauge(
    "tally_live_subscriptions",
    "Open GraphQL subscriptions (workspaceUpdated, events).",
    multiprocess_mode="livesum",
)


def job_ran(job: str, failed: int) -> None:
    outcome = "failed" if failed else "ok"
    JOB_RUNS.labels(job=job, outcome=outcome).inc()
    if not failed:
        JOB_LAST_SUCCESS.labels(job=job).set(time.time())


def _registry() -> CollectorRegistry:
    """Every process's samples when multiprocess, else this one's."""
    if os.environ.get(MULTIPROCESS_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    return DEFAULT_REGISTRY


def exposition() -> bytes:
    """The text `/metrics` answers."""
    return generate_latest(_registry())


def serve_metrics(host: str, port: int) -> Any:
    """`/metrics` on a port of its own, from a thread, for a process that serves no API (`tally
    scheduler`): its job runs, deliveries and database checks are seen nowhere else."""
    server, _thread = start_http_server(port, host, _registry())
    return server


async def check_database() -> None:
    """Set tally_database_up from one readiness check; a 0 is logged with why."""
    ready, why = await readiness()
    if not ready:
        log.warning("database check: not ready (%s)", why)
    DATABASE_UP.set(1 if ready else 0)


async def start_sampling(interval: float = 1.0) -> asyncio.Task[None]:
    """The sampler, after a first database check: a process that answers has measured
    tally_database_up (its 0 from import would otherwise pull the lowest over processes down
    to 0 while a new or replacing worker starts)."""
    await check_database()
    return asyncio.create_task(sample_forever(interval, checked=True))


async def sample_forever(interval: float = 1.0, *, checked: bool = False) -> None:
    """Event-loop lag (how late a timer fired), the pool's connections and the open
    subscriptions, every `interval`; whether the database is ready, every few seconds
    (the first time after one period when the caller has just `checked`)."""
    loop = asyncio.get_running_loop()
    last_check = loop.time() if checked else -DATABASE_CHECK_EVERY
    while True:
        if loop.time() - last_check >= DATABASE_CHECK_EVERY:
            last_check = loop.time()
            await check_database()
        # Before the sleep: a scrape right after start sees the pool and the subscriptions.
        LIVE_SUBSCRIPTIONS.set(hub.count())
        stats = pool_stats()
        if stats is not None:
            size, idle = stats
            POOL_CONNECTIONS.labels(state="in_use").set(size - idle)
            POOL_CONNECTIONS.labels(state="idle").set(idle)
        started = loop.time()
        await asyncio.sleep(interval)
        LOOP_LAG.set(max(0.0, loop.time() - started - interval))
