"""What happens to Data Credits at a cycle end (R16-R18, R21, R29). Pure arithmetic on units.

A renewal moves the balance in up to three steps, each its own ledger entry: credits that
expire (annual rollover of 15%, a trial or a move to free keeping 100), the new cycle's grant,
and the cut down to the cap (2x the new cycle's grant).
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple

ANNUAL_ROLLOVER_PERCENT = 15  # R17


class Ending(StrEnum):
    """The kind of cycle that ends, which decides what carries over."""

    TRIAL = "TRIAL"
    MONTHLY = "MONTHLY"
    ANNUAL = "ANNUAL"


# A NamedTuple, not a frozen dataclass: one per renewal in the sweep's hot path (renewal_step).
class CreditRenewal(NamedTuple):
    before: int
    expired: int  # >= 0, taken off first
    granted: int  # the new cycle's grant
    capped: int  # >= 0, taken off last
    after: int


def carried(
    balance: int, ending: Ending, *, to_free: bool, tier_down: bool, keep_on_free: int
) -> int:
    """The part of the balance that survives the end of a cycle, before the new grant.

    Trials and moves to free keep at most `keep_on_free` (R18, R29); an annual cycle keeps 15%,
    rounded down to the unit, only when the next one is not of a lower tier (R17); a monthly
    cycle keeps everything and the cap does the cutting (R16, R21).
    """
    if ending is Ending.TRIAL or (ending is Ending.ANNUAL and to_free):
        return min(balance, keep_on_free)
    if ending is Ending.ANNUAL:
        return 0 if tier_down else balance * ANNUAL_ROLLOVER_PERCENT // 100
    return balance


def renew_credits(balance: int, keep: int, grant: int, cap: int) -> CreditRenewal:
    """Keep `keep` of `balance`, add `grant`, cut the result down to `cap`."""
    expired = balance - keep
    capped = max(keep + grant - cap, 0)
    return CreditRenewal(balance, expired, grant, capped, keep + grant - capped)
