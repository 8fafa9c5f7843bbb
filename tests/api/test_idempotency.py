"""R13: a client key per charge or refund; retries change nothing, refusals leave no trace."""

from decimal import Decimal

from app.db import connection, fetch
from tests.helpers import CHARGE_FIELDS, REFUND_FIELDS

RECORD = f"mutation($i: RecordUsageInput!) {{ recordUsage(input: $i) {{ {CHARGE_FIELDS} }} }}"
REFUND = f"mutation($i: RefundInput!) {{ refundCharge(input: $i) {{ {REFUND_FIELDS} }} }}"


def usage(wb, key, results=10, provider="linkedin", data_type="profile"):
    return {
        "i": {
            "workbookId": wb,
            "kind": "ENRICHMENT",
            "provider": provider,
            "dataType": data_type,
            "results": results,
            "idempotencyKey": key,
        }
    }


async def test_r13_retry_returns_the_first_result_and_changes_nothing(api):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    first = (await api.gql(RECORD, usage(wb, "retry-1"), key=t.admin_key))["recordUsage"]
    ledger_after_first = await api.ledger(t.admin_key)
    for _ in range(3):
        again = (await api.gql(RECORD, usage(wb, "retry-1"), key=t.admin_key))["recordUsage"]
        assert again == first
    assert await api.meters(t.admin_key) == (10, Decimal("2495"))
    assert await api.ledger(t.admin_key) == ledger_after_first
    rows = await fetch(
        connection(), "SELECT COUNT(*) AS n FROM charge WHERE workspace_id = $1", t.id
    )
    assert int(rows[0]["n"]) == 1


async def test_r13_same_key_with_a_different_request_is_refused(api):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    await api.gql(RECORD, usage(wb, "k1", results=10), key=t.admin_key)
    reused = (await api.gql(RECORD, usage(wb, "k1", results=11), key=t.admin_key))["recordUsage"]
    assert reused["__typename"] == "Refusal" and reused["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert await api.meters(t.admin_key) == (10, Decimal("2495"))


async def test_r13_a_refused_request_leaves_no_trace_and_may_be_retried(api):
    t = await api.create_workspace("enterprise")
    wb = await api.create_workbook(t.admin_key)
    await api.set_limit(t.admin_key, wb, "1")
    refused = (await api.gql(RECORD, usage(wb, "later", results=4), key=t.admin_key))["recordUsage"]
    assert refused["code"] == "WORKBOOK_SPEND_LIMIT_REACHED"
    rows = await fetch(
        connection(), "SELECT COUNT(*) AS n FROM idempotency_record WHERE workspace_id = $1", t.id
    )
    assert int(rows[0]["n"]) == 0
    await api.set_limit(t.admin_key, wb, "10")  # the cause is gone
    retried = (await api.gql(RECORD, usage(wb, "later", results=4), key=t.admin_key))["recordUsage"]
    assert (retried["__typename"], retried["dataCredits"]) == ("Charge", "2")


async def test_r13_keys_are_per_workspace(api):
    a = await api.create_workspace("launch")
    b = await api.create_workspace("launch")
    wa, wb = await api.create_workbook(a.admin_key), await api.create_workbook(b.admin_key)
    ca = (await api.gql(RECORD, usage(wa, "shared"), key=a.admin_key))["recordUsage"]
    cb = (await api.gql(RECORD, usage(wb, "shared"), key=b.admin_key))["recordUsage"]
    assert ca["id"] != cb["id"]
    assert await api.meters(a.admin_key) == await api.meters(b.admin_key) == (10, Decimal("2495"))


async def test_r13_a_charges_key_cannot_be_reused_for_a_refund(api):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    charge = (await api.gql(RECORD, usage(wb, "one-key"), key=t.admin_key))["recordUsage"]
    refund = (
        await api.gql(
            REFUND, {"i": {"chargeId": charge["id"], "idempotencyKey": "one-key"}}, key=t.admin_key
        )
    )["refundCharge"]
    assert refund["code"] == "IDEMPOTENCY_KEY_REUSED"


async def test_r13_refund_retry_returns_the_same_refund_once(api):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    charge = (await api.gql(RECORD, usage(wb, "c"), key=t.admin_key))["recordUsage"]
    variables = {"i": {"chargeId": charge["id"], "results": 2, "idempotencyKey": "r"}}
    first = (await api.gql(REFUND, variables, key=t.admin_key))["refundCharge"]
    again = (await api.gql(REFUND, variables, key=t.admin_key))["refundCharge"]
    assert again == first and first["dataCredits"] == "1"
    assert await api.meters(t.admin_key) == (10, Decimal("2496"))


async def test_r13_key_length_is_at_most_255(api):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    ok = (await api.gql(RECORD, usage(wb, "k" * 255), key=t.admin_key))["recordUsage"]
    assert ok["__typename"] == "Charge"
    body = await api.raw(RECORD, usage(wb, "k" * 256), key=t.admin_key)
    assert body["errors"][0]["extensions"]["code"] == "INVALID_INPUT"
    assert "256 characters long; at most 255" in body["errors"][0]["message"]
    body = await api.raw(RECORD, usage(wb, "x" * 100_000), key=t.admin_key)
    assert body["errors"][0]["extensions"]["code"] == "INVALID_INPUT"
    assert await api.meters(t.admin_key) == (10, Decimal("2495"))
