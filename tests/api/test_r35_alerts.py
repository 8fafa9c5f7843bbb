"""R35: alerts on Data Credits (an amount) and Actions (a percent of capacity) fire once per
crossing and re-arm when the meter is back on the safe side."""

import asyncio

from tests.helpers import new_key

PHONE = {"kind": "ENRICHMENT", "provider": "apollo", "dataType": "phone"}  # 5 credits each
SET = """mutation($m: Meter!, $t: Decimal!) { setAlert(input: {meter: $m, threshold: $t}) {
  id meter threshold armed lastFiredAt } }"""
CROSSED = """{ events(first: 100, types: ["credits.threshold_crossed", "actions.threshold_crossed"])
  { edges { node { type data } } } }"""


async def set_alert(api, key, meter, threshold):
    return (await api.gql(SET, {"m": meter, "t": threshold}, key=key))["setAlert"]


async def crossings(api, key):
    edges = (await api.gql(CROSSED, key=key))["events"]["edges"]
    return [
        (e["node"]["type"], {k: v for k, v in e["node"]["data"].items() if k != "workspaceId"})
        for e in reversed(edges)  # oldest first
    ]


async def alerts(api, key):
    data = await api.gql("{ alerts { id meter threshold armed lastFiredAt } }", key=key)
    return data["alerts"]


async def test_r35_a_credits_alert_fires_once_per_crossing(api):
    t = await api.create_workspace("launch")  # 2,500 credits
    wb = await api.create_workbook(t.admin_key)
    alert = await set_alert(api, t.admin_key, "DATA_CREDITS", "1000")
    assert (alert["threshold"], alert["armed"], alert["lastFiredAt"]) == ("1000", True, None)
    await api.record_usage(t.admin_key, wb, results=300, **PHONE)  # 1,000 left: not below
    assert await crossings(api, t.admin_key) == []
    await api.record_usage(t.admin_key, wb, results=20, **PHONE)  # 900
    await api.record_usage(t.admin_key, wb, results=20, **PHONE)  # 800: still the same crossing
    fired = {"alertId": alert["id"], "threshold": "1000", "available": "900"}
    assert await crossings(api, t.admin_key) == [("credits.threshold_crossed", fired)]
    [now] = await alerts(api, t.admin_key)
    assert (now["armed"], now["lastFiredAt"] is not None) == (False, True)
    await api.top_up(t.admin_key, "150")  # 950: still below, not re-armed
    assert (await alerts(api, t.admin_key))[0]["armed"] is False
    await api.top_up(t.admin_key, "50")  # 1,000: back on the safe side
    assert (await alerts(api, t.admin_key))[0]["armed"] is True
    await api.record_usage(t.admin_key, wb, results=1, **PHONE)  # 995
    assert await crossings(api, t.admin_key) == [
        ("credits.threshold_crossed", fired),
        ("credits.threshold_crossed", fired | {"available": "995"}),
    ]


async def test_r35_an_actions_alert_fires_at_its_percent_of_capacity(api):
    t = await api.create_workspace("launch")  # 15,000 Actions
    wb = await api.create_workbook(t.admin_key)
    alert = await set_alert(api, t.admin_key, "ACTIONS", "50")
    await api.record_usage(t.admin_key, wb, kind="CRM_EXPORT", results=7_499)
    assert await crossings(api, t.admin_key) == []
    await api.record_usage(t.admin_key, wb, kind="CRM_EXPORT", results=1)
    await api.record_usage(t.admin_key, wb, kind="CRM_EXPORT", results=1)
    assert await crossings(api, t.admin_key) == [
        (
            "actions.threshold_crossed",
            {"alertId": alert["id"], "threshold": "50", "used": 7_500, "capacity": 15_000},
        )
    ]


async def test_r35_an_alert_set_already_crossed_does_not_fire(api):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    await api.record_usage(t.admin_key, wb, results=400, **PHONE)  # 500 left
    alert = await set_alert(api, t.admin_key, "DATA_CREDITS", "1000")
    assert alert["armed"] is False
    await api.record_usage(t.admin_key, wb, results=1, **PHONE)
    assert await crossings(api, t.admin_key) == []


async def test_r35_the_same_alert_twice_is_one_and_bad_ones_are_refused(api):
    t = await api.create_workspace("launch")
    first = await set_alert(api, t.admin_key, "DATA_CREDITS", "100.5")
    again = await set_alert(api, t.admin_key, "DATA_CREDITS", "100.50")
    assert again["id"] == first["id"] and len(await alerts(api, t.admin_key)) == 1
    for meter, threshold in (("ACTIONS", "0"), ("ACTIONS", "101"), ("ACTIONS", "50.5"),
                             ("HELD_CREDITS", "10"), ("DATA_CREDITS", "-1")):  # fmt: skip
        code = await api.error_code(SET, {"m": meter, "t": threshold}, key=t.admin_key)
        assert code == "INVALID_INPUT", (meter, threshold)
    member = await api.gql(
        'mutation { createApiKey(name: "m", role: MEMBER) { secret } }', key=t.admin_key
    )
    member_key = member["createApiKey"]["secret"]
    code = await api.error_code(SET, {"m": "ACTIONS", "t": "10"}, key=member_key)
    assert code == "FORBIDDEN"
    assert len(await alerts(api, member_key)) == 1  # members read them
    stranger = await api.create_workspace("launch")
    delete = "mutation($i: ID!) { deleteAlert(id: $i) { id } }"
    assert await api.error_code(delete, {"i": first["id"]}, key=stranger.admin_key) == "NOT_FOUND"
    deleted = await api.gql(delete, {"i": first["id"]}, key=t.admin_key)
    assert deleted["deleteAlert"]["id"] == first["id"] and await alerts(api, t.admin_key) == []


async def test_r35_concurrent_charges_fire_a_crossing_once(api, postgres_only):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    await set_alert(api, t.admin_key, "DATA_CREDITS", "2000")
    await api.record_usage(t.admin_key, wb, results=99, **PHONE)  # 2,005 left
    charges = [
        api.record_usage(t.admin_key, wb, results=1, idempotencyKey=new_key(), **PHONE)
        for _ in range(20)
    ]
    assert all(c["__typename"] == "Charge" for c in await asyncio.gather(*charges))
    assert [kind for kind, _ in await crossings(api, t.admin_key)] == ["credits.threshold_crossed"]
