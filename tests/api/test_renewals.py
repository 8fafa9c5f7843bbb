"""R14-R18: renewals at the billing anchor, Actions reset, Data Credit rollover, trials.

The `clock` fixture stops the wall clock the API reads at 2025-01-31 10:00 UTC; `run_jobs`
runs the scheduler's jobs as of a given time for the test's own workspaces.
"""

from datetime import UTC, datetime
from decimal import Decimal

from tests.helpers import assert_ledger_matches, last_ledger_id, ledger_rows, run_jobs

U = 10_000
T0 = datetime(2025, 1, 31, 10, 0, tzinfo=UTC)


def iso(y, m, d, hh=10):
    return datetime(y, m, d, hh, tzinfo=UTC).isoformat()


def at(y, m, d, hh=10):
    return datetime(y, m, d, hh, tzinfo=UTC)


async def enrich(api, key, wb, provider, data_type, results):
    charge = await api.record_usage(
        key, wb, kind="ENRICHMENT", provider=provider, dataType=data_type, results=results
    )
    assert charge["__typename"] == "Charge", charge
    return charge


async def test_r14_renewals_at_the_anchor_clamped_late_and_never_twice(api, clock):
    t = await api.create_workspace("launch")
    # Processed three hours late: the period still starts at the anchor's time (R14).
    results = await run_jobs(at(2025, 2, 28, 13), t.id)
    assert results["renewals"].steps == {"CYCLE": 1}
    ws = await api.workspace(t.admin_key)
    assert ws["billingAnchor"] == iso(2025, 1, 31)
    assert ws["currentPeriod"] == {"start": iso(2025, 2, 28), "end": iso(2025, 3, 31)}
    assert ws["actions"]["resetsAt"] == iso(2025, 3, 31)
    # The same job again, and a second run at the same time: nothing more happens.
    again = await run_jobs(at(2025, 2, 28, 13), t.id)
    assert again["renewals"].renewals == 0 and again["trial-expiry"].renewals == 0
    # Catching up two months at once: one step per period, back on the 31st, then the 30th.
    late = await run_jobs(at(2025, 5, 1), t.id)
    assert late["renewals"].steps == {"CYCLE": 2}
    ws = await api.workspace(t.admin_key)
    assert ws["currentPeriod"] == {"start": iso(2025, 4, 30), "end": iso(2025, 5, 31)}
    await assert_ledger_matches(t.id)


async def test_r15_actions_reset_to_the_capacity_without_rollover(api, clock):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    await enrich(api, t.admin_key, wb, "linkedin", "profile", 1200)  # 1,200 Actions, 600 credits
    before = await last_ledger_id(t.id)
    await run_jobs(at(2025, 2, 28), t.id)
    ws = await api.workspace(t.admin_key)
    assert ws["actions"] == {
        "capacity": 15000,
        "used": 0,
        "remaining": 15000,
        "resetsAt": iso(2025, 3, 31),
    }
    assert await ledger_rows(t.id, before) == [
        ("EXPIRY", "ACTIONS", -13800, 0),
        ("GRANT", "ACTIONS", 15000, 15000),
        ("GRANT", "DATA_CREDITS", 2500 * U, 4400 * U),
    ]
    await assert_ledger_matches(t.id)


async def test_r15_annual_plans_renew_actions_monthly(api, clock):
    t = await api.create_workspace("enterprise")  # annual only: 600,000 credits for the year
    wb = await api.create_workbook(t.admin_key)
    await enrich(api, t.admin_key, wb, "clearbit", "company", 100)
    before = await last_ledger_id(t.id)
    results = await run_jobs(at(2025, 2, 28), t.id)
    assert results["renewals"].steps == {"ACTIONS": 1}
    ws = await api.workspace(t.admin_key)
    assert ws["actions"]["used"] == 0 and ws["actions"]["resetsAt"] == iso(2025, 3, 31)
    assert ws["currentPeriod"] == {"start": iso(2025, 1, 31), "end": iso(2026, 1, 31)}
    assert ws["dataCredits"]["balance"] == "599900"
    assert await ledger_rows(t.id, before) == [
        ("EXPIRY", "ACTIONS", -99900, 0),
        ("GRANT", "ACTIONS", 100000, 100000),
    ]


async def test_r16_monthly_rollover_capped_at_twice_the_grant(api, clock):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    await enrich(api, t.admin_key, wb, "hunter", "email", 1000)  # 500 credits
    await run_jobs(at(2025, 2, 28), t.id)  # 2,000 unused + 2,500 = 4,500
    assert (await api.workspace(t.admin_key))["dataCredits"] == {
        "balance": "4500",
        "cap": "5000",
        "monthlyGrant": "2500",
    }
    before = await last_ledger_id(t.id)
    await run_jobs(at(2025, 3, 31), t.id)  # 4,500 + 2,500 = 7,000, capped at 5,000
    assert (await api.workspace(t.admin_key))["dataCredits"]["balance"] == "5000"
    assert await ledger_rows(t.id, before) == [
        ("EXPIRY", "ACTIONS", -15000, 0),
        ("GRANT", "ACTIONS", 15000, 15000),
        ("GRANT", "DATA_CREDITS", 2500 * U, 7000 * U),
        ("ROLLOVER_CAP", "DATA_CREDITS", -2000 * U, 5000 * U),
    ]
    await assert_ledger_matches(t.id)


async def test_r17_annual_renewal_keeps_15_percent_at_the_same_tier(api, clock):
    t = await api.create_workspace("enterprise", creditTier=50000)
    wb = await api.create_workbook(t.admin_key)
    await enrich(api, t.admin_key, wb, "apollo", "phone", 20000)  # 100,000 credits
    assert (await api.workspace(t.admin_key))["dataCredits"] == {
        "balance": "500000",
        "cap": "1200000",
        "monthlyGrant": "50000",
    }
    results = await run_jobs(at(2026, 1, 31, 12), t.id)  # eleven months and the year's end
    assert results["renewals"].steps == {"ACTIONS": 11, "CYCLE": 1}
    ws = await api.workspace(t.admin_key)
    # R17's example: 500,000 unused on a same-tier renewal of 600,000 -> 675,000
    assert ws["dataCredits"]["balance"] == "675000"
    assert ws["currentPeriod"] == {"start": iso(2026, 1, 31), "end": iso(2027, 1, 31)}
    charges = await api.billing(t.admin_key)
    assert [(c["kind"], c["amount"], c["periodStart"]) for c in charges] == [
        ("PLAN_FEE", "48000.00", iso(2026, 1, 31))
    ]
    await assert_ledger_matches(t.id)


async def test_r17_r29_annual_renewal_at_a_lower_tier_keeps_nothing(api, clock):
    t = await api.create_workspace("enterprise", creditTier=100000)  # 1,200,000 a year
    wb = await api.create_workbook(t.admin_key)
    await enrich(api, t.admin_key, wb, "apollo", "phone", 20000)  # 100,000 credits
    changed = await api.change_plan(t.admin_key, "enterprise", creditTier=50000)
    assert changed["status"] == "ACTIVE"
    assert changed["pendingChange"] == {
        "plan": {"code": "enterprise"},
        "creditTier": 50000,
        "billingInterval": "ANNUAL",
        "effectiveAt": iso(2026, 1, 31),
    }
    before = await last_ledger_id(t.id)
    await run_jobs(at(2026, 1, 31), t.id)
    ws = await api.workspace(t.admin_key)
    assert (ws["creditTier"], ws["pendingChange"]) == (50000, None)
    assert ws["dataCredits"]["balance"] == "600000"
    credit_rows = [r for r in await ledger_rows(t.id, before) if r[1] == "DATA_CREDITS"]
    assert credit_rows == [
        ("EXPIRY", "DATA_CREDITS", -1_100_000 * U, 0),
        ("GRANT", "DATA_CREDITS", 600_000 * U, 600_000 * U),
    ]


async def test_r17_rollover_rounds_down_to_the_unit(api, clock):
    t = await api.create_workspace("launch", billingInterval="ANNUAL")  # 30,000 a year
    wb = await api.create_workbook(t.admin_key)
    await api.record_usage(
        t.admin_key, wb, kind="AI", model="small", inputTokens=1, outputTokens=0, results=1
    )  # 0.00005 rounds up to 0.0001 (R1): 29,999.9999 left
    await run_jobs(at(2026, 1, 31), t.id)
    # 15% of 29,999.9999 = 4,499.999985 -> 4,499.9999 (R32), + 30,000
    assert (await api.workspace(t.admin_key))["dataCredits"]["balance"] == "34499.9999"


async def test_r18_trial_ends_on_free_with_100_carried(api, clock):
    t = await api.create_workspace("growth", trial=True)
    wb = await api.create_workbook(t.admin_key)
    await enrich(api, t.admin_key, wb, "clearbit", "company", 200)  # 800 left
    assert (await run_jobs(at(2025, 2, 14, 9), t.id))["trial-expiry"].renewals == 0
    before = await last_ledger_id(t.id)
    results = await run_jobs(at(2025, 2, 14, 10), t.id)
    assert results["trial-expiry"].steps == {"TRIAL_END": 1}
    ws = await api.workspace(t.admin_key)
    assert (ws["plan"]["code"], ws["status"], ws["creditTier"]) == ("free", "ACTIVE", 100)
    assert ws["billingAnchor"] == iso(2025, 2, 14)  # the subscription starts at the trial's end
    assert ws["trialEndsAt"] == iso(2025, 2, 14)
    assert ws["currentPeriod"] == {"start": iso(2025, 2, 14), "end": iso(2025, 3, 14)}
    assert ws["actions"]["capacity"] == 500
    # R18's example: a trial left with 800 becomes free with 100 + 100 = 200
    assert ws["dataCredits"] == {"balance": "200", "cap": "200", "monthlyGrant": "100"}
    assert await ledger_rows(t.id, before) == [
        ("EXPIRY", "ACTIONS", -39800, 0),
        ("EXPIRY", "DATA_CREDITS", -700 * U, 100 * U),
        ("GRANT", "ACTIONS", 500, 500),
        ("GRANT", "DATA_CREDITS", 100 * U, 200 * U),
    ]
    # A free month: credits expire except 100, then the new 100 (R18 = R16's cap of 200).
    before = await last_ledger_id(t.id)
    await run_jobs(at(2025, 3, 14), t.id)
    assert (await api.workspace(t.admin_key))["dataCredits"]["balance"] == "200"
    assert [r for r in await ledger_rows(t.id, before) if r[1] == "DATA_CREDITS"] == [
        ("GRANT", "DATA_CREDITS", 100 * U, 300 * U),
        ("ROLLOVER_CAP", "DATA_CREDITS", -100 * U, 200 * U),
    ]
    assert await api.billing(t.admin_key, start=iso(2025, 1, 1), end=iso(2026, 1, 1)) == []
    await assert_ledger_matches(t.id)


async def test_r18_r28_a_plan_chosen_in_the_trial_starts_at_its_end(api, clock):
    t = await api.create_workspace("growth", trial=True)
    chosen = await api.change_plan(t.admin_key, "launch", creditTier=5000)
    assert chosen["status"] == "TRIALING" and chosen["plan"]["code"] == "growth"
    assert chosen["pendingChange"] == {
        "plan": {"code": "launch"},
        "creditTier": 5000,
        "billingInterval": "MONTHLY",
        "effectiveAt": iso(2025, 2, 14),
    }
    await run_jobs(at(2025, 2, 14, 10), t.id)
    ws = await api.workspace(t.admin_key)
    assert (ws["plan"]["code"], ws["creditTier"], ws["status"]) == ("launch", 5000, "ACTIVE")
    assert ws["dataCredits"]["balance"] == "5100"  # 100 carried + 5,000
    assert ws["actions"] == {
        "capacity": 15000,
        "used": 0,
        "remaining": 15000,
        "resetsAt": iso(2025, 3, 14),
    }
    charges = await api.billing(t.admin_key)
    assert [(c["kind"], c["amount"], c["credits"]) for c in charges] == [
        ("PLAN_FEE", "285.00", "5000")  # 85 + 5,000 x 0.04
    ]
    await assert_ledger_matches(t.id)


async def test_r18_cancel_during_a_trial_withdraws_the_chosen_plan(api, clock):
    t = await api.create_workspace("growth", trial=True)
    await api.change_plan(t.admin_key, "launch")
    canceled = await api.cancel(t.admin_key)
    assert (canceled["status"], canceled["pendingChange"]) == ("TRIALING", None)
    await run_jobs(at(2025, 2, 15), t.id)
    assert (await api.workspace(t.admin_key))["plan"]["code"] == "free"


async def test_r14_the_job_runs_as_the_cli_reports_it(api, clock):
    t = await api.create_workspace("launch")
    u = await api.create_workspace("growth", trial=True)
    results = await run_jobs(at(2025, 3, 1), t.id, u.id)
    assert results["trial-expiry"].workspaces == 1
    assert results["trial-expiry"].steps == {"TRIAL_END": 1}
    assert results["renewals"].workspaces == 1 and results["renewals"].steps == {"CYCLE": 1}
    assert Decimal((await api.workspace(u.admin_key))["dataCredits"]["balance"]) == 200
