"""Regressions found in review: a limit set mid-request, retries spelled differently, a retry
after a catalog edit, and inputs that used to reach the database unchecked."""

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from graphql import GraphQLError

import app.usage.charging as charging_service
from app.catalog import load_catalog
from app.catalog.changes import apply_catalog
from app.catalog.files import dump_catalog
from app.clock import utcnow
from app.db import connection, fetch
from app.errors import InvalidInput
from app.kinds import UsageKind
from app.workspaces.workbooks import set_spend_limit
from graphql_schema.errors import client_error
from tests.helpers import CHARGE_FIELDS

RECORD = f"mutation($i: RecordUsageInput!) {{ recordUsage(input: $i) {{ {CHARGE_FIELDS} }} }}"


async def test_r11_a_limit_set_while_a_charge_is_priced_is_enforced(api, monkeypatch):
    t = await api.create_workspace("enterprise")
    wb = await api.create_workbook(t.admin_key)
    real_cost_of = charging_service.cost_of

    async def limit_lands_meanwhile(usage, *args, **kwargs):
        # The admin's limit commits after the charge read the workbook, before it charges.
        await set_spend_limit(uuid.UUID(t.id), wb, 0, datetime.now(UTC))
        return await real_cost_of(usage, *args, **kwargs)

    monkeypatch.setattr(charging_service, "cost_of", limit_lands_meanwhile)
    refused = await api.record_usage(
        t.admin_key, wb, kind="ENRICHMENT", provider="linkedin", dataType="profile", results=10
    )
    assert refused["code"] == "WORKBOOK_SPEND_LIMIT_REACHED"
    assert await api.meters(t.admin_key) == (0, Decimal("600000"))


async def test_r13_a_retry_spelling_the_workbook_id_differently_replays(api):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    payload = {
        "workbookId": wb,
        "kind": "CRM_EXPORT",
        "results": 2,
        "idempotencyKey": "spell",
        "sentAt": "2026-11-25T10:00:00+00:00",
    }
    first = (await api.gql(RECORD, {"i": payload}, key=t.admin_key))["recordUsage"]
    retry = {
        **payload,
        "workbookId": wb.upper().replace("-", ""),
        "sentAt": "2026-11-25T11:00:00+01:00",
    }  # the same instant
    again = (await api.gql(RECORD, {"i": retry}, key=t.admin_key))["recordUsage"]
    assert again == first
    assert await api.meters(t.admin_key) == (2, Decimal("2500"))


async def test_r13_a_retry_after_its_price_was_removed_still_replays(api):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    default = dump_catalog(load_catalog())
    extra = '[[prices]]\nprovider = "reviewco"\ndata_type = "fact"\ncredits = "2"\n'
    # From now on, reviewco/fact is priced; then, from a later now, it is not (R40).
    await apply_catalog(default + extra, None, utcnow)
    payload = {
        "workbookId": wb,
        "kind": "ENRICHMENT",
        "provider": "reviewco",
        "dataType": "fact",
        "results": 3,
        "idempotencyKey": "priced",
    }
    try:
        first = (await api.gql(RECORD, {"i": payload}, key=t.admin_key))["recordUsage"]
    finally:
        await apply_catalog(default, None, utcnow)
    again = (await api.gql(RECORD, {"i": payload}, key=t.admin_key))["recordUsage"]
    assert again == first and first["dataCredits"] == "6"
    other = {**payload, "idempotencyKey": "never-used"}
    assert await api.error_code(RECORD, {"i": other}, key=t.admin_key) == "INVALID_INPUT"
    assert await api.meters(t.admin_key) == (3, Decimal("2494"))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kind": "SOURCING", "provider": "p" * 65, "dataType": "x"}, "provider is 65 characters"),
        ({"kind": "SOURCING", "provider": "x", "dataType": "d" * 65}, "dataType is 65 characters"),
        ({"kind": "AI", "ownApiKey": True, "model": "m" * 65}, "model is 65 characters"),
        ({"kind": "CRM_EXPORT", "idempotencyKey": "a\x00b"}, "must not contain NUL"),
        ({"kind": "CRM_EXPORT", "tableId": "t\x00"}, "tableId must not contain NUL"),
        (
            {"kind": "SOURCING", "provider": "x\x00", "dataType": "y"},
            "provider must not contain NUL",
        ),
    ],
)
async def test_labels_and_nul_characters_are_invalid_input(api, fields, message):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    body = await api.raw(
        RECORD,
        {"i": {"workbookId": wb, "results": 1, "idempotencyKey": "n", **fields}},
        key=t.admin_key,
    )
    [error] = body["errors"]
    assert error["extensions"] == {"code": "INVALID_INPUT"}
    assert message in error["message"]
    assert await api.meters(t.admin_key) == (0, Decimal("2500"))


async def test_names_reasons_and_plans_with_nul_are_invalid_input(api):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    charge = await api.record_usage(t.admin_key, wb, kind="CRM_EXPORT", results=1)
    attempts = [
        ('mutation { createWorkbook(name: "a\\u0000b") { id } }', None, t.admin_key),
        ('mutation { createApiKey(name: "a\\u0000", role: MEMBER) { secret } }', None, t.admin_key),
        (
            "mutation($i: RefundInput!) { refundCharge(input: $i) { __typename } }",
            {"i": {"chargeId": charge["id"], "reason": "bad\x00", "idempotencyKey": "r"}},
            t.admin_key,
        ),
        (
            'mutation { createWorkspace(input: {name: "x", plan: "free\\u0000"}) { adminKey } }',
            None,
            api.operator_key,
        ),
    ]
    for query, variables, key in attempts:
        assert await api.error_code(query, variables, key=key) == "INVALID_INPUT"


async def test_r11_an_absurd_limit_is_invalid_input(api):
    t = await api.create_workspace("enterprise")
    wb = await api.create_workbook(t.admin_key)
    body = await api.raw(
        "mutation($w: ID!, $l: Decimal) { setWorkbookSpendLimit(workbookId: $w, limit: $l)"
        " { __typename } }",
        {"w": wb, "l": "100000000000000000"},
        key=t.admin_key,
    )
    assert body["errors"][0]["extensions"]["code"] == "INVALID_INPUT"
    assert "at most 1,000,000,000,000 Data Credits" in body["errors"][0]["message"]
    assert (await api.set_limit(t.admin_key, wb, "1000000000000"))["spendLimit"] == "1000000000000"


async def test_r24_a_cursor_out_of_range_is_invalid_input(api):
    import base64

    t = await api.create_workspace("launch")
    for raw in ("ledger:99999999999999999999999", "ledger:-5", "ledger:0"):
        cursor = base64.urlsafe_b64encode(raw.encode()).decode()
        code = await api.error_code(
            "query($a: String) { ledger(after: $a) { edges { cursor } } }",
            {"a": cursor},
            key=t.admin_key,
        )
        assert code == "INVALID_INPUT"


def test_a_pathless_error_with_a_python_exception_behind_it_is_masked():
    leaked = GraphQLError("boom: /etc/secret", original_error=RuntimeError("boom: /etc/secret"))
    masked = client_error(leaked)
    assert (masked.message, masked.extensions) == (
        "Internal server error.",
        {"code": "INTERNAL_SERVER_ERROR"},
    )
    coercion = client_error(GraphQLError("Variable '$x' has invalid value"))
    assert coercion.extensions == {"code": "INVALID_INPUT"}


async def test_r04_a_batch_prices_each_usage_once_yet_checks_each_item(api):
    """Items with equal usages share one price, but `results=True` (equal to 1 in Python) is
    still refused as a count, and the whole batch with it, before anything is charged."""
    t = await api.create_workspace("enterprise")
    wb = await api.create_workbook(t.admin_key)
    assert await api.meters(t.admin_key) == (0, Decimal("600000"))
    ledger_before = await api.ledger(t.admin_key)

    def report(key: str, results: int) -> charging_service.UsageReport:
        usage = charging_service.Usage(UsageKind.ENRICHMENT, results, "linkedin", "profile")
        return charging_service.UsageReport(wb, usage, key)

    with pytest.raises(InvalidInput) as refused:
        await charging_service.charge_batch(
            uuid.UUID(t.id), [report("b-1", 1), report("b-2", True)], datetime.now(UTC)
        )
    assert refused.value.message.startswith("items[1]: results")
    assert await api.meters(t.admin_key) == (0, Decimal("600000"))
    assert await api.ledger(t.admin_key) == ledger_before
    rows = await fetch(
        connection(), "SELECT COUNT(*) AS n FROM charge WHERE workspace_id = $1", t.id
    )
    assert int(rows[0]["n"]) == 0
