"""R37: auto top-up buys, in the transaction of the change, when `available` falls below the
threshold; priced and capped as R19, at most maxPerCycle a cycle; a charge short of credits
buys first when the top-up makes it fit, and nothing is bought when it does not."""

from datetime import UTC, datetime

from tests.helpers import assert_ledger_matches, last_ledger_id, ledger_rows, run_jobs

PHONE = {"kind": "ENRICHMENT", "provider": "apollo", "dataType": "phone"}  # 5 credits each
SET = """mutation($i: AutoTopUpInput) { setAutoTopUp(input: $i) { __typename
  ... on AutoTopUp { enabled threshold credits maxPerCycle usedThisCycle }
  ... on Refusal { code message } } }"""
U = 10_000


async def turn_on(api, key, threshold, credits, per_cycle=3):
    data = await api.gql(
        SET,
        {"i": {"threshold": threshold, "credits": credits, "maxPerCycle": per_cycle}},
        key=key,
    )
    return data["setAutoTopUp"]


async def auto_top_ups(api, key):
    data = await api.gql(
        '{ events(first: 50, types: ["topup.purchased"]) { edges { node { data } } } }', key=key
    )
    return [(e["node"]["data"]["credits"], e["node"]["data"]["price"], e["node"]["data"]["auto"])
            for e in reversed(data["events"]["edges"])]  # fmt: skip


async def test_r37_a_charge_that_leaves_available_below_the_threshold_buys(api):
    t = await api.create_workspace("launch")  # 2,500 credits, cap 5,000
    wb = await api.create_workbook(t.admin_key)
    on = await turn_on(api, t.admin_key, "500", "1000", per_cycle=2)
    assert on == {"__typename": "AutoTopUp", "enabled": True, "threshold": "500",
                  "credits": "1000", "maxPerCycle": 2, "usedThisCycle": 0}  # fmt: skip
    since = await last_ledger_id(t.id)
    charged = await api.record_usage(t.admin_key, wb, results=420, **PHONE)  # 2,100: 400 left
    assert charged["dataCredits"] == "2100"
    assert await ledger_rows(t.id, since) == [
        ("CHARGE", "ACTIONS", -420, 14_580),
        ("CHARGE", "DATA_CREDITS", -2_100 * U, 400 * U),
        ("TOP_UP", "DATA_CREDITS", 1_000 * U, 1_400 * U),
    ]
    assert await auto_top_ups(api, t.admin_key) == [("1000", "52.00", True)]
    billed = [b for b in await api.billing(t.admin_key) if b["kind"] == "TOP_UP"]
    assert [(b["amount"], b["credits"]) for b in billed] == [("52.00", "1000")]
    # Short of credits (1,400 for 2,000): the top-up makes it fit, so it is bought first.
    since = await last_ledger_id(t.id)
    fits = await api.record_usage(t.admin_key, wb, results=400, **PHONE)
    assert fits["dataCredits"] == "2000"
    assert await ledger_rows(t.id, since) == [
        ("TOP_UP", "DATA_CREDITS", 1_000 * U, 2_400 * U),
        ("CHARGE", "ACTIONS", -400, 14_180),
        ("CHARGE", "DATA_CREDITS", -2_000 * U, 400 * U),
    ]  # 400 left, below 500 again, but both purchases of the cycle are spent
    state = (await api.gql("{ autoTopUp { usedThisCycle } }", key=t.admin_key))["autoTopUp"]
    assert state == {"usedThisCycle": 2}
    await assert_ledger_matches(t.id)


async def test_r37_nothing_is_bought_when_the_top_up_would_not_make_it_fit(api):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    await turn_on(api, t.admin_key, "100", "500")
    await api.record_usage(t.admin_key, wb, results=380, **PHONE)  # 600 left: above 100
    since = await last_ledger_id(t.id)
    refused = await api.record_usage(t.admin_key, wb, results=300, **PHONE)  # 1,500 > 1,100
    assert refused["code"] == "INSUFFICIENT_DATA_CREDITS"
    assert await ledger_rows(t.id, since) == []
    assert await auto_top_ups(api, t.admin_key) == []
    # A workbook limit the charge would pass: the top-up would not make it fit either.
    e = await api.create_workspace("enterprise")
    ewb = await api.create_workbook(e.admin_key)
    await api.set_limit(e.admin_key, ewb, "10")
    await turn_on(api, e.admin_key, "10", "1000")
    refused = await api.record_usage(e.admin_key, ewb, results=3, **PHONE)
    assert refused["code"] == "WORKBOOK_SPEND_LIMIT_REACHED"
    assert await auto_top_ups(api, e.admin_key) == []


async def test_r37_a_purchase_is_reduced_to_fit_under_the_cap(api):
    t = await api.create_workspace("launch")  # cap 5,000
    await api.top_up(t.admin_key, "2450")  # 4,950
    wb = await api.create_workbook(t.admin_key)
    await turn_on(api, t.admin_key, "4950", "1000")
    since = await last_ledger_id(t.id)
    await api.record_usage(t.admin_key, wb, results=1, **PHONE)  # 4,945: below 4,950
    assert await ledger_rows(t.id, since) == [
        ("CHARGE", "ACTIONS", -1, 14_999),
        ("CHARGE", "DATA_CREDITS", -5 * U, 4_945 * U),
        ("TOP_UP", "DATA_CREDITS", 55 * U, 5_000 * U),  # reduced to the cap's room
    ]
    assert (await auto_top_ups(api, t.admin_key))[-1] == ("55", "2.86", True)


async def test_r37_paid_plans_only_and_off_with_null(api):
    for plan, fields in (("free", {}), ("growth", {"trial": True})):
        w = await api.create_workspace(plan, **fields)
        refused = await turn_on(api, w.admin_key, "10", "100")
        assert refused["code"] == "PLAN_FEATURE_UNAVAILABLE"
    t = await api.create_workspace("launch")
    await turn_on(api, t.admin_key, "10", "100")
    off = (await api.gql(SET, {"i": None}, key=t.admin_key))["setAutoTopUp"]
    assert off["enabled"] is False
    assert (await api.gql("{ autoTopUp { enabled } }", key=t.admin_key))["autoTopUp"] is None
    for fields in ({"threshold": "10", "credits": "0"}, {"threshold": "10", "credits": "1",
                                                         "maxPerCycle": 0}):  # fmt: skip
        code = await api.error_code(SET, {"i": fields}, key=t.admin_key)
        assert code == "INVALID_INPUT"


async def test_r37_purchases_count_per_cycle_and_reset_at_renewal(api, clock):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    await turn_on(api, t.admin_key, "2400", "10", per_cycle=1)
    await api.record_usage(t.admin_key, wb, results=21, **PHONE)  # 2,395: buys 10
    await api.record_usage(t.admin_key, wb, results=2, **PHONE)  # 2,395: none left this cycle
    assert len(await auto_top_ups(api, t.admin_key)) == 1
    await run_jobs(datetime(2025, 3, 1, tzinfo=UTC), t.id)
    used = await api.gql("{ autoTopUp { usedThisCycle } }", key=t.admin_key)
    assert used["autoTopUp"]["usedThisCycle"] == 0
