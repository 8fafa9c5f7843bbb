"""R1, R32: amounts as integer minor units; decimals only at the edges."""

from decimal import Decimal

import pytest

from app.units import (
    cents_to_usd,
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
