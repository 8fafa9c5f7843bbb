"""The scheduler and `tally jobs` as real processes on PostgreSQL (R14 across processes).

Workspaces are seeded due with SQL (as bench/renewals.py does): launch 2,500, anchored
2025-01-15 10:00 UTC, 2,400 credits left, the first renewal due 2025-02-15 10:00.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from bench.renewals import seed
from tests import templates
from tests.conftest import BACKENDS, PG_SERVER, drop_postgres_database

pytestmark = pytest.mark.e2e


def tally(*args: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tally", *args],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


async def query(url: str, sql: str, *args):
    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://"))
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


async def seeded(url: str, n: int) -> None:
    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://"))
    try:
        await seed(conn, "e2e ", n)
    finally:
        await conn.close()


@pytest.fixture
def pg_url() -> Iterator[str]:
    if "postgres" not in BACKENDS:
        pytest.skip("PostgreSQL leg not selected")
    name = f"tally_jobs_{uuid.uuid4().hex[:10]}"
    url = f"{PG_SERVER}/{name}"
    templates.migrated(url, Path())  # then `migrate` has none left to apply, and seeds
    migrate = tally("migrate", env={"TALLY_DATABASE_URL": url})
    assert migrate.wait(timeout=60) == 0, migrate.stdout.read()
    yield url
    asyncio.run(drop_postgres_database(name))


LEDGER_MATCHES = """
SELECT COUNT(*) FROM workspace w WHERE credit_balance <> (
  SELECT COALESCE(SUM(amount), 0) FROM ledger_entry
   WHERE workspace_id = w.id AND meter = 'DATA_CREDITS')
 OR actions_capacity - actions_used <> (
  SELECT COALESCE(SUM(amount), 0) FROM ledger_entry WHERE workspace_id = w.id AND meter = 'ACTIONS')
"""


def test_r14_two_job_processes_at_once_renew_each_period_once(pg_url):
    asyncio.run(seeded(pg_url, 300))
    env = {"TALLY_DATABASE_URL": pg_url}
    args = ("jobs", "run", "renewals", "--now", "2025-04-16T00:00:00+00:00", "--batch-size", "10")
    first, second = tally(*args, env=env), tally(*args, env=env)
    outputs = [p.communicate(timeout=240)[0] for p in (first, second)]
    assert [first.returncode, second.returncode] == [0, 0], outputs
    periods = [
        int(re.search(r"renewals: \d+ workspaces, (\d+) periods", o).group(1)) for o in outputs
    ]
    assert sum(periods) == 900, outputs  # Feb 15, Mar 15, Apr 15 for each of 300
    rows = asyncio.run(query(pg_url, "SELECT workspace_id, period_start FROM renewal"))
    assert len(rows) == 900 == len({(r[0], r[1]) for r in rows})
    # 2,400 + 2,500 = 4,900, then 7,400 capped at 5,000, then capped again
    balances = asyncio.run(query(pg_url, "SELECT DISTINCT credit_balance FROM workspace"))
    assert [r[0] for r in balances] == [5000 * 10_000]
    assert asyncio.run(query(pg_url, LEDGER_MATCHES))[0][0] == 0
    fees = asyncio.run(query(pg_url, "SELECT COUNT(*), SUM(amount_cents) FROM billing_charge"))
    assert tuple(fees[0]) == (900, 900 * 18500)


def test_r14_jobs_run_prints_what_it_did_and_runs_again_idle(pg_url):
    asyncio.run(seeded(pg_url, 150))
    env = {"TALLY_DATABASE_URL": pg_url}
    run = tally("jobs", "run", "all", "--now", "2025-02-15T10:00:00Z", env=env)
    out = run.communicate(timeout=120)[0]
    assert run.returncode == 0, out
    assert "trial-expiry: 0 workspaces, 0 periods (none), 0 failed" in out
    assert "renewals: 150 workspaces, 150 periods (CYCLE 150), 0 failed" in out
    assert "hold-expiry: 0 holds released, as of 2025-02-15T10:00:00+00:00" in out
    assert "trial-ending: 0 trials told, as of 2025-02-15T10:00:00+00:00" in out
    assert "verify: 0 differences found, as of 2025-02-15T10:00:00+00:00" in out
    assert "webhook-retention: 0 deliveries pruned, as of 2025-02-15T10:00:00+00:00" in out
    again = tally("jobs", "run", "renewals", "--now", "2025-02-15T10:00:00Z", env=env)
    assert "renewals: 0 workspaces, 0 periods" in again.communicate(timeout=60)[0]
    unknown = tally("jobs", "run", "nightly", env=env)
    assert unknown.wait(timeout=60) == 2
    listed = tally("jobs", "list", env=env).communicate(timeout=60)[0]
    assert [line.split()[0] for line in listed.splitlines()] == [
        "trial-expiry",
        "renewals",
        "hold-expiry",
        "trial-ending",
        "webhook-retention",
        "verify",
        "all",
    ]


def test_r14_the_scheduler_process_renews_on_its_own_and_stops_cleanly(pg_url):
    asyncio.run(seeded(pg_url, 3))
    env = {"TALLY_DATABASE_URL": pg_url, "TALLY_SCHEDULER_INTERVAL": "1"}
    scheduler = tally("scheduler", env=env)
    try:
        deadline = time.monotonic() + 60
        latest = None
        while time.monotonic() < deadline:
            rows = asyncio.run(query(pg_url, "SELECT MIN(period_end) FROM workspace"))
            latest = rows[0][0]
            if latest.timestamp() > time.time():  # every workspace renewed up to now
                break
            time.sleep(0.5)
        assert latest is not None and latest.timestamp() > time.time(), latest
    finally:
        scheduler.send_signal(signal.SIGTERM)
        out = scheduler.communicate(timeout=30)[0]
    assert scheduler.returncode == 0, out
    assert asyncio.run(query(pg_url, LEDGER_MATCHES))[0][0] == 0


def test_r14_serve_runs_the_scheduler_unless_turned_off(pg_url, tmp_path):
    from tests.e2e.test_server import free_port

    asyncio.run(seeded(pg_url, 2))

    def serve(switch: str) -> subprocess.Popen:
        port = str(free_port())
        env = {
            "TALLY_DATABASE_URL": pg_url,
            "TALLY_SCHEDULER": switch,
            "TALLY_SCHEDULER_INTERVAL": "1",
            "TALLY_OPERATOR_KEY": "tly_op_e2e",
        }
        return tally("serve", "--port", port, env=env)

    def renewals() -> int:
        return asyncio.run(query(pg_url, "SELECT COUNT(*) FROM renewal"))[0][0]

    off = serve("off")
    time.sleep(5)
    off.terminate()
    off.communicate(timeout=30)
    assert renewals() == 0
    on = serve("on")
    try:
        deadline = time.monotonic() + 60
        while renewals() == 0 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert renewals() > 0
    finally:
        on.terminate()
        on.communicate(timeout=30)


def test_r24_tally_verify_exits_0_then_1_after_a_tampered_balance(pg_url):
    asyncio.run(seeded(pg_url, 3))
    env = {"TALLY_DATABASE_URL": pg_url}
    clean = tally("verify", env=env)
    out = clean.communicate(timeout=60)[0]
    assert (clean.returncode, out.strip().splitlines()[-1]) == (0, "0 differences"), out
    asyncio.run(query(pg_url, "UPDATE workspace SET credit_balance = credit_balance + 5"))
    tampered = tally("verify", env=env)
    out = tampered.communicate(timeout=60)[0]
    assert tampered.returncode == 1, out
    assert out.count("balance = its ledger: workspace") == 3
    assert out.strip().splitlines()[-1] == "3 differences"
