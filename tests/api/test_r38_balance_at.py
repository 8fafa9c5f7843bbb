"""R38: `balanceAt(at)`, exactly, at chosen instants around each kind of change.

The `clock` fixture stops the API's clock at 2025-01-31 10:00 UTC; tests move it to make each
change at an instant of their choosing, microseconds included.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from tests.helpers import Api, assert_ledger_matches, run_jobs

T0 = datetime(2025, 1, 31, 10, 0, tzinfo=UTC)
US = timedelta(microseconds=1)
SNAPSHOT = "at plan { code } actionsUsed actionsCapacity dataCredits held available"
QUERY = f"query($at: DateTime!) {{ balanceAt(at: $at) {{ {SNAPSHOT} }} }}"


async def balance_at(api: Api, key: str, at: datetime | str) -> dict[str, Any]:
    value = at if isinstance(at, str) else at.isoformat()
    return (await api.gql(QUERY, {"at": value}, key=key))["balanceAt"]


def snapshot(
    plan: str, used: int, capacity: int, credits: str, held: str = "0"
) -> tuple[str, int, int, Decimal, Decimal, Decimal]:
    balance, set_aside = Decimal(credits), Decimal(held)
    return (plan, used, capacity, balance, set_aside, balance - set_aside)


async def meters_at(api: Api, key: str, at: datetime) -> tuple[str, int, int, Decimal, ...]:
    s = await balance_at(api, key, at)
    assert s["at"] == at.astimezone(UTC).isoformat()
    assert Decimal(s["available"]) == Decimal(s["dataCredits"]) - Decimal(s["held"])
    return (
        s["plan"]["code"],
        s["actionsUsed"],
        s["actionsCapacity"],
        Decimal(s["dataCredits"]),
        Decimal(s["held"]),
        Decimal(s["available"]),
    )


async def charge(api: Api, key: str, workbook: str, results: int, **fields: Any) -> dict:
    """linkedin profiles: 0.5 credits and one Action each."""
    done = await api.record_usage(
        key, workbook, kind="ENRICHMENT", provider="linkedin", dataType="profile",
        results=results, **fields,
    )  # fmt: skip
    assert done["__typename"] == "Charge", done
    return done


async def test_r38_a_charge_counts_from_its_own_microsecond(api, clock):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    t1 = T0 + timedelta(hours=1, microseconds=123_456)
    clock.move_to(t1)
    await charge(api, t.admin_key, wb, 100)
    created = snapshot("launch", 0, 15000, "2500")
    assert await meters_at(api, t.admin_key, T0) == created  # the creation counts at its instant
    assert await meters_at(api, t.admin_key, t1 - US) == created
    assert await meters_at(api, t.admin_key, t1) == snapshot("launch", 100, 15000, "2450")
    # Any zone: the same instant two hours east.
    east = t1.astimezone(timezone(timedelta(hours=2)))
    assert await meters_at(api, t.admin_key, east) == snapshot("launch", 100, 15000, "2450")
    clock.move_to(t1 + timedelta(days=2))
    assert await meters_at(api, t.admin_key, t1 + US) == snapshot("launch", 100, 15000, "2450")


async def test_r38_across_a_renewal_processed_late_and_ahead_of_the_clock(api, clock):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    clock.move_to(T0 + timedelta(days=1))
    await charge(api, t.admin_key, wb, 1000)  # 500 credits
    # The scheduler runs as of Feb 28 13:00, three hours after the boundary, while the API's
    # clock is still on Feb 1 (R33): the ledger is ahead of the clock.
    boundary = datetime(2025, 2, 28, 10, tzinfo=UTC)
    processed = boundary + timedelta(hours=3)
    await run_jobs(processed, t.id)
    old_cycle = snapshot("launch", 1000, 15000, "2000")
    assert await meters_at(api, t.admin_key, boundary) == old_cycle  # not processed yet
    assert await meters_at(api, t.admin_key, processed - US) == old_cycle
    assert await meters_at(api, t.admin_key, processed) == snapshot("launch", 0, 15000, "4500")
    assert await api.error_code(QUERY, {"at": (processed + US).isoformat()}, t.admin_key) == (
        "INVALID_INPUT"
    )
    await assert_ledger_matches(t.id)


async def test_r38_an_upgrade_mid_cycle_and_leaving_free(api, clock):
    t = await api.create_workspace("launch", creditTier=2500)
    wb = await api.create_workbook(t.admin_key)
    clock.move_to(T0 + timedelta(hours=1))
    await charge(api, t.admin_key, wb, 200)  # 100 credits
    upgraded = T0 + timedelta(days=10)
    clock.move_to(upgraded)
    assert (await api.change_plan(t.admin_key, "growth", creditTier=6000))["__typename"] == (
        "Workspace"
    )
    assert await meters_at(api, t.admin_key, upgraded - US) == (
        snapshot("launch", 200, 15000, "2400")
    )
    # R20: the new capacity now, the Actions used stay, the grant difference now.
    assert await meters_at(api, t.admin_key, upgraded) == snapshot("growth", 200, 40000, "5900")

    free = await api.create_workspace("free")
    left = upgraded + timedelta(hours=5)
    clock.move_to(left)
    await api.change_plan(free.admin_key, "launch", creditTier=2500)
    assert await meters_at(api, free.admin_key, left - US) == snapshot("free", 0, 500, "100")
    # R28: a new cycle now, fresh Actions, the whole grant on top of the balance.
    assert await meters_at(api, free.admin_key, left) == snapshot("launch", 0, 15000, "2600")


async def test_r38_a_hold_settled_then_released(api, clock):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    t1, t2, t3 = (T0 + timedelta(minutes=m) for m in (10, 20, 30))
    clock.move_to(t1)
    run = await api.start_run(t.admin_key, wb, hold="100")
    clock.move_to(t2)
    await charge(api, t.admin_key, wb, 40, runId=run["id"])  # 20 credits, settled from the hold
    clock.move_to(t3)
    await api.end_run(t.admin_key, run["id"])  # releases the 80 left
    assert await meters_at(api, t.admin_key, t1 - US) == snapshot("launch", 0, 15000, "2500")
    assert await meters_at(api, t.admin_key, t1) == snapshot("launch", 0, 15000, "2500", "100")
    assert await meters_at(api, t.admin_key, t2) == snapshot("launch", 40, 15000, "2480", "80")
    assert await meters_at(api, t.admin_key, t3 - US) == (
        snapshot("launch", 40, 15000, "2480", "80")
    )
    assert await meters_at(api, t.admin_key, t3) == snapshot("launch", 40, 15000, "2480")
    await assert_ledger_matches(t.id)


async def test_r38_a_refund_and_a_top_up(api, clock):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    t1, t2, t3 = (T0 + timedelta(hours=h) for h in (1, 2, 3))
    clock.move_to(t1)
    done = await charge(api, t.admin_key, wb, 100)
    clock.move_to(t2)
    refund = await api.refund(t.admin_key, done["id"], results=40)  # 20 credits back
    assert refund["__typename"] == "Refund", refund
    clock.move_to(t3)
    assert (await api.top_up(t.admin_key, "500"))["__typename"] == "TopUp"
    assert await meters_at(api, t.admin_key, t2 - US) == snapshot("launch", 100, 15000, "2450")
    # R22: a refund returns credits, never Actions.
    assert await meters_at(api, t.admin_key, t2) == snapshot("launch", 100, 15000, "2470")
    assert await meters_at(api, t.admin_key, t3 - US) == snapshot("launch", 100, 15000, "2470")
    assert await meters_at(api, t.admin_key, t3) == snapshot("launch", 100, 15000, "2970")


async def test_r38_a_trial_ends_on_free(api, clock):
    t = await api.create_workspace("growth", trial=True)
    wb = await api.create_workbook(t.admin_key)
    clock.move_to(T0 + timedelta(days=1))
    await api.record_usage(
        t.admin_key, wb, kind="ENRICHMENT", provider="clearbit", dataType="company", results=200
    )  # 200 credits, 200 Actions
    ends = datetime(2025, 2, 14, 10, tzinfo=UTC)
    clock.move_to(ends + timedelta(minutes=1))
    await run_jobs(ends + timedelta(minutes=1), t.id)
    trial = snapshot("growth", 200, 40000, "800")
    assert await meters_at(api, t.admin_key, ends) == trial
    # R18: free, with 100 carried over and free's 100 granted.
    after = ends + timedelta(minutes=1)
    assert await meters_at(api, t.admin_key, after) == snapshot("free", 0, 500, "200")


async def test_r38_before_the_creation_or_in_the_future_is_invalid(api, clock):
    created = T0 + timedelta(microseconds=7)
    clock.move_to(created)
    t = await api.create_workspace("launch")
    assert await meters_at(api, t.admin_key, created) == snapshot("launch", 0, 15000, "2500")
    for at in (created - US, created + US, created + timedelta(days=400)):
        body = await api.raw(QUERY, {"at": at.isoformat()}, t.admin_key)
        assert body["errors"][0]["extensions"]["code"] == "INVALID_INPUT", body
        assert body["data"] is None
    message = (await api.raw(QUERY, {"at": (created - US).isoformat()}, t.admin_key))["errors"]
    assert "before the workspace was created" in message[0]["message"]
    # The DateTime scalar's own bounds: a zone is required, years 1970 to 2199.
    for text in ("2025-02-01T10:00:00", "2200-01-01T00:00:00Z", "yesterday"):
        assert await api.error_code(QUERY, {"at": text}, t.admin_key) == "INVALID_INPUT"
    inline = '{ balanceAt(at: "2025-02-01T10:00") { at } }'
    assert await api.error_code(inline, key=t.admin_key) == "INVALID_INPUT"


async def test_r38_every_workspace_key_reads_its_own_workspace_only(api, clock):
    a = await api.create_workspace("launch")
    b = await api.create_workspace("growth")
    wb = await api.create_workbook(b.admin_key)
    clock.move_to(T0 + timedelta(hours=1))
    await charge(api, b.admin_key, wb, 10)
    member = (
        await api.gql(
            'mutation { createApiKey(name: "m", role: MEMBER) { secret } }', key=a.admin_key
        )
    )["createApiKey"]["secret"]
    now = T0 + timedelta(hours=1)
    assert await meters_at(api, member, now) == snapshot("launch", 0, 15000, "2500")
    assert await meters_at(api, a.admin_key, now) == snapshot("launch", 0, 15000, "2500")
    assert await meters_at(api, b.admin_key, now) == snapshot("growth", 10, 40000, "5995")
    at = {"at": now.isoformat()}
    assert await api.error_code(QUERY, at, api.operator_key) == "FORBIDDEN"
    assert await api.error_code(QUERY, at) == "UNAUTHENTICATED"
    assert await api.error_code(QUERY, at, "tly_" + "0" * 43) == "UNAUTHENTICATED"
