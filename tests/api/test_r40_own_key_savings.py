"""Own-key savings (issue 18, R5, R24, R40): usage history's ownKeyResults and ownKeySavings,
the results delivered with the customer's own key and what they would have cost at the
catalog price in force when each was recorded, across a price change."""

from datetime import UTC, datetime

from app.catalog.changes import apply_catalog
from app.clock import utcnow
from tests.api.test_r40_catalog_changes import DEFAULT, LINKEDIN_075, changed, restore, year

HISTORY = """query($g: [UsageDimension!]!) {
  usageHistory(from: "2108-01-01T00:00:00Z", to: "2108-01-03T00:00:00Z", groupBy: $g) {
    day kind provider results dataCredits ownKeyResults ownKeySavings } }"""
LARGE_IN_1 = ('input_credits_per_1k = "0.5"', 'input_credits_per_1k = "1"')


async def test_r40_own_key_savings_are_priced_when_each_result_was_recorded(api):
    with year(2108) as clock:
        try:
            await _savings(api, clock)
        finally:
            await restore()


async def _savings(api, clock):
    t = await api.create_workspace("launch")
    wb = await api.create_workbook(t.admin_key)

    async def use(**fields):
        charge = await api.record_usage(t.admin_key, wb, **fields)
        assert charge["__typename"] == "Charge", charge
        return charge

    linkedin = {"kind": "ENRICHMENT", "provider": "linkedin", "dataType": "profile"}
    large = {"kind": "AI", "model": "large", "inputTokens": 1000, "outputTokens": 500}
    own = {"ownApiKey": True}
    first = await use(**linkedin, **own, results=10)  # would be 10 x 0.5 = 5
    await use(**linkedin, results=4)  # charged: 2, not own-key
    for _ in range(2):
        await use(**large, **own, results=1)  # would be 0.5 + 1 = 1.5 each
    await use(kind="AI", model="gpt-own", inputTokens=5, **own, results=1)  # not in the catalog
    change = datetime(2108, 1, 1, 12, tzinfo=UTC)
    await apply_catalog(changed(DEFAULT, LINKEDIN_075, LARGE_IN_1), change, utcnow)
    clock.move_to(change)
    await use(**linkedin, **own, results=10)  # would be 10 x 0.75 = 7.5
    await use(**large, **own, results=1)  # would be 1 + 1 = 2
    clock.move_to(datetime(2108, 1, 2, 9, tzinfo=UTC))
    await use(kind="ENRICHMENT", provider="apollo", dataType="phone", **own, results=2)  # 10
    refunded = await api.refund(t.admin_key, first["id"], results=3)
    assert refunded["dataCredits"] == "0"  # an own-key charge took none

    by_day = (await api.gql(HISTORY, {"g": ["DAY", "KIND"]}, key=t.admin_key))["usageHistory"]
    assert [
        (r["day"], r["kind"], r["results"], r["dataCredits"], r["ownKeyResults"],
         r["ownKeySavings"])
        for r in by_day
    ] == [
        ("2108-01-01", "AI", 4, "0", 4, "5"),
        ("2108-01-01", "ENRICHMENT", 24, "2", 20, "12.5"),
        ("2108-01-02", "ENRICHMENT", 2, "0", 2, "10"),
    ]  # fmt: skip
    by_provider = (await api.gql(HISTORY, {"g": ["PROVIDER"]}, key=t.admin_key))["usageHistory"]
    assert {r["provider"]: (r["ownKeyResults"], r["ownKeySavings"]) for r in by_provider} == {
        "apollo": (2, "10"),
        "gpt-own": (1, "0"),
        "large": (3, "5"),
        "linkedin": (20, "12.5"),
    }
    [total] = (await api.gql(HISTORY, {"g": []}, key=t.admin_key))["usageHistory"]
    assert (total["results"], total["ownKeyResults"], total["ownKeySavings"]) == (30, 26, "27.5")
    # A query that does not ask for them reads no charge, and its rows are as before.
    plain = await api.gql(
        """{ usageHistory(from: "2108-01-01T00:00:00Z", to: "2108-01-03T00:00:00Z",
             groupBy: [DAY]) { day results } }""",
        key=t.admin_key,
    )
    assert plain["usageHistory"] == [
        {"day": "2108-01-01", "results": 28},
        {"day": "2108-01-02", "results": 2},
    ]
