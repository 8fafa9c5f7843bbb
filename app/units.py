"""Amounts as integer minor units (R1).

Data Credits are stored in ten-thousandths of a credit, money in cents. Decimals appear only at
the edges (API input and output); a float never touches an amount.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

CREDIT_SCALE = 10_000  # minor units per Data Credit
CENT_SCALE = 100  # cents per USD


def credits_to_units(value: Decimal | int | str) -> int:
    """Exact conversion; raises ValueError when the value has more than 4 decimal places."""
    d = Decimal(value)
    units = d * CREDIT_SCALE
    if units != units.to_integral_value():
        raise ValueError(f"{value} has more than 4 decimal places")
    return int(units)


def units_to_credits(units: int) -> Decimal:
    """Credits without trailing zeros (1.23, 5, not 1.2300 or 5.0000)."""
    return Decimal(credits_text(units))


def credits_text(units: int) -> str:
    """`units_to_credits` as text (what `str` of it gives), as events and files spell amounts.
    Spelled from the integer's digits: called for every amount an answer or an event shows,
    and Decimal's scaleb and normalize cost several times more (tests/unit/test_units.py)."""
    whole, fraction = divmod(abs(units), CREDIT_SCALE)
    sign = "-" if units < 0 else ""
    if not fraction:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{fraction:04d}".rstrip("0")


def cents_to_usd(cents: int) -> Decimal:
    return _plain(Decimal(cents).scaleb(-2)).quantize(Decimal("0.01"))


def usd_to_cents(usd: Decimal) -> int:
    """Money rounds half-up to the cent (R32)."""
    return int((usd * CENT_SCALE).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _plain(d: Decimal) -> Decimal:
    """Drop trailing zeros without switching to exponent notation (100, not 1E+2)."""
    normalized = d.normalize()
    exponent = normalized.as_tuple().exponent
    if isinstance(exponent, int) and exponent > 0:
        return normalized.quantize(Decimal(1))
    return normalized


def ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)
