"""recordUsage: what each kind costs on both meters, and the refusals (R2–R10, R25)."""

from decimal import Decimal

from app.db import connection, fetch
from app.kinds import FREE_KINDS, UsageKind

BILLABLE_WITHOUT_PROVIDER = [
    k for k in UsageKind if k not in FREE_KINDS and k not in (UsageKind.ENRICHMENT, UsageKind.AI)
]


async def ledger_count(workspace_id: str) -> int:
    rows = await fetch(
        connection(), "SELECT COUNT(*) AS n FROM ledger_entry WHERE workspace_id = $1", workspace_id
    )
    return int(rows[0]["n"])


async def test_r02_every_billable_kind_costs_one_action_per_result(api):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    for kind in BILLABLE_WITHOUT_PROVIDER:
        charge = await api.record_usage(t.admin_key, wb, kind=kind.value, results=3)
        assert (charge["actions"], charge["dataCredits"], charge["kind"]) == (3, "0", kind.value)
    enrichment = await api.record_usage(
        t.admin_key, wb, kind="ENRICHMENT", provider="clearbit", dataType="company", results=3
    )
    ai = await api.record_usage(
        t.admin_key, wb, kind="AI", model="small", results=3, inputTokens=1000, outputTokens=500
    )
    assert (enrichment["actions"], enrichment["dataCredits"]) == (3, "3")
    assert (ai["actions"], ai["dataCredits"]) == (3, "0.15")
    assert await api.meters(t.admin_key) == (3 * 12, Decimal("2500") - Decimal("3.15"))


async def test_r03_free_kinds_cost_nothing_and_are_recorded(api):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    before = await ledger_count(t.id)
    for kind in sorted(FREE_KINDS):
        charge = await api.record_usage(t.admin_key, wb, kind=kind.value, results=100, tableId="t1")
        assert (charge["actions"], charge["dataCredits"], charge["results"]) == (0, "0", 100)
    assert await api.meters(t.admin_key) == (0, Decimal("2500"))
    assert await ledger_count(t.id) == before  # nothing moved, so no ledger entry
    rows = await fetch(
        connection(), "SELECT COUNT(*) AS n FROM charge WHERE workspace_id = $1", t.id
    )
    assert int(rows[0]["n"]) == 9  # but every free operation is on record for history (R24)


async def test_r04_charged_per_successful_result(api):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    # 100 lookups, 90 emails found: the client reports the 90 successful results.
    charge = await api.record_usage(
        t.admin_key, wb, kind="ENRICHMENT", provider="hunter", dataType="email", results=90
    )
    assert (charge["actions"], charge["dataCredits"]) == (90, "45")
    assert await api.meters(t.admin_key) == (90, Decimal("2455"))


async def test_r04_billable_kind_without_provider_costs_actions_only(api):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    charge = await api.record_usage(t.admin_key, wb, kind="HTTP_API_CALL", results=10)
    assert (charge["actions"], charge["dataCredits"]) == (10, "0")
    assert await api.meters(t.admin_key) == (10, Decimal("2500"))


async def test_r04_unknown_provider_or_data_type_is_invalid_input(api):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    cases = [
        ({"provider": "nope", "dataType": "email"}, "unknown provider 'nope'"),
        (
            {"provider": "linkedin", "dataType": "phone"},
            "provider 'linkedin' has no data type 'phone'",
        ),
        ({}, "an ENRICHMENT needs a provider and dataType"),
        ({"provider": "linkedin"}, "provider and dataType go together"),
    ]
    for fields, message in cases:
        body = await api.raw(
            "mutation($i: RecordUsageInput!) { recordUsage(input: $i) { __typename } }",
            {
                "i": {
                    "workbookId": wb,
                    "kind": "ENRICHMENT",
                    "results": 1,
                    "idempotencyKey": f"bad-{message[:10]}",
                    **fields,
                }
            },
            key=t.admin_key,
        )
        assert body["errors"][0]["extensions"]["code"] == "INVALID_INPUT"
        assert message in body["errors"][0]["message"]
    assert await api.meters(t.admin_key) == (0, Decimal("2500"))


async def test_r04_price_row_of_another_kind_is_invalid_input(api):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    code = await api.error_code(
        "mutation($i: RecordUsageInput!) { recordUsage(input: $i) { __typename } }",
        {
            "i": {
                "workbookId": wb,
                "kind": "SIGNAL",
                "results": 1,
                "provider": "linkedin",
                "dataType": "profile",
                "idempotencyKey": "x",
            }
        },
        key=t.admin_key,
    )
    assert code == "INVALID_INPUT"


async def test_r05_own_api_key_costs_one_action_and_no_credits(api):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    charge = await api.record_usage(
        t.admin_key,
        wb,
        kind="ENRICHMENT",
        provider="apollo",
        dataType="phone",
        results=90,
        ownApiKey=True,
    )
    assert (charge["actions"], charge["dataCredits"], charge["ownApiKey"]) == (90, "0", True)
    assert await api.meters(t.admin_key) == (90, Decimal("2500"))
    entries = await api.ledger(t.admin_key)
    assert [(e["entryType"], e["meter"], e["amount"]) for e in entries[:1]] == [
        ("CHARGE", "ACTIONS", "-90")
    ]


async def test_r06_ai_priced_by_model_tokens_and_free_with_own_ai_key(api):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    large = await api.record_usage(
        t.admin_key, wb, kind="AI", model="large", results=1, inputTokens=333, outputTokens=777
    )
    tiny = await api.record_usage(
        t.admin_key, wb, kind="AI", model="small", results=1, inputTokens=1, outputTokens=0
    )
    own = await api.record_usage(
        t.admin_key,
        wb,
        kind="AI",
        model="gpt-whatever",
        results=1,
        inputTokens=50000,
        outputTokens=50000,
        ownApiKey=True,
    )
    assert [c["dataCredits"] for c in (large, tiny, own)] == ["1.7205", "0.0001", "0"]
    assert await api.meters(t.admin_key) == (3, Decimal("2500") - Decimal("1.7206"))


async def test_r06_ai_needs_a_known_model_without_own_key(api):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    for fields, message in [
        ({}, "AI usage needs a model"),
        ({"model": "huge"}, "unknown AI model 'huge'"),
        ({"model": "small", "inputTokens": -1}, "inputTokens must be between 0"),
        # Priced by its tokens: without any, an AI charge would cost no Data Credits at all.
        ({"model": "small"}, "AI usage with model 'small' needs its inputTokens"),
        ({"model": "small", "inputTokens": 0, "outputTokens": 0}, "needs its inputTokens"),
    ]:
        body = await api.raw(
            "mutation($i: RecordUsageInput!) { recordUsage(input: $i) { __typename } }",
            {"i": {"workbookId": wb, "kind": "AI", "results": 1, "idempotencyKey": "a", **fields}},
            key=t.admin_key,
        )
        assert body["errors"][0]["extensions"]["code"] == "INVALID_INPUT"
        assert message in body["errors"][0]["message"]
    assert await api.meters(t.admin_key) == (0, Decimal("2500"))


async def test_r06_ai_tokens_may_be_left_out_with_own_ai_key_or_for_one_side(api):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    own = await api.record_usage(t.admin_key, wb, kind="AI", model="any", results=2, ownApiKey=True)
    only_in = await api.record_usage(
        t.admin_key, wb, kind="AI", model="small", results=1, inputTokens=2000
    )
    assert [(c["actions"], c["dataCredits"]) for c in (own, only_in)] == [(2, "0"), (1, "0.1")]
    assert await api.meters(t.admin_key) == (3, Decimal("2499.9"))


async def test_r08_worked_example_comes_to_95_then_50_with_own_email_key(api):
    async def run(own_email_key: bool) -> tuple[Decimal, int]:
        t = await api.create_workspace("launch")
        wb = await api.create_workbook(t.admin_key)
        key = t.admin_key
        steps = [
            await api.record_usage(key, wb, kind="SOURCING", results=100),
            await api.record_usage(
                key, wb, kind="ENRICHMENT", provider="linkedin", dataType="profile", results=100
            ),
            await api.record_usage(
                key,
                wb,
                kind="ENRICHMENT",
                provider="hunter",
                dataType="email",
                results=90,
                ownApiKey=own_email_key,
            ),
            await api.record_usage(
                key,
                wb,
                kind="ENRICHMENT",
                provider="zerobounce",
                dataType="email_validation",
                results=90,
                ownApiKey=own_email_key,
            ),
        ]
        used, balance = await api.meters(key)
        assert sum(Decimal(s["dataCredits"]) for s in steps) == Decimal("2500") - balance
        return Decimal("2500") - balance, used

    assert await run(own_email_key=False) == (Decimal("95"), 280)
    assert await run(own_email_key=True) == (Decimal("50"), 280)


async def test_r09_actions_exhausted_even_with_credits_left(api):
    t = await api.create_workspace("free")  # 500 Actions, 100 Data Credits
    wb = await api.create_workbook(t.admin_key)
    await api.record_usage(t.admin_key, wb, kind="CRM_EXPORT", results=499)
    too_many = await api.record_usage(t.admin_key, wb, kind="CRM_EXPORT", results=2)
    assert too_many["__typename"] == "Refusal" and too_many["code"] == "ACTIONS_EXHAUSTED"
    await api.record_usage(t.admin_key, wb, kind="CRM_EXPORT", results=1)
    refused = await api.record_usage(
        t.admin_key, wb, kind="ENRICHMENT", provider="linkedin", dataType="profile", results=1
    )
    assert refused == {
        "__typename": "Refusal",
        "code": "ACTIONS_EXHAUSTED",
        "message": refused["message"],
    }
    assert "needs 1 Actions and 0 remain" in refused["message"]
    assert await api.meters(t.admin_key) == (500, Decimal("100"))
    free = await api.record_usage(t.admin_key, wb, kind="SOURCING", results=50)
    assert free["__typename"] == "Charge"  # free work goes on (R3)


async def test_r10_insufficient_credits_moves_neither_meter(api):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)
    await api.record_usage(
        t.admin_key, wb, kind="ENRICHMENT", provider="apollo", dataType="phone", results=499
    )  # 2495 credits
    refused = await api.record_usage(
        t.admin_key, wb, kind="ENRICHMENT", provider="apollo", dataType="phone", results=2
    )  # 10 > 5 left
    assert refused["code"] == "INSUFFICIENT_DATA_CREDITS"
    assert "costs 10 Data Credits and the balance is 5" in refused["message"]
    assert await api.meters(t.admin_key) == (499, Decimal("5"))
    exact = await api.record_usage(
        t.admin_key, wb, kind="ENRICHMENT", provider="apollo", dataType="phone", results=1
    )
    assert exact["dataCredits"] == "5"
    assert await api.meters(t.admin_key) == (500, Decimal("0"))
    own = await api.record_usage(
        t.admin_key,
        wb,
        kind="ENRICHMENT",
        provider="apollo",
        dataType="phone",
        results=1,
        ownApiKey=True,
    )
    assert own["__typename"] == "Charge"
    assert await api.meters(t.admin_key) == (501, Decimal("0"))


async def test_r25_actions_refusal_comes_before_credits(api):
    t = await api.create_workspace("free")
    wb = await api.create_workbook(t.admin_key)
    await api.record_usage(
        t.admin_key, wb, kind="ENRICHMENT", provider="apollo", dataType="phone", results=20
    )  # all 100 credits, 20 Actions
    await api.record_usage(t.admin_key, wb, kind="CRM_EXPORT", results=480)
    refused = await api.record_usage(
        t.admin_key, wb, kind="ENRICHMENT", provider="linkedin", dataType="profile", results=1
    )
    assert refused["code"] == "ACTIONS_EXHAUSTED"
    assert await api.meters(t.admin_key) == (500, Decimal("0"))
