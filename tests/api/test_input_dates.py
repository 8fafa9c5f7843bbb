"""Every instant a client sends is validated once: a zone is required, years 1970 to 2199.

Naive instants and years 1 and 9999 used to reach the domain and fail there as
INTERNAL_SERVER_ERROR (GraphQL) or HTTP 500 (the CSV export)."""

import pytest

BAD_INSTANTS = [
    ("2025-01-01T00:00:00", "needs a time zone"),
    ("0001-01-01T00:00:00Z", "must lie between 1970 and 2199"),
    ("0001-01-01T00:00:00+05:00", "must lie between 1970 and 2199"),
    ("9999-12-31T23:59:59Z", "must lie between 1970 and 2199"),
    ("9999-12-31T23:59:59-05:00", "must lie between 1970 and 2199"),
    ("2025-13-01T00:00Z", "is not an ISO 8601 instant"),
    ("٢٠٢٥-01-01T00:00Z", "is not an ISO 8601 instant"),
]
GOOD = "2025-01-01T00:00:00+00:00"
HISTORY = """query($a: DateTime!, $b: DateTime!) {
  usageHistory(from: $a, to: $b, groupBy: [DAY]) { results } }"""
BILLING = "query($a: DateTime, $b: DateTime) { billingCharges(from: $a, to: $b) { id } }"


async def _error(api, query, variables, key):
    body = await api.raw(query, variables, key=key)
    assert body.get("data") is None, body
    [error] = body["errors"]
    return error["extensions"]["code"], error["message"]


@pytest.mark.parametrize(("value", "reason"), BAD_INSTANTS)
async def test_a_bad_instant_in_any_argument_is_invalid_input(api, value, reason):
    t = await api.create_workspace("launch")
    for query in (HISTORY, BILLING):
        for variables in ({"a": value, "b": GOOD}, {"a": GOOD, "b": value}):
            code, message = await _error(api, query, variables, t.admin_key)
            assert (code, reason in message) == ("INVALID_INPUT", True), (query, message)


async def test_r23_a_naive_or_far_sent_at_on_a_stopped_run_is_invalid_input(api):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    run = await api.start_run(t.admin_key, wb)
    await api.end_run(t.admin_key, run["id"])
    for value, reason in BAD_INSTANTS:
        item = {
            "workbookId": wb,
            "runId": run["id"],
            "kind": "HTTP_API_CALL",
            "results": 1,
            "idempotencyKey": f"sent-{value}",
            "sentAt": value,
        }
        query = "mutation($i: RecordUsageInput!) { recordUsage(input: $i) { __typename } }"
        code, message = await _error(api, query, {"i": item}, t.admin_key)
        assert (code, reason in message) == ("INVALID_INPUT", True), message
    assert await api.meters(t.admin_key) == (0, 2500)


async def test_a_bad_instant_written_into_the_document_points_at_it(api):
    t = await api.create_workspace("launch")
    query = """{ usageHistory(from: "9999-12-31T23:59:59Z", to: "2025-01-02T00:00Z",
                              groupBy: []) { results } }"""
    code, message = await _error(api, query, None, t.admin_key)
    assert code == "INVALID_INPUT"
    assert message.startswith("Expected value of type 'DateTime', found \"9999-12-31T23:59:59Z\"")


@pytest.mark.parametrize(("value", "reason"), BAD_INSTANTS)
async def test_r24_csv_bad_instants_are_400(api, value, reason):
    t = await api.create_workspace("launch")
    for params in ({"from": value, "to": GOOD}, {"from": GOOD, "to": value}):
        response = await api.client.get(
            "/usage.csv", params=params, headers={"Authorization": f"Bearer {t.admin_key}"}
        )
        assert response.status_code == 400, response.text
        assert reason in response.text
