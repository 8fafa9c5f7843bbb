"""createWorkspace: any plan, tier, interval or trial, with its first cycle (R14, R17, R30, R31)."""

from datetime import datetime, timedelta

import pytest

from app.plans.cycles import add_months
from tests.helpers import assert_ledger_matches


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def test_r14_workspace_anchored_at_creation_with_first_monthly_cycle(api):
    tenant = await api.create_workspace("launch", creditTier=5000)
    ws = tenant.workspace
    anchor = ts(ws["billingAnchor"])
    assert ts(ws["currentPeriod"]["start"]) == anchor
    assert ts(ws["currentPeriod"]["end"]) == add_months(anchor, 1)
    assert ts(ws["actions"]["resetsAt"]) == add_months(anchor, 1)
    assert ws["plan"]["code"] == "launch"
    assert (ws["creditTier"], ws["billingInterval"], ws["status"]) == (5000, "MONTHLY", "ACTIVE")
    assert ws["actions"] == {
        "capacity": 15000,
        "used": 0,
        "remaining": 15000,
        "resetsAt": ws["actions"]["resetsAt"],
    }
    assert ws["dataCredits"] == {"balance": "5000", "cap": "10000", "monthlyGrant": "5000"}
    assert ws["pendingChange"] is None and ws["trialEndsAt"] is None


async def test_r17_annual_plan_gets_the_years_credits_up_front(api):
    tenant = await api.create_workspace("enterprise")
    ws = tenant.workspace
    anchor = ts(ws["billingAnchor"])
    assert ws["billingInterval"] == "ANNUAL"  # R30: enterprise is annual only
    assert ws["dataCredits"] == {"balance": "600000", "cap": "1200000", "monthlyGrant": "50000"}
    assert ts(ws["currentPeriod"]["end"]) == add_months(anchor, 12)
    assert ts(ws["actions"]["resetsAt"]) == add_months(anchor, 1)  # Actions still monthly
    assert ws["actions"]["capacity"] == 100000


async def test_r17_launch_annual(api):
    ws = (await api.create_workspace("launch", billingInterval="ANNUAL")).workspace
    assert ws["dataCredits"] == {"balance": "30000", "cap": "60000", "monthlyGrant": "2500"}


async def test_r18_free_workspace(api):
    ws = (await api.create_workspace("free")).workspace
    assert ws["actions"]["capacity"] == 500
    assert ws["dataCredits"] == {"balance": "100", "cap": "200", "monthlyGrant": "100"}


async def test_r31_trial_of_growth_for_14_days_with_1000_credits(api):
    ws = (await api.create_workspace("growth", trial=True)).workspace
    anchor = ts(ws["billingAnchor"])
    assert ws["status"] == "TRIALING"
    assert ws["plan"]["code"] == "growth"
    assert ws["creditTier"] is None
    assert ts(ws["trialEndsAt"]) == anchor + timedelta(days=14)
    assert ws["currentPeriod"] == {"start": ws["billingAnchor"], "end": ws["trialEndsAt"]}
    assert ws["actions"]["capacity"] == 40000
    assert ws["actions"]["resetsAt"] == ws["trialEndsAt"]
    assert ws["dataCredits"]["balance"] == "1000"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"plan": "platinum"}, "unknown plan 'platinum'"),
        ({"plan": "launch", "creditTier": 3000}, "no credit tier 3000"),
        ({"plan": "enterprise", "billingInterval": "MONTHLY"}, "not offered MONTHLY"),
        ({"plan": "free", "trial": True}, "a trial is of a paid plan"),
        ({"plan": "growth", "trial": True, "creditTier": 6000}, "a trial has no credit tier"),
        ({"plan": "launch", "name": "   "}, "name must not be empty"),
    ],
)
async def test_r30_invalid_subscriptions_are_refused(api, fields, message):
    body = await api.raw(
        "mutation($i: CreateWorkspaceInput!) { createWorkspace(input: $i) { adminKey } }",
        {"i": {"name": "Acme", **fields}},
        key=api.operator_key,
    )
    assert body["errors"][0]["extensions"]["code"] == "INVALID_INPUT"
    assert message in body["errors"][0]["message"]


async def test_r24_creation_grants_are_ledger_entries(api):
    tenant = await api.create_workspace("growth", creditTier=12000)
    entries = await api.ledger(tenant.admin_key)
    grants = sorted((e["entryType"], e["meter"], e["amount"], e["balanceAfter"]) for e in entries)
    assert grants == [
        ("GRANT", "ACTIONS", "40000", "40000"),
        ("GRANT", "DATA_CREDITS", "12000", "12000"),
    ]
    await assert_ledger_matches(tenant.id)


async def test_plans_and_price_catalog_queries(api):
    tenant = await api.create_workspace("free")
    data = await api.gql(
        """{ plans { code rank monthlyActions creditTiers intervals features monthlyBaseFee }
             priceCatalog { provider dataType kind credits }
             aiModels { code inputCreditsPer1k outputCreditsPer1k } }""",
        key=tenant.admin_key,
    )
    plans = {p["code"]: p for p in data["plans"]}
    assert [p["code"] for p in data["plans"]] == ["free", "launch", "growth", "enterprise"]
    assert plans["growth"] == {
        "code": "growth",
        "rank": 2,
        "monthlyActions": 40000,
        "creditTiers": [6000, 12000, 50000],
        "intervals": ["MONTHLY", "ANNUAL"],
        "features": [],
        "monthlyBaseFee": "255.00",
    }
    assert plans["enterprise"]["features"] == ["WORKBOOK_SPEND_LIMITS"]
    assert {(p["provider"], p["dataType"]): p["credits"] for p in data["priceCatalog"]} == {
        ("apollo", "phone"): "5",
        ("clearbit", "company"): "1",
        ("hunter", "email"): "0.5",
        ("linkedin", "profile"): "0.5",
        ("zerobounce", "email_validation"): "0",
    }
    assert data["aiModels"] == [
        {"code": "large", "inputCreditsPer1k": "0.5", "outputCreditsPer1k": "2"},
        {"code": "small", "inputCreditsPer1k": "0.05", "outputCreditsPer1k": "0.2"},
    ]
