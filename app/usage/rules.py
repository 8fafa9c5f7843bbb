"""Whether one charge fits, and what it takes from each balance (R6, R9–R12, R23, R25).

Pure: the states are read under row locks by the service, then each charge of a batch is
decided against the state the ones before it left, so a batch is exact without a round trip
per item.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from app.errors import ErrorCode, InvalidInput, Refused
from app.kinds import RunStatus
from app.units import units_to_credits
from app.usage.pricing import Cost


@dataclass
class WorkspaceMeters:
    actions_remaining: int
    balance: int  # Data Credit units, held ones included
    held: int  # units set aside for runs

    @property
    def available(self) -> int:
        return self.balance - self.held


@dataclass
class LimitState:
    name: str
    limit: int | None  # R11; None = no limit in force
    spent: int


@dataclass
class RunState:
    status: RunStatus
    ended_at: datetime | None
    budget: int | None  # R6; None = no budget
    spent: int
    hold: int


@dataclass(frozen=True)
class Debit:
    actions: int
    credits: int
    settle: int  # taken from the run's own hold, so other work's availability is unchanged
    counts_in_limit: bool  # the workbook had a limit in force (R11)


# How far a client's clock may run ahead of the server's (R23).
SENT_AT_SKEW = timedelta(minutes=5)


def check_sent_at(sent_at: datetime, run_started: datetime | None, now: datetime) -> None:
    """R23: a backdated report never slips past a stop. `sentAt` before the run started, or
    more than SENT_AT_SKEW past the server's clock, is bad input, not a refusal."""
    if sent_at > now + SENT_AT_SKEW:
        raise InvalidInput(
            f"sentAt {sent_at.isoformat()} is more than 5 minutes past the server's clock"
            f" ({now.isoformat()})"
        )
    if run_started is not None and sent_at < run_started:
        raise InvalidInput(
            f"sentAt {sent_at.isoformat()} is before the run started ({run_started.isoformat()})"
        )


def check_run_open(run: RunState | None, sent_at: datetime | None) -> None:
    """R23: a stopped or finished run takes only results of requests sent before it ended."""
    if run is None or run.status is RunStatus.RUNNING:
        return
    assert run.ended_at is not None
    if sent_at is not None and sent_at < run.ended_at:
        return
    sent = "without sentAt" if sent_at is None else f"sent at {sent_at.isoformat()}"
    raise Refused(
        ErrorCode.RUN_STOPPED,
        f"the run was {run.status.value.lower()} at {run.ended_at.isoformat()}; a result {sent}"
        " is new work",
    )


def decide(
    cost: Cost,
    billable: bool,
    meters: WorkspaceMeters,
    limit: LimitState,
    run: RunState | None,
    sent_at: datetime | None,
) -> Debit:
    """The debit for one charge, or the refusal R25 says comes first."""
    check_run_open(run, sent_at)
    if not billable:
        return Debit(0, 0, 0, False)  # free work moves no meter and counts nowhere (R3)
    settle = min(run.hold, cost.credits) if run is not None else 0
    for refusal in (
        actions_refusal(cost, meters),
        credits_refusal(cost, meters, settle),
        limit_refusal(cost, limit),
        budget_refusal(cost, run),
    ):
        if refusal is not None:
            raise refusal
    return Debit(cost.actions, cost.credits, settle, limit.limit is not None)


# R25's checks, in its order; each says why a billable charge does not fit, or None.


def actions_refusal(cost: Cost, meters: WorkspaceMeters) -> Refused | None:
    if meters.actions_remaining >= cost.actions:
        return None
    return Refused(
        ErrorCode.ACTIONS_EXHAUSTED,
        f"this needs {cost.actions} Actions and {meters.actions_remaining} remain this"
        " month; Actions cannot be bought, a higher plan tier has more",
    )


def credits_refusal(cost: Cost, meters: WorkspaceMeters, settle: int = 0) -> Refused | None:
    """`settle`: what the charge's own run holds for it (R6)."""
    if meters.available + settle >= cost.credits:
        return None
    return Refused(ErrorCode.INSUFFICIENT_DATA_CREDITS, _short_of_credits(cost, meters, settle))


def limit_refusal(cost: Cost, limit: LimitState) -> Refused | None:
    """R11: at or past its limit a workbook refuses all billable work, even work that costs
    no credits; below it, a charge that would pass the limit."""
    if limit.limit is None or (
        limit.spent < limit.limit and limit.spent + cost.credits <= limit.limit
    ):
        return None
    return Refused(
        ErrorCode.WORKBOOK_SPEND_LIMIT_REACHED,
        f"workbook {limit.name!r} has spent {units_to_credits(limit.spent)} of its "
        f"{units_to_credits(limit.limit)} Data Credit limit; this costs "
        f"{units_to_credits(cost.credits)}",
    )


def budget_refusal(cost: Cost, run: RunState | None) -> Refused | None:
    if run is None or run.budget is None or run.spent + cost.credits <= run.budget:
        return None
    return Refused(
        ErrorCode.RUN_BUDGET_EXCEEDED,
        f"the run has spent {units_to_credits(run.spent)} of its "
        f"{units_to_credits(run.budget)} Data Credit budget; this costs "
        f"{units_to_credits(cost.credits)}",
    )


def _short_of_credits(cost: Cost, meters: WorkspaceMeters, settle: int) -> str:
    costs = f"this costs {units_to_credits(cost.credits)} Data Credits"
    if meters.held == 0:
        return f"{costs} and the balance is {units_to_credits(meters.balance)}"
    return (
        f"{costs} and {units_to_credits(meters.available + settle)} are available: the balance"
        f" is {units_to_credits(meters.balance)}, of which {units_to_credits(meters.held)}"
        " is held for runs"
    )


def apply(debit: Debit, meters: WorkspaceMeters, limit: LimitState, run: RunState | None) -> None:
    """Move the in-memory states past one accepted charge."""
    meters.actions_remaining -= debit.actions
    meters.balance -= debit.credits
    meters.held -= debit.settle
    if debit.counts_in_limit:
        limit.spent += debit.credits
    if run is not None:
        run.spent += debit.credits
        run.hold -= debit.settle
