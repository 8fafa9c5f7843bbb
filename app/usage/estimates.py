"""Estimates for a planned run (R7): expected results, and whether the workspace covers it.

Pure: an estimate never charges, and coverage asks the same rule a charge does
(`charge_rules.decide`) whether one charge of the run's total would fit right now.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal

from app.errors import ErrorCode, InvalidInput, Refused
from app.usage import rules as charge_rules
from app.usage.pricing import Cost
from app.usage.rules import LimitState, WorkspaceMeters

_STEP = Decimal("0.0001")


def expected_results(records: int, hit_rate: Decimal | None) -> int:
    """Records that will yield a billable result; rounded up, so an estimate never falls
    short (R4: only successful results are charged)."""
    if hit_rate is None:
        return records
    exponent = hit_rate.as_tuple().exponent  # a letter for NaN and the infinities
    if not Decimal(0) <= hit_rate <= Decimal(1) or isinstance(exponent, str) or exponent < -4:
        raise InvalidInput(
            f"hitRate must be between 0 and 1 with at most 4 decimals; got {hit_rate}"
        )
    return int((records * hit_rate).to_integral_value(rounding=ROUND_CEILING))


@dataclass(frozen=True)
class Coverage:
    actions_remaining: int
    credits_available: int  # units
    limit_remaining: int | None  # units; None: no workbook limit in force
    refusal: ErrorCode | None  # what a charge of the whole run would meet first (R25)
    actions_covered: bool
    credits_covered: bool
    limit_covered: bool  # also True without a limit

    @property
    def covered(self) -> bool:
        return self.refusal is None


def coverage(
    total: Cost, billable: bool, meters: WorkspaceMeters, limit: LimitState | None
) -> Coverage:
    """Whether one charge of the run's total fits now, by the charge's own rules: the first
    refusal (R25) and, on their own, each meter's check. Free work fits everywhere (R3)."""
    probe = limit or LimitState("", None, 0)
    refusal = None
    try:
        charge_rules.decide(total, billable, meters, probe, None, None)
    except Refused as refused:
        refusal = refused.code
    remaining = None if probe.limit is None else max(probe.limit - probe.spent, 0)
    return Coverage(
        actions_remaining=meters.actions_remaining,
        credits_available=meters.available,
        limit_remaining=remaining,
        refusal=refusal,
        actions_covered=not billable or charge_rules.actions_refusal(total, meters) is None,
        credits_covered=not billable or charge_rules.credits_refusal(total, meters) is None,
        limit_covered=not billable or charge_rules.limit_refusal(total, probe) is None,
    )
