"""`GET /usage.csv`: usage history (R24) as CSV, authenticated like the API, free (R3)."""

from datetime import UTC, datetime

from app.db import connection, fetch
from tests.helpers import assert_ledger_matches

JAN_1, APR_1 = "2025-01-01T00:00:00Z", "2025-04-01T00:00:00Z"
TOTALS = "actions,dataCredits,results,ownKeyResults,ownKeySavings\r\n"  # no groupBy


def at(y, m, d, hh=10):
    return datetime(y, m, d, hh, tzinfo=UTC)


async def export(api, key, group_by="", **params):
    query = {"from": JAN_1, "to": APR_1, "groupBy": group_by, **params}
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return await api.client.get("/usage.csv", params=query, headers=headers)


async def workspace_with_usage(api, clock):
    t = await api.create_workspace("launch")
    alpha = await api.create_workbook(t.admin_key, "Alpha")
    beta = await api.create_workbook(t.admin_key, "=cmd|' /C calc'!A0")  # a spreadsheet formula
    enrich = {"kind": "ENRICHMENT", "provider": "linkedin", "dataType": "profile"}
    first = await api.record_usage(t.admin_key, alpha, results=100, tableId="people", **enrich)
    await api.record_usage(t.admin_key, beta, kind="AI", model="small", results=1,
                           inputTokens=1234, outputTokens=567)  # fmt: skip
    clock.move_to(at(2025, 2, 1))
    await api.refund(t.admin_key, first["id"], results=10)
    await api.record_usage(t.admin_key, alpha, kind="SOURCING", results=40)
    return t, alpha, beta


async def test_r24_csv_export_by_day_and_workbook_exact_text(api, clock):
    t, alpha, beta = await workspace_with_usage(api, clock)
    response = await export(api, t.admin_key, "DAY,WORKBOOK")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == (
        'attachment; filename="tally-usage-2025-01-01-2025-04-01.csv"'
    )
    assert response.text == (
        "day,workbookId,workbookName,actions,dataCredits,results,ownKeyResults,ownKeySavings\r\n"
        f"2025-01-31,{beta},'=cmd|' /C calc'!A0,1,0.1751,1,0,0\r\n"  # quoted: not a formula
        f"2025-01-31,{alpha},Alpha,100,50,100,0,0\r\n"
        f"2025-02-01,{alpha},Alpha,0,-5,40,0,0\r\n"
    )


async def test_r24_csv_columns_follow_group_by_with_filters(api, clock):
    t, alpha, _ = await workspace_with_usage(api, clock)
    response = await export(api, t.admin_key, "KIND,CYCLE,TABLE,PROVIDER", workbookId=alpha)
    assert response.text == (
        "kind,cycleStart,tableId,provider,actions,dataCredits,results,ownKeyResults,ownKeySavings\r\n"
        "ENRICHMENT,2025-01-31T10:00:00+00:00,people,linkedin,100,45,100,0,0\r\n"
        "SOURCING,2025-01-31T10:00:00+00:00,,,0,0,40,0,0\r\n"
    )
    response = await export(api, t.admin_key, tableId="people")
    assert response.text == TOTALS + "100,45,100,0,0\r\n"


async def test_r24_csv_total_row_for_no_grouping_even_without_usage(api):
    t = await api.create_workspace("launch")
    response = await api.client.get(
        "/usage.csv",
        params={"from": "2025-01-01T00:00:00+02:00", "to": "2025-01-02T00:00:00+02:00"},
        headers={"Authorization": f"Bearer {t.admin_key}"},
    )
    assert response.status_code == 200
    assert response.text == TOTALS + "0,0,0,0,0\r\n"
    assert response.headers["content-disposition"] == (
        'attachment; filename="tally-usage-2024-12-31-2025-01-01.csv"'
    )


async def test_r24_csv_matches_the_graphql_answer(api, clock):
    t, _, _ = await workspace_with_usage(api, clock)
    dims = ["WORKBOOK", "DAY", "KIND", "PROVIDER", "TABLE", "CYCLE"]
    data = await api.gql(
        """query($g: [UsageDimension!]!) { usageHistory(from: "2025-01-01T00:00:00Z",
             to: "2025-04-01T00:00:00Z", groupBy: $g) { workbookId workbookName day kind
             provider tableId cycleStart actions dataCredits results ownKeyResults
             ownKeySavings } }""",
        {"g": dims},
        key=t.admin_key,
    )
    lines = (await export(api, t.admin_key, ",".join(dims))).text.splitlines()
    assert len(lines) == 1 + len(data["usageHistory"]) == 5
    for line, row in zip(lines[1:], data["usageHistory"], strict=True):
        assert line.split(",")[0] == row["workbookId"]
        figures = ("actions", "dataCredits", "results", "ownKeyResults", "ownKeySavings")
        assert line.endswith("," + ",".join(str(row[f]) for f in figures))


async def test_r03_csv_export_is_free(api, clock):
    t, _, _ = await workspace_with_usage(api, clock)
    before = await api.workspace(t.admin_key)
    counts_before = await _counts(t.id)
    for group_by in ("", "DAY", "DAY,WORKBOOK,TABLE,PROVIDER,KIND,CYCLE"):
        assert (await export(api, t.admin_key, group_by)).status_code == 200
    after = await api.workspace(t.admin_key)
    assert (after["actions"], after["dataCredits"]) == (before["actions"], before["dataCredits"])
    assert await _counts(t.id) == counts_before
    await assert_ledger_matches(t.id)


async def _counts(workspace_id):
    counts = []
    for table in ("ledger_entry", "charge", "refund", "usage_daily", "idempotency_record"):
        rows = await fetch(
            connection(), f"SELECT COUNT(*) AS n FROM {table} WHERE workspace_id = $1", workspace_id
        )
        counts.append(int(rows[0]["n"]))
    return counts


async def test_r24_csv_member_keys_may_export(api, clock):
    t, _, _ = await workspace_with_usage(api, clock)
    created = await api.gql(
        'mutation { createApiKey(name: "reader", role: MEMBER) { secret } }', key=t.admin_key
    )
    response = await export(api, created["createApiKey"]["secret"])
    assert response.text == TOTALS + "101,45.1751,141,0,0\r\n"


async def test_r24_csv_needs_a_workspace_key(api):
    for key, status, text in [
        (None, 401, "missing API key: send Authorization: Bearer <api key>\n"),
        ("tly_not-a-key", 401, "unknown or revoked API key\n"),
        (api.operator_key, 403, "the operator key belongs to no workspace"),
    ]:
        response = await export(api, key)
        assert response.status_code == status
        assert response.headers["content-type"] == "text/plain; charset=utf-8"
        assert response.text.startswith(text)


async def test_r24_csv_bad_input_is_400_with_the_message(api):
    t = await api.create_workspace("launch")
    cases = [
        ({"from": ""}, "from is required"),
        ({"to": "yesterday"}, "to is not an ISO 8601 instant: 'yesterday'"),
        ({"to": JAN_1}, "must be after from"),
        ({"from": "2024-01-01T00:00:00Z"}, "the range covers 456 days; at most 400"),
        ({"groupBy": "DAY,WEEK"}, "groupBy: unknown dimension 'WEEK'"),
        ({"groupBy": "KIND,KIND"}, "groupBy names KIND twice"),
        ({"tableId": ""}, "tableId must not be empty"),
    ]
    for params, message in cases:
        response = await export(api, t.admin_key, **params)
        assert response.status_code == 400, (params, response.text)
        assert message in response.text, (params, response.text)


async def test_r24_csv_of_another_workspaces_workbook_is_404(api):
    t = await api.create_workspace("launch")
    other = await api.create_workspace("launch")
    theirs = await api.create_workbook(other.admin_key)
    response = await export(api, t.admin_key, "DAY", workbookId=theirs)
    assert (response.status_code, response.text) == (404, f"workbook {theirs} not found\n")


async def test_r05_csv_carries_own_key_results_and_savings(api, clock):
    # given: 90 emails found with the customer's own key (0.5 Data Credits each at the
    # catalog price, R5: none charged), 10 paid for, on one day and one workbook
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key, "Leads")
    email = {"kind": "ENRICHMENT", "provider": "hunter", "dataType": "email"}
    own = await api.record_usage(t.admin_key, wb, **email, ownApiKey=True, results=90)
    paid = await api.record_usage(t.admin_key, wb, **email, results=10)
    assert own["__typename"] == paid["__typename"] == "Charge", (own, paid)

    # when / then: the export says what usageHistory's ownKeyResults and ownKeySavings say
    response = await export(api, t.admin_key, "DAY,PROVIDER")
    assert response.text == (
        "day,provider,actions,dataCredits,results,ownKeyResults,ownKeySavings\r\n"
        "2025-01-31,hunter,100,5,100,90,45\r\n"
    )
    response = await export(api, t.admin_key)
    assert response.text == TOTALS + "100,5,100,90,45\r\n"
