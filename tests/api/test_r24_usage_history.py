"""R24 usage history through the API: by day, cycle, workbook, table, provider and kind, with
Actions, Data Credits and results per row; free operations at zero (R3), own-key usage as
Actions only (R5), refunds netted on the day they happen (R22).

The `clock` fixture stops the wall clock at 2025-01-31 10:00 UTC; `clock.move_to` moves it.
"""

import itertools
import uuid
from datetime import UTC, datetime

from app.db import connection, fetch
from app.history.rules import UsageDimension
from app.history.service import usage_history, usage_history_from_charges
from tests.helpers import run_jobs

U = 10_000
JAN_1, APR_1 = "2025-01-01T00:00:00+00:00", "2025-04-01T00:00:00+00:00"
KEY_FIELDS = ("day", "cycleStart", "workbookId", "tableId", "provider", "kind")
FIELD_OF = {"DAY": "day", "CYCLE": "cycleStart", "WORKBOOK": "workbookId", "TABLE": "tableId",
            "PROVIDER": "provider", "KIND": "kind"}  # fmt: skip
HISTORY = """query($f: DateTime!, $t: DateTime!, $g: [UsageDimension!]!, $w: ID, $tb: String) {
  usageHistory(from: $f, to: $t, groupBy: $g, workbookId: $w, tableId: $tb) {
    day cycleStart workbookId workbookName tableId provider kind actions dataCredits results } }"""


def at(y, m, d, hh=10, mm=0, ss=0):
    return datetime(y, m, d, hh, mm, ss, tzinfo=UTC)


async def history(api, key, group_by, start=JAN_1, end=APR_1, **filters):
    variables = {"f": start, "t": end, "g": group_by, **filters}
    return (await api.gql(HISTORY, variables, key=key))["usageHistory"]


async def table(api, key, group_by, **args):
    """Each row as (its keys in groupBy order, workbooks by name; actions, credits, results).
    Checks on the way that the keys not grouped by are null."""
    rows = await history(api, key, group_by, **args)
    out = []
    for row in rows:
        grouped = {FIELD_OF[d] for d in group_by}
        assert all(row[f] is None for f in KEY_FIELDS if f not in grouped), row
        assert (row["workbookName"] is None) == ("WORKBOOK" not in group_by), row
        keys = [row["workbookName"] if d == "WORKBOOK" else row[FIELD_OF[d]] for d in group_by]
        out.append((*keys, row["actions"], row["dataCredits"], row["results"]))
    return out


async def use(api, key, wb, **fields):
    charge = await api.record_usage(key, wb, **fields)
    assert charge["__typename"] == "Charge", charge
    return charge


def enrich(provider, data_type, results, **fields):
    return dict(kind="ENRICHMENT", provider=provider, dataType=data_type, results=results, **fields)


async def two_workbooks(api, plan="launch"):
    t = await api.create_workspace(plan)
    alpha = await api.create_workbook(t.admin_key, "Alpha")
    beta = await api.create_workbook(t.admin_key, "Beta")
    return t, alpha, beta


async def test_r24_history_by_day_and_workbook_with_exact_figures(api, clock):
    t, alpha, beta = await two_workbooks(api)
    await use(api, t.admin_key, alpha, **enrich("linkedin", "profile", 100))  # 50 credits
    await use(api, t.admin_key, beta, **enrich("hunter", "email", 90))  # 45
    clock.move_to(at(2025, 2, 1, 9))
    await use(api, t.admin_key, alpha, **enrich("hunter", "email", 10))  # 5
    await use(api, t.admin_key, alpha, **enrich("apollo", "phone", 2))  # 10
    key = t.admin_key
    assert await table(api, key, ["DAY", "WORKBOOK"]) == [
        ("2025-01-31", "Alpha", 100, "50", 100),
        ("2025-01-31", "Beta", 90, "45", 90),
        ("2025-02-01", "Alpha", 12, "15", 12),
    ]
    assert await table(api, key, ["WORKBOOK", "DAY"]) == [
        ("Alpha", "2025-01-31", 100, "50", 100),
        ("Alpha", "2025-02-01", 12, "15", 12),
        ("Beta", "2025-01-31", 90, "45", 90),
    ]
    assert await table(api, key, ["DAY"]) == [
        ("2025-01-31", 190, "95", 190),
        ("2025-02-01", 12, "15", 12),
    ]
    assert await table(api, key, []) == [(202, "110", 202)]
    # The rows name the workbooks by id too; the totals match the meters (R24).
    rows = await history(api, key, ["WORKBOOK"])
    assert [(r["workbookId"], r["workbookName"]) for r in rows] == [
        (alpha, "Alpha"),
        (beta, "Beta"),
    ]
    assert await api.meters(key) == (202, 2500 - 110)


async def test_r24_history_by_table_and_provider(api, clock):
    t, alpha, _ = await two_workbooks(api)
    key = t.admin_key
    await use(api, key, alpha, **enrich("linkedin", "profile", 10, tableId="people"))  # 5
    await use(api, key, alpha, **enrich("hunter", "email", 4, tableId="people"))  # 2
    await use(api, key, alpha, **enrich("clearbit", "company", 3, tableId="companies"))  # 3
    await use(api, key, alpha, **enrich("linkedin", "profile", 2))  # 1, no table
    assert await table(api, key, ["TABLE", "PROVIDER"]) == [
        (None, "linkedin", 2, "1", 2),
        ("companies", "clearbit", 3, "3", 3),
        ("people", "hunter", 4, "2", 4),
        ("people", "linkedin", 10, "5", 10),
    ]
    assert await table(api, key, ["PROVIDER"]) == [
        ("clearbit", 3, "3", 3),
        ("hunter", 4, "2", 4),
        ("linkedin", 12, "6", 12),
    ]
    assert await table(api, key, ["TABLE"]) == [
        (None, 2, "1", 2),
        ("companies", 3, "3", 3),
        ("people", 14, "7", 14),
    ]


async def test_r24_history_by_kind_with_ai_under_its_model(api, clock):
    t, alpha, _ = await two_workbooks(api)
    key = t.admin_key
    await use(api, key, alpha, **enrich("linkedin", "profile", 10))  # 5
    await use(api, key, alpha, kind="AI", model="large", results=2, inputTokens=1000,
              outputTokens=500)  # 0.5 + 1.0  # fmt: skip
    await use(api, key, alpha, kind="AI", model="small", results=1, inputTokens=1234,
              outputTokens=567)  # 0.0617 + 0.1134  # fmt: skip
    await use(api, key, alpha, kind="SIGNAL", results=5)
    await use(api, key, alpha, kind="HTTP_API_CALL", results=7)
    assert await table(api, key, ["KIND"]) == [
        ("AI", 3, "1.6751", 3),
        ("ENRICHMENT", 10, "5", 10),
        ("HTTP_API_CALL", 7, "0", 7),
        ("SIGNAL", 5, "0", 5),
    ]
    assert await table(api, key, ["KIND", "PROVIDER"]) == [
        ("AI", "large", 2, "1.5", 2),
        ("AI", "small", 1, "0.1751", 1),
        ("ENRICHMENT", "linkedin", 10, "5", 10),
        ("HTTP_API_CALL", None, 7, "0", 7),
        ("SIGNAL", None, 5, "0", 5),
    ]


async def test_r03_free_operations_in_history_at_zero(api, clock):
    t, alpha, _ = await two_workbooks(api)
    key = t.admin_key
    await use(api, key, alpha, kind="SOURCING", results=100)
    await use(
        api, key, alpha, kind="CRM_IMPORT", provider="hubspot", dataType="contact", results=20
    )
    await use(api, key, alpha, **enrich("linkedin", "profile", 10))
    assert await table(api, key, ["KIND", "PROVIDER"]) == [
        ("CRM_IMPORT", "hubspot", 0, "0", 20),
        ("ENRICHMENT", "linkedin", 10, "5", 10),
        ("SOURCING", None, 0, "0", 100),
    ]
    assert await api.meters(key) == (10, 2500 - 5)


async def test_r05_own_key_usage_shows_actions_only(api, clock):
    t, alpha, _ = await two_workbooks(api)
    key = t.admin_key
    await use(api, key, alpha, **enrich("hunter", "email", 90, ownApiKey=True))
    await use(api, key, alpha, **enrich("hunter", "email", 10))
    await use(api, key, alpha, kind="AI", model="gpt-own", ownApiKey=True, results=3,
              inputTokens=10_000, outputTokens=10_000)  # fmt: skip
    assert await table(api, key, ["PROVIDER"]) == [
        ("gpt-own", 3, "0", 3),
        ("hunter", 100, "5", 100),
    ]


async def test_r22_refunds_netted_in_history(api, clock):
    t, alpha, _ = await two_workbooks(api)
    key = t.admin_key
    charge = await use(api, key, alpha, **enrich("linkedin", "profile", 100, tableId="people"))
    free = await use(api, key, alpha, kind="SOURCING", results=50)
    clock.move_to(at(2025, 2, 1, 8))
    assert (await api.refund(key, charge["id"], results=10))["dataCredits"] == "5"
    clock.move_to(at(2025, 2, 2, 8))
    assert (await api.refund(key, charge["id"]))["dataCredits"] == "45"
    assert (await api.refund(key, free["id"]))["dataCredits"] == "0"  # moves nothing: no row
    # The day of the charge keeps its figures; each refund nets on its own day.
    assert await table(api, key, ["DAY"]) == [
        ("2025-01-31", 100, "50", 150),
        ("2025-02-01", 0, "-5", 0),
        ("2025-02-02", 0, "-45", 0),
    ]
    # Under the charge's own workbook, table, provider and kind; Actions are not refunded.
    assert await table(api, key, ["WORKBOOK", "TABLE", "PROVIDER", "KIND"]) == [
        ("Alpha", None, None, "SOURCING", 0, "0", 50),
        ("Alpha", "people", "linkedin", "ENRICHMENT", 100, "0", 100),
    ]
    assert await table(api, key, []) == [(100, "0", 150)]
    assert await api.meters(key) == (100, 2500)


async def test_r24_history_by_cycle_across_a_renewal(api, clock):
    t, alpha, _ = await two_workbooks(api)
    key = t.admin_key
    first = await use(api, key, alpha, **enrich("linkedin", "profile", 100))  # 50
    await run_jobs(at(2025, 2, 28), t.id)  # the next cycle starts Feb 28 10:00
    clock.move_to(at(2025, 2, 28, 12))
    await use(api, key, alpha, **enrich("hunter", "email", 10))  # 5
    await api.refund(key, first["id"], results=20)  # -10, in the cycle it happens in
    jan, feb = "2025-01-31T10:00:00+00:00", "2025-02-28T10:00:00+00:00"
    assert await table(api, key, ["CYCLE"]) == [(jan, 100, "50", 100), (feb, 10, "-5", 10)]
    assert await table(api, key, ["CYCLE", "DAY", "KIND"]) == [
        (jan, "2025-01-31", "ENRICHMENT", 100, "50", 100),
        (feb, "2025-02-28", "ENRICHMENT", 10, "-5", 10),
    ]


async def test_r33_history_counts_the_stored_cycle_even_ahead_of_the_wall_clock(api, clock):
    t, alpha, _ = await two_workbooks(api)
    key = t.admin_key
    await run_jobs(at(2025, 3, 31), t.id)  # `tally jobs run --now` moved the cycle ahead
    await use(api, key, alpha, **enrich("hunter", "email", 10))
    assert await table(api, key, ["DAY", "CYCLE"]) == [
        ("2025-01-31", "2025-03-31T10:00:00+00:00", 10, "5", 10)
    ]


async def test_r24_history_filters_by_workbook_and_table(api, clock):
    t, alpha, beta = await two_workbooks(api)
    key = t.admin_key
    await use(api, key, alpha, **enrich("linkedin", "profile", 10, tableId="people"))  # 5
    await use(api, key, alpha, **enrich("clearbit", "company", 3, tableId="companies"))  # 3
    await use(api, key, beta, **enrich("hunter", "email", 4, tableId="people"))  # 2
    await use(api, key, beta, kind="SIGNAL", results=6)
    dims = ["WORKBOOK", "TABLE"]
    assert await table(api, key, dims, w=alpha) == [
        ("Alpha", "companies", 3, "3", 3),
        ("Alpha", "people", 10, "5", 10),
    ]
    assert await table(api, key, dims, tb="people") == [
        ("Alpha", "people", 10, "5", 10),
        ("Beta", "people", 4, "2", 4),
    ]
    assert await table(api, key, [], w=beta, tb="people") == [(4, "2", 4)]
    assert await table(api, key, [], w=beta) == [(10, "2", 10)]
    assert await table(api, key, ["DAY"], tb="nowhere") == []


async def test_r24_history_range_is_the_utc_days_overlapping_from_to(api, clock):
    t, alpha, _ = await two_workbooks(api)
    key = t.admin_key
    clock.move_to(at(2025, 1, 31, 23, 59, 59))
    await use(api, key, alpha, **enrich("linkedin", "profile", 2))  # 1
    clock.move_to(at(2025, 2, 1, 0))
    await use(api, key, alpha, **enrich("linkedin", "profile", 4))  # 2
    jan_31, feb_1 = ("2025-01-31", 2, "1", 2), ("2025-02-01", 4, "2", 4)

    async def days(start, end):
        return await table(api, key, ["DAY"], start=start, end=end)

    assert await days("2025-02-01T00:00:00Z", "2025-02-02T00:00:00Z") == [feb_1]
    assert await days("2025-01-01T00:00:00Z", "2025-02-01T00:00:00Z") == [jan_31]  # to excluded
    assert await days("2025-01-31T12:00:00Z", "2025-01-31T12:00:01Z") == [jan_31]  # whole day
    assert await days("2025-02-01T00:00:00+01:00", "2025-02-01T00:00:01Z") == [jan_31, feb_1]
    assert await days("2025-02-01T22:00:00-01:00", "2025-02-03T00:00:00Z") == [feb_1]
    # 400 days is the longest range.
    assert await days("2024-01-01T00:00:00Z", "2025-02-04T00:00:00Z") == [jan_31, feb_1]


async def test_r24_history_refuses_bad_ranges_and_groupings(api):
    t, _, _ = await two_workbooks(api)
    cases = [
        ({"f": "2025-02-01T00:00:00Z", "t": "2025-02-01T00:00:00Z"}, "must be after from"),
        ({"f": "2025-02-02T00:00:00Z", "t": "2025-02-01T00:00:00Z"}, "must be after from"),
        ({"f": "2024-01-01T00:00:00Z", "t": "2025-02-04T00:00:01Z"}, "covers 401 days"),
        ({"g": ["DAY", "KIND", "DAY"]}, "groupBy names DAY twice"),
        ({"tb": ""}, "tableId must not be empty"),
        ({"tb": "x" * 201}, "tableId is 201 characters long"),
    ]
    for variables, message in cases:
        body = await api.raw(HISTORY, {"f": JAN_1, "t": APR_1, "g": [], **variables}, t.admin_key)
        assert [e["extensions"]["code"] for e in body["errors"]] == ["INVALID_INPUT"], body
        assert message in body["errors"][0]["message"], body


async def test_r24_history_of_another_workspaces_workbook_is_not_found(api):
    t, _, _ = await two_workbooks(api)
    _, theirs, _ = await two_workbooks(api)
    variables = {"f": JAN_1, "t": APR_1, "g": ["DAY"]}
    for workbook in (theirs, "not-an-id", str(uuid.uuid4())):
        code = await api.error_code(HISTORY, {**variables, "w": workbook}, key=t.admin_key)
        assert code == "NOT_FOUND"


async def test_r24_member_keys_read_history_the_operator_key_is_forbidden(api, clock):
    t, alpha, _ = await two_workbooks(api)
    await use(api, t.admin_key, alpha, **enrich("linkedin", "profile", 2))
    created = await api.gql(
        'mutation { createApiKey(name: "reader", role: MEMBER) { secret } }', key=t.admin_key
    )
    member = created["createApiKey"]["secret"]
    assert await table(api, member, []) == [(2, "1", 2)]
    variables = {"f": JAN_1, "t": APR_1, "g": []}
    assert await api.error_code(HISTORY, variables, key=api.operator_key) == "FORBIDDEN"
    assert await api.error_code(HISTORY, variables) == "UNAUTHENTICATED"


async def test_r13_a_retried_charge_counts_once_in_history(api, clock):
    t, alpha, _ = await two_workbooks(api)
    payload = {"idempotencyKey": "retry-1", **enrich("linkedin", "profile", 10)}
    first = await use(api, t.admin_key, alpha, **payload)
    again = await use(api, t.admin_key, alpha, **payload)
    assert again["id"] == first["id"]
    refused = await api.record_usage(t.admin_key, alpha, **enrich("apollo", "phone", 1000))
    assert refused["code"] == "INSUFFICIENT_DATA_CREDITS"  # leaves no trace in history either
    assert await table(api, t.admin_key, []) == [(10, "5", 10)]


async def mixed_sequence(api, clock):
    """Usage of every sort over three days and a renewal, refunds included."""
    t, alpha, beta = await two_workbooks(api)
    key = t.admin_key
    c1 = await use(api, key, alpha, **enrich("linkedin", "profile", 100, tableId="people"))
    await use(api, key, beta, **enrich("hunter", "email", 90, tableId="people", ownApiKey=True))
    c3 = await use(api, key, beta, kind="AI", model="large", results=3, inputTokens=333,
                   outputTokens=777, tableId="notes")  # fmt: skip
    await use(api, key, alpha, kind="SOURCING", results=500)
    clock.move_to(at(2025, 2, 1, 23, 30))
    await api.refund(key, c1["id"], results=7)
    await use(api, key, alpha, **enrich("clearbit", "company", 9, tableId="companies"))
    await use(api, key, beta, kind="HTTP_API_CALL", results=4)
    await run_jobs(at(2025, 2, 28), t.id)
    clock.move_to(at(2025, 2, 28, 11))
    await api.refund(key, c3["id"], results=1)
    await api.refund(key, c1["id"])
    await use(api, key, alpha, **enrich("apollo", "phone", 3, tableId="people"))
    return t, alpha, beta


async def test_r24_rollups_equal_the_charges_and_refunds_after_a_mixed_sequence(api, clock):
    t, alpha, beta = await mixed_sequence(api, clock)
    workspace_id = uuid.UUID(t.id)
    start, end = at(2025, 1, 1, 0), at(2025, 4, 1, 0)
    dims = list(UsageDimension)
    for n in range(len(dims) + 1):
        for group_by in itertools.combinations(dims, n):
            fast = await usage_history(workspace_id, start, end, group_by)
            slow = await usage_history_from_charges(workspace_id, start, end, group_by)
            assert fast == slow, group_by
    for group_by in itertools.permutations([UsageDimension.KIND, UsageDimension.DAY,
                                            UsageDimension.WORKBOOK]):  # fmt: skip
        fast = await usage_history(workspace_id, start, end, group_by)
        assert fast == await usage_history_from_charges(workspace_id, start, end, group_by)
    for filters in ({"workbook_id": beta}, {"table_id": "people"}, {"workbook_id": alpha,
                    "table_id": "people"}):  # fmt: skip
        fast = await usage_history(workspace_id, start, end, dims, **filters)
        assert fast == await usage_history_from_charges(workspace_id, start, end, dims, **filters)
    total = await usage_history(workspace_id, start, end, [])
    assert [(r.actions, r.credits, r.results) for r in total] == [
        (100 + 90 + 3 + 9 + 4 + 3, 17_205 - 5_735 + 9 * U + 15 * U, 100 + 90 + 3 + 500 + 9 + 4 + 3)
    ]


async def test_r24_migration_backfill_sums_the_same_rollups(api, clock):
    """Usage recorded before migration 0005 is summed into rollups by its backfill query."""
    import importlib

    t, _, _ = await mixed_sequence(api, clock)
    conn = connection()
    migration = importlib.import_module("app.migrations.0005_usage_daily")
    columns = "day, period_start, workbook_id, table_id, provider, kind, actions, credits, results"
    query = f"SELECT {columns} FROM ({migration.backfill_select(conn.capabilities.dialect)}) b"
    backfilled = await fetch(conn, query + " WHERE workspace_id = $1", t.id)
    kept = await fetch(conn, f"SELECT {columns} FROM usage_daily WHERE workspace_id = $1", t.id)

    def as_set(rows):  # PostgreSQL sums bigints as numeric
        return {
            (*(str(r[c]) for c in list(r)[:6]), *(int(r[c]) for c in list(r)[6:])) for r in rows
        }

    assert len(kept) == 10
    assert as_set(backfilled) == as_set(kept)
