"""R34: every change a customer's product must react to is an event, written in the same
transaction; the "reached / exhausted / depleted" events fire once per crossing."""

from datetime import UTC, datetime

from tests.helpers import new_key, run_jobs

PHONE = {"kind": "ENRICHMENT", "provider": "apollo", "dataType": "phone"}  # 5 credits each
EVENTS = """query($t: [String!], $f: Int, $a: String) { events(first: $f, after: $a, types: $t) {
  edges { cursor node { id type data createdAt } } pageInfo { hasNextPage endCursor } } }"""


async def events(api, key, *types):
    data = await api.gql(EVENTS, {"t": list(types) or None, "f": 200}, key=key)
    return [(e["node"]["type"], e["node"]["data"]) for e in data["events"]["edges"]]


def without_ids(data: dict) -> dict:
    return {k: v for k, v in data.items() if k != "workspaceId"}


async def test_r34_credits_depleted_fires_once_then_rearms_after_a_top_up(api):
    t = await api.create_workspace("launch")  # 2,500 Data Credits
    wb = await api.create_workbook(t.admin_key)
    spent = await api.record_usage(t.admin_key, wb, results=500, **PHONE)  # all 2,500
    assert spent["dataCredits"] == "2500"
    for _ in range(3):  # a thousand refused charges are one event
        refused = await api.record_usage(t.admin_key, wb, results=1, **PHONE)
        assert refused["code"] == "INSUFFICIENT_DATA_CREDITS"
    depleted = await events(api, t.admin_key, "credits.depleted")
    assert [(kind, without_ids(data)) for kind, data in depleted] == [
        ("credits.depleted", {"available": "0"})
    ]
    assert depleted[0][1]["workspaceId"] == t.id
    bought = await api.top_up(t.admin_key, "3")
    assert bought["__typename"] == "TopUp"
    # Refused for credits again (3 available, 5 needed): it fired at 0 and the top-up cleared it.
    assert (await api.record_usage(t.admin_key, wb, results=1, **PHONE))["code"] == (
        "INSUFFICIENT_DATA_CREDITS"
    )
    again = await events(api, t.admin_key, "credits.depleted")
    assert [without_ids(d) for _, d in again] == [{"available": "3"}, {"available": "0"}]
    topup = await events(api, t.admin_key, "topup.purchased")
    assert [without_ids(d) | {"topUpId": "-"} for _, d in topup] == [
        {"topUpId": "-", "credits": "3", "price": "0.16", "auto": False}
    ]


async def test_r34_actions_exhausted_fires_once_and_rearms_at_renewal(api, clock):
    """The clock stands at 2025-01-31 10:00; the jobs run as if it read March 3."""
    t = await api.create_workspace("free")  # 500 Actions
    wb = await api.create_workbook(t.admin_key)
    await api.record_usage(t.admin_key, wb, kind="CRM_EXPORT", results=500)
    for _ in range(2):
        refused = await api.record_usage(t.admin_key, wb, kind="CRM_EXPORT", results=1)
        assert refused["code"] == "ACTIONS_EXHAUSTED"
    exhausted = await events(api, t.admin_key, "actions.exhausted")
    assert [without_ids(d) for _, d in exhausted] == [{"used": 500, "capacity": 500}]
    await run_jobs(datetime(2025, 3, 3, tzinfo=UTC), t.id)  # the cycle of Feb 28, 10:00
    renewed = await events(api, t.admin_key, "subscription.renewed")
    # R18: free keeps 100 of its unused 100, then 100 more are granted (cap 200).
    assert [without_ids(d) for _, d in renewed] == [
        {
            "periodStart": "2025-02-28T10:00:00+00:00",
            "periodEnd": "2025-03-31T10:00:00+00:00",
            "granted": "100",
            "rolledOver": "100",
            "expired": "0",
        }
    ]
    await api.record_usage(t.admin_key, wb, kind="CRM_EXPORT", results=500)
    exhausted = await events(api, t.admin_key, "actions.exhausted")
    assert [without_ids(d) for _, d in exhausted] == [
        {"used": 500, "capacity": 500},
        {"used": 500, "capacity": 500},
    ]


async def test_r34_a_workbook_limit_reached_fires_once_and_rearms_when_raised(api):
    t = await api.create_workspace("enterprise")
    wb = await api.create_workbook(t.admin_key)
    await api.set_limit(t.admin_key, wb, "10")
    assert (await api.record_usage(t.admin_key, wb, results=2, **PHONE))["dataCredits"] == "10"
    for _ in range(3):
        refused = await api.record_usage(t.admin_key, wb, results=1, **PHONE)
        assert refused["code"] == "WORKBOOK_SPEND_LIMIT_REACHED"
    reached = await events(api, t.admin_key, "workbook.spend_limit_reached")
    assert [without_ids(d) for _, d in reached] == [
        {"workbookId": wb, "limit": "10", "spent": "10"}
    ]
    await api.set_limit(t.admin_key, wb, "12")  # raised, yet still short of a 5-credit charge
    refused = await api.record_usage(t.admin_key, wb, results=1, **PHONE)
    assert refused["code"] == "WORKBOOK_SPEND_LIMIT_REACHED"
    reached = await events(api, t.admin_key, "workbook.spend_limit_reached")
    assert [without_ids(d) for _, d in reached] == [
        {"workbookId": wb, "limit": "12", "spent": "10"},
        {"workbookId": wb, "limit": "10", "spent": "10"},
    ]


async def test_r34_a_run_budget_exhausted_and_the_run_ended(api):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    run = await api.start_run(t.admin_key, wb, budget="12", hold="12")
    await api.record_usage(t.admin_key, wb, runId=run["id"], results=2, **PHONE)
    refused = await api.record_usage(t.admin_key, wb, runId=run["id"], results=1, **PHONE)
    assert refused["code"] == "RUN_BUDGET_EXCEEDED"
    await api.end_run(t.admin_key, run["id"])
    seen = await events(api, t.admin_key, "run.budget_exhausted", "run.ended")
    assert [(kind, without_ids(d)) for kind, d in seen] == [
        ("run.ended", {"runId": run["id"], "status": "STOPPED", "spent": "10", "released": "2"}),
        ("run.budget_exhausted", {"runId": run["id"], "budget": "12", "spent": "10"}),
    ]


async def test_r34_plan_changes_are_events_immediate_or_scheduled(api):
    t = await api.create_workspace("launch")
    up = await api.change_plan(t.admin_key, "growth", creditTier=6000)
    assert up["__typename"] == "Workspace"
    down = await api.change_plan(t.admin_key, "launch", creditTier=2500)
    end = down["currentPeriod"]["end"]
    await api.cancel(t.admin_key)
    seen = await events(api, t.admin_key, "subscription.plan_changed")
    assert [without_ids(d) for _, d in seen][:2] == [
        {"fromPlan": "growth", "toPlan": "free", "creditTier": None, "effectiveAt": end,
         "immediate": False},
        {"fromPlan": "growth", "toPlan": "launch", "creditTier": 2500, "effectiveAt": end,
         "immediate": False},
    ]  # fmt: skip
    first = [without_ids(d) for _, d in seen][2]
    assert (first["fromPlan"], first["toPlan"], first["creditTier"], first["immediate"]) == (
        "launch",
        "growth",
        6000,
        True,
    )


async def test_r34_events_page_newest_first_and_stay_with_their_workspace(api):
    t = await api.create_workspace("launch")
    other = await api.create_workspace("launch")
    for n in range(3):
        await api.top_up(t.admin_key, str(n + 1))
    first = await api.gql(EVENTS, {"f": 2, "t": ["topup.purchased"]}, key=t.admin_key)
    page = first["events"]
    assert [e["node"]["data"]["credits"] for e in page["edges"]] == ["3", "2"]
    assert page["pageInfo"]["hasNextPage"] is True
    rest = await api.gql(
        EVENTS,
        {"f": 2, "a": page["pageInfo"]["endCursor"], "t": ["topup.purchased"]},
        key=t.admin_key,
    )
    assert [e["node"]["data"]["credits"] for e in rest["events"]["edges"]] == ["1"]
    assert await events(api, other.admin_key) == []
    code = await api.error_code(EVENTS, {"f": 2, "a": "nope"}, key=t.admin_key)
    assert code == "INVALID_INPUT"


async def test_r34_a_refused_request_leaves_only_its_event(api):
    """R13 still holds for balances, the ledger and the key: the event is the one trace."""
    t = await api.create_workspace("free")
    wb = await api.create_workbook(t.admin_key)
    key = new_key()
    refused = await api.record_usage(t.admin_key, wb, results=21, idempotencyKey=key, **PHONE)
    assert refused["code"] == "INSUFFICIENT_DATA_CREDITS"
    assert [k for k, _ in await events(api, t.admin_key)] == ["credits.depleted"]
    assert await api.meters(t.admin_key) == (0, 100)
    retried = await api.record_usage(t.admin_key, wb, results=20, idempotencyKey=key, **PHONE)
    assert retried["dataCredits"] == "100"  # the key left no trace
