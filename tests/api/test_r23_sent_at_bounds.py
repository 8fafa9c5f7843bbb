"""R23: a backdated report never slips past a stop; a report from the future is bad input."""

from datetime import timedelta
from decimal import Decimal

from tests.helpers import assert_ledger_matches, last_ledger_id, ledger_rows

PROFILE = {"kind": "ENRICHMENT", "provider": "linkedin", "dataType": "profile"}  # 0.5 each


async def _stopped_run(api, clock):
    """A run started at 10:00 and stopped at 10:30; the clock then reads 10:31."""
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    run = await api.start_run(t.admin_key, wb)
    clock.shift(timedelta(minutes=30))
    await api.end_run(t.admin_key, run["id"])
    clock.shift(timedelta(minutes=1))
    return t, wb, run


async def test_r23_a_sent_at_before_the_run_started_is_invalid_input(api, clock):
    t, wb, run = await _stopped_run(api, clock)
    since = await last_ledger_id(t.id)
    for sent in ("2000-01-01T00:00:00+00:00", "2025-01-31T09:59:59+00:00"):
        code = await api.error_code(
            """mutation($i: RecordUsageInput!) { recordUsage(input: $i) { __typename } }""",
            {
                "i": {
                    "workbookId": wb,
                    "runId": run["id"],
                    "results": 10,
                    "sentAt": sent,
                    "idempotencyKey": f"backdated-{sent}",
                    **PROFILE,
                }
            },
            key=t.admin_key,
        )
        assert code == "INVALID_INPUT", sent
    # The run's own start is the earliest a result may have been sent: it is charged.
    charged = await api.record_usage(
        t.admin_key, wb, runId=run["id"], results=10, sentAt=run["createdAt"], **PROFILE
    )
    assert (charged["__typename"], charged["dataCredits"]) == ("Charge", "5")
    rows = await ledger_rows(t.id, since)
    assert rows == [
        ("CHARGE", "ACTIONS", -10, 14_990),
        ("CHARGE", "DATA_CREDITS", -50_000, 24_950_000),
    ]
    await assert_ledger_matches(t.id)


async def test_r23_a_sent_at_over_five_minutes_ahead_of_the_server_is_invalid_input(api, clock):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    run = await api.start_run(t.admin_key, wb)
    since = await last_ledger_id(t.id)
    message = await api.raw(
        """mutation($i: RecordUsageInput!) { recordUsage(input: $i) { __typename } }""",
        {
            "i": {
                "workbookId": wb,
                "runId": run["id"],
                "results": 1,
                "sentAt": "2025-01-31T10:05:01+00:00",  # the clock reads 10:00
                "idempotencyKey": "ahead",
                **PROFILE,
            }
        },
        key=t.admin_key,
    )
    assert message["errors"][0]["extensions"]["code"] == "INVALID_INPUT"
    assert "more than 5 minutes past the server's clock" in message["errors"][0]["message"]
    assert await ledger_rows(t.id, since) == []
    # Exactly five minutes ahead is within a client's clock skew; without a run too.
    ok = await api.record_usage(
        t.admin_key, wb, runId=run["id"], results=1, sentAt="2025-01-31T10:05:00Z", **PROFILE
    )
    assert ok["dataCredits"] == "0.5"
    no_run = await api.record_usage(
        t.admin_key, wb, results=1, sentAt="2025-01-31T10:05:00Z", **PROFILE
    )
    assert no_run["dataCredits"] == "0.5"
    assert await api.credits(t.admin_key) == {"balance": "2499", "held": "0", "available": "2499"}


async def test_r23_one_backdated_item_fails_the_whole_batch_and_charges_nothing(api, clock):
    t, wb, run = await _stopped_run(api, clock)
    since = await last_ledger_id(t.id)
    items = [
        {"workbookId": wb, "runId": run["id"], "results": 1, "idempotencyKey": f"b{n}", **PROFILE}
        for n in range(2)
    ]
    items[0]["sentAt"] = "2025-01-31T10:10:00+00:00"
    items[1]["sentAt"] = "1999-12-31T23:59:59+00:00"
    body = await api.raw(
        "mutation($i: RecordUsageBatchInput!) { recordUsageBatch(input: $i) { charged } }",
        {"i": {"items": items}},
        key=t.admin_key,
    )
    error = body["errors"][0]
    assert error["extensions"]["code"] == "INVALID_INPUT"
    assert error["message"].startswith("items[1]: sentAt 1999-12-31T23:59:59+00:00 is before")
    assert await ledger_rows(t.id, since) == []
    assert await api.meters(t.admin_key) == (0, Decimal("2500"))
