"""Pure rules of renewals, rollover, plan changes and money (R14-R21, R27, R29, R30, R32, R33)."""

from datetime import UTC, datetime

import pytest

from app.billing.money import cycle_price_cents, prorated_cents, top_up_price_cents
from app.catalog import load_catalog
from app.kinds import BillingInterval, WorkspaceStatus
from app.plans.changes import ChangeKind, Choice, classify, tier_down
from app.plans.cycles import fraction_left, months_since, next_boundary
from app.plans.renewal_step import Pending, RenewalKind, State, plan_step
from app.plans.rollover import CreditRenewal, Ending, carried, renew_credits

CATALOG = load_catalog()
PLANS = {p.code: p for p in CATALOG.plans}
BILLING = CATALOG.billing
M, A = BillingInterval.MONTHLY, BillingInterval.ANNUAL
U = 10_000  # units per credit


def at(y, m, d, hh=10):
    return datetime(y, m, d, hh, tzinfo=UTC)


@pytest.mark.parametrize(
    ("anchor", "boundary", "months", "expected"),
    [
        (at(2025, 1, 31), at(2025, 2, 28), 1, at(2025, 3, 31)),  # back to the 31st (R14)
        (at(2025, 1, 31), at(2025, 4, 30), 1, at(2025, 5, 31)),
        (at(2025, 1, 31), at(2025, 1, 31), 12, at(2026, 1, 31)),
        (at(2024, 2, 29), at(2025, 2, 28), 12, at(2026, 2, 28)),
        (at(2024, 2, 29), at(2027, 2, 28), 12, at(2028, 2, 29)),  # leap day again
        (at(2025, 11, 30), at(2025, 12, 30), 3, at(2026, 3, 30)),
    ],
)
def test_r14_next_boundary_counts_from_the_anchor(anchor, boundary, months, expected):
    assert next_boundary(anchor, boundary, months) == expected


def test_r14_months_since_the_anchor():
    assert months_since(at(2025, 1, 31), at(2025, 2, 28)) == 1
    assert months_since(at(2025, 1, 31), at(2026, 3, 31)) == 14


@pytest.mark.parametrize(
    ("balance", "ending", "to_free", "down", "expected"),
    [
        (800 * U, Ending.TRIAL, True, False, 100 * U),  # R18: a trial keeps 100
        (30 * U, Ending.TRIAL, False, False, 30 * U),  # ... or less, if less is left
        (500_000 * U, Ending.ANNUAL, False, False, 75_000 * U),  # R17's example
        (500_000 * U, Ending.ANNUAL, False, True, 0),  # lower tier: nothing (R17)
        (333_333_3333, Ending.ANNUAL, False, False, 49_999_9999),  # 15%, rounded down (R32)
        (1, Ending.ANNUAL, False, False, 0),
        (7, Ending.ANNUAL, False, False, 1),
        (500_000 * U, Ending.ANNUAL, True, True, 100 * U),  # R29: annual -> free keeps 100
        (42 * U, Ending.ANNUAL, True, True, 42 * U),
        (9_000 * U, Ending.MONTHLY, False, False, 9_000 * U),  # monthly: the cap cuts
        (9_000 * U, Ending.MONTHLY, True, True, 9_000 * U),
    ],
)
def test_r16_r17_r18_r29_what_carries_over(balance, ending, to_free, down, expected):
    kept = carried(balance, ending, to_free=to_free, tier_down=down, keep_on_free=100 * U)
    assert kept == expected


@pytest.mark.parametrize(
    ("balance", "keep", "grant", "cap", "expected"),
    [
        # R16: 2,000 unused + 2,500 = 4,500 under the 5,000 cap
        (2_000, 2_000, 2_500, 5_000, CreditRenewal(2_000, 0, 2_500, 0, 4_500)),
        # R16: 4,000 unused + 2,500 capped at 5,000
        (4_000, 4_000, 2_500, 5_000, CreditRenewal(4_000, 0, 2_500, 1_500, 5_000)),
        # R16's example: 50,000 a month caps at 100,000
        (100_000, 100_000, 50_000, 100_000, CreditRenewal(100_000, 0, 50_000, 50_000, 100_000)),
        # R17's example: 500,000 unused, 15% kept, + 600,000
        (500_000, 75_000, 600_000, 1_200_000, CreditRenewal(500_000, 425_000, 600_000, 0, 675_000)),
        # R18's example: trial with 800 -> free with 100 + 100
        (800, 100, 100, 200, CreditRenewal(800, 700, 100, 0, 200)),
        # R21: growth's 15,000 down to launch: cut to 2 x 2,500
        (15_000, 15_000, 2_500, 5_000, CreditRenewal(15_000, 0, 2_500, 12_500, 5_000)),
        # a refund took the balance past the cap (R22): the next renewal caps it
        (5_100, 5_100, 2_500, 5_000, CreditRenewal(5_100, 0, 2_500, 2_600, 5_000)),
        (0, 0, 100, 200, CreditRenewal(0, 0, 100, 0, 100)),
    ],
)
def test_r16_r17_r18_r21_renewed_balance(balance, keep, grant, cap, expected):
    assert renew_credits(balance, keep, grant, cap) == expected


def choice(plan, tier, interval=M):
    return Choice(plan, PLANS[plan].rank, tier, interval)


@pytest.mark.parametrize(
    ("current", "target", "kind"),
    [
        (choice("launch", 2500), choice("growth", 6000), ChangeKind.UPGRADE),  # R20
        (choice("launch", 2500), choice("launch", 5000), ChangeKind.UPGRADE),  # tier only
        (choice("growth", 6000), choice("launch", 2500), ChangeKind.DOWNGRADE),  # R21
        (choice("launch", 10000), choice("growth", 6000), ChangeKind.DOWNGRADE),  # R27: mixed
        (choice("growth", 12000), choice("growth", 6000), ChangeKind.DOWNGRADE),
        (choice("launch", 2500), choice("launch", 2500, A), ChangeKind.DOWNGRADE),  # R30
        (choice("launch", 2500, A), choice("growth", 6000, M), ChangeKind.DOWNGRADE),  # R30
        (choice("launch", 2500, A), choice("growth", 6000, A), ChangeKind.UPGRADE),
        (choice("growth", 6000), choice("free", 100), ChangeKind.DOWNGRADE),  # cancel
        (choice("launch", 2500), choice("launch", 2500), ChangeKind.NONE),
    ],
)
def test_r20_r21_r27_r30_which_changes_wait(current, target, kind):
    assert classify(current, target) is kind


def test_r17_lower_tier_is_a_lower_rank_or_fewer_credits():
    assert not tier_down(choice("launch", 2500, A), choice("launch", 2500, M))
    assert not tier_down(choice("launch", 2500), choice("growth", 6000))
    assert tier_down(choice("growth", 50000), choice("launch", 10000))
    assert tier_down(choice("launch", 10000), choice("growth", 6000))


@pytest.mark.parametrize(
    ("plan", "tier", "interval", "cents"),
    [
        ("launch", 2500, M, 185_00),  # API.md: 85 + 2,500 x 0.04
        ("launch", 2500, A, 2_220_00),
        ("growth", 6000, M, 495_00),
        ("growth", 50000, A, 27_060_00),  # (255 + 2,000) x 12
        ("enterprise", 50000, A, 48_000_00),  # (2,000 + 2,000) x 12
        ("free", 100, M, 0),  # free bills nothing
    ],
)
def test_r20_cycle_prices(plan, tier, interval, cents):
    assert cycle_price_cents(PLANS[plan], tier, interval, BILLING) == cents


@pytest.mark.parametrize(
    ("difference", "now", "cents"),
    [
        (310_00, at(2025, 3, 1), 155_00),  # half of a 30-day cycle: Feb 14 -> Mar 16
        (310_00, at(2025, 2, 14), 310_00),  # the whole cycle left
        (310_00, at(2025, 3, 16), 0),  # none left
        (310_00, at(2025, 4, 1), 0),  # the stored cycle is past (R33): clamped to 0
        (310_00, at(2025, 1, 1), 310_00),  # before the cycle: clamped to 1
        (1, at(2025, 3, 1), 1),  # 0.5 cent rounds half-up (R32)
        (3, at(2025, 3, 1), 2),  # 1.5 -> 2
        (100, at(2025, 2, 24), 67),  # 20 of 30 days: 66.67 -> 67
    ],
)
def test_r20_r32_r33_proration(difference, now, cents):
    assert prorated_cents(difference, at(2025, 2, 14), at(2025, 3, 16), now) == cents


def test_r33_fraction_left_is_clamped():
    assert fraction_left(at(2025, 1, 1), at(2025, 1, 2), at(2025, 1, 3)) == (0, 86_400_000_000)


@pytest.mark.parametrize(
    ("units", "cents"),
    [(1000 * U, 52_00), (1 * U, 5), (10 * U, 52), (5, 0), (105 * U, 5_46), (100 * U + 5000, 5_23)],
)
def test_r19_r32_top_up_price(units, cents):
    # 0.04 x 1.30 = 0.052 a credit; 1 credit = 5.2 cents -> 5; 105 credits = 546 cents
    assert top_up_price_cents(units, BILLING) == cents


def state(**fields) -> State:
    base = State(
        plan_code="launch",
        credit_tier=2500,
        interval=M,
        status=WorkspaceStatus.ACTIVE,
        anchor=at(2025, 1, 31),
        period_start=at(2025, 1, 31),
        period_end=at(2025, 2, 28),
        actions_period_end=at(2025, 2, 28),
        actions_capacity=15000,
        actions_used=1200,
        balance=4000 * U,
        pending=None,
    )
    return base._replace(**fields)


def test_r15_r16_monthly_step():
    step = plan_step(state(), PLANS, BILLING)
    assert step.kind is RenewalKind.CYCLE
    assert (step.period_start, step.period_end) == (at(2025, 2, 28), at(2025, 3, 31))
    assert step.actions_expired == 13800 and step.terms.monthly_actions == 15000
    assert step.credits == CreditRenewal(4000 * U, 0, 2500 * U, 1500 * U, 5000 * U)


def test_r15_r17_annual_plan_renews_actions_monthly_inside_its_year():
    annual = state(
        plan_code="enterprise",
        credit_tier=50000,
        interval=A,
        period_end=at(2026, 1, 31),
        actions_capacity=100000,
        balance=123 * U,
    )
    step = plan_step(annual, PLANS, BILLING)
    assert step.kind is RenewalKind.ACTIONS and step.credits is None
    assert step.actions_period_end == at(2025, 3, 31)
    assert step.period_end == at(2026, 1, 31)


def test_r18_trial_end_reanchors_on_free_or_the_chosen_plan():
    trial = state(
        plan_code="growth",
        credit_tier=None,
        status=WorkspaceStatus.TRIALING,
        anchor=at(2025, 1, 1),
        period_start=at(2025, 1, 1),
        period_end=at(2025, 1, 15),
        actions_period_end=at(2025, 1, 15),
        actions_capacity=40000,
        balance=800 * U,
    )
    step = plan_step(trial, PLANS, BILLING)
    assert step.kind is RenewalKind.TRIAL_END and step.terms.plan_code == "free"
    assert step.anchor == at(2025, 1, 15) and step.period_end == at(2025, 2, 15)
    assert step.credits == CreditRenewal(800 * U, 700 * U, 100 * U, 0, 200 * U)
    chosen = plan_step(trial._replace(pending=Pending("launch", 2500, None)), PLANS, BILLING)
    assert chosen.terms.plan_code == "launch"
    assert chosen.credits == CreditRenewal(800 * U, 700 * U, 2500 * U, 0, 2600 * U)


def test_r21_r29_pending_downgrade_applies_at_the_annual_end():
    annual = state(
        plan_code="growth",
        credit_tier=12000,
        interval=A,
        period_end=at(2025, 2, 28),
        balance=100_000 * U,
        pending=Pending("launch", 2500, A),
    )
    step = plan_step(annual, PLANS, BILLING)
    # A lower tier keeps nothing (R29), then the year's 30,000 of launch
    assert step.credits == CreditRenewal(100_000 * U, 100_000 * U, 30_000 * U, 0, 30_000 * U)
    assert step.terms.plan_code == "launch" and step.period_end == at(2026, 2, 28)
