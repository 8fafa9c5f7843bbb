"""R1, R32: amounts as integer minor units; decimals only at the edges."""

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.units import (
    cents_to_usd,
    credits_text,
    credits_to_units,
    units_to_credits,
    usd_to_cents,
)


@pytest.mark.parametrize(
    ("credits", "units"),
    [("0.5", 5_000), ("95", 950_000), ("0.0001", 1), ("0", 0), ("100000", 1_000_000_000)],
)
def test_r01_credits_are_ten_thousandths(credits, units):
    assert credits_to_units(credits) == units
    assert units_to_credits(units) == Decimal(credits)


@pytest.mark.parametrize(
    ("units", "text"),
    [(5_000, "0.5"), (1_000_000, "100"), (1, "0.0001"), (0, "0"), (17_205, "1.7205")],
)
def test_r01_credits_print_without_exponent_or_trailing_zeros(units, text):
    assert format(units_to_credits(units), "f") == text
    assert credits_text(units) == text


def test_r01_a_fifth_decimal_place_is_refused():
    with pytest.raises(ValueError, match="more than 4 decimal places"):
        credits_to_units("0.00001")


@pytest.mark.parametrize(
    ("usd", "cents"), [("0.005", 1), ("0.004", 0), ("185", 18_500), ("0.052", 5), ("2.345", 235)]
)
def test_r32_money_rounds_half_up_to_the_cent(usd, cents):
    assert usd_to_cents(Decimal(usd)) == cents


def test_r01_cents_print_as_usd():
    assert str(cents_to_usd(18_500)) == "185.00"
    assert str(cents_to_usd(5)) == "0.05"


def _scaled(units: int) -> Decimal:
    """units_to_credits as Decimal arithmetic spells it: the reference for its digit path."""
    normalized = Decimal(units).scaleb(-4).normalize()
    exponent = normalized.as_tuple().exponent
    if isinstance(exponent, int) and exponent > 0:
        return normalized.quantize(Decimal(1))
    return normalized


@given(st.integers(min_value=-(10**18), max_value=10**18))
@settings(max_examples=2_000, deadline=None)
def test_r01_credits_are_the_same_decimal_as_scaled_arithmetic_gives(units):
    credits = units_to_credits(units)
    assert (str(credits), credits.as_tuple()) == (str(_scaled(units)), _scaled(units).as_tuple())
    assert credits_text(units) == str(_scaled(units))  # what events and files show


@pytest.mark.parametrize(
    "units", [0, 1, -1, 9_999, 10_000, -10_000, 10_001, 12_300, -12_300, 10**17, -(10**17) - 1]
)
def test_r01_credits_at_the_edges_are_the_same_decimal_as_scaled_arithmetic_gives(units):
    assert units_to_credits(units).as_tuple() == _scaled(units).as_tuple()
