"""R19-R21, R27, R28, R30: top-ups, upgrades at once, downgrades and cancellations at the end.

The `clock` fixture stops the API's clock at 2025-01-31 10:00 UTC (a launch cycle then runs
to 2025-02-28 10:00: 28 days, so 2025-02-14 10:00 is exactly half of it).
"""

from datetime import UTC, datetime
from decimal import Decimal

from tests.helpers import assert_ledger_matches, last_ledger_id, ledger_rows, new_key, run_jobs

U = 10_000


def at(y, m, d, hh=10):
    return datetime(y, m, d, hh, tzinfo=UTC)


def iso(y, m, d, hh=10):
    return at(y, m, d, hh).isoformat()


async def spend(api, key, wb, results, provider="linkedin", data_type="profile"):
    charge = await api.record_usage(
        key, wb, kind="ENRICHMENT", provider=provider, dataType=data_type, results=results
    )
    assert charge["__typename"] == "Charge", charge
    return charge


async def test_r19_top_up_at_the_premium_up_to_the_cap(api, clock):
    t = await api.create_workspace("launch")  # 2,500; cap 5,000
    bought = await api.top_up(t.admin_key, "2500", idempotencyKey="t-1")
    assert (bought["__typename"], bought["credits"], bought["price"]) == ("TopUp", "2500", "130.00")
    assert (await api.workspace(t.admin_key))["dataCredits"]["balance"] == "5000"
    refused = await api.top_up(t.admin_key, "0.0001")
    assert refused["code"] == "TOP_UP_EXCEEDS_ROLLOVER_LIMIT"
    assert "at most 0 can be bought now" in refused["message"]
    again = await api.top_up(t.admin_key, "2500", idempotencyKey="t-1")  # R13: a retry
    assert again == bought
    assert (await api.workspace(t.admin_key))["dataCredits"]["balance"] == "5000"
    charges = await api.billing(t.admin_key)
    assert [(c["kind"], c["amount"], c["credits"]) for c in charges] == [
        ("PLAN_FEE", "185.00", "2500"),
        ("TOP_UP", "130.00", "2500"),
    ]
    rows = await ledger_rows(t.id)
    assert rows[-1] == ("TOP_UP", "DATA_CREDITS", 2500 * U, 5000 * U)
    await assert_ledger_matches(t.id)


async def test_r19_top_up_refusals(api, clock):
    paid = await api.create_workspace("launch")
    free = await api.create_workspace("free")
    trial = await api.create_workspace("growth", trial=True)
    actions = await api.top_up(paid.admin_key, "10", meter="ACTIONS")
    assert actions["code"] == "ACTIONS_NOT_PURCHASABLE"
    assert (await api.top_up(free.admin_key, "10"))["code"] == "PLAN_FEATURE_UNAVAILABLE"
    assert (await api.top_up(trial.admin_key, "10"))["code"] == "PLAN_FEATURE_UNAVAILABLE"
    assert (await api.top_up(paid.admin_key, "2500.0001"))["code"] == (
        "TOP_UP_EXCEEDS_ROLLOVER_LIMIT"
    )
    query = """mutation($i: TopUpInput!) { purchaseTopUp(input: $i) { __typename } }"""
    for credits in ("0", "-1", "0.00001"):
        body = {"i": {"credits": credits, "idempotencyKey": new_key()}}
        assert await api.error_code(query, body, key=paid.admin_key) == "INVALID_INPUT"
    # Held credits are part of the balance, set aside for runs: nothing one can buy.
    held = {"i": {"credits": "10", "idempotencyKey": new_key(), "meter": "HELD_CREDITS"}}
    body = await api.raw(query, held, key=paid.admin_key)
    assert body["errors"][0]["extensions"] == {"code": "INVALID_INPUT"}
    assert "HELD_CREDITS cannot be bought" in body["errors"][0]["message"]
    member = (
        await api.gql(
            'mutation { createApiKey(name: "m", role: MEMBER) { secret } }', key=paid.admin_key
        )
    )["createApiKey"]["secret"]
    body = {"i": {"credits": "1", "idempotencyKey": new_key()}}
    assert await api.error_code(query, body, key=member) == "FORBIDDEN"
    # A refused top-up leaves no trace: the same key works once the cause is gone (R13).
    assert (await api.top_up(paid.admin_key, "2600", idempotencyKey="k"))["__typename"] == (
        "Refusal"
    )
    assert (await api.top_up(paid.admin_key, "2500", idempotencyKey="k"))["__typename"] == "TopUp"
    assert (await api.workspace(paid.admin_key))["dataCredits"]["balance"] == "5000"


async def test_r19_top_up_meter_left_out_or_null_is_data_credits(api, clock):
    """API.md: `meter: Meter = DATA_CREDITS`, so an explicit null is the default too."""
    t = await api.create_workspace("launch")
    query = """mutation($i: TopUpInput!) { purchaseTopUp(input: $i) {
                 ... on TopUp { credits price } ... on Refusal { code } } }"""
    for extra in ({}, {"meter": None}, {"meter": "DATA_CREDITS"}):
        payload = {"i": {"credits": "100", "idempotencyKey": new_key(), **extra}}
        data = await api.gql(query, payload, key=t.admin_key)
        assert data["purchaseTopUp"] == {"credits": "100", "price": "5.20"}, extra
    assert (await api.workspace(t.admin_key))["dataCredits"]["balance"] == "2800"
    await assert_ledger_matches(t.id)


async def test_r19_annual_cap_is_twice_the_yearly_grant(api, clock):
    t = await api.create_workspace("enterprise")  # 600,000 for the year; cap 1,200,000
    assert (await api.top_up(t.admin_key, "600000"))["price"] == "31200.00"
    assert (await api.top_up(t.admin_key, "0.0001"))["code"] == "TOP_UP_EXCEEDS_ROLLOVER_LIMIT"


async def test_r22_a_refund_may_take_the_balance_past_the_cap(api, clock):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    charge = await spend(api, t.admin_key, wb, 20)  # 10 credits
    await api.top_up(t.admin_key, "2510")  # back to the cap of 5,000
    assert (await api.refund(t.admin_key, charge["id"]))["dataCredits"] == "10"
    assert (await api.workspace(t.admin_key))["dataCredits"]["balance"] == "5010"
    await run_jobs(at(2025, 2, 28), t.id)  # the next renewal caps it again
    assert (await api.workspace(t.admin_key))["dataCredits"]["balance"] == "5000"


async def test_r20_upgrade_at_once_with_proration(api, clock):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    await spend(api, t.admin_key, wb, 100)  # 100 Actions, 50 credits
    clock.move_to(at(2025, 2, 14))  # half of the 28-day cycle left
    before = await last_ledger_id(t.id)
    ws = await api.change_plan(t.admin_key, "growth", idempotencyKey="up-1")
    assert (ws["plan"]["code"], ws["creditTier"], ws["status"]) == ("growth", 6000, "ACTIVE")
    assert ws["actions"]["capacity"] == 40000 and ws["actions"]["used"] == 100
    # launch 2,500 -> growth 6,000 adds 3,500 at once (R20)
    assert ws["dataCredits"] == {"balance": "5950", "cap": "12000", "monthlyGrant": "6000"}
    assert ws["currentPeriod"] == {"start": iso(2025, 1, 31), "end": iso(2025, 2, 28)}
    assert await ledger_rows(t.id, before) == [
        ("GRANT", "ACTIONS", 25000, 39900),
        ("GRANT", "DATA_CREDITS", 3500 * U, 5950 * U),
    ]
    # (255 + 6,000 x 0.04) - (85 + 2,500 x 0.04) = 310, for half the cycle = 155
    charges = await api.billing(t.admin_key)
    assert [(c["kind"], c["amount"], c["credits"]) for c in charges] == [
        ("PLAN_FEE", "185.00", "2500"),
        ("PRORATION", "155.00", "3500"),
    ]
    # A retry changes nothing; the same key for another plan is refused (R13).
    again = await api.change_plan(t.admin_key, "growth", idempotencyKey="up-1")
    assert again["dataCredits"]["balance"] == "5950"
    other = await api.change_plan(t.admin_key, "launch", idempotencyKey="up-1")
    assert other["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert len(await api.billing(t.admin_key)) == 2
    # The next renewal is growth's: 5,950 + 6,000 = 11,950 under the 12,000 cap.
    await run_jobs(at(2025, 2, 28), t.id)
    assert (await api.workspace(t.admin_key))["dataCredits"]["balance"] == "11950"
    await assert_ledger_matches(t.id)


async def test_r20_bigger_credit_tier_of_the_same_plan(api, clock):
    t = await api.create_workspace("launch")
    clock.move_to(at(2025, 2, 21))  # 7 of 28 days left
    ws = await api.change_plan(t.admin_key, "launch", creditTier=5000)
    assert ws["actions"]["capacity"] == 15000
    assert ws["dataCredits"]["balance"] == "5000"
    charges = await api.billing(t.admin_key)
    assert charges[-1]["amount"] == "25.00"  # (285 - 185) x 7/28
    rows = await ledger_rows(t.id)
    assert rows[-1] == ("GRANT", "DATA_CREDITS", 2500 * U, 5000 * U)  # no Actions entry


async def test_r20_annual_upgrade_adds_the_yearly_difference(api, clock):
    t = await api.create_workspace("launch", billingInterval="ANNUAL")  # 30,000 a year
    clock.move_to(at(2025, 7, 31))  # 184 of 365 days left
    ws = await api.change_plan(t.admin_key, "growth")
    assert ws["billingInterval"] == "ANNUAL"
    assert ws["dataCredits"] == {"balance": "72000", "cap": "144000", "monthlyGrant": "6000"}
    # (5,940 - 2,220) x 184/365 = 1,875.287... -> 1,875.29
    assert (await api.billing(t.admin_key))[-1]["amount"] == "1875.29"


async def test_r21_downgrade_waits_and_the_excess_stays_spendable(api, clock):
    t = await api.create_workspace("growth")  # 6,000; Jan 31 -> Feb 28
    wb = await api.create_workbook(t.admin_key)
    clock.move_to(at(2025, 2, 10))
    ws = await api.change_plan(t.admin_key, "launch")
    assert (ws["plan"]["code"], ws["status"]) == ("growth", "ACTIVE")
    assert ws["pendingChange"] == {
        "plan": {"code": "launch"},
        "creditTier": 2500,
        "billingInterval": "MONTHLY",
        "effectiveAt": iso(2025, 2, 28),
    }
    assert ws["actions"]["capacity"] == 40000
    # More than launch's whole cap (5,000) is still spendable until the cycle ends.
    await spend(api, t.admin_key, wb, 11000)  # 11,000 Actions, 5,500 credits
    assert await api.meters(t.admin_key) == (11000, Decimal("500"))
    assert await api.billing(t.admin_key) == [
        c for c in await api.billing(t.admin_key) if c["kind"] == "PLAN_FEE"
    ]


async def test_r21_downgrade_caps_at_the_new_plan(api, clock):
    t = await api.create_workspace("growth")
    wb = await api.create_workbook(t.admin_key)
    clock.move_to(at(2025, 2, 10))
    await api.change_plan(t.admin_key, "launch")
    await spend(api, t.admin_key, wb, 4000)  # 2,000 of the 6,000 spent in the grace period
    before = await last_ledger_id(t.id)
    await run_jobs(at(2025, 2, 28), t.id)
    ws = await api.workspace(t.admin_key)
    assert (ws["plan"]["code"], ws["creditTier"], ws["pendingChange"]) == ("launch", 2500, None)
    assert ws["actions"]["capacity"] == 15000
    # 4,000 + 2,500 = 6,500, capped at 2 x 2,500
    assert ws["dataCredits"] == {"balance": "5000", "cap": "5000", "monthlyGrant": "2500"}
    assert await ledger_rows(t.id, before) == [
        ("EXPIRY", "ACTIONS", -36000, 0),
        ("GRANT", "ACTIONS", 15000, 15000),
        ("GRANT", "DATA_CREDITS", 2500 * U, 6500 * U),
        ("ROLLOVER_CAP", "DATA_CREDITS", -1500 * U, 5000 * U),
    ]
    charges = await api.billing(t.admin_key)
    assert [(c["kind"], c["amount"], c["planCode"]) for c in charges] == [
        ("PLAN_FEE", "185.00", "launch")
    ]
    await assert_ledger_matches(t.id)


async def test_r21_cancel_then_free_at_the_cycle_end(api, clock):
    t = await api.create_workspace("launch")
    ws = await api.cancel(t.admin_key)
    assert (ws["status"], ws["plan"]["code"]) == ("CANCELED", "launch")
    assert ws["pendingChange"]["plan"] == {"code": "free"}
    assert ws["pendingChange"]["effectiveAt"] == iso(2025, 2, 28)
    assert (await api.top_up(t.admin_key, "100"))["__typename"] == "TopUp"  # still paid
    await run_jobs(at(2025, 2, 28), t.id)
    ws = await api.workspace(t.admin_key)
    assert (ws["plan"]["code"], ws["status"], ws["pendingChange"]) == ("free", "ACTIVE", None)
    assert ws["dataCredits"]["balance"] == "200"  # 2,600 + 100, capped at 2 x 100
    assert ws["actions"]["capacity"] == 500
    assert await api.billing(t.admin_key) == []  # free bills nothing
    assert (await api.cancel(t.admin_key))["status"] == "ACTIVE"  # nothing left to cancel


async def test_r21_withdraw_a_pending_change(api, clock):
    t = await api.create_workspace("launch")
    await api.cancel(t.admin_key)
    ws = await api.withdraw(t.admin_key)
    assert (ws["status"], ws["pendingChange"]) == ("ACTIVE", None)
    assert (await api.withdraw(t.admin_key))["pendingChange"] is None  # idempotent
    await run_jobs(at(2025, 2, 28), t.id)
    ws = await api.workspace(t.admin_key)
    assert (ws["plan"]["code"], ws["dataCredits"]["balance"]) == ("launch", "5000")


async def test_r27_a_new_change_replaces_the_pending_one(api, clock):
    t = await api.create_workspace("growth", creditTier=12000)
    await api.change_plan(t.admin_key, "launch")
    ws = await api.change_plan(t.admin_key, "growth", creditTier=6000)
    assert ws["pendingChange"]["plan"] == {"code": "growth"}
    assert ws["pendingChange"]["creditTier"] == 6000
    ws = await api.cancel(t.admin_key)
    assert ws["status"] == "CANCELED"
    ws = await api.change_plan(t.admin_key, "growth", creditTier=12000)  # the current terms
    assert (ws["status"], ws["pendingChange"]) == ("ACTIVE", None)
    await api.change_plan(t.admin_key, "launch")
    ws = await api.change_plan(t.admin_key, "growth", creditTier=50000)  # an upgrade
    assert (ws["creditTier"], ws["pendingChange"]) == (50000, None)


async def test_r28_leaving_free_starts_a_subscription_now(api, clock):
    t = await api.create_workspace("free")
    wb = await api.create_workbook(t.admin_key)
    await spend(api, t.admin_key, wb, 40)  # 40 Actions, 20 credits: 80 left
    clock.move_to(at(2025, 2, 10, 15))
    before = await last_ledger_id(t.id)
    ws = await api.change_plan(t.admin_key, "launch")
    assert (ws["plan"]["code"], ws["status"], ws["pendingChange"]) == ("launch", "ACTIVE", None)
    assert ws["billingAnchor"] == iso(2025, 2, 10, 15)
    assert ws["currentPeriod"] == {"start": iso(2025, 2, 10, 15), "end": iso(2025, 3, 10, 15)}
    assert ws["actions"] == {
        "capacity": 15000,
        "used": 0,
        "remaining": 15000,
        "resetsAt": iso(2025, 3, 10, 15),
    }
    assert ws["dataCredits"]["balance"] == "2580"
    assert await ledger_rows(t.id, before) == [
        ("EXPIRY", "ACTIONS", -460, 0),
        ("GRANT", "ACTIONS", 15000, 15000),
        ("GRANT", "DATA_CREDITS", 2500 * U, 2580 * U),
    ]
    charges = await api.billing(t.admin_key)
    assert [(c["kind"], c["amount"], c["periodStart"]) for c in charges] == [
        ("PLAN_FEE", "185.00", iso(2025, 2, 10, 15))
    ]
    await assert_ledger_matches(t.id)


async def test_r30_a_change_of_interval_waits_for_the_cycle_end(api, clock):
    t = await api.create_workspace("launch")
    ws = await api.change_plan(t.admin_key, "launch", billingInterval="ANNUAL")
    assert ws["billingInterval"] == "MONTHLY"
    assert ws["pendingChange"]["billingInterval"] == "ANNUAL"
    # Even with a higher rank, a change of interval waits (R30).
    ws = await api.change_plan(t.admin_key, "enterprise")
    assert (ws["plan"]["code"], ws["pendingChange"]["plan"]) == ("launch", {"code": "enterprise"})
    assert ws["pendingChange"]["billingInterval"] == "ANNUAL"
    await api.change_plan(t.admin_key, "launch", billingInterval="ANNUAL")
    await run_jobs(at(2025, 2, 28), t.id)
    ws = await api.workspace(t.admin_key)
    assert ws["billingInterval"] == "ANNUAL"
    assert ws["currentPeriod"] == {"start": iso(2025, 2, 28), "end": iso(2026, 2, 28)}
    assert ws["dataCredits"]["balance"] == "32500"  # 2,500 kept + 30,000 for the year
    assert (await api.billing(t.admin_key))[-1]["amount"] == "2220.00"


async def test_r30_change_plan_keeps_the_interval_when_offered(api, clock):
    t = await api.create_workspace("launch", billingInterval="ANNUAL")
    ws = await api.change_plan(t.admin_key, "growth")
    assert (ws["plan"]["code"], ws["billingInterval"]) == ("growth", "ANNUAL")


async def test_r11_limits_stay_in_force_after_leaving_enterprise(api, clock):
    t = await api.create_workspace("enterprise")
    wb = await api.create_workbook(t.admin_key)
    assert (await api.set_limit(t.admin_key, wb, "10"))["spendLimit"] == "10"
    await api.change_plan(t.admin_key, "growth", billingInterval="ANNUAL")
    await run_jobs(at(2026, 1, 31), t.id)
    assert (await api.workspace(t.admin_key))["plan"]["code"] == "growth"
    await spend(api, t.admin_key, wb, 20)  # 10 credits: the limit is reached
    refused = await api.record_usage(
        t.admin_key, wb, kind="ENRICHMENT", provider="linkedin", dataType="profile", results=1
    )
    assert refused["code"] == "WORKBOOK_SPEND_LIMIT_REACHED"
    assert (await api.set_limit(t.admin_key, wb, "20"))["spendLimit"] == "20"  # raised: allowed
    assert (await api.set_limit(t.admin_key, wb, None))["spendLimit"] is None  # removed


async def test_plan_changes_are_for_admins(api, clock):
    t = await api.create_workspace("launch")
    member = (
        await api.gql(
            'mutation { createApiKey(name: "m", role: MEMBER) { secret } }', key=t.admin_key
        )
    )["createApiKey"]["secret"]
    change = """mutation($i: ChangePlanInput!) { changePlan(input: $i) { __typename } }"""
    body = {"i": {"plan": "growth", "idempotencyKey": new_key()}}
    assert await api.error_code(change, body, key=member) == "FORBIDDEN"
    assert await api.error_code("mutation { cancelSubscription { __typename } }", key=member) == (
        "FORBIDDEN"
    )
    assert await api.error_code("mutation { withdrawPendingChange { id } }", key=member) == (
        "FORBIDDEN"
    )
    body = {"i": {"plan": "platinum", "idempotencyKey": new_key()}}
    assert await api.error_code(change, body, key=t.admin_key) == "INVALID_INPUT"
    body = {"i": {"plan": "launch", "creditTier": 3000, "idempotencyKey": new_key()}}
    assert await api.error_code(change, body, key=t.admin_key) == "INVALID_INPUT"
    body = {"i": {"plan": "free", "billingInterval": "ANNUAL", "idempotencyKey": new_key()}}
    assert await api.error_code(change, body, key=t.admin_key) == "INVALID_INPUT"
    assert Decimal((await api.workspace(t.admin_key))["dataCredits"]["balance"]) == 2500
