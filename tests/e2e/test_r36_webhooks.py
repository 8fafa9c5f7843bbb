"""R36 across processes: two `tally serve` processes deliver one PostgreSQL database's outbox to
a receiver on 127.0.0.1 that verifies every signature. 1,000 events (test.ping, one per
sendTestEvent) are each delivered exactly once while the receiver answers 200; with one
process killed (SIGKILL) mid-run, every event still arrives, none lost. A server with
TALLY_WEBHOOK_DELIVERY=off delivers nothing; `tally scheduler` delivers.

TALLY_WEBHOOK_TIMEOUT=1 makes the lease 12 s: what the killed process had claimed is taken
by the other once that lapses.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.conftest import BACKENDS, PG_SERVER, drop_postgres_database
from tests.e2e.test_server import OPERATOR, Server
from tests.webhook_receiver import Receiver

pytestmark = pytest.mark.e2e
EVENTS = 1_000
SETTINGS = {
    "TALLY_WEBHOOK_ALLOW_PRIVATE": "on",
    "TALLY_WEBHOOK_TIMEOUT": "1",
    "TALLY_SCHEDULER": "off",
}


@pytest.fixture
def database_url() -> Iterator[str]:
    if "postgres" not in BACKENDS:
        pytest.skip("PostgreSQL leg not selected")
    name = f"tally_hooks_{uuid.uuid4().hex[:10]}"
    yield f"{PG_SERVER}/{name}"
    asyncio.run(drop_postgres_database(name))


def two_servers(url: str, tmp_path: Path, monkeypatch) -> list[Server]:
    for name, value in SETTINGS.items():
        monkeypatch.setenv(name, value)
    servers = []
    for n in range(2):
        workdir = tmp_path / f"server{n}"
        workdir.mkdir()
        servers.append(Server(url, workdir))
    return servers


async def call(client: httpx.AsyncClient, base: str, query: str, variables: dict, key: str):
    response = await client.post(
        f"{base}/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {key}"},
    )
    body = response.json()
    assert not body.get("errors"), body
    return body["data"]


async def subscribe(client: httpx.AsyncClient, base: str, receiver: Receiver) -> tuple[str, str]:
    """(the admin key, the endpoint id) of a new workspace posting to `receiver`."""
    created = await call(
        client,
        base,
        'mutation { createWorkspace(input: {name: "Hooks", plan: "launch"}) { adminKey } }',
        {},
        OPERATOR,
    )
    key = created["createWorkspace"]["adminKey"]
    endpoint = await call(
        client,
        base,
        """mutation($u: String!) { createWebhookEndpoint(input: {url: $u}) {
             secret endpoint { id } } }""",
        {"u": receiver.url},
        key,
    )
    receiver.secrets.append(endpoint["createWebhookEndpoint"]["secret"])
    return key, endpoint["createWebhookEndpoint"]["endpoint"]["id"]


async def send_pings(bases: list[str], receiver: Receiver, on_progress=None) -> list[str]:
    """1,000 sendTestEvent calls, 10 at a time, spread over `bases`; returns the event ids."""
    async with httpx.AsyncClient(timeout=30) as client:
        key, endpoint_id = await subscribe(client, bases[0], receiver)
        ids: list[str] = []
        counter = iter(range(EVENTS))

        async def sender() -> None:
            for n in counter:
                data = await call(
                    client,
                    bases[n % len(bases)],
                    "mutation($e: ID!) { sendTestEvent(endpointId: $e) { eventId } }",
                    {"e": endpoint_id},
                    key,
                )
                ids.append(data["sendTestEvent"]["eventId"])
                if on_progress is not None:
                    on_progress(len(ids))

        await asyncio.gather(*(sender() for _ in range(10)))
        return ids


def wait_for_ids(receiver: Receiver, ids: set[str], seconds: float) -> float:
    started = time.monotonic()
    while {g.webhook_id for g in receiver.got()} < ids:
        assert time.monotonic() - started < seconds, (len(receiver.got()), len(ids))
        time.sleep(0.05)
    return time.monotonic() - started


def wait_until_succeeded(url: str, seconds: float) -> float:
    """Seconds until every delivery is SUCCEEDED: what the killed process had claimed is sent
    again once its lease lapses."""
    started = time.monotonic()
    while {status for status, _, _ in asyncio.run(delivery_states(url))} != {"SUCCEEDED"}:
        assert time.monotonic() - started < seconds
        time.sleep(0.5)
    return time.monotonic() - started


async def delivery_states(url: str) -> list[tuple[str, int, int]]:
    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://"))
    try:
        rows = await conn.fetch(
            "SELECT d.status, d.attempts, COUNT(a.id) AS n FROM webhook_delivery d"
            " LEFT JOIN webhook_attempt a ON a.delivery_id = d.id GROUP BY d.id"
        )
    finally:
        await conn.close()
    return sorted((r["status"], r["attempts"], r["n"]) for r in rows)


def test_r36_two_processes_deliver_1000_events_exactly_once(database_url, tmp_path, monkeypatch):
    servers = two_servers(database_url, tmp_path, monkeypatch)
    try:
        with Receiver() as receiver:
            started = time.monotonic()
            ids = asyncio.run(send_pings([s.base for s in servers], receiver))
            sent = time.monotonic() - started
            wait_for_ids(receiver, set(ids), 30)
            time.sleep(1.0)  # anything sent twice would have arrived by now
            got = receiver.got()
    finally:
        for server in servers:
            server.stop()
    assert len(set(ids)) == EVENTS
    assert len(got) == EVENTS and {g.webhook_id for g in got} == set(ids)
    assert all(g.verified_by == receiver.secrets for g in got)
    assert asyncio.run(delivery_states(database_url)) == [("SUCCEEDED", 1, 1)] * EVENTS
    print(f"\n{EVENTS} events sent in {sent:.1f} s, each delivered once")


def test_r36_a_process_killed_mid_run_loses_no_event(database_url, tmp_path, monkeypatch):
    dying, surviving = two_servers(database_url, tmp_path, monkeypatch)
    killed_at: list[int] = []

    def kill_midway(sent: int) -> None:
        if not killed_at and len(receiver.got()) >= 200:
            dying.process.kill()  # SIGKILL: no lifespan, no cleanup
            killed_at.append(len(receiver.got()))

    try:
        with Receiver(delay=0.02) as receiver:
            ids = asyncio.run(send_pings([surviving.base], receiver, kill_midway))
            assert killed_at, "the delivery ended before the kill"
            waited = wait_until_succeeded(database_url, 40)
            got = receiver.got()
    finally:
        dying.log.close()
        surviving.stop()
    assert dying.process.wait(timeout=10) == -9
    assert {g.webhook_id for g in got} == set(ids) and len(set(ids)) == EVENTS
    assert all(g.verified_by == receiver.secrets for g in got)
    print(
        f"\nkilled after {killed_at[0]} deliveries; all {EVENTS} succeeded {waited:.1f} s after"
        f" the last was sent; {len(got) - EVENTS} arrived twice"
    )


def test_r36_delivery_off_in_serve_and_on_in_the_scheduler(database_url, tmp_path, monkeypatch):
    """TALLY_WEBHOOK_DELIVERY=off keeps a server from delivering; `tally scheduler` delivers."""
    for name, value in {**SETTINGS, "TALLY_WEBHOOK_DELIVERY": "off"}.items():
        monkeypatch.setenv(name, value)
    server = Server(database_url, tmp_path)
    scheduler = None
    try:
        with Receiver() as receiver:

            async def ping() -> str:
                async with httpx.AsyncClient(timeout=30) as client:
                    key, endpoint_id = await subscribe(client, server.base, receiver)
                    data = await call(
                        client,
                        server.base,
                        "mutation($e: ID!) { sendTestEvent(endpointId: $e) { eventId } }",
                        {"e": endpoint_id},
                        key,
                    )
                    return data["sendTestEvent"]["eventId"]

            event_id = asyncio.run(ping())
            time.sleep(1.5)
            assert receiver.got() == []  # the server does not deliver
            env = {**os.environ, "TALLY_DATABASE_URL": database_url}
            env.pop("TALLY_WEBHOOK_DELIVERY")
            scheduler = subprocess.Popen(
                [sys.executable, "-m", "tally", "scheduler"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            wait_for_ids(receiver, {event_id}, 20)
            assert receiver.got()[0].verified_by == receiver.secrets
    finally:
        if scheduler is not None:
            scheduler.send_signal(signal.SIGTERM)
            out = scheduler.communicate(timeout=30)[0]
            assert scheduler.returncode == 0, out
            assert "webhook delivery: on" in out
        server.stop()
