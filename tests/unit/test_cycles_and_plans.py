"""R14 anchor arithmetic; R16, R17, R19, R30, R31 plan terms."""

import calendar
from datetime import UTC, datetime

import pytest

from app.catalog import load_catalog
from app.errors import InvalidInput
from app.kinds import BillingInterval
from app.plans.cycles import _days_in, add_months
from app.plans.terms import credit_cap, resolve_terms, trial_terms

PLANS = {p.code: p for p in load_catalog().plans}


def at(y, m, d, hh=9, mm=30):
    return datetime(y, m, d, hh, mm, tzinfo=UTC)


@pytest.mark.parametrize(
    ("anchor", "months", "expected"),
    [
        (at(2026, 1, 31), 1, at(2026, 2, 28)),  # clamped to the shorter month
        (at(2026, 1, 31), 2, at(2026, 3, 31)),  # then back to the anchor day
        (at(2028, 1, 31), 1, at(2028, 2, 29)),  # leap year
        (at(2026, 1, 30), 1, at(2026, 2, 28)),
        (at(2026, 3, 31), 1, at(2026, 4, 30)),
        (at(2026, 12, 15), 1, at(2027, 1, 15)),  # year wrap
        (at(2028, 2, 29), 12, at(2029, 2, 28)),  # annual from a leap day
        (at(2028, 2, 29), 48, at(2032, 2, 29)),
        (at(2026, 5, 29), 9, at(2027, 2, 28)),
        (at(2026, 8, 31, 23, 59), 6, at(2027, 2, 28, 23, 59)),  # time of day kept
    ],
)
def test_r14_months_from_the_anchor_clamp_and_never_drift(anchor, months, expected):
    assert add_months(anchor, months) == expected


def test_r14_month_lengths_are_the_calendars():
    for year in range(1, 3001):
        for month in range(1, 13):
            assert _days_in(year, month) == calendar.monthrange(year, month)[1], (year, month)


def test_r14_twelve_monthly_renewals_of_a_31st_anchor():
    anchor = at(2026, 1, 31)
    days = [add_months(anchor, n).day for n in range(1, 13)]
    assert days == [28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31, 31]


@pytest.mark.parametrize(
    ("plan", "tier", "interval", "expected"),
    [
        ("launch", None, None, (2500, BillingInterval.MONTHLY)),
        ("growth", 12000, None, (12000, BillingInterval.MONTHLY)),
        ("launch", 5000, BillingInterval.ANNUAL, (5000, BillingInterval.ANNUAL)),
        ("enterprise", None, None, (50000, BillingInterval.ANNUAL)),  # annual only (R30)
        ("free", None, None, (100, BillingInterval.MONTHLY)),
    ],
)
def test_r30_defaults_smallest_tier_and_monthly_unless_annual_only(plan, tier, interval, expected):
    terms = resolve_terms(PLANS[plan], tier, interval)
    assert (terms.credit_tier, terms.interval) == expected


@pytest.mark.parametrize(
    ("plan", "tier", "interval", "message"),
    [
        ("launch", 3000, None, "no credit tier 3000"),
        ("enterprise", None, BillingInterval.MONTHLY, "not offered MONTHLY"),
        ("free", None, BillingInterval.ANNUAL, "not offered ANNUAL"),
    ],
)
def test_r30_choices_the_plan_does_not_offer_are_invalid(plan, tier, interval, message):
    with pytest.raises(InvalidInput, match=message):
        resolve_terms(PLANS[plan], tier, interval)


@pytest.mark.parametrize(
    ("plan", "tier", "interval", "grant", "cap"),
    [
        ("launch", 2500, BillingInterval.MONTHLY, 2500, 5000),  # R16: 2x the monthly grant
        ("growth", 50000, BillingInterval.MONTHLY, 50000, 100000),
        ("free", 100, BillingInterval.MONTHLY, 100, 200),  # R18: keeps 100 + grant 100
        ("enterprise", 50000, BillingInterval.ANNUAL, 600000, 1200000),  # R17, R19: yearly
        ("launch", 2500, BillingInterval.ANNUAL, 30000, 60000),
    ],
)
def test_r17_r19_cycle_grant_and_cap(plan, tier, interval, grant, cap):
    terms = resolve_terms(PLANS[plan], tier, interval)
    assert terms.cycle_grant_units == grant * 10_000
    assert terms.cap_units == cap * 10_000
    assert credit_cap(terms.monthly_credits_units, interval) == cap * 10_000


def test_r31_trial_terms_have_the_plans_actions_and_1000_credits():
    terms = trial_terms(PLANS["growth"], 1000 * 10_000)
    assert terms.monthly_actions == 40000
    assert terms.cycle_grant_units == 1000 * 10_000
    assert terms.credit_tier is None


def test_r04_seeded_catalog_matches_api_md():
    catalog = load_catalog()
    prices = {(p.provider, p.data_type): p.credits_units for p in catalog.prices}
    assert prices == {
        ("linkedin", "profile"): 5_000,
        ("hunter", "email"): 5_000,
        ("zerobounce", "email_validation"): 0,
        ("apollo", "phone"): 50_000,
        ("clearbit", "company"): 10_000,
    }
    plans = {p.code: (p.rank, p.monthly_actions, p.credit_tiers) for p in catalog.plans}
    assert plans == {
        "free": (0, 500, (100,)),
        "launch": (1, 15000, (2500, 5000, 10000)),
        "growth": (2, 40000, (6000, 12000, 50000)),
        "enterprise": (3, 100000, (50000, 100000, 250000)),
    }
    models = {m.code: (m.input_units_per_1k, m.output_units_per_1k) for m in catalog.ai_models}
    assert models == {"small": (500, 2_000), "large": (5_000, 20_000)}
