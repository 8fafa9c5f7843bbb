"""Malformed input gets INVALID_INPUT with a message saying what is wrong; nothing changes."""

import json
from decimal import Decimal

import pytest

import graphql_schema.mutations as mutations

RECORD = "mutation($i: RecordUsageInput!) { recordUsage(input: $i) { __typename } }"


def report(wb, **fields):
    return {
        "i": {
            "workbookId": wb,
            "kind": "ENRICHMENT",
            "provider": "linkedin",
            "dataType": "profile",
            "results": 1,
            "idempotencyKey": "input",
            **fields,
        }
    }


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"results": -5}, "results must be between 1 and 1,000,000; got -5"),
        ({"results": 0}, "results must be between 1 and 1,000,000; got 0"),
        ({"results": 1.5}, "Int cannot represent non-integer value: 1.5"),
        ({"results": "3"}, "Int cannot represent non-integer value"),
        ({"kind": "TELEPATHY"}, "'TELEPATHY'"),
        ({"provider": "acme"}, "unknown provider 'acme'"),
        ({"dataType": "shoe_size"}, "has no data type 'shoe_size'"),
        ({"idempotencyKey": ""}, "idempotencyKey must not be empty"),
        ({"idempotencyKey": "k" * 300}, "300 characters long; at most 255"),
        ({"tableId": "t" * 201}, "tableId is 201 characters long; at most 200"),
        ({"model": "small"}, "model, inputTokens and outputTokens are for kind AI only"),
        ({"results": 2_000_000}, "results must be between 1 and 1,000,000"),
    ],
)
async def test_malformed_usage_is_invalid_input_and_changes_nothing(api, fields, message):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    body = await api.raw(RECORD, report(wb, **fields), key=t.admin_key)
    assert body["data"] is None or body["data"].get("recordUsage") is None
    [error] = body["errors"]
    assert error["extensions"] == {"code": "INVALID_INPUT"}
    assert message in error["message"]
    assert await api.meters(t.admin_key) == (0, Decimal("2500"))


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        ("credits: 0.5", "Decimal amounts are strings"),
        ("credits: 5", "Decimal amounts are strings"),
        ("credits: true", "Decimal amounts are strings"),
        ('credits: "abc"', "'abc' is not a decimal amount"),
        ("credits: {a: 1}", "got {'a': 1}"),  # printed back as { a: 1 }
        ('credits: "Infinity"', "'Infinity' is not a decimal amount"),
        ('credits: "1E+0"', "'1E+0' is not a decimal amount"),
        # Decimal() reads other scripts' digits ("١٢" is 12); an amount is ASCII digits only.
        ('credits: "١٢"', "'١٢' is not a decimal amount"),
        ('credits: "1٢.5"', "'1٢.5' is not a decimal amount"),
    ],
)
async def test_r01_a_bad_decimal_written_in_the_query_text_is_invalid_input(api, argument, message):
    """Written into the document rather than sent as a variable, a bad amount is still the
    client's input: INVALID_INPUT saying why, never an internal error."""
    t = await api.create_workspace("launch")
    query = (
        f'mutation {{ purchaseTopUp(input: {{{argument}, idempotencyKey: "lit"}})'
        " { __typename } }"
    )
    body = await api.raw(query, key=t.admin_key)
    [error] = body["errors"]
    assert error["extensions"] == {"code": "INVALID_INPUT"}
    printed = argument.removeprefix("credits: ").replace("{a: 1}", "{ a: 1 }")
    assert error["message"].startswith(f"Expected value of type 'Decimal', found {printed}: ")
    assert message in error["message"]
    assert error["locations"]
    assert await api.meters(t.admin_key) == (0, Decimal("2500"))


async def test_r01_literals_of_every_custom_scalar_are_parsed_or_invalid_input(api):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    ok = await api.gql(
        'mutation { purchaseTopUp(input: {credits: "10.5", idempotencyKey: "lit-ok"})'
        " { ... on TopUp { credits } } }",
        key=t.admin_key,
    )
    assert ok["purchaseTopUp"] == {"credits": "10.5"}
    estimate = await api.gql(
        '{ estimateCost(input: {records: 10, kind: ENRICHMENT, provider: "hunter",'
        ' dataType: "email", hitRate: "0.5"}) { actions dataCredits } }',
        key=t.admin_key,
    )
    assert estimate["estimateCost"] == {"actions": 5, "dataCredits": "2.5"}
    for query in (
        '{ estimateCost(input: {records: 10, kind: ENRICHMENT, provider: "hunter",'
        ' dataType: "email", hitRate: 0.5}) { actions } }',
        f'mutation {{ recordUsage(input: {{workbookId: "{wb}", kind: CRM_EXPORT, results: 1,'
        ' idempotencyKey: "lit-date", sentAt: "yesterday"}) { __typename } }',
        f'mutation {{ startRun(input: {{workbookId: "{wb}", idempotencyKey: "lit-run",'
        " budget: 5}) { id } }",
    ):
        body = await api.raw(query, key=t.admin_key)
        [error] = body["errors"]
        assert error["extensions"] == {"code": "INVALID_INPUT"}, query
        assert any(v in error["message"] for v in ("0.5", "yesterday", "found 5")), error
    assert await api.meters(t.admin_key) == (0, Decimal("2510.5"))


async def test_unknown_fields_and_syntax_errors_are_invalid_input(api):
    t = await api.create_workspace("launch")
    for query in ("{ workspace { nope } }", "{ workspace { id ", "mutation { nothing }"):
        assert await api.error_code(query, key=t.admin_key) == "INVALID_INPUT"


async def test_deep_or_aliased_queries_are_refused(api):
    """API.md: a document over the depth or alias limits is the request's fault, HTTP 400."""
    t = await api.create_workspace("launch")
    aliases = " ".join(f"a{i}: plans {{ code }}" for i in range(40))
    response = await api.client.post(
        "/graphql",
        json={"query": f"{{ {aliases} }}"},
        headers={"Authorization": f"Bearer {t.admin_key}"},
    )
    assert response.status_code == 400
    assert [e["extensions"]["code"] for e in response.json()["errors"]] == ["BAD_REQUEST"]


async def test_unexpected_errors_are_masked(api, monkeypatch, caplog):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)

    async def broken(*args, **kwargs):
        raise RuntimeError("secret internals: password=hunter2")

    monkeypatch.setattr(mutations, "record_usage", broken)
    body = await api.raw(RECORD, report(wb), key=t.admin_key)
    [error] = body["errors"]
    assert error["message"] == "Internal server error."
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR"}
    assert "hunter2" not in str(body) and "Traceback" not in str(body)
    assert "hunter2" in caplog.text  # the operator still sees it in the log


async def test_expected_errors_are_not_logged_as_failures(api, caplog):
    t = await api.create_workspace("launch")
    await api.raw(
        '{ workbook(id: "00000000-0000-0000-0000-000000000000") { id } }', key=t.admin_key
    )
    assert "Traceback" not in caplog.text and "NotFound" not in caplog.text


async def test_an_unknown_operation_name_no_encoder_can_write_is_a_400(api):
    """Strawberry's reason echoes the operationName: a lone surrogate in it (JSON's "\\ud800")
    made the plain-text answer fail to encode, a 500 instead of this 400."""
    t = await api.create_workspace("launch")
    response = await api.client.post(
        "/graphql",
        content=json.dumps({"query": "query A { plans { code } }", "operationName": "x\ud800"}),
        headers={"Authorization": f"Bearer {t.admin_key}", "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error == {
        "message": 'Unknown operation named "x\\ud800".',
        "extensions": {"code": "BAD_REQUEST"},
    }
