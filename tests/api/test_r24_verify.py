"""`tally verify` (app.verify): every stored balance, hold and spend equals what the ledger and
the charges say, after a history with holds, refunds, top-ups and a renewal; a tampered balance
is reported with its figures."""

from datetime import UTC, datetime

from app.db import connection, fetch
from app.verify import verify
from tests.helpers import run_jobs

PHONE = {"kind": "ENRICHMENT", "provider": "apollo", "dataType": "phone"}


async def mine(*ids: str) -> list[str]:
    """The differences about these rows (the session's other tests share the database)."""
    return [str(d) for d in await verify() if any(i in d.subject for i in ids)]


async def test_r24_verify_finds_nothing_after_a_history_and_the_tampered_balance_after(api, clock):
    t = await api.create_workspace("enterprise")
    wb = await api.create_workbook(t.admin_key)
    await api.set_limit(t.admin_key, wb, "100")
    run = await api.start_run(t.admin_key, wb, budget="50", hold="30")
    charge = await api.record_usage(t.admin_key, wb, runId=run["id"], results=4, **PHONE)
    await api.refund(t.admin_key, charge["id"], results=1)
    await api.end_run(t.admin_key, run["id"])
    await api.top_up(t.admin_key, "10")
    await run_jobs(datetime(2025, 3, 5, tzinfo=UTC), t.id)
    assert await mine(t.id, wb, run["id"]) == []
    balance = (await api.workspace(t.admin_key))["dataCredits"]["balance"]
    units = int(balance) * 10_000  # a whole number of credits here
    await fetch(
        connection(), "UPDATE workspace SET credit_balance = credit_balance + 1 WHERE id = $1", t.id
    )
    await fetch(connection(), "UPDATE run SET spent = spent + 70000 WHERE id = $1", run["id"])
    assert sorted(await mine(t.id, wb, run["id"])) == sorted(
        [
            f"balance = its ledger: workspace {t.id} DATA_CREDITS: stored {units + 1},"
            f" computed {units}",
            f"a run's spend = its charges, net of refunds: run {run['id']}: stored 220000,"
            " computed 150000",
        ]
    )
    await fetch(  # put it back: the session's other tests verify the same database
        connection(), "UPDATE workspace SET credit_balance = credit_balance - 1 WHERE id = $1", t.id
    )
    await fetch(connection(), "UPDATE run SET spent = spent - 70000 WHERE id = $1", run["id"])
    assert await mine(t.id, wb, run["id"]) == []
