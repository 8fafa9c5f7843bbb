"""The operator report's arithmetic (issue 19): pure functions of rows the service reads.

Definitions (docs/decisions.md, "Operator report"):
- A workspace's *last complete cycle* at `to` is the Actions month (Actions renew monthly on
  every plan, R15) that ended at its latest boundary at or before `to`, once the scheduler has
  processed that boundary (a `renewal` row); it counts when that boundary lies in [from, to].
- It *used up* its Actions when, at the end of that month, Actions used >= capacity: the
  Actions left just before the renewal that closed it were 0 (an upgrade that raised the
  capacity afterwards leaves Actions to spare, so it did not use up the capacity it ended on).
- It is counted under the plan it was on at the end of that month; a trial is its own row.
- Money is billed charges (`billing_charge`) by the UTC calendar month they were recorded in,
  within [from, to): plan revenue is plan fees and upgrade prorations, top-up revenue top-ups.
- Data Credits expired at renewals are what renewals processed in [from, to) took away, by the
  UTC month they were processed in: expiry plus what the rollover cap cut (`expired` of
  `subscription.renewed`), with the cap's part also on its own.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from app.errors import InvalidInput
from app.kinds import ChargeKind

MAX_DAYS = 1830  # five years of months, a bounded answer
SHARE_PLACES = Decimal("0.0001")


@dataclass(frozen=True)
class CycleEnd:
    """What the database says of one workspace's last complete month."""

    plan_code: str
    trial: bool  # the month was a trial's (no credit tier)
    actions_left: int | None  # None: no Actions moved in the month (a catch-up step's month)


@dataclass(frozen=True)
class ChargeSum:
    """Billed money of one kind and plan in one UTC month, in cents."""

    month: str  # YYYY-MM
    kind: str
    plan_code: str
    cents: int


@dataclass(frozen=True)
class ExpirySum:
    """Data Credit units renewals took away in one UTC month."""

    month: str
    expired: int  # expiry and cap together
    capped: int  # the cap's part


@dataclass(frozen=True)
class PlanRow:
    plan_code: str
    trial: bool
    workspaces: int  # whose last complete cycle in range was on this plan
    used_up: int
    plan_cents: int  # plan fees and prorations billed in range on this plan
    top_up_cents: int

    @property
    def used_up_share(self) -> Decimal | None:
        return share(self.used_up, self.workspaces)


@dataclass(frozen=True)
class MonthRow:
    month: str
    credits_expired: int  # units
    credits_capped: int
    plan_cents: int
    top_up_cents: int


@dataclass(frozen=True)
class Report:
    start: datetime
    end: datetime
    plans: list[PlanRow]
    months: list[MonthRow]


def check_range(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """[start, end) in UTC: end after start, at most MAX_DAYS long (INVALID_INPUT)."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if end <= start:
        raise InvalidInput(f"to ({end.isoformat()}) must be after from ({start.isoformat()})")
    if end - start > timedelta(days=MAX_DAYS):
        raise InvalidInput(f"the range is longer than {MAX_DAYS} days; ask for a shorter one")
    return start, end


def months(start: datetime, end: datetime) -> list[str]:
    """The UTC calendar months [start, end) touches, oldest first, as YYYY-MM."""
    start, last = start.astimezone(UTC), (end - timedelta(microseconds=1)).astimezone(UTC)
    year, month, names = start.year, start.month, []
    while (year, month) <= (last.year, last.month):
        names.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return names


def used_up(cycle: CycleEnd) -> bool:
    """Actions used >= capacity at the month's end: none left."""
    return cycle.actions_left is not None and cycle.actions_left <= 0


def share(part: int, whole: int) -> Decimal | None:
    """part / whole rounded half-up to 0.0001, without trailing zeros; None when there is no
    whole."""
    if whole == 0:
        return None
    rounded = (Decimal(part) / Decimal(whole)).quantize(SHARE_PLACES, rounding=ROUND_HALF_UP)
    return rounded.normalize()  # "0.5", not "0.5000"; a share is at most 1, never 1E+1


def _is_plan_money(kind: str) -> bool:
    return kind in (ChargeKind.PLAN_FEE.value, ChargeKind.PRORATION.value)


def plan_rows(cycles: Iterable[CycleEnd], charges: Iterable[ChargeSum]) -> list[PlanRow]:
    """One row per plan (a plan's trials apart) that had a complete cycle or billed money,
    sorted by plan code, the trial row after its plan."""
    counts: dict[tuple[str, bool], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for c in cycles:
        row = counts[(c.plan_code, c.trial)]
        row[0] += 1
        row[1] += used_up(c)
    for m in charges:  # trials bill nothing, so money is always the plan's own
        counts[(m.plan_code, False)][2 if _is_plan_money(m.kind) else 3] += m.cents
    return [PlanRow(plan, trial, *figures) for (plan, trial), figures in sorted(counts.items())]


def month_rows(
    names: list[str], expiries: Iterable[ExpirySum], charges: Iterable[ChargeSum]
) -> list[MonthRow]:
    """One row per month in `names`, zeros where nothing happened."""
    figures = {name: [0, 0, 0, 0] for name in names}
    for e in expiries:
        figures[e.month][0] += e.expired
        figures[e.month][1] += e.capped
    for m in charges:
        figures[m.month][2 if _is_plan_money(m.kind) else 3] += m.cents
    return [MonthRow(name, *row) for name, row in figures.items()]
