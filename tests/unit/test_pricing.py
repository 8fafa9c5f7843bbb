"""R2–R6, R8, R22: what a usage costs, as a pure function of the catalog values."""

import pytest

from app.catalog import AiModelSpec, PriceSpec
from app.kinds import FREE_KINDS, UsageKind, is_billable
from app.usage.pricing import Cost, ai_credits, refund_share, usage_cost

LINKEDIN = PriceSpec("linkedin", "profile", UsageKind.ENRICHMENT, 5_000)
HUNTER = PriceSpec("hunter", "email", UsageKind.ENRICHMENT, 5_000)
VALIDATION = PriceSpec("zerobounce", "email_validation", UsageKind.ENRICHMENT, 0)
PHONE = PriceSpec("apollo", "phone", UsageKind.ENRICHMENT, 50_000)
SMALL = AiModelSpec("small", 500, 2_000)
LARGE = AiModelSpec("large", 5_000, 20_000)

BILLABLE = [k for k in UsageKind if k not in FREE_KINDS]


def test_r02_twelve_billable_kinds_and_r03_nine_free_kinds():
    assert len(BILLABLE) == 12
    assert len(FREE_KINDS) == 9
    assert not any(is_billable(k) for k in FREE_KINDS)


@pytest.mark.parametrize("kind", BILLABLE)
def test_r02_one_action_per_result(kind):
    assert usage_cost(kind, 7).actions == 7


@pytest.mark.parametrize("kind", sorted(FREE_KINDS))
def test_r03_free_kinds_cost_nothing(kind):
    assert usage_cost(kind, 100, price=PHONE) == Cost(0, 0)


@pytest.mark.parametrize(
    ("price", "results", "expected"),
    [
        (HUNTER, 90, Cost(90, 450_000)),  # 100 lookups, 90 emails found: 45 credits
        (LINKEDIN, 100, Cost(100, 500_000)),
        (VALIDATION, 90, Cost(90, 0)),
        (PHONE, 3, Cost(3, 150_000)),
        (None, 10, Cost(10, 0)),  # billable kind with no provider
    ],
)
def test_r04_price_per_successful_result(price, results, expected):
    assert usage_cost(UsageKind.ENRICHMENT, results, price=price) == expected


@pytest.mark.parametrize("price", [HUNTER, PHONE, LINKEDIN])
def test_r05_own_key_costs_actions_only(price):
    assert usage_cost(UsageKind.ENRICHMENT, 90, own_api_key=True, price=price) == Cost(90, 0)


@pytest.mark.parametrize(
    ("model", "tokens_in", "tokens_out", "units"),
    [
        (SMALL, 1000, 500, 1_500),  # 0.05 + 0.1 = 0.15 credits
        (SMALL, 1, 0, 1),  # 0.00005 rounds up to 0.0001
        (SMALL, 0, 0, 0),
        (LARGE, 333, 777, 17_205),  # 0.1665 + 1.554 = 1.7205
        (LARGE, 1, 1, 25),  # 0.0005 + 0.002
        (SMALL, 3, 0, 2),  # 0.00015 rounds up to 0.0002
    ],
)
def test_r06_ai_priced_per_token_rounded_up_per_charge(model, tokens_in, tokens_out, units):
    assert ai_credits(model, tokens_in, tokens_out) == units
    assert usage_cost(
        UsageKind.AI, 1, model=model, input_tokens=tokens_in, output_tokens=tokens_out
    ) == Cost(1, units)


def test_r06_own_ai_key_costs_one_action_and_no_credits():
    cost = usage_cost(UsageKind.AI, 1, own_api_key=True, model=LARGE, input_tokens=10**6)
    assert cost == Cost(1, 0)


def test_r08_worked_example_of_the_source():
    steps = [
        usage_cost(UsageKind.SOURCING, 100),
        usage_cost(UsageKind.ENRICHMENT, 100, price=LINKEDIN),
        usage_cost(UsageKind.ENRICHMENT, 90, price=HUNTER),
        usage_cost(UsageKind.ENRICHMENT, 90, price=VALIDATION),
    ]
    assert sum(s.credits for s in steps) == 950_000  # 95 credits
    own_key = [
        steps[0],
        steps[1],
        usage_cost(UsageKind.ENRICHMENT, 90, own_api_key=True, price=HUNTER),
        usage_cost(UsageKind.ENRICHMENT, 90, own_api_key=True, price=VALIDATION),
    ]
    assert sum(s.credits for s in own_key) == 500_000  # 50 credits


@pytest.mark.parametrize(
    ("credits", "results", "before", "count", "share"),
    [
        (500_000, 100, 0, 100, 500_000),
        (500_000, 100, 0, 10, 50_000),
        (500_000, 100, 10, 90, 450_000),
        (17_206, 3, 0, 1, 5_735),
        (17_206, 3, 1, 1, 5_735),
        (17_206, 3, 2, 1, 5_736),  # the last share takes the remainder
        (0, 5, 0, 5, 0),
    ],
)
def test_r22_refund_shares_add_up_to_the_charge(credits, results, before, count, share):
    assert refund_share(credits, results, before, count) == share


def test_r22_refunding_one_result_at_a_time_returns_exactly_the_charge():
    for credits, results in [(17_206, 3), (1, 7), (999_999, 13)]:
        total = sum(refund_share(credits, results, i, 1) for i in range(results))
        assert total == credits
