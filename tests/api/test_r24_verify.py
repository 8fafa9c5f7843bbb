"""`tally verify` (app.verify): every stored balance, hold and spend equals what the ledger and
the charges say, after a history with holds, refunds, top-ups and a renewal; a tampered balance
is reported with its figures."""

import random
from datetime import UTC, datetime, timedelta

import pytest

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


KINDS = [
    PHONE,
    {"kind": "ENRICHMENT", "provider": "hunter", "dataType": "email"},
    {"kind": "ENRICHMENT", "provider": "linkedin", "dataType": "profile"},
]


async def _random_history(api, clock, rng: random.Random) -> tuple[str, list[str]]:
    """Charges in and out of runs, refunds, top-ups, limits, runs ended or left to expire, and
    renewals, in an order drawn from `rng`; returns the workspace and its other rows' ids."""
    t = await api.create_workspace(rng.choice(["launch", "growth"]))
    books = [await api.create_workbook(t.admin_key, f"b{n}") for n in range(2)]
    runs: list[tuple[str, str]] = []  # (run, its workbook)
    charges: list[str] = []
    now = datetime(2025, 1, 31, 10, tzinfo=UTC)
    for _ in range(40):
        step = rng.choice(["charge"] * 4 + ["refund", "top_up", "limit", "run", "end", "time"])
        if step == "charge":
            book = rng.choice(books)
            extra = {}
            if runs and rng.random() < 0.5:
                run_id, book = rng.choice(runs)
                extra = {"runId": run_id}
            made = await api.record_usage(
                t.admin_key, book, results=rng.randint(1, 30), **rng.choice(KINDS), **extra
            )
            if made["__typename"] == "Charge":
                charges.append(made["id"])
        elif step == "refund" and charges:
            await api.refund(t.admin_key, rng.choice(charges), results=1)
        elif step == "top_up":
            await api.top_up(t.admin_key, str(rng.randint(1, 40)))
        elif step == "limit":
            limit = rng.choice([None, "0", "25", "500"])
            await api.set_limit(t.admin_key, rng.choice(books), limit)
        elif step == "run":
            book = rng.choice(books)
            run = await api.start_run(t.admin_key, book, budget="60", hold=str(rng.randint(0, 30)))
            if "id" in run:
                runs.append((run["id"], book))
        elif step == "end" and runs:
            run_id = rng.choice(runs)[0]
            await api.end_run(t.admin_key, run_id, rng.choice(["stopRun", "finishRun"]))
        elif step == "time":
            now += timedelta(hours=rng.randint(1, 24 * 12))
            clock.move_to(now)
            await run_jobs(now, t.id)
    return t.id, books + [run_id for run_id, _ in runs]


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_r24_verify_finds_nothing_after_a_random_history_then_each_tampering(
    api, clock, seed
):
    workspace_id, others = await _random_history(api, clock, random.Random(seed))
    assert await mine(workspace_id, *others) == []
    held = (await fetch(connection(), "SELECT credits_held FROM workspace WHERE id = $1",
                        workspace_id))[0]["credits_held"]  # fmt: skip
    await fetch(
        connection(), "UPDATE workspace SET credits_held = credits_held + 3 WHERE id = $1",
        workspace_id,
    )  # fmt: skip
    assert await mine(workspace_id, *others) == [
        f"held = its ledger: workspace {workspace_id} HELD_CREDITS: stored {held + 3},"
        f" computed {held}"
    ]
    await fetch(
        connection(), "UPDATE workspace SET credits_held = credits_held - 3 WHERE id = $1",
        workspace_id,
    )  # fmt: skip
    assert await mine(workspace_id, *others) == []
