"""Runs: budgets (R6), holds, stopping (R23), and the R25 order with a run."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from app.runs.service import expire_holds
from tests.helpers import assert_ledger_matches, last_ledger_id, ledger_rows, new_key, run_jobs

PROFILE = {"kind": "ENRICHMENT", "provider": "linkedin", "dataType": "profile"}  # 0.5 each
PHONE = {"kind": "ENRICHMENT", "provider": "apollo", "dataType": "phone"}  # 5 each


async def test_r06_a_charge_that_would_pass_the_budget_is_refused(api):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    run = await api.start_run(t.admin_key, wb, budget="10", name="Enrich leads")
    assert (run["status"], run["budget"], run["spent"], run["held"]) == ("RUNNING", "10", "0", "0")
    for _ in range(2):
        ok = await api.record_usage(t.admin_key, wb, runId=run["id"], results=10, **PROFILE)
        assert (ok["__typename"], ok["dataCredits"]) == ("Charge", "5")
    refused = await api.record_usage(t.admin_key, wb, runId=run["id"], results=1, **PROFILE)
    assert refused["code"] == "RUN_BUDGET_EXCEEDED"
    assert "has spent 10 of its 10 Data Credit budget; this costs 0.5" in refused["message"]
    # Work that costs no credits still fits a spent budget; the run counts it.
    free = await api.record_usage(t.admin_key, wb, runId=run["id"], kind="CRM_EXPORT", results=3)
    assert free["__typename"] == "Charge"
    after = await api.run(t.admin_key, run["id"])
    assert (after["spent"], after["budgetRemaining"], after["actions"], after["results"]) == (
        "10",
        "0",
        23,
        23,
    )
    assert after["charges"] == 3
    assert await api.meters(t.admin_key) == (23, Decimal("2490"))  # (Actions used, balance)
    await assert_ledger_matches(t.id)


async def test_r25_the_run_budget_is_checked_last(api):
    t = await api.create_workspace("enterprise")
    wb = await api.create_workbook(t.admin_key)
    await api.set_limit(t.admin_key, wb, "4")
    run = await api.start_run(t.admin_key, wb, budget="3")
    over_both = await api.record_usage(t.admin_key, wb, runId=run["id"], results=10, **PROFILE)
    assert over_both["code"] == "WORKBOOK_SPEND_LIMIT_REACHED"
    over_budget = await api.record_usage(t.admin_key, wb, runId=run["id"], results=7, **PROFILE)
    assert over_budget["code"] == "RUN_BUDGET_EXCEEDED"
    # Credits before the budget: a run on a workspace with too few credits says so.
    poor = await api.create_workspace("free")
    poor_wb = await api.create_workbook(poor.admin_key)
    poor_run = await api.start_run(poor.admin_key, poor_wb, budget="1")
    short = await api.record_usage(
        poor.admin_key, poor_wb, runId=poor_run["id"], results=21, **PHONE
    )
    assert short["code"] == "INSUFFICIENT_DATA_CREDITS"


async def test_r06_a_hold_sets_credits_aside_that_only_its_run_may_spend(api):
    t = await api.create_workspace("launch")  # 2,500 credits
    wb = await api.create_workbook(t.admin_key)
    since = await last_ledger_id(t.id)
    run = await api.start_run(t.admin_key, wb, hold="2000", budget="2400", tableId="people")
    assert (run["held"], run["holdPlaced"], run["tableId"]) == ("2000", "2000", "people")
    assert await api.credits(t.admin_key) == {"balance": "2500", "held": "2000", "available": "500"}
    outside = await api.record_usage(t.admin_key, wb, results=120, **PHONE)  # 600 > 500
    assert outside["code"] == "INSUFFICIENT_DATA_CREDITS"
    assert "600 Data Credits and 500 are available" in outside["message"]
    inside = await api.record_usage(t.admin_key, wb, runId=run["id"], results=240, **PHONE)
    assert (inside["dataCredits"], inside["tableId"]) == ("1200", "people")
    assert await api.credits(t.admin_key) == {"balance": "1300", "held": "800", "available": "500"}
    # Past its hold, a run spends from the available credits like any work.
    more = await api.record_usage(t.admin_key, wb, runId=run["id"], results=180, **PHONE)
    assert more["dataCredits"] == "900"
    assert await api.credits(t.admin_key) == {"balance": "400", "held": "0", "available": "400"}
    stopped = await api.end_run(t.admin_key, run["id"])
    assert (stopped["status"], stopped["held"], stopped["spent"]) == ("STOPPED", "0", "2100")
    rows = await ledger_rows(t.id, since)
    assert rows == [
        ("HOLD", "HELD_CREDITS", 20_000_000, 20_000_000),
        ("CHARGE", "ACTIONS", -240, 14_760),
        ("CHARGE", "DATA_CREDITS", -12_000_000, 13_000_000),
        ("SETTLE", "HELD_CREDITS", -12_000_000, 8_000_000),
        ("CHARGE", "ACTIONS", -180, 14_580),
        ("CHARGE", "DATA_CREDITS", -9_000_000, 4_000_000),
        ("SETTLE", "HELD_CREDITS", -8_000_000, 0),
    ]
    await assert_ledger_matches(t.id)


async def test_r06_stopping_or_finishing_releases_the_unused_hold(api):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    run = await api.start_run(t.admin_key, wb, hold="100")
    await api.record_usage(t.admin_key, wb, runId=run["id"], results=10, **PHONE)  # 50
    since = await last_ledger_id(t.id)
    finished = await api.end_run(t.admin_key, run["id"], "finishRun")
    assert (finished["status"], finished["held"], finished["holdExpiresAt"]) == (
        "FINISHED",
        "0",
        None,
    )
    assert await ledger_rows(t.id, since) == [("RELEASE", "HELD_CREDITS", -500_000, 0)]
    assert await api.credits(t.admin_key) == {"balance": "2450", "held": "0", "available": "2450"}
    # Ending an ended run changes nothing, whichever way.
    assert await api.end_run(t.admin_key, run["id"]) == finished
    assert await ledger_rows(t.id, since) == [("RELEASE", "HELD_CREDITS", -500_000, 0)]
    await assert_ledger_matches(t.id)


async def test_r06_hold_minutes_are_checked_and_named_in_minutes(api):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    for minutes, got in ((0, "0"), (-5, "-5"), (10_081, "10,081"), (100_000, "100,000")):
        body = await api.raw(
            "mutation($i: StartRunInput!) { startRun(input: $i) { id } }",
            {"i": {"workbookId": wb, "idempotencyKey": new_key(), "holdMinutes": minutes}},
            key=t.admin_key,
        )
        [error] = body["errors"]
        assert error["extensions"] == {"code": "INVALID_INPUT"}
        assert error["message"] == f"holdMinutes must be between 1 and 10,080; got {got}"
    run = await api.start_run(t.admin_key, wb, hold="10", holdMinutes=1)
    assert run["held"] == "10"
    assert (await api.start_run(t.admin_key, wb, holdMinutes=10_080))["status"] == "RUNNING"


async def test_r06_a_hold_needs_available_credits_and_fits_the_budget(api):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    await api.start_run(t.admin_key, wb, hold="2000")
    body = await api.raw(
        "mutation($i: StartRunInput!) { startRun(input: $i) { id } }",
        {"i": {"workbookId": wb, "idempotencyKey": new_key(), "hold": "500.0001"}},
        key=t.admin_key,
    )
    assert body["errors"][0]["extensions"]["code"] == "INSUFFICIENT_DATA_CREDITS"
    assert "needs that many available; 500 are" in body["errors"][0]["message"]
    for fields in ({"hold": "20", "budget": "10"}, {"hold": "-1"}, {"holdMinutes": 0}):
        code = await api.error_code(
            "mutation($i: StartRunInput!) { startRun(input: $i) { id } }",
            {"i": {"workbookId": wb, "idempotencyKey": new_key(), **fields}},
            key=t.admin_key,
        )
        assert code == "INVALID_INPUT", fields
    assert await api.credits(t.admin_key) == {"balance": "2500", "held": "2000", "available": "500"}


async def test_r13_starting_a_run_twice_with_one_key_holds_once(api):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    first = await api.start_run(t.admin_key, wb, hold="300", idempotencyKey="run-once")
    again = await api.start_run(t.admin_key, wb, hold="300", idempotencyKey="run-once")
    assert again["id"] == first["id"]
    assert (await api.credits(t.admin_key))["held"] == "300"
    other = await api.raw(
        "mutation($i: StartRunInput!) { startRun(input: $i) { id } }",
        {"i": {"workbookId": wb, "idempotencyKey": "run-once", "hold": "301"}},
        key=t.admin_key,
    )
    assert other["errors"][0]["extensions"]["code"] == "IDEMPOTENCY_KEY_REUSED"


async def test_r06_a_hold_expires_when_its_run_is_left_alone(api, clock):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    start = datetime(2025, 1, 31, 10, 0, tzinfo=UTC)
    run = await api.start_run(t.admin_key, wb, hold="1000", holdMinutes=30)
    assert run["holdExpiresAt"] == "2025-01-31T10:30:00+00:00"
    clock.move_to(start + timedelta(minutes=20))
    await api.record_usage(t.admin_key, wb, runId=run["id"], results=20, **PHONE)  # 100
    # Activity keeps the hold alive: 30 minutes from the last charge.
    assert (await api.run(t.admin_key, run["id"]))["holdExpiresAt"] == "2025-01-31T10:50:00+00:00"
    assert await expire_holds(start + timedelta(minutes=49)) == 0
    since = await last_ledger_id(t.id)
    assert await expire_holds(start + timedelta(minutes=50)) >= 1
    assert await ledger_rows(t.id, since) == [("RELEASE", "HELD_CREDITS", -9_000_000, 0)]
    left = await api.run(t.admin_key, run["id"])
    assert (left["status"], left["held"], left["holdExpiresAt"]) == ("RUNNING", "0", None)
    assert await api.credits(t.admin_key) == {"balance": "2400", "held": "0", "available": "2400"}
    await assert_ledger_matches(t.id)


async def test_r23_results_sent_before_the_stop_are_still_charged(api, clock):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    run = await api.start_run(t.admin_key, wb, hold="50")
    stop_at = datetime(2025, 1, 31, 10, 5, tzinfo=UTC)
    clock.move_to(stop_at)
    stopped = await api.end_run(t.admin_key, run["id"])
    assert stopped["endedAt"] == "2025-01-31T10:05:00+00:00"
    clock.move_to(stop_at + timedelta(minutes=1))
    before = (stop_at - timedelta(seconds=1)).isoformat()
    late = await api.record_usage(
        t.admin_key, wb, runId=run["id"], results=10, sentAt=before, **PROFILE
    )
    assert (late["__typename"], late["dataCredits"]) == ("Charge", "5")
    for sent in (stop_at.isoformat(), None):
        fields = {} if sent is None else {"sentAt": sent}
        refused = await api.record_usage(
            t.admin_key, wb, runId=run["id"], results=1, **fields, **PROFILE
        )
        assert refused["code"] == "RUN_STOPPED", sent
    free = await api.record_usage(t.admin_key, wb, runId=run["id"], kind="SOURCING", results=5)
    assert free["code"] == "RUN_STOPPED"
    after = await api.run(t.admin_key, run["id"])
    assert (after["status"], after["spent"], after["held"], after["charges"]) == (
        "STOPPED",
        "5",
        "0",
        1,
    )
    assert await api.credits(t.admin_key) == {"balance": "2495", "held": "0", "available": "2495"}
    await assert_ledger_matches(t.id)


async def test_r06_ai_in_a_run_priced_per_model_and_free_with_the_own_key(api):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    run = await api.start_run(t.admin_key, wb, budget="2.5001")
    large = {"kind": "AI", "model": "large", "inputTokens": 1000, "outputTokens": 1000}
    first = await api.record_usage(t.admin_key, wb, runId=run["id"], results=1, **large)
    assert (first["actions"], first["dataCredits"]) == (1, "2.5")
    # 1 input token of `small` is 0.00005 credits: rounded up to 0.0001 per charge (R1, R32).
    tiny = {"kind": "AI", "model": "small", "inputTokens": 1}
    second = await api.record_usage(t.admin_key, wb, runId=run["id"], results=1, **tiny)
    assert second["dataCredits"] == "0.0001"
    refused = await api.record_usage(t.admin_key, wb, runId=run["id"], results=1, **tiny)
    assert refused["code"] == "RUN_BUDGET_EXCEEDED"
    own = await api.record_usage(
        t.admin_key, wb, runId=run["id"], results=1, ownApiKey=True, **large
    )
    assert (own["actions"], own["dataCredits"], own["ownApiKey"]) == (1, "0", True)
    assert (await api.run(t.admin_key, run["id"]))["spent"] == "2.5001"


async def test_r22_a_refund_in_a_run_lowers_its_spend(api):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    run = await api.start_run(t.admin_key, wb, budget="5")
    charge = await api.record_usage(t.admin_key, wb, runId=run["id"], results=10, **PROFILE)
    assert (await api.record_usage(t.admin_key, wb, runId=run["id"], results=1, **PROFILE))[
        "code"
    ] == "RUN_BUDGET_EXCEEDED"
    await api.refund(t.admin_key, charge["id"], results=4)
    assert (await api.run(t.admin_key, run["id"]))["spent"] == "3"
    again = await api.record_usage(t.admin_key, wb, runId=run["id"], results=4, **PROFILE)
    assert again["__typename"] == "Charge"


async def test_r06_runs_of_another_workspace_or_workbook_are_not_usable(api):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    other_wb = await api.create_workbook(t.admin_key, "Other")
    run = await api.start_run(t.admin_key, wb, tableId="people")
    stranger = await api.create_workspace("launch")
    stranger_wb = await api.create_workbook(stranger.admin_key)
    record = "mutation($i: RecordUsageInput!) { recordUsage(input: $i) { __typename } }"

    async def code(key: str, workbook: str, **fields: object) -> str:
        payload = {"workbookId": workbook, "idempotencyKey": new_key(), "results": 1, **fields}
        return await api.error_code(record, {"i": {**PROFILE, **payload}}, key=key)

    assert await code(stranger.admin_key, stranger_wb, runId=run["id"]) == "NOT_FOUND"
    assert await code(t.admin_key, wb, runId="not-a-run") == "NOT_FOUND"
    assert await code(t.admin_key, other_wb, runId=run["id"]) == "INVALID_INPUT"
    assert await code(t.admin_key, wb, runId=run["id"], tableId="companies") == "INVALID_INPUT"
    query = "query($id: ID!) { run(id: $id) { id } }"
    assert await api.error_code(query, {"id": run["id"]}, key=stranger.admin_key) == "NOT_FOUND"
    stop = "mutation($id: ID!) { stopRun(runId: $id) { id } }"
    assert await api.error_code(stop, {"id": run["id"]}, key=stranger.admin_key) == "NOT_FOUND"


async def test_r06_a_renewal_that_would_take_held_credits_releases_the_holds(api, clock):
    t = await api.create_workspace("growth", trial=True)  # 1,000 credits for 14 days
    wb = await api.create_workbook(t.admin_key)
    run = await api.start_run(t.admin_key, wb, hold="900")
    since = await last_ledger_id(t.id)
    await run_jobs(datetime(2025, 2, 14, 10, 0, tzinfo=UTC), t.id)
    rows = await ledger_rows(t.id, since)
    assert rows[0] == ("RELEASE", "HELD_CREDITS", -9_000_000, 0)
    assert (await api.run(t.admin_key, run["id"]))["held"] == "0"
    assert await api.credits(t.admin_key) == {"balance": "200", "held": "0", "available": "200"}
    await assert_ledger_matches(t.id)


async def test_r06_a_renewal_keeps_holds_the_new_balance_covers(api, clock):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    run = await api.start_run(t.admin_key, wb, hold="2000", holdMinutes=7 * 24 * 60)
    await run_jobs(datetime(2025, 2, 28, 10, 0, tzinfo=UTC), t.id)
    assert (await api.run(t.admin_key, run["id"]))["held"] == "2000"
    assert await api.credits(t.admin_key) == {
        "balance": "5000",
        "held": "2000",
        "available": "3000",
    }
    await assert_ledger_matches(t.id)
