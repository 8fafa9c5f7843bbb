"""Workbook spend limits, Enterprise only (R11, R25)."""

from decimal import Decimal

from tests.helpers import adjust_credits


async def enterprise(api):
    t = await api.create_workspace("enterprise")
    return t, await api.create_workbook(t.admin_key, "Outbound")


async def linkedin(api, key, wb, results):
    return await api.record_usage(
        key, wb, kind="ENRICHMENT", provider="linkedin", dataType="profile", results=results
    )


async def workbook(api, key, wb):
    return (
        await api.gql(
            "query($id: ID!) { workbook(id: $id) { spendLimit spent } }", {"id": wb}, key=key
        )
    )["workbook"]


async def test_r11_limit_counts_spend_and_refuses_once_reached(api):
    t, wb = await enterprise(api)
    other = await api.create_workbook(t.admin_key, "Other")
    assert await api.set_limit(t.admin_key, wb, "10") == {
        "__typename": "Workbook",
        "id": wb,
        "spendLimit": "10",
        "spent": "0",
    }
    await linkedin(api, t.admin_key, wb, 10)  # 5 credits
    await linkedin(api, t.admin_key, wb, 10)  # 10 credits: the limit
    assert await workbook(api, t.admin_key, wb) == {"spendLimit": "10", "spent": "10"}
    # Once reached, every billable operation is refused, even one costing no credits.
    refused = await api.record_usage(t.admin_key, wb, kind="CRM_EXPORT", results=1)
    assert refused["code"] == "WORKBOOK_SPEND_LIMIT_REACHED"
    assert "has spent 10 of its 10 Data Credit limit" in refused["message"]
    free = await api.record_usage(t.admin_key, wb, kind="CSV_EXPORT", results=1)
    assert free["__typename"] == "Charge"
    assert (await linkedin(api, t.admin_key, other, 2))["__typename"] == "Charge"
    assert await api.meters(t.admin_key) == (22, Decimal("600000") - Decimal("11"))


async def test_r11_charge_that_would_pass_the_limit_is_refused_whole(api):
    t, wb = await enterprise(api)
    await api.set_limit(t.admin_key, wb, "10")
    await linkedin(api, t.admin_key, wb, 16)  # 8
    refused = await linkedin(api, t.admin_key, wb, 6)  # 3 more would make 11
    assert refused["code"] == "WORKBOOK_SPEND_LIMIT_REACHED"
    assert await api.meters(t.admin_key) == (16, Decimal("599992"))
    assert (await linkedin(api, t.admin_key, wb, 4))["dataCredits"] == "2"
    assert await workbook(api, t.admin_key, wb) == {"spendLimit": "10", "spent": "10"}


async def test_r11_spent_counts_from_the_moment_the_limit_was_set(api):
    t, wb = await enterprise(api)
    await linkedin(api, t.admin_key, wb, 10)
    await api.set_limit(t.admin_key, wb, "100")
    assert await workbook(api, t.admin_key, wb) == {"spendLimit": "100", "spent": "0"}
    await linkedin(api, t.admin_key, wb, 2)
    assert await workbook(api, t.admin_key, wb) == {"spendLimit": "100", "spent": "1"}


async def test_r11_limit_may_be_set_below_spent_raised_and_removed(api):
    t, wb = await enterprise(api)
    await api.set_limit(t.admin_key, wb, "10")
    await linkedin(api, t.admin_key, wb, 16)  # spent 8
    assert (await api.set_limit(t.admin_key, wb, "5"))["spendLimit"] == "5"
    assert await workbook(api, t.admin_key, wb) == {"spendLimit": "5", "spent": "8"}
    assert (await linkedin(api, t.admin_key, wb, 1))["code"] == "WORKBOOK_SPEND_LIMIT_REACHED"
    await api.set_limit(t.admin_key, wb, "20")  # raising keeps what was spent
    assert await workbook(api, t.admin_key, wb) == {"spendLimit": "20", "spent": "8"}
    assert (await linkedin(api, t.admin_key, wb, 1))["__typename"] == "Charge"
    removed = await api.set_limit(t.admin_key, wb, None)
    assert removed == {"__typename": "Workbook", "id": wb, "spendLimit": None, "spent": "0"}
    assert (await linkedin(api, t.admin_key, wb, 100))["__typename"] == "Charge"


async def test_r11_refunds_lower_spent(api):
    t, wb = await enterprise(api)
    await api.set_limit(t.admin_key, wb, "10")
    charge = await linkedin(api, t.admin_key, wb, 20)  # 10
    await api.refund(t.admin_key, charge["id"], results=4)  # 2 back
    assert await workbook(api, t.admin_key, wb) == {"spendLimit": "10", "spent": "8"}
    assert (await linkedin(api, t.admin_key, wb, 4))["__typename"] == "Charge"


async def test_r11_refund_of_a_charge_before_the_limit_does_not_lower_spent(api):
    t, wb = await enterprise(api)
    early = await linkedin(api, t.admin_key, wb, 20)
    await api.set_limit(t.admin_key, wb, "10")
    await linkedin(api, t.admin_key, wb, 8)  # spent 4
    await api.refund(t.admin_key, early["id"])
    assert await workbook(api, t.admin_key, wb) == {"spendLimit": "10", "spent": "4"}


async def test_r11_other_plans_get_plan_feature_unavailable(api):
    for plan in ("free", "launch", "growth"):
        t = await api.create_workspace(plan)
        wb = await api.create_workbook(t.admin_key)
        refused = await api.set_limit(t.admin_key, wb, "10")
        assert refused["__typename"] == "Refusal"
        assert refused["code"] == "PLAN_FEATURE_UNAVAILABLE"
        assert await workbook(api, t.admin_key, wb) == {"spendLimit": None, "spent": "0"}
        # Removing (there is nothing to remove) is allowed on any plan.
        assert (await api.set_limit(t.admin_key, wb, None))["__typename"] == "Workbook"


async def test_r11_trial_of_growth_has_no_spend_limits(api):
    t = await api.create_workspace("growth", trial=True)
    wb = await api.create_workbook(t.admin_key)
    assert (await api.set_limit(t.admin_key, wb, "10"))["code"] == "PLAN_FEATURE_UNAVAILABLE"


async def test_r11_limit_amounts_are_validated(api):
    t, wb = await enterprise(api)
    for limit, message in [("-1", "must not be negative"), ("1.00001", "more than 4 decimal")]:
        body = await api.raw(
            "mutation($w: ID!, $l: Decimal) { setWorkbookSpendLimit(workbookId: $w, limit: $l)"
            " { __typename } }",
            {"w": wb, "l": limit},
            key=t.admin_key,
        )
        assert body["errors"][0]["extensions"]["code"] == "INVALID_INPUT"
        assert message in body["errors"][0]["message"]
    body = await api.raw(
        "mutation($w: ID!, $l: Decimal) { setWorkbookSpendLimit(workbookId: $w, limit: $l)"
        " { __typename } }",
        {"w": wb, "l": 10.5},
        key=t.admin_key,
    )
    assert body["errors"][0]["extensions"]["code"] == "INVALID_INPUT"
    assert "not JSON numbers" in body["errors"][0]["message"]
    assert await workbook(api, t.admin_key, wb) == {"spendLimit": None, "spent": "0"}


async def test_r11_zero_limit_blocks_all_billable_work(api):
    t, wb = await enterprise(api)
    await api.set_limit(t.admin_key, wb, "0")
    assert (await api.record_usage(t.admin_key, wb, kind="HTTP_API_CALL", results=1))["code"] == (
        "WORKBOOK_SPEND_LIMIT_REACHED"
    )


async def test_r25_credits_refusal_comes_before_the_workbook_limit(api):
    t, wb = await enterprise(api)
    await api.set_limit(t.admin_key, wb, "0")
    await adjust_credits(t.id, -600000 * 10_000)
    refused = await linkedin(api, t.admin_key, wb, 1)
    assert refused["code"] == "INSUFFICIENT_DATA_CREDITS"


async def test_r25_actions_refusal_comes_before_the_workbook_limit(api):
    t, wb = await enterprise(api)
    other = await api.create_workbook(t.admin_key)
    await api.record_usage(t.admin_key, other, kind="CRM_EXPORT", results=100000)
    await api.set_limit(t.admin_key, wb, "0")
    await adjust_credits(t.id, -600000 * 10_000)
    refused = await linkedin(api, t.admin_key, wb, 1)
    assert refused["code"] == "ACTIONS_EXHAUSTED"
    assert await api.meters(t.admin_key) == (100000, Decimal("0"))
