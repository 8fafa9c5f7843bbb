"""R22, R26: refunds return Data Credits, linked to the charge, each result at most once."""

from decimal import Decimal

import pytest

from app.db import connection, fetch


async def setup(api, plan="launch"):
    t = await api.create_workspace(plan)
    wb = await api.create_workbook(t.admin_key)
    charge = await api.record_usage(
        t.admin_key, wb, kind="ENRICHMENT", provider="linkedin", dataType="profile", results=100
    )  # 50 credits
    return t, wb, charge


async def test_r22_whole_refund_returns_the_credits_not_the_actions(api):
    t, wb, charge = await setup(api)
    refund = await api.refund(t.admin_key, charge["id"], reason="invalid profiles")
    assert refund == {
        "__typename": "Refund",
        "id": refund["id"],
        "chargeId": charge["id"],
        "results": 100,
        "dataCredits": "50",
        "reason": "invalid profiles",
    }
    assert await api.meters(t.admin_key) == (100, Decimal("2500"))
    latest = (await api.ledger(t.admin_key))[0]
    assert (latest["entryType"], latest["meter"], latest["amount"], latest["balanceAfter"]) == (
        "REFUND",
        "DATA_CREDITS",
        "50",
        "2500",
    )
    assert (latest["chargeId"], latest["refundId"], latest["workbookId"]) == (
        charge["id"],
        refund["id"],
        wb,
    )


async def test_r22_per_result_refunds_then_already_refunded(api):
    t, _, charge = await setup(api)
    assert (await api.refund(t.admin_key, charge["id"], results=10))["dataCredits"] == "5"
    too_many = await api.refund(t.admin_key, charge["id"], results=91)
    assert too_many["code"] == "ALREADY_REFUNDED"
    assert (
        "90 of the charge's 100 results remain unrefunded; 91 were asked for" in too_many["message"]
    )
    assert (await api.refund(t.admin_key, charge["id"], results=90))["dataCredits"] == "45"
    again = await api.refund(t.admin_key, charge["id"], results=1)
    assert again["code"] == "ALREADY_REFUNDED"
    data = await api.gql(
        "query($id: ID!) { charge(id: $id) { refundedResults refundedDataCredits } }",
        {"id": charge["id"]},
        key=t.admin_key,
    )
    assert data["charge"] == {"refundedResults": 100, "refundedDataCredits": "50"}
    assert await api.meters(t.admin_key) == (100, Decimal("2500"))


async def test_r26_refund_all_refunds_what_remains_then_is_refused(api):
    t, _, charge = await setup(api)
    await api.refund(t.admin_key, charge["id"], results=30)
    rest = await api.refund(t.admin_key, charge["id"])
    assert (rest["results"], rest["dataCredits"]) == (70, "35")
    refused = await api.refund(t.admin_key, charge["id"])
    assert refused["code"] == "ALREADY_REFUNDED"
    assert "0 of the charge's 100 results remain unrefunded" in refused["message"]


async def test_r22_ai_charge_refunded_one_result_at_a_time_sums_exactly(api):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    charge = await api.record_usage(
        t.admin_key, wb, kind="AI", model="large", results=3, inputTokens=333, outputTokens=777
    )
    assert charge["dataCredits"] == "1.7205"
    shares = [
        (await api.refund(t.admin_key, charge["id"], results=1))["dataCredits"] for _ in range(3)
    ]
    assert shares == ["0.5735", "0.5735", "0.5735"]
    assert await api.meters(t.admin_key) == (3, Decimal("2500"))


async def test_r22_refund_of_a_zero_credit_charge_moves_no_balance(api):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    charge = await api.record_usage(
        t.admin_key,
        wb,
        kind="ENRICHMENT",
        provider="hunter",
        dataType="email",
        results=5,
        ownApiKey=True,
    )
    before = await api.ledger(t.admin_key)
    refund = await api.refund(t.admin_key, charge["id"])
    assert (refund["results"], refund["dataCredits"]) == (5, "0")
    assert await api.ledger(t.admin_key) == before


async def test_r22_operator_may_refund_any_charge_member_may_not(api):
    t, _, charge = await setup(api)
    member = (
        await api.gql(
            'mutation { createApiKey(name: "m", role: MEMBER) { secret } }', key=t.admin_key
        )
    )["createApiKey"]["secret"]
    code = await api.error_code(
        "mutation($i: RefundInput!) { refundCharge(input: $i) { __typename } }",
        {"i": {"chargeId": charge["id"], "idempotencyKey": "m"}},
        key=member,
    )
    assert code == "FORBIDDEN"
    refund = await api.refund(api.operator_key, charge["id"], results=2)
    assert refund["dataCredits"] == "1"
    assert await api.meters(t.admin_key) == (100, Decimal("2451"))


@pytest.mark.parametrize("results", [0, -1])
async def test_r22_refund_counts_must_be_positive(api, results):
    t, _, charge = await setup(api)
    code = await api.error_code(
        "mutation($i: RefundInput!) { refundCharge(input: $i) { __typename } }",
        {"i": {"chargeId": charge["id"], "results": results, "idempotencyKey": "z"}},
        key=t.admin_key,
    )
    assert code == "INVALID_INPUT"


async def test_r22_refunds_are_recorded(api):
    t, _, charge = await setup(api)
    await api.refund(t.admin_key, charge["id"], results=10, reason="bounced")
    rows = await fetch(
        connection(),
        "SELECT results, credits, reason FROM refund WHERE charge_id = $1",
        charge["id"],
    )
    assert [dict(r) for r in rows] == [{"results": 10, "credits": 50_000, "reason": "bounced"}]
