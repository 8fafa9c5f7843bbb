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


RUN_ESTIMATE = """query($i: EstimateInput!) { estimateCost(input: $i) {
  actions dataCredits
  options { kind provider dataType model ownApiKey records results actions dataCredits }
  coverage { covered refusal actionsRemaining actionsCovered dataCreditsAvailable
             dataCreditsCovered workbookLimitRemaining workbookLimitCovered } } }"""

WORKED_EXAMPLE = [  # R8: find 100 people, their profiles, emails found for 90, validated
    {"kind": "SOURCING"},
    {"kind": "ENRICHMENT", "provider": "linkedin", "dataType": "profile"},
    {"kind": "ENRICHMENT", "provider": "hunter", "dataType": "email", "hitRate": "0.9"},
    {
        "kind": "ENRICHMENT",
        "provider": "zerobounce",
        "dataType": "email_validation",
        "records": 90,
    },
]


async def test_r07_r08_a_planned_run_per_option_and_in_total(api):
    t = await api.create_workspace("launch")
    data = await api.gql(
        RUN_ESTIMATE, {"i": {"records": 100, "options": WORKED_EXAMPLE}}, key=t.admin_key
    )
    estimate = data["estimateCost"]
    assert [
        (o["kind"], o["provider"], o["records"], o["results"]) for o in estimate["options"]
    ] == [
        ("SOURCING", None, 100, 100),
        ("ENRICHMENT", "linkedin", 100, 100),
        ("ENRICHMENT", "hunter", 100, 90),
        ("ENRICHMENT", "zerobounce", 90, 90),
    ]
    assert [(o["actions"], o["dataCredits"]) for o in estimate["options"]] == [
        (0, "0"),
        (100, "50"),
        (90, "45"),
        (90, "0"),
    ]
    assert (estimate["actions"], estimate["dataCredits"]) == (280, "95")
    assert estimate["coverage"] == {
        "covered": True,
        "refusal": None,
        "actionsRemaining": 15_000,
        "actionsCovered": True,
        "dataCreditsAvailable": "2500",
        "dataCreditsCovered": True,
        "workbookLimitRemaining": None,
        "workbookLimitCovered": True,
    }
    # With the customer's own email key for the last two steps: 50 (R8, R5).
    own = [dict(o, ownApiKey=True) if i >= 2 else o for i, o in enumerate(WORKED_EXAMPLE)]
    data = await api.gql(RUN_ESTIMATE, {"i": {"records": 100, "options": own}}, key=t.admin_key)
    assert (data["estimateCost"]["actions"], data["estimateCost"]["dataCredits"]) == (280, "50")


async def test_r07_hit_rate_rounds_the_expected_results_up(api):
    t = await api.create_workspace("launch")
    fields = {"kind": "ENRICHMENT", "provider": "apollo", "dataType": "phone", "records": 7}
    data = await api.gql(RUN_ESTIMATE, {"i": {**fields, "hitRate": "0.3333"}}, key=t.admin_key)
    option = data["estimateCost"]["options"][0]
    assert (option["results"], option["actions"], option["dataCredits"]) == (3, 3, "15")
    zero = await api.gql(RUN_ESTIMATE, {"i": {**fields, "hitRate": "0"}}, key=t.admin_key)
    assert (zero["estimateCost"]["actions"], zero["estimateCost"]["dataCredits"]) == (0, "0")
    for bad in ("1.0001", "-0.1", "0.12345"):
        code = await api.error_code(
            RUN_ESTIMATE, {"i": {**fields, "hitRate": bad}}, key=t.admin_key
        )
        assert code == "INVALID_INPUT", bad


async def test_r07_coverage_names_the_first_refusal_the_run_would_meet(api):
    free = await api.create_workspace("free")  # 500 Actions, 100 credits
    phones = {"kind": "ENRICHMENT", "provider": "apollo", "dataType": "phone"}
    credits_short = await api.gql(
        RUN_ESTIMATE, {"i": {"records": 21, **phones}}, key=free.admin_key
    )
    coverage = credits_short["estimateCost"]["coverage"]
    assert (coverage["covered"], coverage["refusal"], coverage["dataCreditsCovered"]) == (
        False,
        "INSUFFICIENT_DATA_CREDITS",
        False,
    )
    assert coverage["actionsCovered"] is True
    # 501 phones are short of both: Actions come first (R25).
    both = await api.gql(RUN_ESTIMATE, {"i": {"records": 501, **phones}}, key=free.admin_key)
    assert both["estimateCost"]["coverage"]["refusal"] == "ACTIONS_EXHAUSTED"
    assert both["estimateCost"]["coverage"]["dataCreditsCovered"] is False


async def test_r07_coverage_counts_held_credits_and_the_workbook_limit(api):
    t = await api.create_workspace("enterprise")  # 600,000 credits for the year
    wb = await api.create_workbook(t.admin_key)
    await api.set_limit(t.admin_key, wb, "40")
    await api.start_run(t.admin_key, wb, hold="599970")
    profiles = {"kind": "ENRICHMENT", "provider": "linkedin", "dataType": "profile"}
    data = await api.gql(
        RUN_ESTIMATE, {"i": {"records": 100, "workbookId": wb, **profiles}}, key=t.admin_key
    )
    coverage = data["estimateCost"]["coverage"]
    assert coverage == {
        "covered": False,
        "refusal": "INSUFFICIENT_DATA_CREDITS",
        "actionsRemaining": 100_000,
        "actionsCovered": True,
        "dataCreditsAvailable": "30",
        "dataCreditsCovered": False,
        "workbookLimitRemaining": "40",
        "workbookLimitCovered": False,
    }
    small = await api.gql(
        RUN_ESTIMATE, {"i": {"records": 50, "workbookId": wb, **profiles}}, key=t.admin_key
    )
    assert small["estimateCost"]["coverage"]["covered"] is True


async def test_r07_an_estimate_is_one_option_or_several_never_both(api):
    t = await api.create_workspace("launch")
    stranger = await api.create_workspace("launch")
    stranger_wb = await api.create_workbook(stranger.admin_key)
    cases = [
        ({"records": 1}, "INVALID_INPUT"),
        ({"records": 1, "kind": "CRM_EXPORT", "options": [{"kind": "SOURCING"}]}, "INVALID_INPUT"),
        ({"records": 1, "options": []}, "INVALID_INPUT"),
        ({"records": 1, "kind": "CRM_EXPORT", "workbookId": stranger_wb}, "NOT_FOUND"),
    ]
    for fields, expected in cases:
        assert await api.error_code(RUN_ESTIMATE, {"i": fields}, key=t.admin_key) == expected


async def test_r11_a_workbook_at_its_limit_is_not_covered_even_for_work_costing_no_credits(api):
    """A regression: coverage was worked out a second time in the GraphQL layer, which said a
    limit of 0 covers a CRM export (0 credits) although R11 refuses all billable work there."""
    t = await api.create_workspace("enterprise")
    wb = await api.create_workbook(t.admin_key)
    await api.set_limit(t.admin_key, wb, "0")
    export = {"kind": "CRM_EXPORT", "workbookId": wb}
    for records, refusal in ((100_001, "ACTIONS_EXHAUSTED"), (10, "WORKBOOK_SPEND_LIMIT_REACHED")):
        data = await api.gql(RUN_ESTIMATE, {"i": {"records": records, **export}}, key=t.admin_key)
        coverage = data["estimateCost"]["coverage"]
        assert (coverage["refusal"], coverage["workbookLimitCovered"]) == (refusal, False)
        assert coverage["workbookLimitRemaining"] == "0"
    charged = await api.record_usage(t.admin_key, wb, kind="CRM_EXPORT", results=10)
    assert charged["code"] == "WORKBOOK_SPEND_LIMIT_REACHED"  # what the estimate foretold
