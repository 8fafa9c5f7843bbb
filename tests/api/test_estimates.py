"""R7: estimates for N records, per option, cost nothing."""

import pytest

ESTIMATE = "query($i: EstimateInput!) { estimateCost(input: $i) { actions dataCredits } }"


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"kind": "ENRICHMENT", "provider": "linkedin", "dataType": "profile", "records": 100},
            {"actions": 100, "dataCredits": "50"},
        ),
        (
            {
                "kind": "ENRICHMENT",
                "provider": "apollo",
                "dataType": "phone",
                "records": 100,
                "ownApiKey": True,
            },
            {"actions": 100, "dataCredits": "0"},
        ),
        ({"kind": "SOURCING", "records": 100}, {"actions": 0, "dataCredits": "0"}),
        ({"kind": "CRM_EXPORT", "records": 40}, {"actions": 40, "dataCredits": "0"}),
        # AI: tokens per record, each record's charge rounded up on its own.
        (
            {"kind": "AI", "model": "small", "inputTokens": 1, "records": 10},
            {"actions": 10, "dataCredits": "0.001"},
        ),
        (
            {
                "kind": "AI",
                "model": "large",
                "inputTokens": 1000,
                "outputTokens": 1000,
                "records": 1000,
            },
            {"actions": 1000, "dataCredits": "2500"},
        ),
    ],
)
async def test_r07_estimate_per_option(api, fields, expected):
    t = await api.create_workspace("launch")
    data = await api.gql(ESTIMATE, {"i": fields}, key=t.admin_key)
    assert data["estimateCost"] == expected


async def test_r07_estimating_changes_nothing(api):
    t = await api.create_workspace("launch")
    before = await api.ledger(t.admin_key)
    await api.gql(
        ESTIMATE,
        {"i": {"kind": "ENRICHMENT", "provider": "hunter", "dataType": "email", "records": 1000}},
        key=t.admin_key,
    )
    assert await api.ledger(t.admin_key) == before
    assert (await api.workspace(t.admin_key))["dataCredits"]["balance"] == "2500"


async def test_r07_estimate_validates_like_a_charge(api):
    t = await api.create_workspace("launch")
    for fields in (
        {"kind": "ENRICHMENT", "provider": "x", "dataType": "y", "records": 1},
        {"kind": "CRM_EXPORT", "records": 0},
    ):
        assert await api.error_code(ESTIMATE, {"i": fields}, key=t.admin_key) == "INVALID_INPUT"
